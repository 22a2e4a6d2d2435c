"""Spatially correlated within-event ground-motion residuals.

Jayaram, N. & Baker, J. W. (2009). Correlation model for spatially distributed ground-motion
intensities. Earthquake Engineering & Structural Dynamics 38(15), 1687-1708: the correlation
of the normalised within-event residuals of two sites ``h`` km apart is

    ρ(h) = exp(-3 h / b)                                           (their eq. 20)

with the range ``b`` (km) from the period T (s) of the intensity measure (page 1700):

* T < 1 s, no clustering of Vs30 (case 1, eq. 17):  b = 8.5 + 17.2 T  (PGA: 8.5 km);
* T < 1 s, clustered Vs30 (case 2, eq. 18):         b = 40.7 - 15.0 T;
* T >= 1 s, both cases (eq. 19):                    b = 22.0 + 3.7 T.

PGV takes T = 1 s, as the OpenQuake engine's ``JB2009CorrelationModel`` does (b = 25.7 km).

Two samplers give unit-variance Gaussian fields with that correlation at a set of sites:

:class:`ExactField`
    The Cholesky factor L of the sites' correlation matrix (co-located sites merged); a field
    is ``L @ z`` for independent standard normals z keyed by site.  Exact; memory and set-up
    grow as n² and n³ and every sample costs n² multiply-adds, so ``method = "auto"`` uses it
    up to ``MAX_EXACT`` = 500 sites of one measure.  (The demo town's 2 731 pipe midpoints
    by Cholesky sample at 0.13x the uncorrelated speed on the development machine, against
    the issue's floor of 0.5x; ``correlation_method = "exact"`` still forces it.)
:class:`GridField`
    Circulant embedding (Wood & Chan 1994, J. Comput. Graph. Stat. 3(4), 409-432; Dietrich
    & Newsam 1997, SIAM J. Sci. Comput. 18(4), 1088-1107) on a regular grid over the sites'
    bounding box with spacing h = b / 20, embedded in the smallest periodic grid (at least
    twice the domain on each axis) whose wrapped covariance has no negative eigenvalue; one
    FFT per field, bilinear interpolation to the sites, plus an independent per-site term
    (a nugget) that tops each site's variance up to exactly 1.  Cost per field O(G log G)
    for G grid cells plus O(n) for n sites: 10⁵ sites cost little more than 10³.  Its error
    is in the correlation only: :meth:`GridField.implied_correlation` gives the exact
    correlation the method produces for two sites; at h = b/20 it is within 0.02 of ρ for
    sites more than one grid spacing apart and up to 0.09 too low for sites closer than
    that (the nugget decorrelates them); tested.

Both draw one field per sample from the sample's salt: :meth:`ExactField.draw` and
:meth:`GridField.draw` map salts (B,) to residuals (B, n_sites).  Exact fields key their
normals by site (the element's key, as :mod:`cascade.hazards` does); grid fields draw the
grid's normals from a Philox stream keyed by the salt and keyed normals for the nugget, so
a system with more sites inside the same bounding box keeps the same field at the old sites
(common random numbers under additions), which the exact method cannot offer.
"""
from __future__ import annotations

import hashlib
import math
import threading

import numpy as np

MAX_EXACT = 500
MODELS = ("jayaram-baker-2009", "none")
#: Grid spacing of GridField as a fraction of the range b.
GRID_FRACTION = 1.0 / 20.0
#: Cap on the periodic grid's cells (memory of one field: 16 bytes per cell).
MAX_GRID_CELLS = 1 << 22


def jb2009_range_km(measure: str, vs30_clustering: bool = False) -> float:
    """Range b (km) of Jayaram & Baker (2009) for a measure: ``PGA``, ``PGV``, or a spectral
    acceleration ``SA(T)`` / ``PSA03`` / ``PSA10`` / ``PSA30`` / ``SA1`` / ``SA03``..."""
    period = measure_period(measure)
    if period < 1.0:
        return 40.7 - 15.0 * period if vs30_clustering else 8.5 + 17.2 * period
    return 22.0 + 3.7 * period


def measure_period(measure: str) -> float:
    """The period (s) that stands for a ground-motion measure in the correlation model."""
    m = measure.upper().replace(" ", "")
    if m == "PGA":
        return 0.0
    if m == "PGV":
        return 1.0
    if m.startswith("SA(") and m.endswith(")"):
        return float(m[3:-1])
    if m.startswith("PSA") and m[3:].isdigit():          # ShakeMap names: PSA03 = 0.3 s
        return int(m[3:]) / 10.0
    if m.startswith("SA") and m[2:].replace(".", "").isdigit():
        digits = m[2:]
        return float(digits) if "." in digits or len(digits) == 1 else int(digits) / 10.0
    raise ValueError(f"no period for ground-motion measure {measure!r}")


