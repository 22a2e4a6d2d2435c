"""The ensemble's per-sample cascade with local rules (``_core._cascade_incr``, called by
``cascade._ensemble.run_block``) against a whole run from scratch of the same failures
(``Workspace.run``) and the networkx reference: the same final state, rounds, causes, groups,
group counts and ``changed`` order, sample after sample on the same buffers (each sample is
undone as run_block undoes it), for every region limit (local rules only, whole-layer
searches after the first loss, and the default switch between them)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cascade import Workspace, _core, _ensemble, compile_system, ensemble, read_system, simulate
from cascade.ensemble import _local_rule_buffers, run_batch
from cascade.hazards import load_scenario

from strategies import systems
from test_ensemble_compiled import DEMO, SCEN

STATE = ("working", "fail_round", "cause", "via_group", "alive")
LIMITS = (0.0, 0.25, 1.0, 1e9)


class Local:
    """The buffers run_block gives ``_cascade_incr`` (ensemble._local_rule_buffers) and a
    workspace at the intact state."""

    def __init__(self, c, held):
        self.c, self.ws = c, Workspace(c)
        self.ws.group_held[:] = held
        self.intact = self.ws.run()
        (self.edge_dst, self.arc0, self.edge_arc, self.child_ptr, self.child_idx, self.par_edge,
         self.layer_root, self.layer_size, self.arc, self.aff, self.aff_list, self.cursor,
         self.reg_n) = _local_rule_buffers(c)

    def run(self, nodes, edges):
        c, ws = self.c, self.ws
        nodes = np.ascontiguousarray(nodes, c.index_dtype)
        edges = np.ascontiguousarray(edges, c.index_dtype)
        k = _core.cascade_incr(
            c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, self.arc, self.arc0, self.edge_arc,
            c.layer_ptr, c.layer_nodes, c.node_layer, c.layer_rule, c.is_source, c.grp_ptr,
            c.rdep_ptr, c.rdep_grp, c.group_owner, ws.group_held, c.edge_src, self.edge_dst,
            nodes, edges, ws.edge_failed, ws.working, ws.fail_round, ws.cause, ws.via_group,
            ws.alive, ws.changed, ws.queue, ws.comp, ws.layer_dirty, self.child_ptr,
            self.child_idx, self.par_edge, self.aff, self.aff_list, self.cursor, self.reg_n,
            self.layer_root, self.layer_size)
        out = tuple(getattr(ws, a).copy() for a in STATE) + (ws.changed[:k].copy(),)
        ws.n_changed = k
        ws.undo()
        # Everything run_block relies on is back: state, flags, region marks.
        assert ws.working.all() and (ws.fail_round == -1).all() and (ws.cause == 0).all()
        assert np.array_equal(ws.alive, np.diff(c.sup_ptr))
        assert not ws.edge_failed.any() and not self.aff.any()
        assert np.array_equal(self.arc, self.arc0)
        return out


def from_scratch(c, held, nodes, edges):
    ws = Workspace(c)
    ws.group_held[:] = held
    k = ws.run(nodes, edges)
    return tuple(getattr(ws, a).copy() for a in STATE) + (ws.changed[:k].copy(),)


def check_samples(c, held, samples):
    old = _core.LOCAL_MIN_NODES
    try:
        _core.LOCAL_MIN_NODES = 10**12          # the oracle: whole-layer searches from scratch
        expected = [from_scratch(c, held, n, e) for n, e in samples]
    finally:
        _core.LOCAL_MIN_NODES = old
    for limit in LIMITS:
        _core.set_region_limit(limit)
        try:
            local = Local(c, held)
            assume(local.intact == 0)            # run_block's condition for incremental runs
            for (n, e), want in zip(samples, expected):
                got = local.run(n, e)
                for name, x, y in zip(STATE + ("changed",), got, want):
                    assert np.array_equal(x, y), (limit, name)
        finally:
            _core.set_region_limit(0.25)


@st.composite
def sampled(draw, max_layers=3, max_nodes=7):
    """A system, its groups' held flags (backups still running), and a few samples of failed
    node and edge indices."""
    system, _, _ = draw(systems(max_layers=max_layers, max_nodes=max_nodes))
    c = compile_system(system, index_dtype=draw(st.sampled_from([np.int32, np.int64])))
    held = np.array(draw(st.lists(st.booleans(), min_size=c.n_groups, max_size=c.n_groups)), np.uint8)
    node = st.integers(0, c.n_nodes - 1)
    samples = []
    for _ in range(draw(st.integers(1, 4))):
        nodes = draw(st.lists(node, max_size=min(c.n_nodes, 5), unique=True))
        edges = draw(st.lists(st.integers(0, c.n_edges - 1), max_size=min(c.n_edges, 5),
                              unique=True)) if c.n_edges else []
        samples.append((nodes, edges))
    return c, held, samples, system


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                 HealthCheck.too_slow])
@given(case=sampled())
def test_local_sample_cascades_equal_runs_from_scratch(case):
    check_samples(*case[:3])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                HealthCheck.too_slow])
@given(case=sampled(max_layers=3, max_nodes=30))
def test_local_sample_cascades_equal_runs_from_scratch_larger(case):
    """Layers of up to 30 nodes: deeper forests, several rounds, regions that pass the limit."""
    check_samples(*case[:3])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                 HealthCheck.too_slow])
@given(case=sampled(max_layers=3, max_nodes=12))
def test_local_sample_cascades_equal_reference(case):
    """The reference engine (networkx, cascade.reference) as a second oracle: the same final
    working set as the local cascade of each sample."""
    c, _, samples, system = case
    held = np.zeros(c.n_groups, np.uint8)        # the reference takes no running backups
    for limit in LIMITS:
        _core.set_region_limit(limit)
        try:
            local = Local(c, held)
            assume(local.intact == 0)
            for n, e in samples:
                working = local.run(n, e)[0]
                ref = simulate(system, list(c.node_ids[n]) + list(c.edge_ids[e]), compiled=c,
                               engine="reference")
                assert np.array_equal(working, ref.working), limit
        finally:
            _core.set_region_limit(0.25)


def test_demo_ensemble_identical_for_every_region_limit(tmp_path):
    """run_block on the demo town's earthquake: the same losses and counts with the local
    rules at every region limit as with whole-layer incremental searches."""
    system = read_system(DEMO)
    c = compile_system(system)
    out = []
    quake = (SCEN / "earthquake_m62.toml").read_text().replace(
        'system = "../networks/demo_town"', f'system = "{DEMO}"').replace(
        'mechanism = "unspecified"', 'mechanism = "unspecified"\ncorrelation = "none"')
    (tmp_path / "q.toml").write_text(quake)
    scenario = load_scenario(tmp_path / "q.toml")
    scenario.prepare(system, c)
    settings_ = [(False, 0.25)] + [(True, x) for x in LIMITS]
    try:
        for local, limit in settings_:
            _ensemble.set_fast(True, True, local)
            _core.set_region_limit(limit)
            out.append(ensemble.run_ensemble(system, scenario, 300, threads=1, compiled=c))
    finally:
        _ensemble.set_fast(True, True, True)
        _core.set_region_limit(0.25)
    for r in out[1:]:
        assert np.array_equal(r.loss, out[0].loss)
        assert np.array_equal(r.failed, out[0].failed)
    assert out[0].loss[:, :-1].max() > 0.5         # large cascades: regions pass the limit
