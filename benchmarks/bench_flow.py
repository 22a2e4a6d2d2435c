"""Flow kernels (cascade/_flow.pyx) against the compiled tools of the field, in one run.

Kernel ``maxmin``: the max-min fair allocation of one ``flow`` layer
(:class:`cascade.flowkernels.MaxMinFlow`) on a random layer, against **one** maximum flow on
the same graph by :func:`scipy.sparse.csgraph.maximum_flow` (Dinic, compiled) from a super
source (arcs of capacity supply) to a super sink (arcs of capacity demand).  The layer
``flow<n>``: n nodes, an Erdős–Rényi graph of mean degree 4 whose edges are undirected pipes
of integer capacity 1..10 (scipy needs integers; both get the same numbers), 1 % of the nodes
sources, integer demands 1..3 elsewhere, total supply 0.6 of total demand (so the allocation
has many levels), one priority class.  Building the adjacency (``MaxMinFlow(...)``, the CSR
matrix) is set-up and is not timed.  Issue 11 asks the allocation to cost at most 10x the one
max flow: ``ratio scipy / core >= 0.1``.

Kernel ``dcn1``: N-1 over every branch of pandapower's ``case2869pegase`` (2 869 buses, 4 582
branches) with overload trips to the end (:class:`cascade.flowkernels.DCFlow`: one factorization
of the intact grid, Woodbury updates per contingency and per step), against a loop of
``pandapower.rundcpp`` calls doing the same cascade (take the branch out, run, trip every
overloaded branch, run again until none), measured on a seeded sample of contingencies and
scaled to all of them.  Arrays come from pandapower's own internal model after ``rundcpp``
(``net._ppc``: reactances with taps folded in, phase shifts, ratings ``RATE_A`` that pandapower
computes as max_i_ka * vn_kv * sqrt(3) for lines and sn_mva for transformers); bus loads and
bus shunts are demands, generators supply their ``max_p_mw`` with their solved output (the
slack's included) as dispatch, so the intact grid reproduces ``rundcpp``'s flows (checked
here).  177 branches of the case are loaded beyond their rating in the intact DC solution;
their ratings are raised to 1.05 x their intact flow so that the intact grid is secure (else
every contingency would repeat the same intact-case cascade).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_flow

from cascade.flowkernels import DCFlow, MaxMinFlow

QUICK = os.environ.get("CASCADE_BENCH_QUICK", "") not in ("", "0")
FLOW_SIZES = (10_000,) if QUICK else (10_000, 100_000)
SEED = 11
N1_SAMPLE = 10                    # contingencies of the rundcpp loop (scaled to all)
N1_CORE_QUICK = 300               # contingencies of the kernel's sweep under the quick run


# ------------------------------------------------------------------------------------------------
# maxmin: random flow layer
# ------------------------------------------------------------------------------------------------

_FLOW_CACHE: dict = {}


def flow_layer(n: int):
    if n in _FLOW_CACHE:
        return _FLOW_CACHE[n]
    rng = np.random.default_rng(SEED)
    m = 2 * n
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    m = len(src)
    cap = rng.integers(1, 11, m).astype(float)
    sources = rng.choice(n, n // 100, replace=False)
    demand = rng.integers(1, 4, n).astype(float)
    demand[sources] = 0
    supply = np.zeros(n)
    share = rng.dirichlet(np.ones(len(sources)))
    supply[sources] = np.floor(0.6 * demand.sum() * share)
    kernel = MaxMinFlow(n, src, dst, np.zeros(m, dtype=bool), cap)
    # the same network for scipy: pipes both ways, super source n, super sink n + 1
    S, T = n, n + 1
    rows = np.r_[src, dst, np.full(len(sources), S), np.arange(n)]
    cols = np.r_[dst, src, sources, np.full(n, T)]
    caps = np.r_[cap, cap, supply[sources], demand].astype(np.int32)
    graph = sp.csr_matrix((caps, (rows, cols)), shape=(n + 2, n + 2))
    graph.sum_duplicates()
    _FLOW_CACHE[n] = (kernel, graph, dict(alive=np.ones(n, bool), edge_usable=np.ones(m, bool),
                                          supply=supply, demand=demand,
                                          priority=np.zeros(n, np.int32)))
    return _FLOW_CACHE[n]


def _tag(benchmark, kernel, size, impl, scale=1.0):
    benchmark.group = f"{kernel}-{size}"
    benchmark.extra_info["kernel"] = kernel
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["scale"] = float(scale)


@pytest.mark.parametrize("n", FLOW_SIZES)
def test_maxmin_core(benchmark, n):
    kernel, graph, args = flow_layer(n)
    _tag(benchmark, "maxmin", f"flow{n}", "core")
    res = benchmark.pedantic(kernel.solve, kwargs=args, rounds=3, iterations=1)
    benchmark.extra_info["maxflows"] = kernel.n_maxflows
    benchmark.extra_info["served"] = float(res.served.sum())
    # the allocation's total is the maximum flow
    assert res.served.sum() == pytest.approx(maximum_flow(graph, n, n + 1).flow_value, rel=1e-9)


@pytest.mark.parametrize("n", FLOW_SIZES)
def test_maxmin_scipy(benchmark, n):
    kernel, graph, args = flow_layer(n)
    _tag(benchmark, "maxmin", f"flow{n}", "scipy")
    benchmark.pedantic(maximum_flow, args=(graph, n, n + 1), kwargs={"method": "dinic"},
                       rounds=3, iterations=1)


# ------------------------------------------------------------------------------------------------
# flown1: N-1 sweep over every element of a flow layer
# ------------------------------------------------------------------------------------------------

SWEEP_SIZES = (300,) if QUICK else (300, 1000)
_SWEEP_CACHE: dict = {}


def flow_layer_system(n: int):
    """The layer of :func:`flow_layer` (same seed, same numbers) as a system: nodes n0.., pipes p0.."""
    if n in _SWEEP_CACHE:
        return _SWEEP_CACHE[n]
    import pandas as pd

    from cascade import InfrastructureSystem, compile_system

    kernel, _, args = flow_layer(n)
    nodes = pd.DataFrame(dict(id=[f"n{i}" for i in range(n)], layer="water", supply=args["supply"],
                              demand=args["demand"]))
    edges = pd.DataFrame(dict(id=[f"p{e}" for e in range(kernel.m)], source=[f"n{i}" for i in kernel.src],
                              target=[f"n{i}" for i in kernel.dst], capacity=kernel.capacity))
    system = InfrastructureSystem.from_tables(nodes, edges, pd.DataFrame(columns=["dependent", "supplier"]),
                                              rules={"water": "flow"})
    _SWEEP_CACHE[n] = (system, compile_system(system))
    return _SWEEP_CACHE[n]


@pytest.mark.parametrize("impl", ["core", "plain"])
@pytest.mark.parametrize("n", SWEEP_SIZES)
def test_flown1(benchmark, n, impl):
    """``critical --elements all`` on the layer, one thread: ``core`` answers the elements that
    cannot change the base cascade from it (:meth:`cascade.flowcore.FlowEngine.inert`), ``plain``
    runs one cascade per element (the per-element path)."""
    from cascade.criticality import sweep

    system, c = flow_layer_system(n)
    _tag(benchmark, "flown1", f"flow{n}", impl)
    sweep(system, "all", compiled=c, threads=1)               # kernels built before timing
    table = benchmark.pedantic(sweep, args=(system, "all"),
                               kwargs=dict(compiled=c, threads=1, plain=impl == "plain"),
                               rounds=2, iterations=1)
    benchmark.extra_info["elements"] = len(table)


# ------------------------------------------------------------------------------------------------
# dcn1: N-1 with overload cascades on PEGASE grids
# ------------------------------------------------------------------------------------------------

_PEGASE: dict = {}


def pegase(case: str = "case2869pegase"):
    """(net, arrays) of a pandapower PEGASE case: arrays in pandapower's internal bus/branch order."""
    if case in _PEGASE:
        return _PEGASE[case]
    import pandapower as pp
    import pandapower.networks as pn
    from pandapower.pypower.idx_brch import (BR_STATUS, BR_X, F_BUS, PF, RATE_A, SHIFT, T_BUS,
                                             TAP)
    from pandapower.pypower.idx_bus import GS, PD
    from pandapower.pypower.idx_gen import GEN_BUS, GEN_STATUS, PG, PMAX

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = getattr(pn, case)()
        pp.rundcpp(net, numba=False)
    ppc = net._ppc
    bus, br, gen = ppc["bus"].real, ppc["branch"].real, ppc["gen"].real
    n, m = len(bus), len(br)
    tap = np.where(br[:, TAP] == 0, 1.0, br[:, TAP])
    load = bus[:, PD] + bus[:, GS]                     # bus shunts draw GS MW at 1 p.u.
    demand = np.maximum(load, 0.0)
    supply = np.maximum(-load, 0.0)                    # negative loads inject
    dispatch = supply.copy()
    on = gen[:, GEN_STATUS] > 0
    gb = gen[on, GEN_BUS].astype(np.int64)
    pg = gen[on, PG]
    np.add.at(supply, gb, np.maximum(np.maximum(gen[on, PMAX], pg), 0.0))
    np.add.at(dispatch, gb, np.maximum(pg, 0.0))
    np.add.at(demand, gb, np.maximum(-pg, 0.0))
    dispatch[supply <= 0] = np.nan
    a = dict(n=n, fr=br[:, F_BUS].astype(np.int64), to=br[:, T_BUS].astype(np.int64),
             x=br[:, BR_X] * tap, shift=np.deg2rad(br[:, SHIFT]),
             rating=np.where(br[:, RATE_A] > 0, br[:, RATE_A], np.inf),
             usable=br[:, BR_STATUS] > 0, supply=supply, dispatch=dispatch, demand=demand,
             base=float(ppc["baseMVA"]), pf=br[:, PF].copy())
    # Series capacitors (negative x, 16 in case9241pegase) are kept: the kernel factorizes the
    # indefinite matrix; a zero x (none in these cases) would have no admittance.
    a["n_negative_x"] = int((a["x"] < 0).sum())
    a["x"] = np.where(a["x"] == 0, 1e-6, a["x"])
    # the intact grid as rundcpp solved it, and ratings it respects
    k = DCFlow(n, a["fr"], a["to"], a["x"], a["shift"], np.full(m, np.inf), a["base"],
               base_usable=a["usable"])
    intact = k.cascade(np.ones(n, bool), a["usable"], supply, demand, dispatch=dispatch).flows
    scale = np.nanmax(np.abs(a["pf"]))
    assert np.nanmax(np.abs(intact - a["pf"])[a["usable"]]) <= 1e-6 * scale
    a["cap"] = np.maximum(a["rating"], 1.05 * np.abs(np.nan_to_num(intact)))
    a["n_raised"] = int((np.abs(np.nan_to_num(intact)) > a["rating"]).sum())
    _PEGASE[case] = (net, a)
    return net, a


