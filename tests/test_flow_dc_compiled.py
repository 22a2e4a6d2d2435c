"""The compiled DC cascade step loop (``DCFlow(compiled=True)``, the default: islands, serving,
generator shares, solves and trips in C) against the numpy step loop it replaced
(``compiled=False``, kept as the oracle): the same trips with their steps, working buses and
served fractions, flows to 1e-9 of the largest, on random grids whose cascades trip branches
and split islands (big islands solved by the intact factor with Woodbury updates or by fresh
LDL^T factors, small ones densely), several cascades per kernel (no state leaks between calls).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sps
from hypothesis import given, settings
from hypothesis import strategies as st

from scipy.sparse.csgraph import connected_components

from cascade.flowkernels import DCFlow, dc_cascade


def assert_same(a, b):
    np.testing.assert_array_equal(a.trip_branch, b.trip_branch)
    np.testing.assert_array_equal(a.trip_step, b.trip_step)
    np.testing.assert_array_equal(a.working, b.working)
    np.testing.assert_allclose(a.served, b.served, rtol=0, atol=1e-9)
    both = ~np.isnan(b.flows)
    np.testing.assert_array_equal(~np.isnan(a.flows), both)
    scale = max(1.0, np.abs(b.flows[both]).max(initial=0.0))
    assert np.abs(a.flows[both] - b.flows[both]).max(initial=0.0) <= 1e-9 * scale
    np.testing.assert_allclose(a.trip_flow, b.trip_flow, rtol=0, atol=1e-9 * scale)


def grid(rng, n, extra, spurs):
    """A random tree plus chords plus pendant chains (so trips split islands of every size)."""
    fr, to = [], []
    for v in range(1, n):
        fr.append(int(rng.integers(0, v)))
        to.append(v)
    for _ in range(extra):
        a, b = rng.choice(n, 2, replace=False)
        fr.append(int(a))
        to.append(int(b))
    nb = n
    for _ in range(spurs):                    # a chain of 2-30 buses hanging off one bus
        length = int(rng.integers(2, 31))
        prev = int(rng.integers(0, nb))
        for _ in range(length):
            fr.append(prev)
            to.append(nb)
            prev = nb
            nb += 1
    perm = rng.permutation(nb)
    fr, to = perm[np.array(fr)], perm[np.array(to)]
    return nb, fr, to


def rated_grid(rng, n, chords, spurs, cap_lo, negative, dispatch, classes):
    """A random grid (:func:`grid`) with reactances (a few negative: series capacitors, the
    matrix indefinite), phase shifts, loads, generators (dispatched or not), priority classes,
    a few branches out of the intact grid, and ratings near the intact flows so that single
    losses overload others and cascades run several steps; None for a singular draw."""
    n, fr, to = grid(rng, n, int(chords * n), spurs)
    m = len(fr)
    x = rng.uniform(0.01, 0.3, m)
    if negative:
        x[rng.random(m) < 0.03] *= -0.2
    phi = np.where(rng.random(m) < 0.1, rng.uniform(-0.1, 0.1, m), 0.0)
    demand = np.where(rng.random(n) < 0.7, rng.uniform(5, 50, n), 0.0)
    supply = np.zeros(n)
    gens = rng.choice(n, max(1, n // 8), replace=False)
    supply[gens] = demand.sum() * rng.uniform(0.7, 1.3) * rng.dirichlet(np.ones(len(gens)))
    disp = (np.where(supply > 0, supply * rng.uniform(0.3, 1.0, n), np.nan) if dispatch
            else np.full(n, np.nan))
    prio = rng.integers(0, classes, n).astype(np.int32)
    base_usable = rng.random(m) > 0.03
    try:
        intact = dc_cascade(np.ones(n, bool), fr, to, x, phi, np.full(m, np.inf), base_usable,
                            supply, demand, prio, disp).flows
    except np.linalg.LinAlgError:
        return None
    scale = max(1.0, np.nanmax(np.abs(intact), initial=0.0))
    cap = np.abs(np.nan_to_num(intact)) * rng.uniform(cap_lo, 1.6, m) + 1e-6 * scale
    cap[rng.random(m) < 0.1] = np.inf
    return n, fr, to, x, phi, cap, base_usable, supply, demand, prio, disp


def cascading_grid(seed=7, buses=80, chords=30, gens=12):
    """A grid with 3 spurs (80 buses, 12 generators by default) and ratings 0.9-1.4 times the
    intact flows: single losses run cascades of several steps that strand buses."""
    rng = np.random.default_rng(seed)
    n, fr, to = grid(rng, buses, chords, 3)
    m = len(fr)
    x = rng.uniform(0.01, 0.3, m)
    phi = np.zeros(m)
    demand = np.where(rng.random(n) < 0.7, rng.uniform(5, 50, n), 0.0)
    supply = np.zeros(n)
    supply[rng.choice(n, gens, replace=False)] = demand.sum() * rng.dirichlet(np.ones(gens))
    intact = dc_cascade(np.ones(n, bool), fr, to, x, phi, np.full(m, np.inf), np.ones(m, bool),
                        supply, demand).flows
    cap = np.abs(intact) * rng.uniform(0.9, 1.4, m) + 1e-3
    return n, fr, to, x, phi, cap, supply, demand


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 90), chords=st.floats(0.0, 0.6),
       spurs=st.integers(0, 4), kmax=st.sampled_from([0, 2, 32]), cap_lo=st.floats(0.5, 1.0),
       negative=st.booleans(), dispatch=st.booleans(), classes=st.integers(1, 3),
       partial=st.booleans(), incremental=st.booleans())
def test_compiled_step_loop_equals_the_numpy_path(seed, n, chords, spurs, kmax, cap_lo, negative,
                                                   dispatch, classes, partial, incremental):
    rng = np.random.default_rng(seed)
    case = rated_grid(rng, n, chords, spurs, cap_lo, negative, dispatch, classes)
    if case is None:
        return                                # a singular draw (capacitors): both paths raise
    n, fr, to, x, phi, cap, base_usable, supply, demand, prio, disp = case
    m = len(fr)
    fast = DCFlow(n, fr, to, x, phi, cap, base_usable=base_usable, kmax=kmax, partial=partial,
                  incremental=incremental)
    slow = DCFlow(n, fr, to, x, phi, cap, base_usable=base_usable, kmax=kmax, compiled=False)
    for _ in range(6):
        alive = rng.random(n) > 0.05
        usable = base_usable & (rng.random(m) > 0.05)
        if rng.random() < 0.3:
            usable[rng.integers(m)] = True    # a branch outside the intact grid's factor
        try:
            b = slow.cascade(alive, usable, supply, demand, prio, disp)
        except np.linalg.LinAlgError:
            continue
        a = fast.cascade(alive, usable, supply, demand, prio, disp)
        assert_same(a, b)


def test_the_random_cascades_trip_split_and_use_every_solver():
    """Grids like the property test's do what it claims: every single-branch loss of an 80-bus
    grid with spurs, cascades of at least 3 steps that strand buses, the intact factor with
    Woodbury updates and fresh factorizations both used, and the same answers as the numpy path."""
    n, fr, to, x, phi, cap, supply, demand = cascading_grid()
    m = len(fr)
    fast = DCFlow(n, fr, to, x, phi, cap)
    slow = DCFlow(n, fr, to, x, phi, cap, compiled=False)
    alive = np.ones(n, bool)
    steps, splits = 0, 0
    for b in range(m):
        usable = np.ones(m, bool)
        usable[b] = False
        r = fast.cascade(alive, usable, supply, demand)
        assert_same(r, slow.cascade(alive, usable, supply, demand))
        steps = max(steps, int(r.trip_step.max(initial=0)))
        splits += int((~r.working).any())
    assert steps >= 3 and splits > 0
    assert fast.stats["woodbury"] > 0 and fast.stats["factorizations"] > 1
    assert fast.stats["solves"] > 0
    # most refactorizations are partial, and recompute fewer rows than the factor has
    st = fast.stats
    assert st["partial"] > st["factorizations"] // 2
    assert 0 < st["partial_rows"] < st["partial"] * (n - 1)


def test_partial_refactorization_equals_fresh_factorizations():
    """Partial refactorization and islands split incrementally (the intact factor's rows recomputed on the elimination-tree
    ancestors of the changed columns, islands that split off as identity rows, then regained
    branches) gives the answers of fresh factorizations and of the numpy path, over a series of
    calls on one kernel in which whole regions die and come back."""
    rng = np.random.default_rng(11)
    n, fr, to = grid(rng, 150, 60, 4)
    m = len(fr)
    x = rng.uniform(0.01, 0.3, m)
    phi = np.where(rng.random(m) < 0.1, rng.uniform(-0.1, 0.1, m), 0.0)
    demand = np.where(rng.random(n) < 0.7, rng.uniform(5, 50, n), 0.0)
    supply = np.zeros(n)
    supply[rng.choice(n, 15, replace=False)] = demand.sum() * rng.dirichlet(np.ones(15))
    intact = dc_cascade(np.ones(n, bool), fr, to, x, phi, np.full(m, np.inf), np.ones(m, bool),
                        supply, demand).flows
    cap = np.abs(intact) * rng.uniform(0.8, 1.5, m) + 1e-3
    part = DCFlow(n, fr, to, x, phi, cap, kmax=2)
    fresh = DCFlow(n, fr, to, x, phi, cap, kmax=2, partial=False, incremental=False)
    slow = DCFlow(n, fr, to, x, phi, cap, compiled=False)
    for i in range(40):
        alive = rng.random(n) > (0.0 if i % 3 else 0.15)
        usable = rng.random(m) > rng.uniform(0.0, 0.1)
        a = part.cascade(alive, usable, supply, demand)
        assert_same(a, fresh.cascade(alive, usable, supply, demand))
        assert_same(a, slow.cascade(alive, usable, supply, demand))
    assert part.stats["partial"] > 0 and fresh.stats["partial"] == 0


def test_threads_sharing_one_kernel_get_the_serial_answers():
    """The compiled loop runs without the GIL on per-call workspaces: threads sharing one kernel
    (as flow_sweep's do) get exactly the answers of one thread."""
    from concurrent.futures import ThreadPoolExecutor

    n, fr, to, x, phi, cap, supply, demand = cascading_grid(seed=11, buses=120, chords=50, gens=15)
    m = len(fr)
    alive = np.ones(n, bool)

    def one(k, b):
        usable = np.ones(m, bool)
        usable[b] = False
        return k.cascade(alive, usable, supply, demand)

    serial = [one(DCFlow(n, fr, to, x, phi, cap), b) for b in range(m)]
    shared = DCFlow(n, fr, to, x, phi, cap)
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda b: one(shared, b), range(m)))
    assert sum(len(r.trip_branch) for r in serial) > 0
    for a, b in zip(threaded, serial):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_incremental_islands_equal_a_bfs_per_step():
    """Islands split at the trips' ends (seeds racing each other; an island whose smallest bus
    splits off gets a new reference) give the same cascades as a BFS of the whole grid per step
    and as the numpy path: every single-branch loss of a 120-bus grid with six pendant chains
    (losses in a chain strand its tail; cascades split the grid into several islands, some of
    which no later trip touches)."""
    rng = np.random.default_rng(3)
    n, fr, to = grid(rng, 120, 25, 6)
    m = len(fr)
    x = rng.uniform(0.01, 0.3, m)
    phi = np.zeros(m)
    demand = np.where(rng.random(n) < 0.7, rng.uniform(5, 50, n), 0.0)
    supply = np.zeros(n)
    supply[rng.choice(n, 14, replace=False)] = demand.sum() * rng.dirichlet(np.ones(14))
    intact = dc_cascade(np.ones(n, bool), fr, to, x, phi, np.full(m, np.inf), np.ones(m, bool),
                        supply, demand).flows
    cap = np.abs(intact) * rng.uniform(0.85, 1.4, m) + 1e-3
    inc = DCFlow(n, fr, to, x, phi, cap)
    bfs = DCFlow(n, fr, to, x, phi, cap, incremental=False)
    slow = DCFlow(n, fr, to, x, phi, cap, compiled=False)
    alive = np.ones(n, bool)
    islands = 0
    for b in range(m):
        usable = np.ones(m, bool)
        usable[b] = False
        r = inc.cascade(alive, usable, supply, demand)
        assert_same(r, bfs.cascade(alive, usable, supply, demand))
        assert_same(r, slow.cascade(alive, usable, supply, demand))
        if r.trip_step.max(initial=0) >= 2:
            islands = max(islands, int((~r.working).sum()))
    assert islands > 0                        # some multi-step cascades strand buses


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 80), chords=st.floats(0.0, 0.8),
       spurs=st.integers(0, 4), lost=st.integers(1, 40), dead=st.floats(0.0, 0.2))
