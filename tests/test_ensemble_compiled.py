"""Compiled ensemble sampling (cascade/_ensemble.pyx) against the Python path it replaces.

The oracle is the Python path itself, kept in the code: ``ensemble.COMPILED_SAMPLING = False``
runs every batch through ``Scenario.sample_block`` (numpy keyed draws), ``Workspace.run`` and
``_service_lost``, as before the compiled sampler existed.  Both must give the same losses,
failure counts and direct failure counts bit for bit, for every hazard the compiled path takes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cascade import compile_system, read_system
from cascade import ensemble
from cascade.ensemble import run_batch, run_ensemble
from cascade.hazards import keyed_uniform, load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCEN = ROOT / "scenarios"
DEMO = ROOT / "networks" / "demo_town"


@pytest.fixture(scope="module")
def demo():
    system = read_system(DEMO)
    return system, compile_system(system)


def _variant(tmp_path, name, text):
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace('system = "../networks/demo_town"', f'system = "{DEMO}"'))
    return path


def _scenarios(tmp_path):
    """(name, path) of one scenario per hazard and variant the compiled path covers."""
    quake = (SCEN / "earthquake_m62.toml").read_text()
    out = {
        "earthquake-correlated": SCEN / "earthquake_m62.toml",
        "earthquake-none": _variant(tmp_path, "eq_none", quake.replace(
            'mechanism = "unspecified"', 'mechanism = "unspecified"\ncorrelation = "none"')),
        "earthquake-no-variability": _variant(tmp_path, "eq_novar", quake.replace(
            'mechanism = "unspecified"', 'mechanism = "unspecified"\nvariability = false')),
        "earthquake-exact": _variant(tmp_path, "eq_exact", quake.replace(
            'mechanism = "unspecified"', 'mechanism = "unspecified"\ncorrelation_method = "exact"')),
        "shakemap": SCEN / "earthquake_shakemap.toml",
        "random": SCEN / "random_failures.toml",
        "targeted": SCEN / "attack_communication.toml",
        "targeted-certain": _variant(tmp_path, "targ1", (SCEN / "attack_communication.toml").read_text()
                                     .replace("success = 0.8", "success = 1.0")),
        "region": SCEN / "region_levee_breach.toml",
        "flood-level": SCEN / "flood_heavy_rain.toml",
        "flood-grid": SCEN / "flood_depth_grid.toml",
        "table-pyincore": SCEN / "table_pyincore.toml",
    }
    # A fragility table (id,median,beta,measure) on nodes and edges, rows not in file order.
    system = read_system(DEMO)
    rng = np.random.default_rng(5)
    nodes = system.nodes["id"].to_numpy()[rng.permutation(len(system.nodes))[:300]]
    edges = system.edges["id"].to_numpy()[rng.permutation(len(system.edges))[:200]]
    rows = [f"{i},{m:.3f},0.5,{meas}" for i, m, meas in zip(
        nodes, rng.uniform(0.1, 0.6, len(nodes)), rng.choice(["PGA", "SA1"], len(nodes)))]
    rows += [f"{i},{m:.1f},0.6,PGV" for i, m in zip(edges, rng.uniform(20, 60, len(edges)))]
    (tmp_path / "frag.csv").write_text("id,median,beta,measure\n" + "\n".join(rows) + "\n")
    table = (f'[scenario]\nname = "frag"\nsystem = "{DEMO}"\nseed = 9\n[hazard]\ntype = "table"\n'
             'file = "frag.csv"\nepicenter = [12000.0, -2000.0]\nmagnitude = 6.2\n')
    # Strong shaking in the town: many elements near certain failure, many near the tables'
    # decision thresholds of cascade/_ensemble.pyx.
    strong = quake.replace("epicenter = [12000.0, -2000.0]", "epicenter = [5000.0, 4000.0]").replace(
        "magnitude = 6.2", "magnitude = 7.2")
    out["earthquake-strong"] = _variant(tmp_path, "eq_strong", strong)
    out["earthquake-strong-none"] = _variant(tmp_path, "eq_strong_none", strong.replace(
        'mechanism = "unspecified"', 'mechanism = "unspecified"\ncorrelation = "none"'))
    out["table-fragility"] = _variant(tmp_path, "frag", table)
    out["table-fragility-none"] = _variant(tmp_path, "frag_none", table + 'correlation = "none"\n')
    return out


CASES = ["earthquake-correlated", "earthquake-none", "earthquake-no-variability", "earthquake-exact",
         "earthquake-strong", "earthquake-strong-none",
         "shakemap", "random", "targeted", "targeted-certain", "region", "flood-level", "flood-grid",
         "table-pyincore", "table-fragility", "table-fragility-none"]


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory):
    return _scenarios(tmp_path_factory.mktemp("scen"))


def _python_path(monkeypatch_value, fn):
    old = ensemble.COMPILED_SAMPLING
    ensemble.COMPILED_SAMPLING = monkeypatch_value
    try:
        return fn()
    finally:
        ensemble.COMPILED_SAMPLING = old


@pytest.mark.parametrize("case", CASES)
def test_compiled_batch_identical_to_python(demo, scenario_files, case):
    system, compiled = demo
    scenario = load_scenario(scenario_files[case])
    scenario.prepare(system, compiled)
    plan = ensemble._plan(compiled, scenario)
    assert plan is not None, f"{case}: the compiled path does not take this hazard"
    from cascade.compiled import Workspace

    ws = Workspace(compiled)
    ws.run()
    baseline = ws.working.astype(bool)
    service = ensemble._service(compiled, baseline, ensemble._totals(compiled))
    # 70 samples from index 5: two full blocks and a partial one, not starting at 0.
    args = (compiled, scenario, scenario.seed, 5, 75, baseline, service)
    fast = _python_path(True, lambda: run_batch(*args))
    slow = _python_path(False, lambda: run_batch(*args))
    names = ("start", "loss", "failed", "direct", "n_direct")
    for name, a, b in zip(names, fast, slow):
        np.testing.assert_array_equal(a, b, err_msg=f"{case}: {name} differs")
    # The scenario must do something, or the comparison proves little.
    assert slow[4].sum() > 0, f"{case}: no direct failure in 70 samples"


def test_compiled_ensemble_identical_across_thread_counts(demo):
    system, compiled = demo
    scenario = load_scenario(SCEN / "earthquake_m62.toml")
    one = run_ensemble(system, scenario, 150, threads=1, compiled=compiled, batch_size=40)
    two = run_ensemble(system, scenario, 150, threads=2, compiled=compiled, batch_size=17)
    ref = _python_path(False, lambda: run_ensemble(system, scenario, 150, threads=1, compiled=compiled))
    for r in (one, two):
        np.testing.assert_array_equal(r.loss, ref.loss)
        np.testing.assert_array_equal(r.failed, ref.failed)
        np.testing.assert_array_equal(r.direct, ref.direct)
        np.testing.assert_array_equal(r.n_direct, ref.n_direct)


def test_compiled_keyed_uniform_and_numpy_loops():
    from cascade import _ensemble

    keys = np.random.default_rng(1).integers(0, 2**64, 5000, dtype=np.uint64)
    out = np.empty(len(keys))
    _ensemble.keyed_uniform(keys, np.uint64(0xDEADBEEF12345678), out)
    np.testing.assert_array_equal(out, keyed_uniform(keys, np.uint64(0xDEADBEEF12345678)))
    x = np.random.default_rng(2).uniform(-40, 8, 100_001)
    e, m = np.empty_like(x), np.empty_like(x)
    _ensemble.numpy_loops(x, e, m)
    np.testing.assert_array_equal(e, np.exp(x))
    np.testing.assert_array_equal(m, np.expm1(x))


def test_hardening_and_attribution_keep_python_path(demo):
    """immune / fragility_scale / attribution are not plain: they take the Python path and
    still agree with the compiled run where nothing is hardened."""
    system, compiled = demo
    scenario = load_scenario(SCEN / "random_failures.toml")
    plain = run_ensemble(system, scenario, 64, threads=1, compiled=compiled)
    scaled = run_ensemble(system, scenario, 64, threads=1, compiled=compiled,
                          fragility_scale={str(compiled.node_ids[0]): 1.0})
    np.testing.assert_array_equal(plain.loss, scaled.loss)


def test_grid_field_rekeyed_generator_matches_fresh_philox():
    """GridField.draw draws its normals in C (cascade/_field.pyx) and FFTs only the columns
    the sites use: the same numbers as a fresh ``Philox(key=salt ^ tag)`` per salt, ``fft2``
    and ``einsum`` (the draw before those changes, rebuilt here)."""
    from scipy.special import ndtri

    from cascade.correlation import GridField

    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 20_000, 400), rng.uniform(0, 15_000, 400)
    keys = rng.integers(0, 2**64, 400, dtype=np.uint64)
    field = GridField(x, y, 8.5, keys, tag="test")
    salts = np.array([0, 1, 2**63 + 5, 2**64 - 1, 12345], np.uint64)
    mx, my = field.shape
    z = np.empty((len(salts), mx, my), complex)
    for k, salt in enumerate(salts):
        g = np.random.Generator(np.random.Philox(key=int(salt) ^ field._tag))
        z[k] = g.standard_normal(2 * mx * my).view(complex).reshape(mx, my)
    grid = np.fft.fft2(field._sqrt_lam * z, axes=(-2, -1)).real.reshape(len(salts), -1)
    expected = np.einsum("bsk,sk->bs", grid[:, field._idx], field._w)
    expected += field._nugget * ndtri(keyed_uniform(keys[None, :], salts[:, None]))
    np.testing.assert_array_equal(field.draw(salts), expected)


@pytest.mark.parametrize("seed, start", [(7, 0), (0, 0), (2**32 + 5, 2**32 - 3), (2**64 - 1, 2**40),
                                         (123456789, 10**6)])
def test_compiled_draws_match_numpy_default_rng(seed, start):
    """cascade._draws.sample_draws recomputes Draws.of (SeedSequence, PCG64, the ziggurat
    normal) in C: the same salts and first normal, for seeds and indices of 1 and 2 words."""
    from cascade import _draws
    from cascade.hazards import Draws

    n = 40
    salts, normal = np.empty((n, 4), np.uint64), np.empty(n)
    _draws.sample_draws(seed, start, start + n, salts, normal)
    ref = [Draws.of(seed, i) for i in range(start, start + n)]
    np.testing.assert_array_equal(salts, np.stack([d.salts for d in ref]))
    np.testing.assert_array_equal(normal, [d.rng.standard_normal() for d in ref])


def test_compiled_keyed_normal_matches_numpy():
    from scipy.special import ndtri

    from cascade import _draws

    rng = np.random.default_rng(4)
    keys = rng.integers(0, 2**64, 700, dtype=np.uint64)
    salts = np.array([0, 1, 2**64 - 1, 987654321], np.uint64)
    out = np.empty((len(salts), len(keys)))
    _draws.keyed_normal(keys, salts, out)
    np.testing.assert_array_equal(out, ndtri(keyed_uniform(keys[None, :], salts[:, None])))


def test_subclass_that_draws_differently_falls_back_to_python(demo):
    """A hazard subclass overriding draw (not compiled_plan) must not use its parent's plan."""
    from cascade.hazards import RandomHazard

    class Doubled(RandomHazard):
        def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
            nodes, edges = super().draw(prep, draws, compiled, scale_nodes, scale_edges)
            return nodes | np.roll(nodes, 1), edges

    system, compiled = demo
    scenario = load_scenario(SCEN / "random_failures.toml")
    scenario.hazard = Doubled(**{k: v for k, v in vars(scenario.hazard).items()})
    scenario.prepare(system, compiled)
    assert ensemble._plan(compiled, scenario) is None
    result = run_ensemble(system, scenario, 40, threads=1, compiled=compiled)
    plain = load_scenario(SCEN / "random_failures.toml")
    base = run_ensemble(system, plain, 40, threads=1, compiled=compiled)
    assert (result.n_direct[:, 0] >= base.n_direct[:, 0]).all()
    assert (result.n_direct[:, 0] > base.n_direct[:, 0]).any()