def core_n1(k: DCFlow, a, branches) -> int:
    """The N-1 sweep with cascades: screen every loss by its first-round flows (LODF), then run
    the full cascades of the losses the screen could not clear, all in one batched call
    (``DCFlow.cascades``); returns the trips."""
    alive = np.ones(a["n"], dtype=bool)
    status, _, _ = k.screen(alive, a["usable"], a["supply"], a["demand"], branches,
                            dispatch=a["dispatch"])
    r = k.cascades(alive, a["usable"], a["supply"], a["demand"], np.asarray(branches)[status],
                   dispatch=a["dispatch"])
    return len(r.trip_branch)


def full_n1(k: DCFlow, a, branches) -> int:
    """Single-branch contingencies cascaded to the end, one full cascade each (the old path)."""
    alive = np.ones(a["n"], dtype=bool)
    trips = 0
    for b in branches:
        usable = a["usable"].copy()
        usable[b] = False
        r = k.cascade(alive, usable, a["supply"], a["demand"], dispatch=a["dispatch"])
        trips += len(r.trip_branch)
    return trips


def contingencies(a) -> np.ndarray:
    """Every in-service branch, in a seeded random order (samples are its prefixes)."""
    return np.random.default_rng(SEED).permutation(np.flatnonzero(a["usable"]))


