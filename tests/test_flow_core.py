"""The core engine on flow layers (cascade/flowcore.py) against the reference engine
(cascade/reference_flow.py): random coupled systems, the hand-made cases of
tests/test_flow_reference.py, and the reuse of the kernels between cascades."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from cascade import compile_system, read_system, simulate
from cascade.flowcore import FlowEngine, flow_engine

import test_flow_reference as ref_tests
from test_flow_reference import flow_systems, flow_layers, meshed_grids

FLOW_TOWN = "networks/flow_town"


def assert_same(core, ref):
    """Final states, causes, rounds, groups, via, served fractions (1e-9 relative), flows (1e-9
    of the largest) and trips (ids, rounds, steps, flows)."""
    assert core.engine == "core" and ref.engine == "reference"
    np.testing.assert_array_equal(core.working, ref.working)
    np.testing.assert_array_equal(core.fail_round, ref.fail_round)
    np.testing.assert_array_equal(core.cause, ref.cause)
    np.testing.assert_array_equal(core.via_group, ref.via_group)
    np.testing.assert_array_equal(core.via_supplier, ref.via_supplier)
    assert core.rounds == ref.rounds
    np.testing.assert_allclose(core.served, ref.served, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(core.baseline_served, ref.baseline_served, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(core.baseline_working, ref.baseline_working)
    np.testing.assert_array_equal(np.isnan(core.flows), np.isnan(ref.flows))
    scale = max(1.0, np.nanmax(np.abs(ref.flows), initial=0.0))
    np.testing.assert_allclose(np.nan_to_num(core.flows), np.nan_to_num(ref.flows), rtol=0, atol=1e-9 * scale)
    assert list(core.trips["id"]) == list(ref.trips["id"])
    assert list(core.trips["layer"]) == list(ref.trips["layer"])
    assert list(core.trips["round"]) == list(ref.trips["round"])
    assert list(core.trips["step"]) == list(ref.trips["step"])
    np.testing.assert_allclose(core.trips["flow"].to_numpy(float), ref.trips["flow"].to_numpy(float),
                               rtol=0, atol=1e-9 * scale)
    np.testing.assert_array_equal(core.trips["capacity"].to_numpy(float), ref.trips["capacity"].to_numpy(float))
    assert core.failed().equals(ref.failed())


def both(system, fail=()):
    return simulate(system, list(fail), engine="core"), simulate(system, list(fail), engine="reference")


@settings(max_examples=200, deadline=None)
@given(case=flow_systems())
def test_core_equals_reference_on_random_coupled_systems(case):
    system, fail = case
    assert_same(*both(system, fail))


@settings(max_examples=80, deadline=None)
@given(system=flow_layers())
def test_core_equals_reference_on_random_flow_layers(system):
    assert_same(*both(system))
    assert_same(*both(system, [system.nodes["id"].iloc[0]]))


@settings(max_examples=80, deadline=None)
@given(system=meshed_grids())
def test_core_equals_reference_on_random_meshed_grids(system):
    assert_same(*both(system))
    if len(system.edges):
        assert_same(*both(system, [system.edges["id"].iloc[0]]))


@pytest.mark.parametrize("fail", [[], ["L1"], ["L2"], ["L3"], ["plant"], ["south"], ["works"], ["P2"],
                                  ["L1", "tank"]])
def test_core_equals_reference_on_flow_town(fail):
    assert_same(*both(read_system(FLOW_TOWN), fail))


def test_losing_l1_trips_l2_and_l3_in_the_core():
    """flow_town: without L1 the plant's output reaches south over L2 alone (96 MW > 60), and L3
    carries -60 > 40: both trip in round 1, step 1; north is stranded (disconnected)."""
    core, _ = both(read_system(FLOW_TOWN), ["L1"])
    trips = core.to_dict()["tripped"]
    assert [(t["id"], t["round"], t["step"]) for t in trips] == [("L2", 1, 1), ("L3", 1, 1)]
    assert {r.id: r.cause for r in core.failed().itertuples()}["north"] == "disconnected"


def test_hand_made_reference_cases_hold_on_the_core(monkeypatch):
    """Every hand-made case of tests/test_flow_reference.py, rerun with the core engine."""
    def core(system, fail=()):
        return simulate(system, list(fail), engine="core")
    monkeypatch.setattr(ref_tests, "ref", core)
    ref_tests.test_priority_classes_in_a_dcflow_island()
    ref_tests.test_priority_classes_in_a_flow_layer()
    ref_tests.test_default_priority_protects_suppliers_of_other_lifelines()
    for threshold, stops in [(0.8, True), (0.5, False), (0.6, False)]:
        ref_tests.test_threshold_dependency(threshold, stops)
    ref_tests.test_islanding_strands_a_bus_without_supply()
    ref_tests.test_two_step_overload_cascade()
    ref_tests.test_trip_in_a_later_round()
    ref_tests.test_partial_supply_with_a_capacity_bottleneck()
    ref_tests.test_flow_layer_follows_directed_pipes_and_ignores_zero_capacity()
    ref_tests.test_generators_share_the_served_total()
    ref_tests.test_phase_shift_drives_a_loop_flow()
    ref_tests.test_v1_layers_beside_flow_layers_keep_their_rules()


def test_the_default_engine_is_the_core_and_runs_flow_layers():
    r = simulate(read_system(FLOW_TOWN), ["L1"])
    assert r.engine == "core" and r.served is not None and len(r.trips) == 2


def test_kernels_are_built_once_per_compiled_system_and_reused():
    """The same engine (and DC factors) serves every cascade of one compiled system; its
    answers do not depend on the cascades run before (no state leaks between runs)."""
    c = compile_system(read_system(FLOW_TOWN))
    engine = flow_engine(c)
    assert flow_engine(c) is engine
    dc = next(layer.kernel for layer in engine.layers if layer.name == "power")
    fresh = [FlowEngine(c).run(*c.split_ids(fail)) for fail in (["L1"], [], ["plant"], ["L3"])]
    again = [engine.run(*c.split_ids(fail)) for fail in (["L1"], [], ["plant"], ["L3"])]
    factorizations = dc.stats["factorizations"]
    for _ in range(3):
        engine.run(*c.split_ids([]))
    assert dc.stats["factorizations"] == factorizations        # the intact grid is not refactorised
    for a, b in zip(fresh, again):
        for x, y in zip(a[:6], b[:6]):
            np.testing.assert_array_equal(x, y)
        pd.testing.assert_frame_equal(a[6], b[6])
    assert flow_engine(compile_system(read_system(FLOW_TOWN))) is not engine


def test_the_cache_does_not_keep_compiled_systems_alive():
    import gc
    import weakref

    c = compile_system(read_system(FLOW_TOWN))
    flow_engine(c).run()
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None