def correlation(h_km, b_km: float) -> np.ndarray:
    """ρ(h) = exp(-3 h / b)."""
    return np.exp(-3.0 * np.asarray(h_km, float) / b_km)


def _unique_sites(x: np.ndarray, y: np.ndarray):
    xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    uniq, inverse = np.unique(xy, axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1)


class ExactField:
    """Cholesky sampling of ρ(h) = exp(-3h/b) at sites (x, y in metres).

    Attributes
    ----------
    keys : ndarray of uint64
        One key per distinct site: the key (from ``site_keys``) of the first site there.
    n_sites : int
    """

    method = "exact"

    def __init__(self, x, y, range_km: float, site_keys: np.ndarray):
        from scipy.linalg import cholesky

        self.range_km = float(range_km)
        uniq, self.inverse = _unique_sites(x, y)
        self.n_sites = len(self.inverse)
        first = np.full(len(uniq), -1, np.int64)
        first[self.inverse[::-1]] = np.arange(self.n_sites)[::-1]
        self.keys = np.asarray(site_keys, np.uint64)[first]
        d = np.hypot(uniq[:, None, 0] - uniq[None, :, 0], uniq[:, None, 1] - uniq[None, :, 1])
        c = correlation(d / 1000.0, self.range_km)
        del d
        try:
            lower = cholesky(c, lower=True, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:             # nearly co-located sites: a tiny nugget
            c = correlation(np.hypot(uniq[:, None, 0] - uniq[None, :, 0],
                                     uniq[:, None, 1] - uniq[None, :, 1]) / 1000.0, self.range_km)
            c[np.diag_indices_from(c)] += 1e-9
            lower = cholesky(c, lower=True, overwrite_a=True, check_finite=False)
        # field = z @ L.T; keep L.T contiguous for the (B, k) @ (k, k) product.
        self._lt = np.ascontiguousarray(lower.T)

    def apply(self, z: np.ndarray) -> np.ndarray:
        """Residuals at the sites, shape (..., n_sites), from normals of shape (..., len(keys))."""
        return (z @ self._lt)[..., self.inverse]

    def draw(self, salts) -> np.ndarray:
        """Residuals at the sites, shape (B, n_sites), one field per salt (uint64, shape (B,)):
        normals keyed by site (the hazards' keyed uniforms), then ``L z``."""
        return self.apply(_keyed_normal(self.keys, np.asarray(salts, np.uint64).reshape(-1)))

    def implied_correlation(self, i: int, j: int) -> float:
        a, b = self._lt[:, self.inverse[i]], self._lt[:, self.inverse[j]]
        return float(a @ b)


class GridField:
    """Circulant-embedding sampling of ρ(h) = exp(-3h/b) on a grid, interpolated to sites.

    Attributes
    ----------
    keys : ndarray of uint64
        One key per cell of the periodic grid (salted with ``tag``).
    spacing : float
        Grid spacing, metres.
    clipped : float
        Share of the embedding's eigenvalue mass that was negative and set to 0 (0 when the
        embedding is exact; larger values mean a slightly smoother field).
    """

    method = "grid"

    def __init__(self, x, y, range_km: float, site_keys: np.ndarray, tag: str = "field",
                 spacing: float | None = None):
        self.range_km = float(range_km)
        x, y = np.asarray(x, float), np.asarray(y, float)
        self.n_sites = len(x)
        b = self.range_km * 1000.0
        x0, y0 = float(x.min()), float(y.min())
        ext = max(float(x.max()) - x0, float(y.max()) - y0, 1.0)
        h = spacing if spacing is not None else b * GRID_FRACTION
        while True:
            nx = int(math.floor((float(x.max()) - x0) / h)) + 2
            ny = int(math.floor((float(y.max()) - y0) / h)) + 2
            if _fast_len(2 * nx) * _fast_len(2 * ny) <= MAX_GRID_CELLS:
                break
            h *= 1.25                                      # coarser grid for huge regions
        # The smallest periodic grid (twice the domain on each axis) whose embedded covariance
        # is positive semi-definite: while it is not, lengthen the shorter axis by ~10 %.
        mx, my = _fast_len(2 * nx), _fast_len(2 * ny)
        while True:
            ix = np.minimum(np.arange(mx), mx - np.arange(mx)) * h
            iy = np.minimum(np.arange(my), my - np.arange(my)) * h
            cov = correlation(np.hypot(ix[:, None], iy[None, :]) / 1000.0, self.range_km)
            lam = np.fft.fft2(cov).real
            if (lam >= -1e-12 * lam.max()).all() or mx * my > MAX_GRID_CELLS:
                break
            if mx <= my:
                mx = _fast_len(int(mx * 1.1) + 1)
            else:
                my = _fast_len(int(my * 1.1) + 1)
        self.spacing, self.shape = h, (mx, my)
        neg = lam < 0
        self.clipped = float(-lam[neg].sum() / np.abs(lam).sum()) if neg.any() else 0.0
        lam[neg] = 0.0
        self._sqrt_lam = np.ascontiguousarray(np.sqrt(lam / (mx * my)))
        self._tag = int.from_bytes(hashlib.blake2b(tag.encode(), digest_size=8).digest(), "little")
        # Bilinear weights of each site on the grid nodes (i, j), (i+1, j), (i, j+1), (i+1, j+1).
        fx, fy = (x - x0) / h, (y - y0) / h
        i, j = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        tx, ty = fx - i, fy - j
        self._idx = np.stack([i * my + j, (i + 1) * my + j, i * my + j + 1, (i + 1) * my + j + 1], 1)
        w = np.stack([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty], 1)
        # Variance of the interpolated value: w' C w with C the 4 nodes' correlations; an
        # independent per-site term of variance 1 - w' C w (a nugget) restores unit variance
        # without changing the correlation between distinct sites (w_i' C w_j).
        c1, c2 = correlation(h / 1000.0, self.range_km), correlation(math.sqrt(2) * h / 1000.0, self.range_km)
        var = (w ** 2).sum(1) + 2 * c1 * (w[:, 0] * w[:, 1] + w[:, 2] * w[:, 3] + w[:, 0] * w[:, 2]
                                          + w[:, 1] * w[:, 3]) + 2 * c2 * (w[:, 0] * w[:, 3] + w[:, 1] * w[:, 2])
        self._w = np.ascontiguousarray(w)
        # The columns the sites use, and the nodes' flat indices in the (mx, c1 - c0) block of them.
        cols = np.concatenate([j, j + 1]) if len(j) else np.zeros(1, np.int64)
        self._cols = (int(cols.min()), int(cols.max()) + 1)
        nc = self._cols[1] - self._cols[0]
        jj = j - self._cols[0]
        self._idx_cols = np.ascontiguousarray(
            np.stack([i * nc + jj, (i + 1) * nc + jj, i * nc + jj + 1, (i + 1) * nc + jj + 1], 1), np.int64)
        self._nugget = np.sqrt(np.clip(1.0 - var, 0.0, None))
        self._h = h
        self.n_grid = 2 * mx * my
        self.keys = np.asarray(site_keys, np.uint64)         # the nugget's keyed draws

    def draw(self, salts) -> np.ndarray:
        """Residuals at the sites, shape (B, n_sites), one field per salt (uint64, shape (B,)).

        The grid's normals come from a Philox generator keyed by ``salt ^ tag`` (the grid
        depends only on the sites' bounding box, so the same salt gives the same grid on a
        system with more sites inside it); the nugget's from keyed uniforms of the sites."""
        salts = np.asarray(salts, np.uint64).reshape(-1)
        out = self.draw_base(salts)
        if self.keys.size:
            out += self._nugget * _keyed_normal(self.keys, salts)
        return out

    @property
    def nugget(self) -> np.ndarray:
        """Per site, the standard deviation of the nugget term (>= 0)."""
        return self._nugget

    def draw_base(self, salts) -> np.ndarray:
        """:meth:`draw` without the nugget term: the interpolated grid field, shape (B, n_sites);
        ``draw`` adds ``nugget * Φ⁻¹(keyed uniform of the site's key and the salt)`` to it
        (cascade/_ensemble.pyx adds it in compiled code, drawing the normal only when needed).

        Bit for bit ``Re(fft2(sqrt(λ/M) z))`` interpolated with ``einsum`` as in
        :meth:`draw_reference`, computed as: the normals z (numpy's Philox and ziggurat)
        times sqrt(λ/M) in C (:func:`cascade._field.grid_normals`, no GIL), numpy's FFT along
        the last axis for the whole grid, then along the first axis only for the columns the
        sites use (each column's FFT is the same numbers alone or in fft2), and the bilinear
        interpolation of the real part in C (:func:`cascade._field.interpolate`)."""
        from . import _field

        salts = np.ascontiguousarray(np.asarray(salts, np.uint64).reshape(-1))
        out = np.empty((len(salts), self.n_sites))
        if not len(salts) or not self.n_sites:
            return out
        z, rows, spectrum = self._buffers(len(salts))
        _field.grid_normals(salts, self._tag, self._sqrt_lam, z)
        np.fft.fft(z.view(complex), axis=-1, out=rows)
        np.fft.fft(rows[:, :, self._cols[0]:self._cols[1]], axis=-2, out=spectrum)
        # (numpy's einsum sums one field's four terms pairwise, a block's in turn: the same here)
        _field.interpolate(spectrum.view(np.float64), self._idx_cols, self._w, out, len(salts) == 1)
        return out

    def _buffers(self, n: int) -> tuple:
        """This thread's work arrays for n fields of this grid (kept: fresh arrays of a few MB
        per block cost page faults), the normals (n, mx, 2 my), the rows' FFT (n, mx, my)
        and the used columns' FFT (n, mx, c1 - c0)."""
        mx, my = self.shape
        key = (n, mx, my, self._cols)
        cache = _work.__dict__.setdefault("grids", {})
        bufs = cache.get(key)
        if bufs is None:
            if len(cache) >= 8:
                cache.clear()
            bufs = cache[key] = (np.empty((n, mx, 2 * my)), np.empty((n, mx, my), complex),
                                 np.empty((n, mx, self._cols[1] - self._cols[0]), complex))
        return bufs

    def draw_reference(self, salts) -> np.ndarray:
        """:meth:`draw_base` as numpy computes it (one Philox generator per salt, ``fft2`` of the
        whole grid, ``einsum``): the oracle of the compiled parts (tests)."""
        salts = np.asarray(salts, np.uint64).reshape(-1)
        mx, my = self.shape
        z = np.empty((len(salts), mx, my), complex)
        for k, salt in enumerate(salts):
            g = np.random.Generator(np.random.Philox(key=int(salt) ^ self._tag))
            g.standard_normal(2 * mx * my, out=z[k].view(np.float64).reshape(-1))
        # Re(FFT(sqrt(λ/M) (z1 + i z2))) has exactly the embedded covariance.
        field = np.fft.fft2(self._sqrt_lam * z, axes=(-2, -1)).real.reshape(len(salts), -1)
        return np.einsum("bsk,sk->bs", field[:, self._idx], self._w)

    def implied_correlation(self, i: int, j: int) -> float:
        """The exact correlation of the residuals at sites i and j that this method produces."""
        mx, my = self.shape
        h = self._h

        def node_xy(flat):
            return np.stack([flat // my, flat % my], -1) * h

        if i == j:
            return 1.0
        a, b = node_xy(self._idx[i]), node_xy(self._idx[j])
        d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
        return float(self._w[i] @ correlation(d / 1000.0, self.range_km) @ self._w[j])


_work = threading.local()          # per thread: GridField._buffers


def _keyed_normal(keys: np.ndarray, salts: np.ndarray) -> np.ndarray:
    """``ndtri(keyed_uniform(keys[None, :], salts[:, None]))``, shape (B, k), computed in C
    (:func:`cascade._draws.keyed_normal`: the same values without the temporaries)."""
    from ._draws import keyed_normal

    out = np.empty((len(salts), len(keys)))
    keyed_normal(np.ascontiguousarray(keys, np.uint64), np.ascontiguousarray(salts, np.uint64), out)
    return out


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (FFT-friendly)."""
    best = 1 << int(math.ceil(math.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def make_field(x, y, range_km: float, site_keys: np.ndarray, tag: str, method: str = "auto"):
    """An :class:`ExactField` for up to ``MAX_EXACT`` distinct sites (``method="auto"``), else
    a :class:`GridField`; ``method`` = ``"exact"`` or ``"grid"`` forces one."""
    if method == "auto":
        n_unique = len(np.unique(np.column_stack([x, y]), axis=0)) if len(x) else 0
        method = "exact" if n_unique <= MAX_EXACT else "grid"
    if method == "exact":
        return ExactField(x, y, range_km, site_keys)
    return GridField(x, y, range_km, site_keys, tag=tag)
