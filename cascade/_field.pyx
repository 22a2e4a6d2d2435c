# cython: language_level=3
"""The per-sample parts of :meth:`cascade.correlation.GridField.draw_base` in C, bit for bit.

:func:`grid_normals`
    For each salt, numpy's ``Generator(Philox(key=salt ^ tag)).standard_normal(2 M)`` (Philox
    4x64-10 as numpy's ``philox.h`` runs it: counter from 0, incremented before each block of
    four outputs, key bumped between rounds; numpy's own ziggurat ``random_standard_normal``
    from libnpyrandom on top), read as M complex numbers and multiplied by ``sqrt(λ/M)`` the
    way numpy's complex multiply of ``(s + 0j) * z`` rounds, into a (B, mx, my) array.
:func:`interpolate`
    The bilinear interpolation of the real part of the FFT onto the sites, its four terms
    summed in the order numpy's ``einsum("bsk,sk->bs", field[:, idx], w)`` sums them: in
    turn, ``((p0 + p1) + p2) + p3``, for a block of several fields (the gathered array has
    the fields on its fastest axis), and ``(p0 + p2) + (p1 + p3)`` for one field (the four
    terms are contiguous and numpy adds them in SIMD lanes, on this x86-64 build).

Both run without the GIL; neither allocates.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t

from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal

cdef extern from *:
    """
    /* CASCADE_PHILOX_LANES consecutive counters at once: the same blocks in the same order
       as one at a time, with their ten dependent rounds interleaved. */
    #define CASCADE_PHILOX_LANES 1
    #define CASCADE_PHILOX_BUF (4 * CASCADE_PHILOX_LANES)
    typedef struct { uint64_t ctr[4]; uint64_t key[2]; uint64_t buf[CASCADE_PHILOX_BUF]; int pos; } cascade_philox;
    #define CASCADE_PHILOX_M0 0xD2E7470EE14C6C93ULL
    #define CASCADE_PHILOX_M1 0xCA5A826395121157ULL
    #define CASCADE_PHILOX_W0 0x9E3779B97F4A7C15ULL
    #define CASCADE_PHILOX_W1 0xBB67AE8584CAA73BULL
    static inline void cascade_philox_block(cascade_philox *p) {
        uint64_t c[CASCADE_PHILOX_LANES][4], k0 = p->key[0], k1 = p->key[1];
        int r, l;
        for (l = 0; l < CASCADE_PHILOX_LANES; l++) {
            if (++p->ctr[0] == 0) if (++p->ctr[1] == 0) if (++p->ctr[2] == 0) ++p->ctr[3];
            c[l][0] = p->ctr[0]; c[l][1] = p->ctr[1]; c[l][2] = p->ctr[2]; c[l][3] = p->ctr[3];
        }
        for (r = 0; r < 10; r++) {
            if (r > 0) { k0 += CASCADE_PHILOX_W0; k1 += CASCADE_PHILOX_W1; }
            for (l = 0; l < CASCADE_PHILOX_LANES; l++) {
                __uint128_t m0 = (__uint128_t)CASCADE_PHILOX_M0 * c[l][0];
                __uint128_t m1 = (__uint128_t)CASCADE_PHILOX_M1 * c[l][2];
                uint64_t n0 = (uint64_t)(m1 >> 64) ^ c[l][1] ^ k0;
                uint64_t n2 = (uint64_t)(m0 >> 64) ^ c[l][3] ^ k1;
                c[l][0] = n0; c[l][1] = (uint64_t)m1; c[l][2] = n2; c[l][3] = (uint64_t)m0;
            }
        }
        for (l = 0; l < CASCADE_PHILOX_LANES; l++) {
            p->buf[4 * l] = c[l][0]; p->buf[4 * l + 1] = c[l][1];
            p->buf[4 * l + 2] = c[l][2]; p->buf[4 * l + 3] = c[l][3];
        }
        p->pos = 0;
    }
    static inline uint64_t cascade_philox_next(void *st) {
        cascade_philox *p = (cascade_philox *)st;
        if (p->pos >= CASCADE_PHILOX_BUF) cascade_philox_block(p);
        return p->buf[p->pos++];
    }
    static inline uint32_t cascade_philox_next32(void *st) { return (uint32_t)cascade_philox_next(st); }
    static inline double cascade_philox_double(void *st) {
        return (cascade_philox_next(st) >> 11) * (1.0 / 9007199254740992.0);
    }
    /* numpy's ziggurat (random_standard_normal) with its fast path inline: the tables'
       entries it needs (ki, wi) are read from numpy's own function at import (_probe_tables);
       a draw that leaves the fast path is given back to the buffer and redrawn by numpy's
       function, which then reads the same word and takes its own slow path. */
    static uint64_t cascade_ki[256];
    static double cascade_wi[256];
    static inline double cascade_philox_normal(cascade_philox *p, bitgen_t *bg) {
        uint64_t r, rabs;
        int idx;
        double x;
        if (p->pos >= CASCADE_PHILOX_BUF) cascade_philox_block(p);
        r = p->buf[p->pos++];
        idx = (int)(r & 0xff);
        r >>= 8;
        rabs = (r >> 1) & 0x000fffffffffffffULL;
        x = rabs * cascade_wi[idx];
        if (rabs < cascade_ki[idx]) {
            /* x = -x for the sign bit, without a branch (it is a coin flip) */
            union { double d; uint64_t u; } v;
            v.d = x;
            v.u ^= (r & 0x1) << 63;
            return v.d;
        }
        p->pos--;
        return random_standard_normal(bg);
    }
    static inline void cascade_philox_key(cascade_philox *p, uint64_t key) {
        p->ctr[0] = p->ctr[1] = p->ctr[2] = p->ctr[3] = 0;
        p->key[0] = key; p->key[1] = 0;
        p->pos = CASCADE_PHILOX_BUF;
    }
    """
    ctypedef struct cascade_philox:
        pass
    uint64_t cascade_philox_next(void *st) noexcept nogil
    uint32_t cascade_philox_next32(void *st) noexcept nogil
    double cascade_philox_double(void *st) noexcept nogil
    void cascade_philox_key(cascade_philox *p, uint64_t key) noexcept nogil
    double cascade_philox_normal(cascade_philox *p, bitgen_t *bg) noexcept nogil
    uint64_t cascade_ki[256]
    double cascade_wi[256]


cdef struct _probe:
    uint64_t first
    int n_words
    int n_doubles


cdef uint64_t _probe_next(void *st) noexcept nogil:
    cdef _probe *q = <_probe *>st
    q.n_words += 1
    return q.first if q.n_words == 1 else (<uint64_t>1 << 9) | 2     # then a fast-path word


cdef uint32_t _probe_next32(void *st) noexcept nogil:
    return <uint32_t>_probe_next(st)


cdef double _probe_double(void *st) noexcept nogil:
    (<_probe *>st).n_doubles += 1
    return 0.5


cdef bint _fast(uint64_t word, double *x):
    """Whether numpy's random_standard_normal returns for ``word`` without another draw."""
    cdef _probe q
    cdef bitgen_t bg
    q.first, q.n_words, q.n_doubles = word, 0, 0
    bg.state = &q
    bg.next_uint64 = _probe_next
    bg.next_uint32 = _probe_next32
    bg.next_double = _probe_double
    bg.next_raw = _probe_next
    x[0] = random_standard_normal(&bg)
    return q.n_words == 1 and q.n_doubles == 0


