"""The workers' store and the ranges of cascade.cluster.SweepCluster on a real local scheduler
with 2 worker processes: objects go to each worker once (a second client on the same cluster
sends nothing), a worker that lacks one gets it when its task asks, ranges cover every item
once (small first, then sized from the measured rate, the tail not below MIN_TASK_SECONDS of
work; a remembered rate skips the small first ranges), the worker count is not asked after
every task, failures are one line."""
from __future__ import annotations

import numpy as np
import pytest

from cascade import InputError, compile_system, ensemble, read_system
from cascade import cluster as cl
from cascade.criticality import core_sweep, element_indices, synthetic_lifelines
from cascade.ensemble import run_ensemble
from cascade.hazards import load_scenario

from conftest import DEMO, ROOT

distributed = pytest.importorskip("distributed")
import store_tasks  # noqa: E402  (tests/, importable on the workers)

QUAKE = ROOT / "scenarios" / "earthquake_m62.toml"


@pytest.fixture(scope="module")
def address():
    cluster = ensemble._local_cluster(distributed, 2)
    try:
        yield cluster.scheduler_address
    finally:
        ensemble.close_local_cluster(cluster)


def _puts(monkeypatch, sc):
    """Spy on what a SweepCluster sends to the workers' stores: [(token, workers)]."""
    sent = []
    real = sc.client.run

    def run(fn, *args, workers=None, **kw):
        if fn is cl._store_put:
            sent.append((args[0], tuple(workers)))
        return real(fn, *args, workers=workers, **kw)

    monkeypatch.setattr(sc.client, "run", run)
    return sent


def test_store_keeps_the_last_objects_and_drops_the_oldest(monkeypatch):
    monkeypatch.setattr(cl, "_STORE", type(cl._STORE)())
    for i in range(cl.STORE_MAX + 2):
        cl._store_put(f"t{i}", i)
    assert cl.stored("t2") == 2 and cl.stored(f"t{cl.STORE_MAX + 1}") == cl.STORE_MAX + 1
    with pytest.raises(cl.NotShared):
        cl.stored("t0")
    assert cl._store_has(["t0", "t1", "t2"]) == ["t2"]
    cl._store_drop("t2")
    assert cl._store_has(["t2"]) == []


def test_content_token_follows_content_not_identity():
    a, b = np.arange(10), np.arange(10)
    assert cl.content_token(a) == cl.content_token(b)
    b[3] = 0
    assert cl.content_token(a) != cl.content_token(b)


def test_objects_go_to_each_worker_once_also_from_a_second_client(address, monkeypatch):
    data = np.arange(1000) * 3
    with cl.SweepCluster(scheduler=address) as sc:
        sent = _puts(monkeypatch, sc)
        token = sc.share(data)
        assert len(sent) == 1 and len(sent[0][1]) == 2       # both workers, one message
        assert sc.share(data) == token and len(sent) == 1    # already there
    with cl.SweepCluster(scheduler=address) as sc:           # another client, same cluster
        sent = _puts(monkeypatch, sc)
        assert sc.share(data.copy()) == token and sent == []
        rows = []
        sc.run_ranges(store_tasks.span_sum, lambda lo, hi: (token, lo, hi), len(data),
                      lambda r: rows.append(r) or r[1] - r[0], first=7)
    got = np.concatenate([r[2] for r in sorted(rows, key=lambda r: r[0])])
    np.testing.assert_array_equal(got, data)


def test_ranges_cover_every_item_once_small_first_then_from_the_rate(address):
    data = np.arange(5000)
    with cl.SweepCluster(scheduler=address) as sc:
        token = sc.share(data)
        rows = []
        sc.run_ranges(store_tasks.span_sum, lambda lo, hi: (token, lo, hi), len(data),
                      lambda r: rows.append(r) or r[1] - r[0], first=10, minimum=4)
    spans = sorted((lo, hi) for lo, hi, *_ in rows)
    assert spans[0] == (0, 10)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(data)
    sizes = [hi - lo for lo, hi in spans]
    # After the first IN_FLIGHT x 2 ranges of 10, the measured rate (these tasks take
    # microseconds) sizes them by the rest over IN_FLIGHT x workers: far above 10, then shrinking.
    assert sizes[:cl.IN_FLIGHT * 2] == [10] * (cl.IN_FLIGHT * 2)
    assert max(sizes) > 500 and min(sizes) >= 4
    assert len({pid for *_, pid in rows}) >= 1
    got = np.concatenate([r[2] for r in sorted(rows, key=lambda r: r[0])])
    np.testing.assert_array_equal(got, data)