def rundcpp_n1(net, a, branches) -> int:
    """The same cascades by a loop of pandapower rundcpp calls."""
    import pandapower as pp
    from pandapower.pypower.idx_brch import PF

    nl = len(net.line)
    lines, trafos = net.line.index.to_numpy(), net.trafo.index.to_numpy()
    trips = 0
    for b in branches:
        in_line = net.line.in_service.copy()
        in_trafo = net.trafo.in_service.copy()
        out = [int(b)]
        while out:
            for e in out:
                if e < nl:
                    net.line.at[lines[e], "in_service"] = False
                else:
                    net.trafo.at[trafos[e - nl], "in_service"] = False
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pp.rundcpp(net, numba=False)
            pf = np.nan_to_num(net._ppc["branch"][:, PF].real)
            on = np.r_[net.line.in_service.to_numpy(), net.trafo.in_service.to_numpy()]
            out = np.flatnonzero(on & (np.abs(pf) > a["cap"] * (1 + 1e-9))).tolist()
            trips += len(out)
        net.line["in_service"] = in_line
        net.trafo["in_service"] = in_trafo
    return trips


def _dc_kernel(a, compiled: bool = True) -> DCFlow:
    return DCFlow(a["n"], a["fr"], a["to"], a["x"], a["shift"], a["cap"], a["base"],
                  base_usable=a["usable"], compiled=compiled)