def _intact(compiled):
    from cascade.compiled import Workspace

    ws = Workspace(compiled)
    ws.run()
    baseline = ws.working.astype(bool)
    return baseline, ensemble._service(compiled, baseline, ensemble._totals(compiled))


def _exact_mode(on, fn):
    """Run ``fn`` with cascade._ensemble's table decisions and incremental cascades off
    (``on=False``: the exact arithmetic of the numpy path for every element, every cascade
    from scratch) or on."""
    from cascade import _ensemble

    _ensemble.set_fast(not on, not on)
    try:
        return fn()
    finally:
        _ensemble.set_fast(True, True)


def _perturbed_part(part, mode, rng, bf_ok=True):
    """A plan part like ``part`` (same elements, keys and salts) with values that stress the
    table decisions: wide spreads, non-finite values, c < 0, d <= 0."""
    m, idx, keys, a, b, c, d, s_fail, s_gm = part
    k = len(idx)
    a = rng.normal(-1.0 if mode == 1 else -3.0, 3.0, k)
    b = rng.normal(0.3, 0.3, k)
    c = rng.uniform(0.0, 1.5, k)
    d = rng.uniform(0.05, 3.0, k)
    for arr, specials in ((a, [np.nan, np.inf, -np.inf, 40.0, -40.0, 0.0]), (b, [np.nan, np.inf, -5.0]),
                          (c, [0.0, -0.5, np.nan, np.inf]), (d, [0.0, -1.0, np.inf, np.nan, 1e-300])):
        pos = rng.choice(k, min(k, 3 * len(specials)), replace=False)
        arr[pos] = np.resize(np.array(specials), len(pos))
    return (m, idx, keys, a, b, c, d, s_fail, s_gm)