def _spans(sc, task, token, total, args=(), **kw):
    """The rows of ``task`` over ``0 .. total`` (``args`` after the range), by position."""
    rows = []
    sc.run_ranges(task, lambda lo, hi: (token, lo, hi, *args), total,
                  lambda r: rows.append(r) or r[1] - r[0], **kw)
    return sorted(rows, key=lambda r: r[0])


def _check_cover(rows, data):
    spans = [(lo, hi) for lo, hi, *_ in rows]
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    np.testing.assert_array_equal(np.concatenate([r[2] for r in rows]), data)
    return [hi - lo for lo, hi in spans]


def test_the_tail_stops_shrinking_at_min_task_seconds_of_work(address):
    # Each row takes 0.1 ms on a worker (a sleep: the rate holds under load), so a range of
    # MIN_TASK_SECONDS holds about 300 rows; before, the tail shrank to `minimum` (4 rows).
    data = np.arange(4000)
    with cl.SweepCluster(scheduler=address) as sc:
        token = sc.share(data)
        rows = _spans(sc, store_tasks.slow_span, token, len(data), first=10, minimum=4,
                      args=(1e-4,))
    sizes = _check_cover(rows, data)
    assert sizes[:cl.IN_FLIGHT * 2] == [10] * (cl.IN_FLIGHT * 2)
    later = sizes[cl.IN_FLIGHT * 2:-1]            # the last range takes what is left
    assert later and min(later) >= 100, sizes
    # The oracle: with the floor at 0 s the same run does shrink below it.
    old = cl.MIN_TASK_SECONDS
    cl.MIN_TASK_SECONDS = 0.0
    try:
        with cl.SweepCluster(scheduler=address) as sc:
            rows = _spans(sc, store_tasks.slow_span, token, len(data), first=10, minimum=4,
                          args=(1e-4,))
    finally:
        cl.MIN_TASK_SECONDS = old
    assert min(_check_cover(rows, data)[cl.IN_FLIGHT * 2:-1]) < 100