def test_dcn1_core(benchmark):
    """The N-1 sweep with cascades: every branch, screened, then full cascades for the losses
    that overload or split (full run only)."""
    net, a = pegase()
    todo = contingencies(a)
    total = len(todo)
    _tag(benchmark, "dcn1", "pegase2869", "core", scale=total / len(todo))
    k = _dc_kernel(a)
    trips = benchmark.pedantic(core_n1, args=(k, a, todo), rounds=1, iterations=1)
    status, _, _ = k.screen(np.ones(a["n"], bool), a["usable"], a["supply"], a["demand"], todo,
                            dispatch=a["dispatch"])
    benchmark.extra_info["contingencies"] = int(len(todo))
    benchmark.extra_info["cascaded"] = int(status.sum())
    benchmark.extra_info["trips"] = int(trips)
    benchmark.extra_info["ratings_raised"] = a["n_raised"]
    benchmark.extra_info.update({f"n_{key}": v for key, v in k.stats.items()})


def test_dcn1_rundcpp(benchmark):
    """The rundcpp loop on the first N1_SAMPLE contingencies of the same order, scaled."""
    net, a = pegase()
    todo = contingencies(a)
    sample = todo[:N1_SAMPLE]
    _tag(benchmark, "dcn1", "pegase2869", "rundcpp", scale=len(todo) / N1_SAMPLE)
    trips = benchmark.pedantic(rundcpp_n1, args=(net, a, sample), rounds=1, iterations=1)
    benchmark.extra_info["contingencies"] = int(N1_SAMPLE)
    benchmark.extra_info["trips"] = int(trips)
    # the same cascades: rundcpp's loop and the kernel trip the same number of branches
    # (they differ only where an island splits off, which rundcpp serves with its slack rule)
    benchmark.extra_info["core_trips"] = int(core_n1(_dc_kernel(a), a, sample))


def test_dcn1_full(benchmark):
    """The previous path: one full cascade per contingency, no screening (full run only: the
    first N1_CORE_QUICK contingencies of the same order, scaled)."""
    net, a = pegase()
    todo = contingencies(a)
    sample = todo[:N1_CORE_QUICK]
    _tag(benchmark, "dcn1", "pegase2869", "full", scale=len(todo) / len(sample))
    benchmark.pedantic(full_n1, args=(_dc_kernel(a), a, sample), rounds=1, iterations=1)