cdef void _probe_tables():
    """Read numpy's ziggurat thresholds ki and widths wi off random_standard_normal: the word
    with rabs = 1 returns wi[idx] (taking the fast path wherever ki[idx] > 1; for ki[idx] = 0
    the slow path accepts x = wi[idx] with the uniform 0.5 here, checked), and ki[idx] is the
    smallest rabs that leaves the fast path (a bisection over rabs < 2^52)."""
    cdef int idx
    cdef uint64_t lo, hi, mid
    cdef double x
    for idx in range(256):
        _fast((<uint64_t>1 << 9) | idx, &x)
        cascade_wi[idx] = x
        lo, hi = 0, <uint64_t>1 << 52                # fast for rabs < ki: find ki in [0, 2^52]
        while lo < hi:
            mid = (lo + hi) // 2
            if _fast((mid << 9) | idx, &x):
                lo = mid + 1
            else:
                hi = mid
        cascade_ki[idx] = lo


_probe_tables()


def ziggurat_tables():
    """(ki, wi): numpy's ziggurat tables as read off its normal sampler at import."""
    import numpy as np
    return (np.array([cascade_ki[i] for i in range(256)], np.uint64),
            np.array([cascade_wi[i] for i in range(256)]))


cdef inline void _bind(bitgen_t* bg, cascade_philox* p) noexcept nogil:
    """``bg`` draws from ``p`` (numpy's sampler functions take a bitgen_t)."""
    bg.state = p
    bg.next_uint64 = cascade_philox_next
    bg.next_uint32 = cascade_philox_next32
    bg.next_double = cascade_philox_double
    bg.next_raw = cascade_philox_next