def test_a_run_with_a_remembered_rate_has_no_small_first_ranges(address, monkeypatch):
    monkeypatch.setattr(cl, "_RATES", {})
    data = np.arange(5000)
    key = ("test", "remembered")
    with cl.SweepCluster(scheduler=address) as sc:
        token = sc.share(data)
        first = _check_cover(_spans(sc, store_tasks.span_sum, token, len(data), first=10,
                                    rate_key=key), data)
        assert first[:cl.IN_FLIGHT * 2] == [10] * (cl.IN_FLIGHT * 2)
        assert key in cl._RATES
        again = _check_cover(_spans(sc, store_tasks.span_sum, token, len(data), first=10,
                                    rate_key=key), data)
        other = _check_cover(_spans(sc, store_tasks.span_sum, token, len(data), first=10,
                                    rate_key=("test", "other")), data)
    # These tasks take microseconds: with the rate known, the rows split evenly over
    # IN_FLIGHT x 2 workers from the first range on.
    assert again[0] == -(-len(data) // (cl.IN_FLIGHT * 2)) and min(again[:-1]) > 10
    assert other[:cl.IN_FLIGHT * 2] == [10] * (cl.IN_FLIGHT * 2)   # another key: calibrates


def test_the_worker_count_is_asked_once_per_workers_every(address, monkeypatch):
    calls = []
    real = cl.SweepCluster.n_workers
    monkeypatch.setattr(cl.SweepCluster, "n_workers",
                        property(lambda self: calls.append(1) or real.fget(self)))
    monkeypatch.setattr(cl, "WORKERS_EVERY", 1e9)
    data = np.arange(400)
    with cl.SweepCluster(scheduler=address) as sc:
        token = sc.share(data)
        sizes = _check_cover(_spans(sc, store_tasks.span_sum, token, len(data), size=10), data)
    assert len(sizes) == 40 and len(calls) == 1
    monkeypatch.setattr(cl, "WORKERS_EVERY", 0.0)     # the oracle: asked after every arrival
    calls.clear()
    with cl.SweepCluster(scheduler=address) as sc:
        _check_cover(_spans(sc, store_tasks.span_sum, token, len(data), size=10), data)
    assert len(calls) > 5


def test_a_worker_without_the_object_gets_it_and_the_range_reruns(address, monkeypatch):
    data = np.arange(400) + 1
    with cl.SweepCluster(scheduler=address) as sc:
        token = sc.share(data)
        sc.client.run(cl._store_drop, token)        # both workers lose it (a restart, eviction)
        sent = _puts(monkeypatch, sc)
        rows = []
        sc.run_ranges(store_tasks.span_sum, lambda lo, hi: (token, lo, hi), len(data),
                      lambda r: rows.append(r) or r[1] - r[0], size=50)
    assert sent and all(t == token for t, _ in sent)
    got = np.concatenate([r[2] for r in sorted(rows, key=lambda r: r[0])])
    np.testing.assert_array_equal(got, data)


def test_a_second_share_on_one_client_asks_the_workers_nothing(address, monkeypatch):
    """A token this client saw on every worker is not asked about again (no round trip);
    the oracle: a new token, and a new client, do ask.  That a worker which lost it since
    still gets it is test_a_worker_without_the_object_gets_it_and_the_range_reruns."""
    data = np.arange(300) + 7
    with cl.SweepCluster(scheduler=address) as sc:
        asked = []
        real = sc.client.run

        def run(fn, *args, **kw):
            if fn is cl._store_has:
                asked.append(list(args[0]))
            return real(fn, *args, **kw)

        monkeypatch.setattr(sc.client, "run", run)
        token = sc.share(data)
        assert asked == [[token]]
        assert sc.share(data) == token and asked == [[token]]
        other = sc.share(data + 1)
        assert asked == [[token], [other]]
        rows = []
        sc.run_ranges(store_tasks.span_sum, lambda lo, hi: (token, lo, hi), len(data),
                      lambda r: rows.append(r) or r[1] - r[0], size=100)
        got = np.concatenate([r[2] for r in sorted(rows, key=lambda r: r[0])])
        np.testing.assert_array_equal(got, data)
    with cl.SweepCluster(scheduler=address) as sc:
        held = sc.client.run(cl._store_has, [token])
        assert all(h == [token] for h in held.values()) and len(held) == 2
        asked = _puts(monkeypatch, sc)
        assert sc.share(data) == token and asked == []   # nothing sent, but asked (above)


def test_a_failing_task_is_one_line(address):
    with cl.SweepCluster(scheduler=address) as sc:
        token = sc.share(np.arange(10))
        with pytest.raises(InputError) as err:
            sc.run_ranges(store_tasks.fails, lambda lo, hi: (token, lo, hi), 10, lambda r: 0,
                          size=5, unit="rows")
    message = str(err.value)
    assert "ValueError: bad row" in message and "of 10 rows done" in message
    assert "nothing written" in message and "\n" not in message


def test_ensembles_twice_on_one_cluster_equal_threads_and_send_the_system_once(address, monkeypatch):
    system = read_system(DEMO)
    compiled = compile_system(system)
    scenario = load_scenario(QUAKE)
    want = run_ensemble(system, scenario, 300, threads=1, compiled=compiled)
    puts = []
    real = cl._store_put
    monkeypatch.setattr(cl.SweepCluster, "_send", _counting_send(puts))
    for _ in range(2):
        got = run_ensemble(system, scenario, 300, scheduler=address, compiled=compiled)
        for name in ("loss", "failed", "direct", "n_direct"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    # The first run may send (or find them from an earlier test); the second sends nothing.
    assert puts[-1] == []
    assert real is cl._store_put


def _counting_send(log):
    real = cl.SweepCluster._send

    def send(self, tokens):
        have = self.client.run(cl._store_has, list(tokens))
        log.append([t for t in tokens for held in have.values() if t not in held])
        return real(self, tokens)
    return send


def test_sweep_twice_on_one_cluster_equals_threads(address):
    c = compile_system(synthetic_lifelines(3000, seed=2))
    el_node, el_edge = element_indices(c, "all")
    want = core_sweep(c, el_node, el_edge, threads=1)
    with cl.SweepCluster(scheduler=address) as sc:
        for _ in range(2):
            got = core_sweep(c, el_node, el_edge, cluster=sc)
            for a, b in zip(want, got):
                np.testing.assert_array_equal(a, b)
        assert want[0].max() > 50


@pytest.mark.parametrize("samples", [1, 255, 256, 70_000])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
def test_per_node_counts_travel_compacted_and_come_back_equal(samples, density):
    rng = np.random.default_rng(samples)
    n = 5000
    counts = np.where(rng.random(n) < density, rng.integers(1, samples + 1, n), 0).astype(np.int32)
    packed = ensemble._pack_counts(counts, samples)
    got = ensemble._unpack_counts(packed)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, counts)
    n_, index, values = packed
    assert n_ == n
    assert values.dtype == (np.uint8 if samples < 256 else np.uint16 if samples < 65536 else np.uint32)
    sparse = 3 * np.count_nonzero(counts) < n
    assert (index is not None) == sparse
    if sparse:
        assert len(values) == np.count_nonzero(counts)


def test_ensembles_on_an_open_cluster_equal_threads_and_leave_it_open(address):
    system = read_system(DEMO)
    compiled = compile_system(system)
    scenario = load_scenario(QUAKE)
    want = run_ensemble(system, scenario, 200, threads=1, compiled=compiled)
    with cl.SweepCluster(scheduler=address) as sc:
        for n in (200, 200):
            got = run_ensemble(system, scenario, n, cluster=sc, compiled=compiled)
            assert got.executor == sc.label and sc.client.status == "running"
            for name in ("loss", "failed", "direct", "n_direct"):
                np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        with pytest.raises(InputError, match="either a cluster"):
            run_ensemble(system, scenario, 5, cluster=sc, scheduler=address, compiled=compiled)
    assert sc.client.status == "closed"


# --- critical's sweeps: the start state is built on the workers, never sent ------------------

def test_built_builds_once_per_worker_and_its_time_is_left_out_of_the_task(monkeypatch):
    monkeypatch.setattr(cl, "_STORE", type(cl._STORE)())
    clock = [100.0]
    monkeypatch.setattr(cl.time, "perf_counter", lambda: clock[0])
    made = []

    def make():
        clock[0] += 5.0   # a build of 5 s (fake clock)
        made.append(1)
        return "plan"

    def task(extra):
        got = cl.built("plan-1", make)
        clock[0] += extra   # the task's own work
        return got

    assert cl.timed(task, 0.25) == (0.25, "plan")   # 5.25 s on the worker, 0.25 s of work
    assert cl.timed(task, 0.5) == (0.5, "plan") and made == [1]   # from the store
    cl._store_drop("plan-1")
    assert cl.timed(task, 0.125) == (0.125, "plan") and made == [1, 1]   # rebuilt

    def needs_missing():
        return cl.stored("absent")
    with pytest.raises(cl.NotShared):
        cl.built("plan-2", needs_missing)
    assert cl._store_has(["plan-2"]) == []


def test_a_recipe_builds_the_plan_this_process_builds():
    from cascade import criticality as cr

    c = compile_system(synthetic_lifelines(2000, seed=3))
    pre_nodes, pre_edges = np.array([5, 900], c.index_dtype), np.array([7], c.index_dtype)
    count_mask, start = cr._start_state(c, pre_nodes, pre_edges)
    root, count = cr._layer_roots(c, start.working.astype(bool))
    _, par_edge, child_ptr, child_idx, _ = cr._supply_forest(c, start)
    local = cr._SweepPlan(c, start, count_mask, pre_nodes, pre_edges, child_ptr, child_idx,
                          par_edge, root, count, True)
    recipe = cr._PlanRecipe("token-of-c", pre_nodes, pre_edges, True, True)
    remote = recipe.build(c)
    assert remote.token == recipe.token and remote.token.startswith("plan-")
    for name in ("count_mask", "pre_nodes", "pre_edges", "child_ptr", "child_idx", "par_edge",
                 "layer_root", "layer_count", "arc", "edge_arc"):
        np.testing.assert_array_equal(getattr(local, name), getattr(remote, name))
    for name, a in local.state.items():
        np.testing.assert_array_equal(a, remote.state[name])
    assert (~local.state["working"].astype(bool)).sum() > 2   # the pre-failures took something
    # The token follows the recipe: another pre-failure, skip or forest, another plan.
    assert cr._PlanRecipe("token-of-c", pre_nodes, pre_edges, True, True).token == recipe.token
    others = [cr._PlanRecipe("token-of-c", pre_nodes[:1], pre_edges, True, True),
              cr._PlanRecipe("token-of-c", pre_nodes, pre_edges, False, True),
              cr._PlanRecipe("token-of-c", pre_nodes, pre_edges, True, False),
              cr._PlanRecipe("token-of-d", pre_nodes, pre_edges, True, True)]
    assert len({o.token for o in others} | {recipe.token}) == 5


def test_compact_rows_hold_every_value_exactly():
    from cascade.criticality import _compact

    cases = [(np.array([0, 3, 255]), np.uint8), (np.array([0, 256]), np.uint16),
             (np.array([2**20]), np.uint32), (np.array([2**40]), np.int64),
             (np.array([-1, 3]), np.int64), (np.array([0.0, 3.0, 1e6]), np.float32),
             (np.array([0.0, 0.1]), np.float64), (np.array([2.0**30 + 1]), np.float64)]
    for a, dtype in cases:
        got = _compact(a)
        assert got.dtype == dtype, (a, got.dtype)
        np.testing.assert_array_equal(got.astype(a.dtype), a)


def test_sweeps_send_the_system_once_and_never_their_start_state(address, monkeypatch):
    c = compile_system(synthetic_lifelines(3000, seed=5))
    el_node, el_edge = element_indices(c, "all")
    pre = (np.array([11], c.index_dtype), np.array([4], c.index_dtype))
    with cl.SweepCluster(scheduler=address) as sc:
        sent = _puts(monkeypatch, sc)
        for pre_nodes, pre_edges in (((), ()), pre, pre):
            want = core_sweep(c, el_node, el_edge, pre_nodes, pre_edges, threads=1)
            got = core_sweep(c, el_node, el_edge, pre_nodes, pre_edges, cluster=sc, chunk=400)
            for a, b in zip(want, got):
                np.testing.assert_array_equal(a, b)
        c_token = cl.content_token(c, memo=True)
        assert {token for token, _ in sent} <= {c_token} and len(sent) <= 1
        # Each sweep drops its start state from the stores when it is done.
        assert all(not any(t.startswith("plan-") for t in held)
                   for held in sc.client.run(lambda: list(cl._STORE)).values())
    assert want[0].max() > 50


def test_a_worker_without_the_system_gets_it_and_builds_the_start_state(address, monkeypatch):
    """A replaced worker: its store is empty when the sweep's tasks reach it."""
    c = compile_system(synthetic_lifelines(2500, seed=7))
    el_node, el_edge = element_indices(c)
    want = core_sweep(c, el_node, el_edge, threads=1)
    real = cl.SweepCluster.run_ranges
    with cl.SweepCluster(scheduler=address) as sc:
        def emptied(self, *args, **kw):   # both workers lose their stores after share
            self.client.run(lambda: cl._STORE.clear())
            return real(self, *args, **kw)
        monkeypatch.setattr(cl.SweepCluster, "run_ranges", emptied)
        sent = _puts(monkeypatch, sc)
        got = core_sweep(c, el_node, el_edge, cluster=sc, chunk=300)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    assert [t for t, _ in sent] and {t for t, _ in sent} == {cl.content_token(c, memo=True)}