def test_dcn1sample_core(benchmark):
    """The kernel on exactly the rundcpp loop's sample: the like-for-like ratio."""
    net, a = pegase()
    sample = contingencies(a)[:N1_SAMPLE]
    k = _dc_kernel(a)
    _tag(benchmark, "dcn1sample", "pegase2869", "core")
    benchmark.pedantic(core_n1, args=(k, a, sample), rounds=3, iterations=1)


def test_dcn1sample_numpy(benchmark):
    """The same sweep with the numpy step loop the compiled one replaced (DCFlow(compiled=False),
    same results): the ratio numpy / core is what compiling the cascade's step loop gained."""
    net, a = pegase()
    sample = contingencies(a)[:N1_SAMPLE]
    k = _dc_kernel(a, compiled=False)
    _tag(benchmark, "dcn1sample", "pegase2869", "numpy")
    benchmark.pedantic(core_n1, args=(k, a, sample), rounds=3, iterations=1)


def test_dcn1sample_rundcpp(benchmark):
    net, a = pegase()
    sample = contingencies(a)[:N1_SAMPLE]
    _tag(benchmark, "dcn1sample", "pegase2869", "rundcpp")
    benchmark.pedantic(rundcpp_n1, args=(net, a, sample), rounds=1, iterations=1)


# dcn1first: the first-round flows of every single-branch loss (no cascade), the kernel's LODF
# screening with the flows kept (a contingencies x branches matrix) against lightsim2grid's
# contingency analysis with its DC solver (KLU), one thread, on the same pandapower case.

