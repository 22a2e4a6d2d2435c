# cython: language_level=3
"""The per-sample draws of :class:`cascade.hazards.Draws` in C, bit for bit.

Sample ``i`` of seed ``s`` uses ``numpy.random.default_rng([s, i])``: a ``SeedSequence`` of
the entropy words of ``s`` then ``i`` seeds a ``PCG64``; the sample's four salts are its first
four ``uint64`` outputs (``integers(0, 2**64, 4, uint64)`` returns raw outputs for the full
range) and its first normal is numpy's ziggurat ``random_standard_normal`` on that stream.
:func:`sample_draws` recomputes exactly that for a range of samples without a Python object per
sample: SeedSequence's hash mixing (O'Neill's seed_seq_fe, as numpy implements it), PCG64's
128-bit LCG with the XSL-RR output, and numpy's own normal sampler (libnpyrandom).
"""
from libc.math cimport ldexp
from libc.stdint cimport int64_t, uint32_t, uint64_t

from scipy.special.cython_special cimport ndtri

from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal

cdef extern from *:
    """
    typedef struct { __uint128_t state; __uint128_t inc; } cascade_pcg64;
    static const __uint128_t CASCADE_PCG_MULT =
        (((__uint128_t)2549297995355413924ULL) << 64) | 4865540595714422341ULL;
    static inline void cascade_pcg_step(cascade_pcg64 *r) { r->state = r->state * CASCADE_PCG_MULT + r->inc; }
    static inline uint64_t cascade_pcg_next(void *st) {
        cascade_pcg64 *r = (cascade_pcg64 *)st;
        cascade_pcg_step(r);
        uint64_t x = ((uint64_t)(r->state >> 64)) ^ (uint64_t)r->state;
        unsigned rot = (unsigned)(r->state >> 122);
        return (x >> rot) | (x << ((-rot) & 63));
    }
    static inline uint32_t cascade_pcg_next32(void *st) { return (uint32_t)cascade_pcg_next(st); }
    static inline double cascade_pcg_double(void *st) { return (cascade_pcg_next(st) >> 11) * (1.0 / 9007199254740992.0); }
    static inline void cascade_pcg_seed(cascade_pcg64 *r, const uint64_t *v) {
        __uint128_t s = (((__uint128_t)v[0]) << 64) | v[1];
        __uint128_t i = (((__uint128_t)v[2]) << 64) | v[3];
        r->state = 0;
        r->inc = (i << 1) | 1;
        cascade_pcg_step(r);
        r->state += s;
        cascade_pcg_step(r);
    }
    """
    ctypedef struct cascade_pcg64:
        pass
    uint64_t cascade_pcg_next(void *st) noexcept nogil
    uint32_t cascade_pcg_next32(void *st) noexcept nogil
    double cascade_pcg_double(void *st) noexcept nogil
    void cascade_pcg_seed(cascade_pcg64 *r, const uint64_t *v) noexcept nogil

cdef uint32_t INIT_A = 0x43b0d7e5
cdef uint32_t MULT_A = 0x931e8875
cdef uint32_t INIT_B = 0x8b51f9dd
cdef uint32_t MULT_B = 0x58f38ded
cdef uint32_t MIX_MULT_L = 0xca01f9dd
cdef uint32_t MIX_MULT_R = 0x4973f715


cdef inline uint32_t _hashmix(uint32_t value, uint32_t *h) noexcept nogil:
    value ^= h[0]
    h[0] *= MULT_A
    value *= h[0]
    value ^= value >> 16
    return value


cdef inline uint32_t _mix(uint32_t x, uint32_t y) noexcept nogil:
    cdef uint32_t r = MIX_MULT_L * x - MIX_MULT_R * y
    r ^= r >> 16
    return r


cdef inline int _words(uint64_t n, uint32_t *out) noexcept nogil:
    """numpy's _int_to_uint32_array: little-endian 32-bit words, [0] for 0."""
    cdef int k = 0
    if n == 0:
        out[0] = 0
        return 1
    while n > 0:
        out[k] = <uint32_t>n
        n >>= 32
        k += 1
    return k


cdef void _seed_state(uint64_t seed, uint64_t sample, uint64_t *out) noexcept nogil:
    """SeedSequence([seed, sample]).generate_state(4, uint64) into ``out``."""
    cdef uint32_t entropy[4]
    cdef uint32_t pool[4]
    cdef uint32_t words[8]
    cdef uint32_t h = INIT_A, v
    cdef int n = _words(seed, entropy), i, j
    n += _words(sample, entropy + n)
    for i in range(4):
        pool[i] = _hashmix(entropy[i] if i < n else 0, &h)
    for i in range(4):
        for j in range(4):
            if i != j:
                pool[j] = _mix(pool[j], _hashmix(pool[i], &h))
    # (entropy longer than the pool: at most 4 words here, so no extra rounds)
    h = INIT_B
    for i in range(8):
        v = pool[i % 4]
        v ^= h
        h *= MULT_B
        v *= h
        v ^= v >> 16
        words[i] = v
    for i in range(4):
        out[i] = (<uint64_t>words[2 * i]) | ((<uint64_t>words[2 * i + 1]) << 32)


def sample_draws(uint64_t seed, int64_t start, int64_t stop, uint64_t[:, ::1] salts, double[::1] normal):
    """For samples ``start .. stop-1`` (seed and sample below 2**64): row ``k`` of ``salts``
    gets ``Draws.of(seed, start + k).salts`` and ``normal[k]`` the first
    ``standard_normal()`` of that sample's generator."""
    cdef cascade_pcg64 rng
    cdef bitgen_t bg
    cdef uint64_t v[4]
    cdef int64_t k
    cdef int j
    bg.state = &rng
    bg.next_uint64 = cascade_pcg_next
    bg.next_uint32 = cascade_pcg_next32
    bg.next_double = cascade_pcg_double
    bg.next_raw = cascade_pcg_next
    with nogil:
        for k in range(stop - start):
            _seed_state(seed, <uint64_t>(start + k), v)
            cascade_pcg_seed(&rng, v)
            for j in range(4):
                salts[k, j] = cascade_pcg_next(&rng)
            normal[k] = random_standard_normal(&bg)


cdef uint64_t _M1 = 0xBF58476D1CE4E5B9
cdef uint64_t _M2 = 0x94D049BB133111EB
cdef double _TWO_M53 = ldexp(1.0, -53)


def keyed_normal(const uint64_t[::1] keys, const uint64_t[::1] salts, double[:, ::1] out):
    """``out[b, j] = ndtri(keyed_uniform(keys[j], salts[b]))`` (:func:`cascade.hazards.keyed_uniform`
    and scipy's Φ⁻¹, the same values as numpy's), without the (B, k) temporaries."""
    cdef Py_ssize_t b, j
    cdef uint64_t z
    with nogil:
        for b in range(salts.shape[0]):
            for j in range(keys.shape[0]):
                z = keys[j] ^ salts[b]
                z = (z ^ (z >> 30)) * _M1
                z = (z ^ (z >> 27)) * _M2
                z = z ^ (z >> 31)
                out[b, j] = ndtri((<double>(z >> 11) + 0.5) * _TWO_M53)