@pytest.mark.parametrize("case", ["earthquake-correlated", "earthquake-none", "earthquake-strong-none"])
@pytest.mark.parametrize("variant", ["plan", "perturbed", "perturbed-no-variability", "perturbed-bf0"])
def test_table_decisions_identical_to_exact_arithmetic(demo, scenario_files, case, variant):
    """The compiled path's table decisions and incremental cascades against its exact
    arithmetic (every element through ndtri / ndtr / exp / expm1, every cascade from scratch:
    the arithmetic tested against the Python path above), on the scenario's plan and on
    plans with extreme and non-finite values, which the Python path does not produce."""
    system, compiled = demo
    scenario = load_scenario(scenario_files[case])
    scenario.prepare(system, compiled)
    hplan, n_part, e_part, (variability, bf, grid) = ensemble._plan(compiled, scenario)
    if variant != "plan":
        rng = np.random.default_rng(sum(map(ord, case + variant)))
        n_part, e_part = _perturbed_part(n_part, 1, rng), _perturbed_part(e_part, 2, rng)
        variability = variant != "perturbed-no-variability"
        bf = 0.0 if variant == "perturbed-bf0" else bf
    plan = (hplan, n_part, e_part, (variability, bf, grid))
    baseline, service = _intact(compiled)

    def run():
        return ensemble._run_compiled_batch(compiled, scenario, plan, scenario.seed, 3, 200,
                                            baseline, service)
    fast, exact = _exact_mode(False, run), _exact_mode(True, run)
    for name, a, b in zip(("start", "loss", "failed", "direct", "n_direct"), fast, exact):
        np.testing.assert_array_equal(a, b, err_msg=f"{case}/{variant}: {name} differs")
    assert 0 < exact[4][:, 0].sum() < 197 * len(n_part[1]), "no node or every node failed: a weak test"
    if bf == 0:
        assert exact[4][:, 1].sum() == 0                  # no break without a break fraction
    else:
        assert 0 < exact[4][:, 1].sum() < 197 * len(e_part[1]), "no edge or every edge failed: a weak test"