def lightsim_n1(case: str):
    """A ready lightsim2grid DC contingency analysis of every branch, and its compute call."""
    from lightsim2grid.algorithm import AlgorithmType
    from lightsim2grid.lightsim2grid_cpp import ContingencyAnalysisCPP
    from lightsim2grid.network import init_from_pandapower

    net, _ = pegase(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = init_from_pandapower(net)
    nb = len(grid.get_lines()) + len(grid.get_trafos())
    sa = ContingencyAnalysisCPP(grid)
    algos = sa.available_default_algorithms()
    sa.change_algorithm(AlgorithmType.DC_KLU if AlgorithmType.DC_KLU in algos else AlgorithmType.DC_SparseLU)
    sa.nb_thread = 1
    sa.add_multiple_n1(list(range(nb)))
    v0 = np.ones(grid.total_bus(), dtype=complex)

    def run():
        sa.compute(v0, 10, 1e-8)
        sa.compute_power_flows()
        return np.asarray(sa.get_power_flows())
    return sa, run


def core_first(k: DCFlow, a, branches):
    _, _, flows = k.screen(np.ones(a["n"], bool), a["usable"], a["supply"], a["demand"],
                           branches, dispatch=a["dispatch"], flows=True)
    return flows


FIRST_CASES = ("case1354pegase",) if QUICK else ("case1354pegase", "case2869pegase")


@pytest.mark.parametrize("case", FIRST_CASES)
def test_dcn1first_core(benchmark, case):
    net, a = pegase(case)
    branches = np.flatnonzero(a["usable"])
    k = _dc_kernel(a)
    _tag(benchmark, "dcn1first", case.replace("case", ""), "core")
    flows = benchmark.pedantic(core_first, args=(k, a, branches), rounds=3, iterations=1)
    benchmark.extra_info["contingencies"] = int(len(branches))
    benchmark.extra_info["rows_computed"] = int((~np.isnan(flows)).any(axis=1).sum())


@pytest.mark.parametrize("case", FIRST_CASES)
def test_dcn1first_lightsim2grid(benchmark, case):
    pytest.importorskip("lightsim2grid")
    net, a = pegase(case)
    sa, run = lightsim_n1(case)
    _tag(benchmark, "dcn1first", case.replace("case", ""), "lightsim2grid")
    flows = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["contingencies"] = int(flows.shape[0])
    # the same numbers: lightsim2grid's flows (MW at the from end, rows in its contingency
    # order, branches lines then transformers as in pandapower's ppc) on the rows it solved
    rows = np.asarray([int(d[0]) for d in sa.my_defaults()])
    ok = np.asarray(sa.converged_mask(), dtype=bool)
    ours = core_first(_dc_kernel(a), a, np.flatnonzero(a["usable"]))
    pos = {int(b): i for i, b in enumerate(np.flatnonzero(a["usable"]))}
    both = [(r, pos[b]) for r, b in enumerate(rows) if ok[r] and b in pos
            and not np.isnan(ours[pos[b]]).all()]
    li = np.array([r for r, _ in both])
    co = np.array([c for _, c in both])
    L = flows[li].real
    C = ours[co]
    mask = ~np.isnan(C)
    scale = np.nanmax(np.abs(a["pf"]))
    benchmark.extra_info["rows_compared"] = int(len(both))
    benchmark.extra_info["max_abs_diff_over_max_flow"] = float(np.abs(L[mask] - C[mask]).max() / scale)


# dcn1scale: how the N-1 with cascades grows with the grid, 1 354 -> 2 869 -> 9 241 buses.  The
# screening of every branch runs in full; the cascades of the losses it flags run on a seeded
# sample of N1_SCALE contingencies and are scaled to all branches.  The benchmark's time is the
# whole call; extra_info holds screen_s, cascades_s (the sample) and estimate_s = screen_s +
# cascades_s x branches / sample, the estimated time of the full N-1 with cascades.

N1_SCALE = 300
SCALE_CASES = ("case1354pegase", "case2869pegase", "case9241pegase")


@pytest.mark.parametrize("case", SCALE_CASES)
def test_dcn1scale_core(benchmark, case):
    import time

    net, a = pegase(case)
    todo = contingencies(a)
    sample = todo[:N1_SCALE]
    k = _dc_kernel(a)
    alive = np.ones(a["n"], bool)
    info = {}

    def run():
        t0 = time.perf_counter()
        status, _, _ = k.screen(alive, a["usable"], a["supply"], a["demand"], todo,
                                dispatch=a["dispatch"])
        t1 = time.perf_counter()
        trips = full_n1(k, a, sample[status[:len(sample)]])
        t2 = time.perf_counter()
        info.update(screen_s=t1 - t0, cascades_s=t2 - t1,
                    estimate_s=(t1 - t0) + (t2 - t1) * len(todo) / len(sample),
                    cascaded_in_sample=int(status[:len(sample)].sum()),
                    cascaded_all=int(status.sum()), trips_in_sample=int(trips))

    benchmark.group = f"dcn1scale-{case}"
    benchmark.extra_info.update(kernel="dcn1scale", impl="core", scale=1.0)
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(buses=int(a["n"]), branches=int(len(todo)), sample=int(len(sample)),
                                negative_x=a["n_negative_x"], **info)


if QUICK:
    # the quick run (bench-check) checks dcn1sample and dcn1first; these take minutes.  Not
    # collected rather than skipped: check.py counts a skip as a failure.
    del test_dcn1_core, test_dcn1_rundcpp, test_dcn1_full, test_dcn1scale_core


# ------------------------------------------------------------------------------------------------
# static: one static cascade of a coupled flow system, the core engine against the reference
# ------------------------------------------------------------------------------------------------
# ``flowtown<n>``: a seeded coupled system of n ``dcflow`` buses (a ring with chords, 10 % of
# the buses generators with 1.2x the total demand, no dispatch, ratings 1.3x the intact flow of
# each branch so that a failure trips others) and n ``flow`` nodes (a random tree with chords,
# pipes of capacity 2..20, 5 % of the nodes sources with 0.9x the demand: a shortage, so the
# max-min fair allocation has several levels), every water source needing its nearest-numbered
# bus at served fraction >= 0.9.  The cascade starts from the failure of the 3 most loaded
# branches.  The core is timed with warm kernels (the cached ``flow_engine`` of the compiled
# system: what an N-1 sweep or an ensemble pays per cascade); the reference recomputes
# everything, as always.

STATIC_SIZES = (60,) if QUICK else (60, 200)
_STATIC: dict = {}


def static_system(n: int):
    if n in _STATIC:
        return _STATIC[n]
    import pandas as pd

    from cascade import InfrastructureSystem, compile_system, simulate

    rng = np.random.default_rng(SEED)
    buses = [f"b{i}" for i in range(n)]
    demand = rng.integers(5, 30, n).astype(float)
    gens = rng.choice(n, max(2, n // 10), replace=False)
    demand[gens] = 0
    supply = np.zeros(n)
    supply[gens] = 1.2 * demand.sum() / len(gens)
    pairs = [(i, (i + 1) % n) for i in range(n)] + [tuple(rng.choice(n, 2, replace=False)) for _ in range(n // 3)]
    nodes = [dict(id=b, layer="power", demand=demand[i], supply=supply[i]) for i, b in enumerate(buses)]
    edges = [dict(id=f"l{k}", source=buses[u], target=buses[v], reactance=float(rng.uniform(0.05, 0.3)))
             for k, (u, v) in enumerate(pairs)]
    taps = [f"w{i}" for i in range(n)]
    wdemand = rng.integers(1, 10, n).astype(float)
    wsources = rng.choice(n, max(2, n // 20), replace=False)
    wdemand[wsources] = 0
    wsupply = np.zeros(n)
    wsupply[wsources] = 0.9 * wdemand.sum() / len(wsources)
    nodes += [dict(id=w, layer="water", demand=wdemand[i], supply=wsupply[i]) for i, w in enumerate(taps)]
    wpairs = [(int(rng.integers(0, i)), i) for i in range(1, n)] + \
        [tuple(rng.choice(n, 2, replace=False)) for _ in range(n // 4)]
    edges += [dict(id=f"p{k}", source=taps[u], target=taps[v], capacity=float(rng.integers(2, 21)))
              for k, (u, v) in enumerate(wpairs)]
    deps = [dict(dependent=taps[s], supplier=buses[s], threshold=0.9) for s in wsources]
    build = lambda e: InfrastructureSystem.from_tables(   # noqa: E731
        pd.DataFrame(nodes), pd.DataFrame(e), pd.DataFrame(deps), rules={"power": "dcflow", "water": "flow"},
        name=f"flowtown{n}")
    intact = simulate(build(edges), [])
    for k, e in enumerate(edges):
        if "reactance" in e:
            e["capacity"] = 1.3 * abs(intact.flows[k]) + 1.0
    system = build(edges)
    compiled = compile_system(system)
    power = np.flatnonzero(~np.isnan(intact.flows))
    fail = [str(compiled.edge_ids[k]) for k in power[np.argsort(-np.abs(intact.flows[power]))[:3]]]
    _STATIC[n] = (system, compiled, fail)
    return _STATIC[n]


@pytest.mark.parametrize("n", STATIC_SIZES)
def test_static_core(benchmark, n):
    from cascade.simulation import simulate

    system, compiled, fail = static_system(n)
    simulate(system, fail, compiled=compiled)           # warm the cached kernels
    _tag(benchmark, "static", f"flowtown{n}", "core")
    result = benchmark.pedantic(simulate, args=(system, fail), kwargs={"compiled": compiled},
                                rounds=5, iterations=1)
    benchmark.extra_info["trips"] = len(result.trips)
    benchmark.extra_info["rounds"] = result.rounds
    reference = simulate(system, fail, engine="reference", compiled=compiled)
    assert (result.working == reference.working).all()
    assert np.allclose(result.served, reference.served, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", STATIC_SIZES)
def test_static_reference(benchmark, n):
    from cascade.simulation import simulate

    system, compiled, fail = static_system(n)
    _tag(benchmark, "static", f"flowtown{n}", "reference")
    benchmark.pedantic(simulate, args=(system, fail), kwargs={"engine": "reference", "compiled": compiled},
                       rounds=1, iterations=1)