def test_islands_split_at_the_trips_equal_a_bfs(seed, n, chords, spurs, lost, dead):
    """The step loop's island split (each trip's ends race each other; only an island that
    lost a part checks its remaining seeds against one representative) gives exactly the
    islands of a BFS after many simultaneous losses: the same partition, each island's
    reference its smallest bus, its size; with no search budget, and with a small one it
    either gives the same or gives up (then the loop runs the BFS)."""
    rng = np.random.default_rng(seed)
    n, fr, to = grid(rng, n, int(chords * n), spurs)
    m = len(fr)
    if rng.random() < 0.3:                    # parallel branches
        k = int(rng.integers(1, m + 1))
        fr, to = np.r_[fr, fr[:k]], np.r_[to, to[:k]]
        m = len(fr)
    k = DCFlow(n, fr, to, np.ones(m), capacity=np.full(m, np.inf))._kernel
    alive = (rng.random(n) > dead).astype(np.uint8)
    active = ((rng.random(m) > 0.1) & (alive[fr] > 0) & (alive[to] > 0)).astype(np.uint8)
    ids = np.flatnonzero(active)
    if len(ids) == 0:
        return
    trips = rng.choice(ids, min(lost, len(ids)), replace=False).astype(np.int64)
    after = active.copy()
    after[trips] = 0
    # the oracle: a plain BFS (scipy) over the branches left
    e = np.flatnonzero(after)
    g = sps.coo_matrix((np.ones(len(e)), (fr[e], to[e])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    for budget in (-1, int(rng.integers(0, 3 * n))):
        got = k._split_islands(alive, active, trips, budget)
        if got is None:
            assert budget >= 0
            continue
        lab, ref, size = got
        assert ((lab >= 0) == (alive > 0)).all()
        on = np.flatnonzero(alive)
        # the same partition of the alive buses
        pairs = set(zip(lab[on].tolist(), comp[on].tolist()))
        assert len(pairs) == len(set(lab[on].tolist())) == len(set(comp[on].tolist()))
        assert len(size) == len(set(lab[on].tolist()))            # no empty label
        for lbl in set(lab[on].tolist()):
            members = np.flatnonzero(lab == lbl)
            assert ref[lbl] == members.min()
            assert size[lbl] == len(members)


def _batch_row(r, c):
    """Loss c of a DCBatch as a DCResult-like record."""
    from cascade.flowkernels import DCResult
    s = slice(r.ptr[c], r.ptr[c + 1])
    return DCResult(r.served[c], r.working[c], r.flows[c], r.trip_branch[s], r.trip_step[s],
                    r.trip_flow[s])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(20, 90), chords=st.floats(0.0, 0.6),
       spurs=st.integers(0, 4), kmax=st.sampled_from([0, 2, 32]), cap_lo=st.floats(0.5, 1.0),
       negative=st.booleans(), dispatch=st.booleans(), classes=st.integers(1, 3),
       partial=st.booleans(), incremental=st.booleans())
def test_batched_losses_equal_one_cascade_per_loss(seed, n, chords, spurs, kmax, cap_lo,
                                                   negative, dispatch, classes, partial,
                                                   incremental):
    """DCFlow.cascades (every single-branch loss in one compiled call, the partial factor
    carried from one loss's cascade to the next) gives, loss by loss, the trips, steps,
    working buses, served fractions and flows of one DCFlow.cascade per loss and of the
    numpy path, on a state with dead buses and lost branches, losses repeated and already
    lost included."""
    rng = np.random.default_rng(seed)
    case = rated_grid(rng, n, chords, spurs, cap_lo, negative, dispatch, classes)
    if case is None:
        return                                # a singular draw (capacitors): both paths raise
    n, fr, to, x, phi, cap, base_usable, supply, demand, prio, disp = case
    m = len(fr)
    alive = rng.random(n) > 0.03
    usable = base_usable & (rng.random(m) > 0.03)
    losses = np.r_[rng.permutation(m)[: min(m, 40)], rng.integers(0, m, 3)]
    kw = dict(base_usable=base_usable, kmax=kmax)
    fast = DCFlow(n, fr, to, x, phi, cap, partial=partial, incremental=incremental, **kw)
    one = DCFlow(n, fr, to, x, phi, cap, partial=partial, incremental=incremental, **kw)
    slow = DCFlow(n, fr, to, x, phi, cap, compiled=False, **kw)
    try:
        ref = []
        for b in losses:
            u = usable.copy()
            u[b] = False
            ref.append(slow.cascade(alive, u, supply, demand, prio, disp))
    except np.linalg.LinAlgError:
        return
    r = fast.cascades(alive, usable, supply, demand, losses, prio, disp, keep=True)
    assert r.ptr[0] == 0 and r.ptr[-1] == len(r.trip_branch) == len(r.trip_step)
    for c, b in enumerate(losses):
        u = usable.copy()
        u[b] = False
        a = _batch_row(r, c)
        assert_same(a, one.cascade(alive, u, supply, demand, prio, disp))
        assert_same(a, ref[c])
    # without keep: the same trips, no per-loss arrays; the numpy path's batch agrees
    q = fast.cascades(alive, usable, supply, demand, losses, prio, disp)
    assert q.served is None and q.flows is None
    np.testing.assert_array_equal(q.ptr, r.ptr)
    np.testing.assert_array_equal(q.trip_branch, r.trip_branch)
    p = slow.cascades(alive, usable, supply, demand, losses, prio, disp, keep=True)
    np.testing.assert_array_equal(p.ptr, r.ptr)
    for c in range(len(losses)):
        assert_same(_batch_row(r, c), _batch_row(p, c))


def test_batched_losses_on_a_grid_that_cascades():
    """Every single-branch loss of the 80-bus grid of the test above in one batched call: the
    cascades run several steps and strand buses, and each equals its one-by-one run."""
    n, fr, to, x, phi, cap, supply, demand = cascading_grid()
    m = len(fr)
    k = DCFlow(n, fr, to, x, phi, cap)
    alive, usable = np.ones(n, bool), np.ones(m, bool)
    r = k.cascades(alive, usable, supply, demand, np.arange(m), keep=True)
    assert r.trip_step.max() >= 3 and (~r.working).any()
    for b in range(m):
        u = usable.copy()
        u[b] = False
        assert_same(_batch_row(r, b), k.cascade(alive, u, supply, demand))
    with pytest.raises(ValueError):
        k.cascades(alive, usable, supply, demand, [m])
    e = k.cascades(alive, usable, supply, demand, np.zeros(0, dtype=np.int64))
    assert list(e.ptr) == [0] and len(e.trip_branch) == 0