def test_exact_arithmetic_identical_to_python(demo, scenario_files):
    """The fallback of the table decisions is itself the Python path's arithmetic."""
    system, compiled = demo
    for case in ("earthquake-correlated", "earthquake-strong-none"):
        scenario = load_scenario(scenario_files[case])
        scenario.prepare(system, compiled)
        baseline, service = _intact(compiled)
        args = (compiled, scenario, scenario.seed, 0, 64, baseline, service)
        exact = _exact_mode(True, lambda: run_batch(*args))
        slow = _python_path(False, lambda: run_batch(*args))
        for name, a, b in zip(("start", "loss", "failed", "direct", "n_direct"), exact, slow):
            np.testing.assert_array_equal(a, b, err_msg=f"{case}: {name} differs")


def test_intact_system_with_failed_nodes_runs_every_cascade_from_scratch(demo, scenario_files):
    """A node down in the intact system (an isolated substation): the incremental cascades
    would not list it among each sample's failures, so the compiled path must run every
    sample from scratch there, and match the Python path."""
    import pandas as pd

    system = read_system(DEMO)
    row = system.nodes.iloc[[2]].copy()
    row["id"] = "P-ISOLATED"
    system.nodes = pd.concat([system.nodes, row], ignore_index=True)
    compiled = compile_system(system)
    baseline, service = _intact(compiled)
    assert not baseline.all()
    scenario = load_scenario(scenario_files["earthquake-none"])
    scenario.prepare(system, compiled)
    args = (compiled, scenario, scenario.seed, 0, 70, baseline, service)
    fast = _python_path(True, lambda: run_batch(*args))
    slow = _python_path(False, lambda: run_batch(*args))
    for name, a, b in zip(("start", "loss", "failed", "direct", "n_direct"), fast, slow):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} differs")
    assert slow[4].sum() > 0


