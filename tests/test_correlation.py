"""Spatially correlated residuals: Jayaram & Baker (2009) ranges, the exact (Cholesky) and the
grid (circulant embedding) samplers checked against ρ(h) = exp(-3h/b) empirically, and the
earthquake hazard's use of them.

Empirical correlations over N independent fields have a standard error of about
(1 - ρ²) / sqrt(N); checks allow 4 of those plus, for the grid, its stated method error.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cascade import InfrastructureSystem, compile_system, load_scenario
from cascade.correlation import (ExactField, GridField, correlation, jb2009_range_km, make_field,
                                 measure_period)
from cascade.hazards import BJF97, Draws, element_keys

N_FIELDS = 3000


def test_jayaram_baker_ranges_follow_their_equations_17_to_19():
    assert jb2009_range_km("PGA") == pytest.approx(8.5)                       # eq. 17, T = 0
    assert jb2009_range_km("SA(0.5)") == pytest.approx(8.5 + 17.2 * 0.5)
    assert jb2009_range_km("SA(0.5)", vs30_clustering=True) == pytest.approx(40.7 - 15.0 * 0.5)
    assert jb2009_range_km("SA(2.0)") == pytest.approx(22.0 + 3.7 * 2.0)      # eq. 19
    assert jb2009_range_km("PGV") == pytest.approx(25.7)                      # T = 1 s
    assert measure_period("PSA03") == 0.3 and measure_period("SA1") == 1.0
    assert measure_period("SA30") == 3.0
    assert correlation(8.5, 8.5) == pytest.approx(math.exp(-3))


def pair_sites(distances_m):
    """Pairs of sites (2k, 2k+1) at the given distances, pairs 40 km apart from each other."""
    x, y = [], []
    for k, d in enumerate(distances_m):
        x += [40000.0 * k, 40000.0 * k + d * 0.6]
        y += [1000.0, 1000.0 + d * 0.8]
    return np.array(x), np.array(y)


def empirical_pair_corr(fields, k):
    a, b = fields[:, 2 * k], fields[:, 2 * k + 1]
    return float(np.corrcoef(a, b)[0, 1])


DISTANCES = [300.0, 1000.0, 2500.0, 6000.0, 15000.0]


def test_exact_field_has_the_model_correlation_empirically():
    b = 8.5
    x, y = pair_sites(DISTANCES)
    f = ExactField(x, y, b, element_keys([f"s{i}" for i in range(len(x))]))
    fields = f.draw(np.arange(N_FIELDS, dtype=np.uint64) * np.uint64(7919) + np.uint64(1))
    assert fields.var(axis=0) == pytest.approx(np.ones(len(x)), abs=4 * math.sqrt(2 / N_FIELDS))
    for k, d in enumerate(DISTANCES):
        rho = math.exp(-3 * d / 1000 / b)
        assert abs(empirical_pair_corr(fields, k) - rho) < 4 * (1 - rho ** 2) / math.sqrt(N_FIELDS) + 0.01
        assert f.implied_correlation(2 * k, 2 * k + 1) == pytest.approx(rho, abs=1e-9)


def test_grid_field_has_the_model_correlation_empirically():
    b = 8.5
    x, y = pair_sites(DISTANCES)
    f = GridField(x, y, b, element_keys([f"s{i}" for i in range(len(x))]), tag="t")
    assert f.clipped == 0.0
    fields = f.draw(np.arange(N_FIELDS, dtype=np.uint64) * np.uint64(7919) + np.uint64(1))
    assert fields.var(axis=0) == pytest.approx(np.ones(len(x)), abs=4 * math.sqrt(2 / N_FIELDS))
    for k, d in enumerate(DISTANCES):
        rho = math.exp(-3 * d / 1000 / b)
        implied = f.implied_correlation(2 * k, 2 * k + 1)
        # The empirical correlation matches what the method implies ...
        assert abs(empirical_pair_corr(fields, k) - implied) < 4 * (1 - implied ** 2) / math.sqrt(N_FIELDS) + 0.01
        # ... and that is ρ(h) within the stated method error (0.02 beyond one spacing).
        tol = 0.02 if d > f.spacing else 0.09
        assert abs(implied - rho) < tol


def test_grid_method_error_bound_on_random_pairs():
    """The stated error of the grid method, from its exact implied correlation on random pairs."""
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 20000, 1500), rng.uniform(0, 15000, 1500)
    b = 8.5
    f = GridField(x, y, b, np.arange(1500, dtype=np.uint64), tag="t")
    pairs = rng.integers(0, 1500, (1500, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    d = np.hypot(*(np.stack([x[pairs[:, 0]] - x[pairs[:, 1]], y[pairs[:, 0]] - y[pairs[:, 1]]])))
    err = np.array([f.implied_correlation(i, j) for i, j in pairs]) - correlation(d / 1000, b)
    far = d > f.spacing
    assert np.abs(err[far]).max() < 0.02
    assert np.abs(err).max() < 0.09


def test_grid_field_scales_to_a_hundred_thousand_sites():
    rng = np.random.default_rng(4)
    n = 100_000
    x, y = rng.uniform(0, 60000, n), rng.uniform(0, 40000, n)
    f = make_field(x, y, jb2009_range_km("PGA"), np.arange(n, dtype=np.uint64), "big")
    assert isinstance(f, GridField)
    out = f.draw(np.array([1, 2], dtype=np.uint64))
    assert out.shape == (2, n) and np.isfinite(out).all()
    assert out.var() == pytest.approx(1.0, abs=0.2)      # one smooth field: a loose check


def test_make_field_picks_exact_for_small_site_sets():
    x = np.arange(10.0) * 100
    assert isinstance(make_field(x, x, 8.5, np.arange(10, dtype=np.uint64), "s"), ExactField)
    assert isinstance(make_field(x, x, 8.5, np.arange(10, dtype=np.uint64), "s", "grid"), GridField)


def test_co_located_sites_share_their_residual():
    x = np.array([0.0, 0.0, 500.0])
    f = ExactField(x, x, 8.5, np.arange(3, dtype=np.uint64))
    out = f.draw(np.arange(5, dtype=np.uint64))
    assert np.array_equal(out[:, 0], out[:, 1])


# ------------------------------------------------------------------ in the earthquake hazard
def two_site_system(d_m):
    nodes = [{"id": "plant", "layer": "power", "kind": "source", "x": 90000.0, "y": 0.0},
             {"id": "a", "layer": "power", "kind": "sub", "x": 0.0, "y": 5000.0},
             {"id": "b", "layer": "power", "kind": "sub", "x": d_m, "y": 5000.0}]
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes))


@pytest.mark.parametrize("method", ["exact", "grid"])
def test_earthquake_ground_motion_is_correlated_as_jayaram_baker(tmp_path, method):
    """ln PGA at two sites 1 km apart: corr = (σe² + σr² ρ(1 km)) / (σe² + σr²)."""
    system = two_site_system(1000.0)
    c = compile_system(system)
    path = tmp_path / "q.toml"
    path.write_text("[scenario]\nseed = 5\n[hazard]\ntype = 'earthquake'\nepicenter = [0.0, 0.0]\n"
                    f"magnitude = 6.5\ncorrelation_method = '{method}'\n")
    sc = load_scenario(path)
    prep = sc.prepare(system, c)
    ln = np.array([sc.hazard.ground_motion(prep, Draws.of(5, i))[0] for i in range(2000)])
    se, sr = BJF97["pga"]["sig_e"], BJF97["pga"]["sig_r"]
    rho = math.exp(-3 * 1.0 / 8.5)
    expected = (se ** 2 + sr ** 2 * rho) / (se ** 2 + sr ** 2)
    got = np.corrcoef(ln[:, 1], ln[:, 2])[0, 1]
    tol = 4 * (1 - expected ** 2) / math.sqrt(2000) + (0.02 if method == "grid" else 0.0)
    assert abs(got - expected) < tol
    # Independent residuals give only the inter-event share.
    path.write_text(path.read_text() + "correlation = 'none'\n")
    sc = load_scenario(path)
    prep = sc.prepare(system, c)
    ln = np.array([sc.hazard.ground_motion(prep, Draws.of(5, i))[0] for i in range(2000)])
    indep = se ** 2 / (se ** 2 + sr ** 2)
    assert abs(np.corrcoef(ln[:, 1], ln[:, 2])[0, 1] - indep) < 4 * (1 - indep ** 2) / math.sqrt(2000)


@pytest.mark.parametrize("method", ["exact", "grid"])
def test_correlated_block_draws_equal_one_by_one_draws(tmp_path, method):
    from test_hazards import grid_town

    system = grid_town(8)
    c = compile_system(system)
    path = tmp_path / "q.toml"
    path.write_text("[scenario]\nseed = 9\n[hazard]\ntype = 'earthquake'\nepicenter = [300.0, 300.0]\n"
                    f"magnitude = 6.9\ncorrelation_method = '{method}'\n[hazard.fragility]\n"
                    "feeder = 'EP.C.U'\nconsumer = { median = 0.5, beta = 0.6 }\n")
    sc = load_scenario(path)
    sc.prepare(system, c)
    block = sc.sample_block(c, 3, 40)
    for k, i in enumerate(range(3, 40)):
        n, e = sc.sample(c, i)
        assert np.array_equal(block[k][0], n) and np.array_equal(block[k][1], e)
    assert sum(len(n) + len(e) for n, e in block) > 0


def test_correlation_none_uses_the_documented_independent_draws(tmp_path):
    """correlation = 'none': z = z0 + (event σe + σr Φ⁻¹(u(key, salt2))) / β, the formula of
    earlier versions, recomputed here from the keyed uniforms."""
    from scipy.special import ndtr, ndtri

    from cascade.hazards import bjf97_ln, keyed_uniform

    system = two_site_system(300.0)
    c = compile_system(system)
    path = tmp_path / "q.toml"
    path.write_text("[scenario]\nseed = 2\n[hazard]\ntype = 'earthquake'\nepicenter = [0.0, 0.0]\n"
                    "magnitude = 6.0\ncorrelation = 'none'\n[hazard.fragility]\nsub = { median = 0.2, beta = 0.5 }\n"
                    "'power:source' = false\n")
    sc = load_scenario(path)
    sc.prepare(system, c)
    keys = element_keys(["a", "b"])
    for i in range(30):
        d = Draws.of(2, i)
        event = d.rng.standard_normal()
        ln = bjf97_ln("pga", 6.0, np.array([5.0, math.hypot(0.3, 5.0)]))
        z = (ln - math.log(0.2)) / 0.5 + (event * BJF97["pga"]["sig_e"] + BJF97["pga"]["sig_r"]
                                          * ndtri(keyed_uniform(keys, d.salts[2]))) / 0.5
        fail = keyed_uniform(keys, d.salts[0]) < ndtr(z)
        expected = {name for name, f in zip(["a", "b"], fail) if f}
        got = {str(c.node_ids[j]) for j in sc.sample(c, i)[0]}
        assert got == expected


# The grid field's compiled parts (cascade/_field.pyx) against numpy, bit for bit.

def test_compiled_philox_stream_and_normals_match_numpy():
    """_field's Philox 4x64-10 gives numpy's raw words, and its inline ziggurat (tables read
    off numpy's sampler at import) numpy's standard normals, slow paths included."""
    from cascade import _field

    for key in (0, 1, 2**63 + 11, 2**64 - 1):
        raw = np.empty(1001, np.uint64)
        _field.philox_uint64(key, raw)
        np.testing.assert_array_equal(raw, np.random.Philox(key=key).random_raw(1001))
        normals = np.empty(200_001)
        _field.philox_normals(key, normals)
        expected = np.random.Generator(np.random.Philox(key=key)).standard_normal(200_001)
        np.testing.assert_array_equal(normals.view(np.uint64), expected.view(np.uint64))
        # the tail beyond the ziggurat's base strip (|x| > 3.65) comes from the slow path
        assert (np.abs(normals) > 3.66).sum() > 5
    ki, wi = _field.ziggurat_tables()
    assert ki[1] == 0 and (ki[2:] > 0).all() and (wi > 0).all() and (np.diff(wi[1:]) > 0).all()


def test_compiled_grid_normals_round_like_numpys_complex_product():
    """grid_normals = sqrt(λ/M) * (complex normals of Philox(salt ^ tag)), zeros of λ (whose
    products' signs depend on the order numpy rounds in) included."""
    from cascade import _field

    rng = np.random.default_rng(8)
    root = rng.random((7, 5))
    root[2, 3] = root[0, 0] = 0.0
    salts = np.array([0, 5, 2**64 - 1], np.uint64)
    tag = 0x1234_5678_9ABC_DEF0
    out = np.empty((3, 7, 10))
    _field.grid_normals(salts, tag, root, out)
    z = np.stack([np.random.Generator(np.random.Philox(key=int(s) ^ tag)).standard_normal(70)
                  .view(complex).reshape(7, 5) for s in salts])
    np.testing.assert_array_equal(out.view(np.uint64), (root * z).view(np.float64).view(np.uint64)
                                  .reshape(3, 7, 10))
    with pytest.raises(ValueError, match="shape"):
        _field.grid_normals(salts, tag, root, np.empty((3, 7, 9)))


@pytest.mark.parametrize("n, b_km", [(400, 8.5), (2000, 25.7), (3, 8.5), (60, 2.0)])
def test_grid_field_draw_base_equals_numpy_fft2_and_einsum(n, b_km):
    """draw_base (compiled normals, FFT of the used columns, compiled interpolation) gives
    draw_reference (numpy's generator per salt, fft2 of the whole grid, einsum) bit for bit,
    for one field (einsum sums pairwise) and for blocks (einsum sums in turn)."""
    rng = np.random.default_rng(n)
    x, y = rng.uniform(0, 20_000, n), rng.uniform(0, 15_000, n)
    field = GridField(x, y, b_km, rng.integers(0, 2**64, n, dtype=np.uint64), tag="t")
    assert field._cols[1] - field._cols[0] < field.shape[1]      # the FFT skips columns
    for count in (1, 2, 33, 32):
        salts = rng.integers(0, 2**64, count, dtype=np.uint64)
        np.testing.assert_array_equal(field.draw_base(salts).view(np.uint64),
                                      field.draw_reference(salts).view(np.uint64))


def test_grid_field_draws_in_threads_equal_serial_draws():
    """GridField keeps its work arrays per thread: fields drawn by two threads at once are
    the serial ones."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 20_000, 500), rng.uniform(0, 15_000, 500)
    field = GridField(x, y, 8.5, rng.integers(0, 2**64, 500, dtype=np.uint64), tag="t")
    salt_sets = [np.arange(k, k + 32, dtype=np.uint64) for k in range(0, 320, 32)]
    serial = [field.draw_base(s) for s in salt_sets]
    with ThreadPoolExecutor(2) as pool:
        parallel = list(pool.map(field.draw_base, salt_sets))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_compiled_interpolation_refuses_bad_shapes_and_indices():
    from cascade import _field

    spectrum = np.zeros((2, 3, 8))                         # 2 fields of 3 x 4 complex
    w = np.full((1, 4), 0.25)
    with pytest.raises(ValueError, match="outside"):
        _field.interpolate(spectrum, np.array([[0, 1, 2, 12]], np.int64), w, np.empty((2, 1)), False)
    with pytest.raises(ValueError, match="shapes"):
        _field.interpolate(spectrum, np.array([[0, 1, 2, 3]], np.int64), w, np.empty((3, 1)), False)
    spectrum[1, 0, ::2] = [1.0, 2.0, 3.0, 4.0]             # real parts of field 1, row 0
    out = np.empty((2, 1))
    _field.interpolate(spectrum, np.array([[0, 1, 2, 3]], np.int64), w, out, False)
    assert out.tolist() == [[0.0], [2.5]]