def philox_normals(uint64_t key, double[::1] out):
    """``out[:] = Generator(Philox(key=key)).standard_normal(len(out))`` (a check)."""
    cdef cascade_philox p
    cdef bitgen_t bg
    cdef Py_ssize_t i
    cascade_philox_key(&p, key)
    _bind(&bg, &p)
    with nogil:
        for i in range(out.shape[0]):
            out[i] = cascade_philox_normal(&p, &bg)


def philox_uint64(uint64_t key, uint64_t[::1] out):
    """``out[:] = Philox(key=key).random_raw(len(out))`` (a check of the generator)."""
    cdef cascade_philox p
    cdef Py_ssize_t i
    cascade_philox_key(&p, key)
    with nogil:
        for i in range(out.shape[0]):
            out[i] = cascade_philox_next(&p)


def grid_normals(const uint64_t[::1] salts, uint64_t tag, const double[:, ::1] sqrt_lam,
                 double[:, :, ::1] out):
    """``out[b]`` (shape (mx, 2 my): real and imaginary parts interleaved) = ``sqrt_lam *
    z_b`` with ``z_b`` the 2 mx my normals of ``Generator(Philox(key=salts[b] ^ tag))``
    viewed as complex; the product rounded as numpy's ``(s + 0j) * (re + im j)``."""
    cdef cascade_philox p
    cdef bitgen_t bg
    cdef Py_ssize_t b, i, j
    cdef double s, re, im
    if out.shape[0] != salts.shape[0] or out.shape[1] != sqrt_lam.shape[0] or out.shape[2] != 2 * sqrt_lam.shape[1]:
        raise ValueError("grid_normals: out must have shape (len(salts), mx, 2 my)")
    _bind(&bg, &p)
    with nogil:
        for b in range(salts.shape[0]):
            cascade_philox_key(&p, salts[b] ^ tag)
            for i in range(sqrt_lam.shape[0]):
                for j in range(sqrt_lam.shape[1]):
                    re = cascade_philox_normal(&p, &bg)
                    im = cascade_philox_normal(&p, &bg)
                    s = sqrt_lam[i, j]
                    # numpy: (s + 0j)(re + im j) = (s re - 0 im) + (s im + 0 re) j; the zero
                    # terms matter only for the sign of a zero product.
                    out[b, i, 2 * j] = s * re - 0.0 * im
                    out[b, i, 2 * j + 1] = s * im + 0.0 * re


def interpolate(const double[:, :, ::1] spectrum, const int64_t[:, ::1] idx, const double[:, ::1] w,
                double[:, ::1] out, bint pairwise):
    """``out[b, s] = Σ_k w[s, k] Re(F_b[idx[s, k]])`` with ``F_b`` the b-th (mx, nc) complex
    array, stored as ``spectrum[b]`` (mx, 2 nc) of interleaved real and imaginary parts and
    indexed flat (``row * nc + column``); summed ``((p0 + p1) + p2) + p3``, or
    ``(p0 + p2) + (p1 + p3)`` if ``pairwise`` (see the module's docstring)."""
    cdef Py_ssize_t b, s, k, nb = out.shape[0], n = out.shape[1]
    cdef Py_ssize_t size = spectrum.shape[1] * (spectrum.shape[2] // 2)
    cdef const double *f
    cdef double p0, p1, p2, p3
    if spectrum.shape[0] != nb or idx.shape[0] != n or w.shape[0] != n or idx.shape[1] != 4 or w.shape[1] != 4:
        raise ValueError("interpolate: shapes do not match")
    for s in range(n):
        for k in range(4):
            if idx[s, k] < 0 or idx[s, k] >= size:
                raise ValueError("interpolate: an index outside the spectrum")
    if n == 0:
        return
    with nogil:
        for b in range(nb):
            f = &spectrum[b, 0, 0]
            for s in range(n):
                p0 = f[2 * idx[s, 0]] * w[s, 0]
                p1 = f[2 * idx[s, 1]] * w[s, 1]
                p2 = f[2 * idx[s, 2]] * w[s, 2]
                p3 = f[2 * idx[s, 3]] * w[s, 3]
                if pairwise:
                    out[b, s] = (p0 + p2) + (p1 + p3)
                else:
                    out[b, s] = ((p0 + p1) + p2) + p3