@pytest.mark.parametrize("case", ["earthquake-correlated", "earthquake-exact", "earthquake-strong"])
def test_residuals_without_nugget_rebuild_the_python_residuals(demo, scenario_files, case):
    """plan_inputs hands the compiled path each grid field without its nugget term and the
    nuggets' deviations (-1 where a residual is complete); base + nugget · Φ⁻¹(keyed uniform)
    must give the Python path's residuals (EarthquakeHazard._eps) bit for bit."""
    from cascade.correlation import _keyed_normal

    system, compiled = demo
    scenario = load_scenario(scenario_files[case])
    scenario.prepare(system, compiled)
    prep = scenario._prepared(compiled)
    salts = np.random.default_rng(3).integers(0, 2**63, (9, 4)).astype(np.uint64)
    _normal, (base_n, nug_n), (base_e, nug_e) = scenario.hazard.plan_inputs(prep, salts, np.zeros(9))
    eps_n, eps_e = scenario.hazard._eps(prep, salts[:, 2:3], salts[:, 3:4], batch=True)
    split = 0
    for base, nug, keys, salt, ref in ((base_n, nug_n, prep["sn_keys"], salts[:, 2], eps_n),
                                       (base_e, nug_e, prep["pe_keys"], salts[:, 3], eps_e)):
        has = nug >= 0
        split += has.sum()
        out = base.copy()
        out[:, has] += nug[has] * _keyed_normal(keys[has], salt)
        np.testing.assert_array_equal(out, ref)
    if case != "earthquake-exact":
        assert split > 0, "no grid field was split: the test checks nothing"
