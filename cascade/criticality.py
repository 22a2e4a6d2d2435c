"""N-1 and greedy N-k criticality of every node and edge across coupled lifelines.

For each element, the full coupled cascade of docs/format.md from its failure alone is compared
with the intact system: a node *lost* worked before and does not after (a node that never
worked is never lost; the failed element itself counts when it worked).  This is the
contingency screening of pandapower's N-1 and WNTR's pipe criticality, but across every
lifeline at once: single-layer rankings are known to misjudge coupled systems (Osat, Faqeeh,
Radicchi, Nat. Commun. 8, 1540, 2017; Buldyrev et al., Nature 464, 1025, 2010).

How the sweep is fast (all in :func:`cascade._core.sweep`, one call per chunk of elements,
buffers allocated once per thread, threads across chunks with the GIL released):

* **Incremental cascades.**  Where the final state does not depend on the update order
  (layers with rules ``source`` and ``none`` only), the cascade of ``S + x`` equals the
  cascade of ``x`` applied on top of the fixpoint of ``S`` (the fixpoint is the greatest one
  below the failures, and the update is monotone), so each element starts from the intact
  fixpoint and is undone afterwards.  ``giant`` layers are order dependent (docs/format.md).
  When every node works in the intact system the shortcut is still exact (the intact
  fixpoint *is* the starting state of a fresh run, round for round).  Otherwise each answer
  is **certified**: if, in the incremental answer ``I``, every ``giant`` layer keeps more
  than half of its nodes, then ``I`` is the fresh cascade's answer ``F``.  (Proof sketch:
  along the fresh run ``S_r`` and the intact run ``T_r``, by induction ``I ⊆ S_r ⊆ T_r``:
  in a ``giant`` step the component holding ``I``'s part of the layer, which is connected
  and holds more than half of the layer, is strictly the largest, and it lies inside
  ``T_r``'s chosen component, which is then the only one that large.  So ``I ⊆ F``.  The
  same argument along the incremental run from ``T* - x``, which contains ``F``, gives
  ``F ⊆ I``.)  Elements without the certificate (those that split a ``giant`` layer in
  half) are recomputed with a full cascade.
* **Skipping.**  In the incremental case, elements that do not work before lose nothing,
  edges that are not usable or lie in a ``none`` layer lose nothing, and a node that supplies
  nobody and that no supply path runs through (no usable edge leaves it; in a connected
  ``giant`` layer: at most one neighbour) loses only itself.
* **Local re-checks of `source` layers.**  A BFS forest from the working sources of each
  `source` layer (the *supply forest*) is built once from the start fixpoint; when nodes or
  tree edges of a layer fail, only their subtrees can lose supply, so the rule is re-checked
  on that region alone (a cheap stand-in for the dominator tree of docs/model.md: the BFS
  subtree contains the dominated subtree, and the re-check makes the answer exact even when
  several nodes of the layer fail).  A ``giant`` layer (connected at the start, since every
  node works) gets a BFS spanning tree the same way: nodes outside the cut subtrees stay with
  the tree's root, the first node, which wins ties; only when another piece is strictly
  larger, or the root failed, is the whole layer searched.
* **Memory order.**  On large systems (``RENUMBER``) the kernel runs on a copy of its arrays
  with the nodes renumbered by the supply forest's preorder, so that each subtree an element
  re-checks is a run of consecutive indices, and visits the elements in that order
  (:class:`_Renumbered`); every list keeps its order, so the answers are identical.
* ``plain=True`` turns all of this off (a full cascade per element); the tests hold the fast
  sweep equal to it and to the networkx reference engine.

Elements are ranked by a unit-free **score** (:mod:`cascade.units`): the weighted sum over
layers of the lost fraction of each layer's demand; layers' demands are never added raw.

The greedy worst set (N-k) adds, at each step, the element whose failure together with the
ones already chosen has the highest score (then most nodes, then the smallest id).
"""
from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd

from . import _core
from .compiled import RULE_CODES, CompiledSystem, Workspace, compile_system
from .errors import InputError
from .progress import ProgressArg, tracker
from .resources import release_memory
from .system import InfrastructureSystem
from .units import layer_totals, score as loss_score

ELEMENTS = ("nodes", "edges", "all")
ENGINES = ("core", "reference")
BASE_COLUMNS = ["id", "element", "layer", "score", "nodes_lost", "cross_layer_lost"]


# Visit node elements in the supply forest's preorder (mode "local") instead of the caller's
# order, without renumbering.  Off by default: alone it saved 0-20 % of the kernel's time on the
# 10^6-node lifelines and its effect was mixed at 10^4-10^5 (README, issue 15); RENUMBER below
# does it together with the renumbered layout.  Answers do not depend on it.
FOREST_ORDER = False

# Sweep (mode "local", threads) on a copy of the kernel arrays with the nodes renumbered by the
# supply forest's depth-first preorder, elements in that order (:class:`_Renumbered`): each
# subtree an element re-checks is then a run of consecutive indices, its arcs and groups too.
# Only for systems of at least RENUMBER_MIN_NODES nodes and sweeps over at least
# RENUMBER_MIN_SHARE of them (the copy costs about one pass over the arrays): at 10^5 nodes
# the kernel saved 5-18 % but the set-up grew by more, at 10^6 the kernel saved 40-66 %, several
# times the set-up's growth (README, issue 15).  Answers are identical (the kernel sees every
# list in the same order, see _Renumbered).
RENUMBER = True
RENUMBER_MIN_NODES = 300_000
RENUMBER_MIN_SHARE = 0.25

# On a local cluster (``--workers``: a SweepCluster with ``local``), the workers read the plan
# this process built (renumbered layout included) from shared memory and write their rows there
# (_run_shared), instead of building the start state themselves and returning rows through Dask
# (the _PlanRecipe path, which a remote ``--scheduler`` keeps).  Answers are the same.  POSIX
# only (the workers claim chunks under ``fcntl.flock``).
SHARED_LOCAL = os.name == "posix"

# The comparison's betweenness (compare_rankings): exact (igraph) up to this many nodes; above,
# estimated from BETWEENNESS_SOURCES sources drawn with BETWEENNESS_SEED (cascade.betweenness:
# Brandes-Pich, the dependencies of about k sources drawn in each layer in proportion to its
# size, each weighted by its layer's nodes per source).  Exact betweenness costs a
# search from every node (O(n m)); the estimate k searches: on synthetic_lifelines(10**6) 32
# sources cost a fraction of the sweep, and on mid-size systems the estimate's rank correlation
# with the exact values is high (tests/test_compare_scale.py).
BETWEENNESS_EXACT_MAX_NODES = 20_000
BETWEENNESS_SOURCES = 32
BETWEENNESS_SEED = 0


def _default_threads() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def element_indices(compiled: CompiledSystem, elements: str = "nodes",
                    layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The elements of a sweep as two aligned arrays (node index or -1, edge index or -1).

    Parameters
    ----------
    compiled : CompiledSystem
    elements : {"nodes", "edges", "all"}
    layer : str, optional
        Keep only the elements of this layer (an edge's layer is its ends' layer).

    Returns
    -------
    el_node, el_edge : ndarray of index dtype, shape (k,)
        Nodes first (file order), then edges (file order).
    """
    if elements not in ELEMENTS:
        raise InputError(f"unknown elements '{elements}' (use nodes, edges or all)")
    c = compiled
    nodes = np.arange(c.n_nodes) if elements in ("nodes", "all") else np.zeros(0, np.int64)
    edges = np.arange(c.n_edges) if elements in ("edges", "all") else np.zeros(0, np.int64)
    if layer is not None:
        if layer not in c.layer_names:
            raise InputError(f"unknown layer '{layer}' (layers: {', '.join(c.layer_names)})")
        li = c.layer_names.index(layer)
        nodes = nodes[c.node_layer[nodes] == li]
        edges = edges[c.node_layer[c.edge_src[edges]] == li]
    el_node = np.concatenate([nodes, np.full(len(edges), -1)]).astype(c.index_dtype)
    el_edge = np.concatenate([np.full(len(nodes), -1), edges]).astype(c.index_dtype)
    return el_node, el_edge


def _has_giant(c: CompiledSystem) -> bool:
    sizes = np.diff(c.layer_ptr)
    return bool(np.any((c.layer_rule == RULE_CODES["giant"]) & (sizes > 0)))


def incremental_is_exact(compiled: CompiledSystem, pre_failed: bool = False,
                         intact_working: np.ndarray | None = None) -> bool:
    """Whether failing each element on top of the start fixpoint is proven to give the
    fresh cascade for every element (no per-element certificate needed).

    True without ``giant`` layers; with them only when nothing failed before (no
    pre-failures) and every node works in the intact system.
    """
    if not _has_giant(compiled):
        return True
    if pre_failed:
        return False
    if intact_working is None:
        ws = Workspace(compiled)
        ws.run()
        intact_working = ws.working
    return bool(np.all(intact_working))


def core_sweep(compiled: CompiledSystem, el_node: np.ndarray, el_edge: np.ndarray,
               pre_nodes=(), pre_edges=(), threads: int | None = None, plain: bool = False,
               chunk: int | None = None, method: str | None = None, skip: bool | None = None,
               progress: ProgressArg = None, cluster=None,
               stats: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Losses of every element failing on top of ``pre_nodes`` / ``pre_edges`` (Cython core).

    Parameters
    ----------
    compiled : CompiledSystem
    el_node, el_edge : ndarray, shape (k,)
        As returned by :func:`element_indices`.
    pre_nodes, pre_edges : array-like of int
        Failures present in every run (the already chosen elements of the greedy N-k).
    threads : int, optional
        Worker threads (default: the machine's cores).  Results do not depend on it.
    plain : bool
        Full cascade from scratch for every element, no shortcut (the baseline of the tests).
    chunk : int, optional
        Elements per kernel call (default: about 16 chunks per thread).
    method : {"full", "incremental", "local"}, optional
        Force a kernel mode (for tests and benchmarks): "full" is ``plain``; "incremental"
        re-checks whole layers; "local" re-checks layers only where the supply forest is cut.
        Default: "local" ("full" with ``plain``).  Where incremental cascades are not proven
        exact, the incremental modes certify each answer and recompute the others in full.
    skip : bool, optional
        Answer elements that cannot change anything without a cascade (default: not ``plain``).
    progress : None, bool or callable
        Progress per chunk of elements (see :mod:`cascade.progress`).
    cluster : cascade.cluster.SweepCluster, optional
        Run the chunks on this Dask cluster instead of threads; the answer is the same as on
        threads.  A local cluster (``--workers``): this process builds the plan as for threads
        (the renumbered layout included) and the workers read it from shared memory, claim
        chunks from a shared counter and write their rows in place (:func:`_run_shared`).  A
        remote one (``--scheduler``): the system goes once to each worker's store (see
        :mod:`cascade.cluster`) and each worker builds the sweep's start state from it.
    stats : dict, optional
        Filled with timings for benchmarks: ``kernel_s`` (seconds inside the kernel calls,
        summed over threads; not measured on a cluster), ``kernel_calls``, ``setup_s`` (the
        rest of the call's wall time: fixpoints, supply forest, buffers, certificate) and
        ``redone`` (elements recomputed in full after a failed certificate); ``setup_s`` only
        on one thread (else None).  Also ``order_s`` (part of ``setup_s``: the forest order of
        the elements and the renumbered copy), ``renumbered`` (whether the kernel ran on that
        copy), ``kernel_call_s`` (each kernel call's seconds, in the order they ended) and
        ``kernel_cpu_s`` (``kernel_s`` in CPU time of the threads that ran the calls: a loaded
        machine adds to wall time, much less to this).

    Returns
    -------
    nodes_lost : ndarray of int64, shape (k,)
    demand_lost : ndarray of float64, shape (k,)
    layer_lost : ndarray of int64, shape (k, L)
    layer_demand_lost : ndarray of float64, shape (k, L)
        Demand lost per layer, each in its layer's unit (``demand_lost`` is their raw sum,
        meaningful only where the layers share a unit).
        All relative to the intact system (pre-failures included).
    """
    c = compiled
    idx = c.index_dtype
    el_node = np.ascontiguousarray(el_node, dtype=idx)
    el_edge = np.ascontiguousarray(el_edge, dtype=idx)
    pre_nodes = np.ascontiguousarray(pre_nodes, dtype=idx)
    pre_edges = np.ascontiguousarray(pre_edges, dtype=idx)
    n_el, L = len(el_node), len(c.layer_names)
    threads = max(1, int(threads or _default_threads()))
    # Validate at the boundary: the kernel runs without bounds checks (docs/development.md, rule 4).
    if len(el_edge) != n_el or np.any((el_node >= 0) == (el_edge >= 0)) \
            or np.any(el_node >= c.n_nodes) or np.any(el_edge >= c.n_edges):
        raise ValueError("each element needs exactly one valid node or edge index")
    if np.any((pre_nodes < 0) | (pre_nodes >= c.n_nodes)) or np.any((pre_edges < 0) | (pre_edges >= c.n_edges)):
        raise ValueError("pre-failure index out of range")

    t_setup = time.perf_counter()
    el_node_c, el_edge_c = el_node, el_edge    # the caller's order (rows are written in it)
    times = {"order_s": 0.0}   # for stats: the order of elements and the renumbering
    pre_failed = len(pre_nodes) + len(pre_edges) > 0
    if method is None:
        method = "full" if plain else "local"
    if method not in ("full", "incremental", "local"):
        raise ValueError(f"unknown method {method!r}")
    mode = {"full": 0, "incremental": 1, "local": 2}[method]
    skip = (not plain) if skip is None else bool(skip)

    out_nodes = np.zeros(n_el, np.int64)
    out_demand = np.zeros(n_el, np.float64)
    out_layer = np.zeros((n_el, L), np.int64)
    out_layer_demand = np.zeros((n_el, L), np.float64)
    if n_el == 0:
        return out_nodes, out_demand, out_layer, out_layer_demand
    n = c.n_nodes

    def local_state():
        count_mask, start = _start_state(c, pre_nodes, pre_edges)
        start_working = start.working.astype(bool)
        return (count_mask, start, start_working, *_layer_roots(c, start_working))

    # A local cluster: this process builds the plan (as for threads, the renumbered layout
    # included) and its workers read it from shared memory (_run_shared).
    shared = cluster is not None and SHARED_LOCAL and getattr(cluster, "local", False)
    rows_file = None
    if shared:   # the workers write the rows of the first pass straight into these arrays
        from .shared import SharedArrays

        rows_file = SharedArrays(dict(zip(_SharedSweep.OUT, (out_nodes, out_demand, out_layer,
                                                             out_layer_demand))),
                                 copy=False, writable=True)
        out_nodes, out_demand, out_layer, out_layer_demand = (rows_file.arrays[name]
                                                              for name in _SharedSweep.OUT)
    deferred = None
    if cluster is not None and not shared and not (mode == 2 and n_el > 1 and FOREST_ORDER):
        # On Dask the workers build their own start state; this process needs its own only
        # after the sweep (certificates, pre-failures), so it builds it meanwhile (the
        # cascade kernel releases the GIL).
        deferred = ThreadPoolExecutor(1)
        later = deferred.submit(local_state)
    else:
        count_mask, start, start_working, layer_root, layer_count = local_state()
    order = None
    kc = c
    forest = None   # (child_ptr, child_idx, par_edge) of the supply forest where the kernel needs it
    if mode == 2 and deferred is None:
        # The supply forest of the start state, shared read-only by the threads.
        parent, par_edge, child_ptr, child_idx, scratch = _supply_forest(c, start)
        forest = child_ptr, child_idx, par_edge
        # Node elements are swept in the forest's depth-first preorder (edges after them, in
        # their order): an element's subtree was just walked by its parent's element, so it is
        # still in the CPU cache.  Elements are independent (the kernel restores the start
        # state after each), so the answers do not depend on the order; the kernel writes each
        # element's row at its place in the caller's order (``el_row``).
        renumber = (RENUMBER and (cluster is None or shared) and n >= RENUMBER_MIN_NODES
                    and n_el >= RENUMBER_MIN_SHARE * n)
        if n_el > 1 and (FOREST_ORDER or renumber):
            t_order = time.perf_counter()
            rank = np.zeros(n, idx)
            _core.forest_rank(parent, child_ptr, child_idx, scratch, rank)
            # Node elements by rank, then edges by the rank of their first end (stable).
            wide = 2 * n >= 2**31 - 1 and idx != np.int64
            kdt = np.int64 if wide else idx
            key = np.zeros(n_el, kdt)
            _core.element_keys(*(a.astype(kdt) if wide else a
                                 for a in (el_node, el_edge, rank, c.edge_src)), key)
            order = np.zeros(n_el, kdt)
            _core.edge_arcs(key, 2 * n, order)  # a stable counting sort of the keys 0..2n-1
            el_node, el_edge = el_node[order], el_edge[order]
            if renumber:
                kc = _Renumbered(c, rank)
            times["order_s"] = time.perf_counter() - t_order
            del rank, key
        del parent, scratch

    def compiled_plan() -> "_SweepPlan":
        """The plan on the compiled system (the full cascade's, which sums in node order)."""
        if start is None:   # freed after the renumbered plan was made: only a redo gets here
            return _SweepPlan(c, _start_state(c, pre_nodes, pre_edges)[1], count_mask, pre_nodes,
                              pre_edges, *_no_forest(c), layer_root, layer_count, skip)
        return _SweepPlan(c, start, count_mask, pre_nodes, pre_edges,
                          *(_no_forest(c) if forest is None else forest),
                          layer_root, layer_count, skip)

    # The kernel's system and plan: the renumbered copy when there is one (element indices
    # mapped to it; rows are per element and per layer, so nothing maps back).  The plan on
    # the compiled system is then made only if a full cascade must redo elements.  On Dask,
    # each worker builds the plan (the start state, 36 MB at 10^6 nodes) from the system in
    # its store, the same arrays as here (deterministic); only its recipe travels.
    k_node = el_node
    if cluster is not None and not shared:
        plan = kc_plan = _PlanRecipe(cluster.share(c, memo=True), pre_nodes, pre_edges, skip,
                                     mode == 2)
    elif kc is c:
        plan = kc_plan = compiled_plan()
    else:
        plan = None
        t_plan = time.perf_counter()
        kc_plan = kc.plan(start, count_mask, pre_nodes, pre_edges, child_ptr, child_idx,
                          par_edge, layer_root, layer_count, skip)
        times["order_s"] += time.perf_counter() - t_plan
        k_node = kc.map(el_node, kc.rank)
        # The start state and the forest in the compiled numbering (about 25 bytes a node) are
        # not kept through the sweep: a redo, the only user left (a full cascade, which needs
        # no forest), rebuilds the start state (deterministic, the same fixpoint).
        start = forest = child_ptr = child_idx = par_edge = el_node = None
        release_memory()   # what the set-up freed, before the threads' buffers come
    if deferred is None and start is not None:
        # The plans hold the start state's arrays (no copy); the rest of the workspaces (about
        # 23 bytes a node) is not kept through the sweep, where every thread adds its buffers.
        start = {name: getattr(start, name) for name in _SweepPlan.STATE}

    def run(c, plan, mode: int, el_node, el_edge, out_nodes, out_demand, out_layer,
            out_layer_demand, rows=None) -> None:
        """One pass of the kernel over the elements, chunk by chunk, on threads or Dask; the
        row of element ``k`` is ``rows[k]`` (default ``k``)."""
        k = len(el_node)
        workers = cluster.n_workers if cluster is not None else threads
        size = int(chunk or max(8, min(4096, -(-k // (16 * workers)))))
        n_chunks = -(-k // size)
        if shared:
            _run_shared(cluster, c, plan, mode, el_node, el_edge,
                        (out_nodes, out_demand, out_layer, out_layer_demand), rows, bar, size,
                        rows_file if out_nodes is rows_file.arrays["nodes"] else None)
            return
        if cluster is not None:
            def collect(part) -> int:
                lo, got_rows = part
                hi = lo + len(got_rows[0])
                at = slice(lo, hi) if rows is None else rows[lo:hi]
                for out, got in zip((out_nodes, out_demand, out_layer, out_layer_demand), got_rows):
                    out[at] = got
                return hi - lo

            # The system is in the workers' stores (kept between sweeps), the plan is built
            # there from it; tasks carry the recipe and element ranges sized on the run.
            cluster.run_ranges(_dask_chunk, lambda lo, hi: (plan, mode, lo, el_node[lo:hi],
                                                            el_edge[lo:hi]),
                               k, collect, bar, first=min(size, 256), minimum=8, size=chunk,
                               unit="elements")
            return
        counter = itertools.count()
        stop = threading.Event()
        kernel_time = kernel_times

        def worker() -> None:
            buffers = plan.buffers(c)  # private, copied once from the start fixpoint
            while True:
                i = next(counter)  # atomic under the GIL
                if i >= n_chunks or stop.is_set():
                    return
                lo, hi = i * size, min(k, (i + 1) * size)
                t, t_cpu = time.perf_counter(), time.thread_time()
                if rows is None:
                    _kernel_chunk(c, plan, buffers, mode, el_node[lo:hi], el_edge[lo:hi],
                                  out_nodes[lo:hi], out_demand[lo:hi], out_layer[lo:hi],
                                  out_layer_demand[lo:hi])
                else:   # rows of distinct elements are distinct: threads never share one
                    _kernel_chunk(c, plan, buffers, mode, el_node[lo:hi], el_edge[lo:hi],
                                  out_nodes, out_demand, out_layer, out_layer_demand,
                                  rows[lo:hi])
                kernel_time.append(time.perf_counter() - t)  # list.append is atomic
                kernel_cpu.append(time.thread_time() - t_cpu)
                bar.update(hi - lo)

        if threads == 1 or n_chunks == 1:
            worker()
        else:
            with ThreadPoolExecutor(max_workers=min(threads, n_chunks)) as pool:
                try:
                    for future in [pool.submit(worker) for _ in range(min(threads, n_chunks))]:
                        future.result()
                except BaseException:  # Ctrl-C: the workers stop after their current chunk
                    stop.set()
                    raise

    kernel_times: list[float] = []
    kernel_cpu: list[float] = []    # the same calls in CPU time of their thread
    bar = tracker(progress, n_el, "N-1 sweep", "element")  # closed below (and by tqdm on error)
    try:
        run(kc, kc_plan, mode, k_node, el_edge, out_nodes, out_demand, out_layer,
            out_layer_demand, None if order is None else order.astype(idx, copy=False))
    finally:
        if deferred is not None:
            deferred.shutdown(wait=True)
        if rows_file is not None:
            rows_file.close()   # the file goes; these arrays keep its pages
    if deferred is not None:
        count_mask, start, start_working, layer_root, layer_count = later.result()
    # Where incremental cascades are not proven exact (giant layers that are not whole at the
    # start), each element's answer is certified afterwards or recomputed in full.
    certify = mode != 0 and not incremental_is_exact(c, pre_failed, count_mask)
    redo = np.zeros(0, np.int64)
    if certify:
        # Certificate (see the module docstring): every `giant` layer keeps more than half of
        # its nodes in the incremental answer.  Then that answer is the fresh cascade's.
        giant = np.flatnonzero((c.layer_rule == RULE_CODES["giant"]) & (np.diff(c.layer_ptr) > 0))
        sizes = np.diff(np.asarray(c.layer_ptr, np.int64))[giant]
        kept = layer_count[giant].astype(np.int64) - out_layer[:, giant]
        redo = np.flatnonzero(np.any(2 * kept <= sizes, axis=1))
    if mode != 0 and pre_failed:
        # The kernel counted losses relative to the start fixpoint; add the pre-failures' own.
        before = count_mask.astype(bool) & ~start_working
        out_nodes += int(before.sum())
        out_demand += float(c.demand[before].sum())
        out_layer += np.bincount(c.node_layer[before], minlength=L).astype(np.int64)
        out_layer_demand += np.bincount(c.node_layer[before], weights=c.demand[before], minlength=L)
    if len(redo):
        bar.grow(len(redo))
        r_nodes = np.zeros(len(redo), np.int64)
        r_demand = np.zeros(len(redo), np.float64)
        r_layer = np.zeros((len(redo), L), np.int64)
        r_layer_demand = np.zeros((len(redo), L), np.float64)
        # In the caller's numbering: the full cascade sums the demand in node order.
        if plan is None:
            plan = compiled_plan()
        run(c, plan, 0, np.ascontiguousarray(el_node_c[redo]), np.ascontiguousarray(el_edge_c[redo]),
            r_nodes, r_demand, r_layer, r_layer_demand)
        out_nodes[redo], out_demand[redo], out_layer[redo] = r_nodes, r_demand, r_layer
        out_layer_demand[redo] = r_layer_demand
    bar.close()
    if cluster is not None and not shared:
        cluster.forget(kc_plan.token)
    if stats is not None:
        kernel_s = float(sum(kernel_times))
        stats.update(times, renumbered=kc is not c)
        stats.update(kernel_s=kernel_s, kernel_calls=len(kernel_times), redone=int(len(redo)),
                     kernel_call_s=list(kernel_times), kernel_cpu_s=float(sum(kernel_cpu)),
                     setup_s=(time.perf_counter() - t_setup - kernel_s
                              if threads == 1 and cluster is None else None))
    return out_nodes, out_demand, out_layer, out_layer_demand


def _start_state(c: CompiledSystem, pre_nodes, pre_edges) -> tuple[np.ndarray, Workspace]:
    """The intact system's working mask and the start fixpoint (after the pre-failures)."""
    intact = Workspace(c)
    intact.run()
    count_mask = intact.working.copy()
    if len(pre_nodes) + len(pre_edges) > 0:
        start = Workspace(c)
        start.run(pre_nodes, pre_edges)
    else:
        start = intact  # the same fixpoint: a second cascade from nothing would repeat it
    return count_mask, start


def _layer_roots(c: CompiledSystem, start_working: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per layer: its first working node (the root of supply_forest) and its working nodes."""
    L, idx = len(c.layer_names), c.index_dtype
    layer_root = np.full(L, -1, idx)
    layer_count = np.zeros(L, idx)
    for li in range(L):
        members = np.asarray(c.layer_nodes[c.layer_ptr[li]:c.layer_ptr[li + 1]])
        alive = start_working[members]
        layer_count[li] = int(alive.sum())
        if alive.any():
            layer_root[li] = members[np.argmax(alive)]  # the same root as supply_forest's
    return layer_root, layer_count


def _supply_forest(c: CompiledSystem, start: Workspace) -> tuple:
    """``(parent, par_edge, child_ptr, child_idx, scratch)`` of the start state's supply forest."""
    n, idx = c.n_nodes, c.index_dtype
    parent, scratch, par_edge = np.zeros(n, idx), np.zeros(n, idx), np.full(n, -1, idx)
    child_ptr, child_idx = np.zeros(n + 1, idx), np.zeros(n, idx)
    _core.supply_forest(c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, c.layer_ptr,
                        c.layer_nodes, c.layer_rule, c.is_source, start.working,
                        start.edge_failed, parent, par_edge, child_ptr, child_idx, scratch)
    return parent, par_edge, child_ptr, child_idx, scratch


def _no_forest(c: CompiledSystem) -> tuple:
    """``(child_ptr, child_idx, par_edge)`` of an empty forest (kernel modes that never read it)."""
    n, idx = c.n_nodes, c.index_dtype
    return np.zeros(n + 1, idx), np.zeros(n, idx), np.full(n, -1, idx)


class _SweepPlan:
    """What every kernel pass of one sweep shares: the start fixpoint, the intact mask, the
    pre-failures and the supply forest (read-only; one copy per Dask worker, built there from
    a :class:`_PlanRecipe`).  It takes the start state's arrays as they are (no copy): the
    caller runs nothing more on them."""

    STATE = ("working", "fail_round", "cause", "via_group", "alive", "edge_failed")

    def __init__(self, c, start, count_mask, pre_nodes, pre_edges, child_ptr, child_idx,
                 par_edge, layer_root, layer_count, skip: bool, token: str | None = None):
        # ``start``: the start fixpoint, a Workspace on ``c`` or a dict of its state arrays.
        self.state = {name: (start[name] if isinstance(start, dict) else getattr(start, name))
                      for name in self.STATE}
        self.count_mask = count_mask
        self.pre_nodes, self.pre_edges = pre_nodes, pre_edges
        self.child_ptr, self.child_idx, self.par_edge = child_ptr, child_idx, par_edge
        self.layer_root, self.layer_count = layer_root, layer_count
        self.skip = bool(skip)
        self.token = token or uuid.uuid4().hex   # names this plan in the workers' buffer cache
        # Per-arc usability flags of the start state, and the two arcs of each edge.
        self.arc = np.zeros(len(c.adj_nbr), np.uint8)
        _core.arc_flags(c.adj_edge, c.adj_fwd, self.state["edge_failed"], self.arc)
        # np.argsort(adj_edge, kind="stable") by one counting pass (a sort took 0.5 s at 10^6).
        self.edge_arc = np.zeros(len(c.adj_edge), c.index_dtype)
        _core.edge_arcs(c.adj_edge, c.n_edges, self.edge_arc)

    def buffers(self, c: CompiledSystem) -> dict:
        """Private buffers of one thread (docs/development.md, rule 6)."""
        n, L, idx = c.n_nodes, len(c.layer_names), c.index_dtype
        out = {name: a.copy() for name, a in self.state.items()}
        out.update(changed=np.zeros(n, idx), queue=np.zeros(n, idx), comp=np.zeros(n, idx),
                   layer_dirty=np.zeros(L, np.uint8),
                   init_nodes=np.concatenate([self.pre_nodes, np.zeros(1, idx)]).astype(idx),
                   init_edges=np.concatenate([self.pre_edges, np.zeros(1, idx)]).astype(idx),
                   no_index=np.zeros(0, idx), aff=np.zeros(n, np.uint8), aff_list=np.zeros(n, idx),
                   cursor=np.zeros(L, idx), held=np.zeros(c.n_groups, np.uint8),
                   arc=self.arc.copy())
        return out


class _Renumbered:
    """The arrays the sweep kernel reads, with the nodes renumbered (issue 15): node ``v`` of
    the compiled system is node ``rank[v]`` here, and group ``g`` is group ``grank[g]``.

    Made from the supply forest's preorder (:func:`cascade._core.forest_rank`), so each subtree
    is a run of consecutive indices and its rows of every per-node array (adjacency, groups,
    dependants, children) follow each other in memory.  Groups are renumbered with their
    owners; edges, layers and arc order within a node are kept.  Every list the kernel walks
    keeps its order (a layer's nodes; a node's arcs, groups, dependants and children: the
    supply forest is carried over, not rebuilt), so the kernel fails the same
    nodes in the same order and sums the same demands in the same order: the answers are
    identical.  It lives only inside :func:`core_sweep` (``compiled.py`` stays the one
    name-to-index boundary); the rows it gives are per element and per layer, so nothing is
    mapped back but the elements' order.
    """

    def __init__(self, c: CompiledSystem, rank: np.ndarray):
        idx = c.index_dtype
        n = c.n_nodes
        self.index_dtype, self.layer_names = idx, c.layer_names
        self.n_nodes, self.n_edges, self.n_groups = n, c.n_edges, c.n_groups
        self.rank = rank = np.ascontiguousarray(rank, dtype=idx)
        self.layer_rule, self.layer_ptr, self.edge_directed = c.layer_rule, c.layer_ptr, c.edge_directed
        self.layer_nodes = self.map(c.layer_nodes, rank)
        self.node_layer, self.is_source, self.demand = (self.nodes(a) for a in
                                                        (c.node_layer, c.is_source, c.demand))
        self.edge_src, self.edge_dst = self.map(c.edge_src, rank), self.map(c.edge_dst, rank)
        self.adj_ptr = np.zeros(n + 1, idx)
        self.adj_nbr, self.adj_edge = np.zeros_like(c.adj_nbr), np.zeros_like(c.adj_edge)
        self.adj_fwd = np.zeros_like(c.adj_fwd)
        _core.renumber_arcs(c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, rank, self.adj_ptr,
                            self.adj_nbr, self.adj_edge, self.adj_fwd)
        # Groups follow their owners (a node's groups stay a run, in their order).
        self.grp_ptr, gperm = self.gather(c.grp_ptr)
        self.grank = np.zeros(c.n_groups, idx)
        self.grank[gperm] = np.arange(c.n_groups, dtype=idx)
        self.group_owner = self.groups(self.map(c.group_owner, rank))
        self.sup_ptr = np.zeros(c.n_groups + 1, idx)   # the kernel reads only counts
        np.cumsum(self.groups(np.diff(c.sup_ptr)), out=self.sup_ptr[1:])
        self.rdep_ptr, self.rdep_grp = self.gather(c.rdep_ptr, c.rdep_grp, self.grank)

    def gather(self, ptr, vals=None, vmap=None):
        """``ptr``'s CSR with row ``v`` moved to ``rank[v]``: (new ptr, for each new entry
        ``vmap[vals[j]]`` of its old position ``j``, or ``vals[j]``, or ``j``)."""
        empty = np.zeros(0, self.index_dtype)
        new_ptr = np.zeros(len(self.rank) + 1, self.index_dtype)
        out = np.zeros(int(ptr[len(ptr) - 1]), self.index_dtype)
        _core.gather_ranges(ptr, self.rank, new_ptr, empty if vals is None else vals,
                            empty if vmap is None else vmap, out)
        return new_ptr, out

    def map(self, vals, vmap):
        """``vmap[vals]``, -1 kept."""
        out = np.zeros(len(vals), self.index_dtype)
        _core.map_index(np.ascontiguousarray(vals, dtype=self.index_dtype), vmap, out)
        return out

    def nodes(self, a):
        """A per-node array laid out anew (a scatter: old order read, new places written)."""
        out = np.empty_like(a)
        out[self.rank] = a
        return out

    def groups(self, a):
        """A per-group array laid out anew."""
        out = np.empty_like(a)
        out[self.grank] = a
        return out

    def plan(self, start: Workspace, count_mask, pre_nodes, pre_edges, child_ptr, child_idx,
             par_edge, layer_root, layer_count, skip: bool) -> "_SweepPlan":
        """The :class:`_SweepPlan` of these arguments (on the compiled system) in this numbering."""
        rank = self.rank
        state = {name: self.nodes(getattr(start, name)) for name in ("working", "fail_round", "cause")}
        state["via_group"] = self.nodes(self.map(start.via_group, self.grank))
        state["alive"] = self.groups(start.alive)
        state["edge_failed"] = start.edge_failed.copy()
        child_ptr, child_idx = self.gather(child_ptr, child_idx, rank)
        return _SweepPlan(self, state, self.nodes(count_mask), self.map(pre_nodes, rank), pre_edges,
                          child_ptr, child_idx, self.nodes(par_edge), self.map(layer_root, rank),
                          layer_count, skip)


def _kernel_chunk(c: CompiledSystem, plan: _SweepPlan, b: dict, mode: int, el_node, el_edge,
                  out_nodes, out_demand, out_layer, out_layer_demand, el_row=None) -> None:
    """:func:`cascade._core.sweep` over one chunk of elements with one thread's buffers
    (``el_row``: the output row of each element, default its place in the chunk)."""
    _core.sweep(c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, c.edge_directed, c.layer_ptr,
                c.layer_nodes, c.node_layer, c.layer_rule, c.is_source, c.demand, c.grp_ptr,
                c.sup_ptr, c.rdep_ptr, c.rdep_grp, c.group_owner, b["held"], c.edge_src, c.edge_dst,
                el_node, el_edge, plan.pre_nodes, plan.pre_edges, plan.count_mask,
                b["edge_failed"], b["working"], b["fail_round"], b["cause"], b["via_group"],
                b["alive"], b["changed"], b["queue"], b["comp"], b["layer_dirty"], b["init_nodes"],
                b["init_edges"], b["no_index"], plan.child_ptr, plan.child_idx, plan.par_edge,
                b["aff"], b["aff_list"], b["cursor"], plan.layer_root, plan.layer_count,
                out_nodes, out_demand, out_layer, out_layer_demand, mode, plan.skip, b["arc"],
                plan.edge_arc, b["no_index"] if el_row is None else el_row)


_worker_buffers = threading.local()


class _PlanRecipe:
    """What a Dask worker needs to build a sweep's :class:`_SweepPlan` itself: the token of the
    compiled system in its store, the pre-failures, ``skip`` and whether the kernel needs the
    supply forest.  A few bytes instead of the plan (36 MB at 10^6 nodes) per worker and
    sweep; the build is deterministic, so every worker holds the plan this process would
    build.  ``token`` names the plan in the workers' stores (the same recipe, the same plan)."""

    def __init__(self, c_token: str, pre_nodes, pre_edges, skip: bool, forest: bool):
        self.c_token = c_token
        self.pre_nodes, self.pre_edges = pre_nodes, pre_edges
        self.skip, self.forest = bool(skip), bool(forest)
        h = hashlib.blake2b(digest_size=16)
        for part in (c_token, str(pre_nodes.dtype), pre_nodes.tobytes(), b"|",
                     pre_edges.tobytes(), f"|{self.skip}|{self.forest}"):
            h.update(part.encode() if isinstance(part, str) else part)
        self.token = f"plan-{h.hexdigest()}"

    def build(self, c: CompiledSystem) -> _SweepPlan:
        count_mask, start = _start_state(c, self.pre_nodes, self.pre_edges)
        layer_root, layer_count = _layer_roots(c, start.working.astype(bool))
        if self.forest:
            _, par_edge, child_ptr, child_idx, _ = _supply_forest(c, start)
        else:
            child_ptr, child_idx, par_edge = _no_forest(c)
        return _SweepPlan(c, start, count_mask, self.pre_nodes, self.pre_edges, child_ptr,
                          child_idx, par_edge, layer_root, layer_count, self.skip, token=self.token)


def _compact(a: np.ndarray) -> np.ndarray:
    """``a`` in the smallest dtype that holds it exactly (rows sent back by Dask tasks; the
    caller's arrays cast them back): counts as uint8/16/32, amounts as float32 when every
    value survives the round trip."""
    if a.size == 0:
        return a
    if a.dtype.kind == "i":
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0:
            for dtype in (np.uint8, np.uint16, np.uint32):
                if hi <= np.iinfo(dtype).max:
                    return a.astype(dtype)
        return a
    if a.dtype == np.float64:
        small = a.astype(np.float32)
        if np.array_equal(small.astype(np.float64), a):   # NaN never occurs in losses
            return small
    return a


def _dask_chunk(recipe: _PlanRecipe, mode: int, lo: int, el_node, el_edge):
    """A Dask task: one chunk of the sweep on the system of the worker's store and the plan
    built there from it (:func:`cascade.cluster.stored`, :func:`cascade.cluster.built`);
    returns ``(lo, rows)``, the rows in compact dtypes.  The worker thread keeps its buffers
    between the chunks of one plan (the kernel restores them after each element)."""
    from .cluster import built, stored

    c = stored(recipe.c_token)
    plan = built(recipe.token, lambda: recipe.build(stored(recipe.c_token)))
    cached = getattr(_worker_buffers, "entry", None)
    if cached is None or cached[0] != (plan.token, mode):
        cached = ((plan.token, mode), plan.buffers(c))
        _worker_buffers.entry = cached
    k, L = len(el_node), len(c.layer_names)
    rows = (np.zeros(k, np.int64), np.zeros(k, np.float64), np.zeros((k, L), np.int64),
            np.zeros((k, L), np.float64))
    _kernel_chunk(c, plan, cached[1], mode, np.ascontiguousarray(el_node),
                  np.ascontiguousarray(el_edge), *rows)
    return lo, tuple(_compact(r) for r in rows)


class _SharedSweep:
    """One kernel pass of a sweep on a local cluster's workers through shared memory
    (:class:`cascade.shared.SharedArrays`): the kernel's system (the renumbered copy where
    this process made one), the plan's arrays, the elements and their rows go in one file, the
    rows in another; tasks carry this object (its layout: a few KB) and element ranges; each
    worker maps the files once (:meth:`attach`, kept by :func:`cascade.cluster.built`) and
    writes its rows in place.  Nothing is sent through Dask or rebuilt on the workers."""

    SYSTEM = ("adj_ptr", "adj_nbr", "adj_edge", "adj_fwd", "edge_directed", "layer_ptr",
              "layer_nodes", "node_layer", "layer_rule", "is_source", "demand", "grp_ptr",
              "sup_ptr", "rdep_ptr", "rdep_grp", "group_owner", "edge_src", "edge_dst")
    PLAN = ("pre_nodes", "pre_edges", "count_mask", "child_ptr", "child_idx", "par_edge",
            "layer_root", "layer_count", "arc", "edge_arc")
    OUT = ("nodes", "demand", "layer", "layer_demand")

    def __init__(self, c, plan: "_SweepPlan", mode: int, el_node, el_edge, rows, outs,
                 outputs=None, size: int = 1, n_chunks: int = 0):
        from .shared import SharedArrays

        arrays = {f"c.{name}": getattr(c, name) for name in self.SYSTEM}
        arrays.update({f"p.{name}": getattr(plan, name) for name in self.PLAN})
        arrays.update({f"s.{name}": a for name, a in plan.state.items()})
        arrays.update(el_node=el_node, el_edge=el_edge)
        if rows is not None:
            arrays["rows"] = rows
        self.scalars = dict(n_nodes=c.n_nodes, n_edges=c.n_edges, n_groups=c.n_groups,
                            index_dtype=c.index_dtype, layer_names=list(c.layer_names))
        self.mode, self.skip, self.token = mode, plan.skip, f"shared-sweep-{uuid.uuid4().hex}"
        self.size = size
        self.own_outputs = outputs is None   # else the caller's file, which it closes
        self.outputs = self.control = None
        self.inputs = SharedArrays(arrays)
        try:
            # The chunk counter (claimed under flock on this file) and each chunk's done flag.
            self.control = SharedArrays({"claim": np.zeros(1, np.int64),
                                         "done": np.zeros(n_chunks, np.uint8)},
                                        copy=False, writable=True)
            self.outputs = outputs or SharedArrays(dict(zip(self.OUT, outs)), copy=False,
                                                   writable=True)
        except BaseException:
            self.close()
            raise

    def attach(self):
        """On a worker: ``(system, plan, el_node, el_edge, rows, outs)`` over the mapped files."""
        from types import SimpleNamespace

        a = self.inputs.attach()
        c = SimpleNamespace(**{name: a[f"c.{name}"] for name in self.SYSTEM}, **self.scalars)
        plan = object.__new__(_SweepPlan)
        plan.__dict__.update({name: a[f"p.{name}"] for name in self.PLAN})
        plan.state = {name: a[f"s.{name}"] for name in _SweepPlan.STATE}
        plan.skip, plan.token = self.skip, self.token
        outs = self.outputs.attach()
        self.control.attach()
        return c, plan, a["el_node"], a["el_edge"], a.get("rows"), [outs[k] for k in self.OUT]

    def close(self) -> None:
        self.inputs.close()
        if self.control is not None:
            self.control.close()
        if self.own_outputs and self.outputs is not None:
            self.outputs.close()


def _shared_task(job: _SharedSweep) -> int:
    """A Dask task of a local cluster, one per worker: claims chunks of ``job`` from the
    counter in the shared rows file (under ``flock``) until none is left, sweeps each into the
    shared rows and marks it done; returns how many chunks it swept."""
    import fcntl

    from .cluster import built

    c, plan, el_node, el_edge, rows, outs = built(job.token, job.attach)
    claim, done = job.control.arrays["claim"], job.control.arrays["done"]
    cached = getattr(_worker_buffers, "entry", None)
    if cached is None or cached[0] != (plan.token, job.mode):
        _worker_buffers.entry = None   # the last sweep's buffers go before the new ones come
        cached = ((plan.token, job.mode), plan.buffers(c))
        _worker_buffers.entry = cached
    k, size, swept = len(el_node), job.size, 0
    with open(job.control.path, "rb") as lock:
        while True:
            fcntl.flock(lock, fcntl.LOCK_EX)
            i = int(claim[0])
            claim[0] = i + 1
            fcntl.flock(lock, fcntl.LOCK_UN)
            if i >= len(done):
                return swept
            lo, hi = i * size, min(k, (i + 1) * size)
            if rows is None:
                _kernel_chunk(c, plan, cached[1], job.mode, el_node[lo:hi], el_edge[lo:hi],
                              *(out[lo:hi] for out in outs))
            else:
                _kernel_chunk(c, plan, cached[1], job.mode, el_node[lo:hi], el_edge[lo:hi],
                              *outs, rows[lo:hi])
            done[i] = 1
            swept += 1


POLL_SECONDS = 0.1   # the progress bar of a shared sweep follows the done chunks this often


def _run_shared(cluster, c, plan: "_SweepPlan", mode: int, el_node, el_edge, outs, rows, bar,
                size: int, outputs=None) -> None:
    """:class:`_SharedSweep` of these arguments on ``cluster`` (a local one), in chunks of
    ``size`` elements; the rows end in ``outs`` (row ``rows[k]`` for element ``k``, default
    ``k``): written there by the workers when ``outputs`` is their
    :class:`~cascade.shared.SharedArrays`, else copied.

    One task per worker (:func:`_shared_task`); the workers claim the chunks from a counter in
    shared memory, as threads do from theirs, so there is no range to size and no round trip
    per chunk, and they finish within a chunk of each other.  Chunks a lost worker claimed but
    did not finish are swept here afterwards; a Ctrl-C empties the counter (the workers stop
    after their current chunk)."""
    from .cluster import _ens, _one_line

    k = len(el_node)
    n_chunks = -(-k // size)
    job = _SharedSweep(c, plan, mode, el_node, el_edge, rows, outs, outputs, size, n_chunks)
    futures, marked = [], 0
    try:
        done = job.control.arrays["done"]
        workers = list(cluster.client.scheduler_info().get("workers", {})) or [None]
        futures = [cluster.client.submit(_shared_task, job, pure=False,
                                         key=f"shared-sweep-{uuid.uuid4().hex}",
                                         workers=None if w is None else [w],
                                         allow_other_workers=True)
                   for w in workers[:n_chunks]]
        ended = threading.Semaphore(0)   # released as each task ends (done, error, cancelled)
        for future in futures:
            future.add_done_callback(lambda _: ended.release())
        idle_since, n_ended = None, 0
        while True:
            if ended.acquire(timeout=POLL_SECONDS):
                n_ended += 1
            complete = n_ended == len(futures)
            now = int(done.sum())   # chunks done, for the bar (the last one may be short)
            if bar is not None and now > marked:
                bar.update(min(k, now * size) - min(k, marked * size))
                marked = now
            if complete or any(f.status in ("error", "cancelled") for f in futures):
                break
            if not cluster._no_workers():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > _ens.NO_WORKERS_GRACE:
                raise InputError(f"the Dask cluster has had no workers for "
                                 f"{_ens.NO_WORKERS_GRACE:g} s with {k - min(k, now * size)} of "
                                 f"{k} elements unfinished; nothing written", cluster.where)
        for f in futures:
            if f.status != "finished":
                try:
                    f.result()
                    message = f.status
                except BaseException as exc:
                    message = _one_line(exc)
                raise InputError(f"the Dask run failed with {min(k, int(done.sum()) * size)} of "
                                 f"{k} elements done: {message}; nothing written", cluster.where)
        lost = np.flatnonzero(done == 0)   # claimed by a worker that was lost meanwhile
        if len(lost):
            buffers = plan.buffers(c)
            got = [job.outputs.arrays[name] for name in job.OUT]
            for i in lost:
                lo, hi = i * size, min(k, (i + 1) * size)
                if rows is None:
                    _kernel_chunk(c, plan, buffers, mode, el_node[lo:hi], el_edge[lo:hi],
                                  *(out[lo:hi] for out in got))
                else:
                    _kernel_chunk(c, plan, buffers, mode, el_node[lo:hi], el_edge[lo:hi],
                                  *got, rows[lo:hi])
                if bar is not None:
                    bar.update(hi - lo)
        if job.own_outputs:
            got = job.outputs.arrays
            for out, name in zip(outs, job.OUT):
                out[...] = got[name]
    except BaseException:
        try:
            job.control.arrays["claim"][0] = n_chunks   # the workers stop after this chunk
            if futures:
                cluster.client.cancel(futures)
        except Exception:
            pass
        raise
    finally:
        job.close()
        cluster.forget(job.token)


def reference_sweep(system: InfrastructureSystem, compiled: CompiledSystem, el_node, el_edge,
                    pre_nodes=(), pre_edges=(), progress: ProgressArg = None
                    ) -> tuple[np.ndarray, ...]:
    """:func:`core_sweep` with the networkx reference engine: one fresh cascade per element
    (``progress``: per element, see :mod:`cascade.progress`)."""
    from .reference import run_cascade

    c = compiled
    names = lambda ids, idx: [str(ids[i]) for i in idx]  # noqa: E731
    pre_n, pre_e = names(c.node_ids, pre_nodes), names(c.edge_ids, pre_edges)
    intact_failed = run_cascade(system)
    worked = np.array([name not in intact_failed for name in c.node_ids])
    L = len(c.layer_names)
    out_nodes = np.zeros(len(el_node), np.int64)
    out_demand = np.zeros(len(el_node), np.float64)
    out_layer = np.zeros((len(el_node), L), np.int64)
    bar = tracker(progress, len(el_node), "N-1 sweep (reference engine)", "element")
    out_layer_demand = np.zeros((len(el_node), L), np.float64)
    for k, (x, e) in enumerate(zip(el_node, el_edge)):
        if x >= 0:
            failed = run_cascade(system, pre_n + [str(c.node_ids[x])], pre_e)
        else:
            failed = run_cascade(system, pre_n, pre_e + [str(c.edge_ids[e])])
        lost = np.array([worked[i] and c.node_ids[i] in failed for i in range(c.n_nodes)], bool)
        out_nodes[k] = lost.sum()
        out_demand[k] = c.demand[lost].sum()
        out_layer[k] = np.bincount(c.node_layer[lost], minlength=L)
        out_layer_demand[k] = np.bincount(c.node_layer[lost], weights=c.demand[lost], minlength=L)
        bar.update()
    bar.close()
    return out_nodes, out_demand, out_layer, out_layer_demand


def flow_sweep(system: InfrastructureSystem, compiled: CompiledSystem, el_node, el_edge,
               pre_nodes=(), pre_edges=(), threads: int | None = None, engine: str = "core",
               progress: ProgressArg = None, plain: bool = False) -> tuple[np.ndarray, ...]:
    """:func:`core_sweep` on a system with flow layers: one flow cascade per element.

    Elements are spread over ``threads`` threads, each with its own
    :func:`cascade.flowcore.flow_engine` (kernels and the factors of the intact grids built
    once per thread and reused for every element), or run one by one with the reference engine
    (``engine="reference"``, the oracle of the tests).  The core answers two kinds of elements
    without a cascade:

    * it runs the base cascade (the ``pre`` failures only) once, recording every round of its
      ``flow`` layers, and answers the elements that
      :meth:`cascade.flowcore.FlowEngine.inert` proves unable to change it (no flow through
      them, not on the way to any working node, no dependants) from that run;
    * with no earlier failures, ``dcflow`` branches are screened
      (:meth:`cascade.flowcore.FlowEngine.screen_dc`): when the intact cascade trips nothing,
      a branch whose loss provably changes nothing but flows (first-round flows from LODF
      columns below every limit, no island split, in every recorded round) scores zero.

    ``plain=True`` runs a full cascade for every element (the check of the tests).

    Losses count partial service: a layer's demand lost is the served amount of the intact
    system minus the served amount after the cascade (``demand × served fraction`` over its
    working nodes), so a branch whose loss trips others or sheds load scores even when no node
    stops working.  ``nodes_lost`` counts the nodes that worked intact and stop.

    Returns
    -------
    The four arrays of :func:`core_sweep` (``demand_lost`` is the raw sum over layers).
    """
    from .simulation import _run_reference_flow

    c = compiled
    el_node = np.asarray(el_node, np.int64)
    el_edge = np.asarray(el_edge, np.int64)
    pre_nodes = [int(v) for v in pre_nodes]
    pre_edges = [int(e) for e in pre_edges]
    n_el, L = len(el_node), len(c.layer_names)

    def cascade(nodes, edges):
        if engine == "core":
            from .flowcore import flow_engine
            return flow_engine(c).run(nodes, edges, table=False)      # no trips table: not used here
        return _run_reference_flow(system, c, nodes, edges)

    dc_record: list = []
    if engine == "core":
        from .flowcore import flow_engine
        intact = flow_engine(c).run([], [], dc_record=dc_record)
    else:
        intact = cascade([], [])
    worked = intact[0].astype(bool)
    served_before = c.demand * intact[4]
    out_nodes = np.zeros(n_el, np.int64)
    out_demand = np.zeros(n_el, np.float64)
    out_layer = np.zeros((n_el, L), np.int64)
    out_layer_demand = np.zeros((n_el, L), np.float64)
    bar = tracker(progress, n_el, "N-1 sweep (flow layers)", "element")

    # elements that cannot change the base cascade (pre failures only): answered from it
    quick = np.zeros(n_el, bool)
    if engine == "core" and not plain and n_el:
        from .flowcore import flow_engine

        eng = flow_engine(c)
        record: list = []
        base = eng.run(np.unique(np.asarray(pre_nodes, np.int64)),
                       np.unique(np.asarray(pre_edges, np.int64)), record=record)
        quick = eng.inert(record, el_node, el_edge)

    def one(k):
        if quick[k]:
            run_working, run_served = base[0].copy(), base[4].copy()
            if el_node[k] >= 0:
                run_working[el_node[k]] = False
                run_served[el_node[k]] = 0.0
            lost = worked & ~run_working
            out_nodes[k] = lost.sum()
            out_layer[k] = np.bincount(c.node_layer[lost], minlength=L)
            out_layer_demand[k] = np.bincount(c.node_layer, weights=served_before - c.demand * run_served,
                                              minlength=L)
            out_demand[k] = out_layer_demand[k].sum()
            bar.update()
            return
        nodes, edges = list(pre_nodes), list(pre_edges)
        if el_node[k] >= 0:
            nodes.append(int(el_node[k]))
        else:
            edges.append(int(el_edge[k]))
        run = cascade(np.unique(np.asarray(nodes, np.int64)), np.unique(np.asarray(edges, np.int64)))
        lost = worked & ~run[0]
        out_nodes[k] = lost.sum()
        out_layer[k] = np.bincount(c.node_layer[lost], minlength=L)
        out_layer_demand[k] = np.bincount(c.node_layer, weights=served_before - c.demand * run[4], minlength=L)
        out_demand[k] = out_layer_demand[k].sum()
        bar.update()

    todo = np.arange(n_el)
    if (not plain and engine == "core" and not pre_nodes and not pre_edges and dc_record
            and not len(intact[6]) and (el_node < 0).any()):
        # cleared branches lose nothing: their rows stay zero
        edge_rows = np.flatnonzero(el_node < 0)
        clear = flow_engine(c).screen_dc(el_edge[edge_rows], dc_record)
        todo = np.setdiff1d(todo, edge_rows[clear])
        bar.update(int(clear.sum()))
    n_run = len(todo)
    threads = max(1, int(threads or _default_threads())) if engine == "core" else 1
    if threads == 1 or n_run < 2:
        for k in todo:
            one(k)
    else:
        counter = itertools.count()

        def worker():
            while (i := next(counter)) < n_run:
                one(todo[i])
        with ThreadPoolExecutor(max_workers=min(threads, n_run)) as pool:
            for future in [pool.submit(worker) for _ in range(min(threads, n_run))]:
                future.result()
    bar.close()
    return out_nodes, out_demand, out_layer, out_layer_demand


def _table(system: InfrastructureSystem, c: CompiledSystem, el_node, el_edge, nodes_lost,
           demand_lost, layer_lost, layer_demand_lost) -> pd.DataFrame:
    """The ranking table, sorted by :func:`ranking_order` (all rows of a :class:`Ranking`)."""
    return Ranking(system, c, el_node, el_edge, nodes_lost, demand_lost, layer_lost,
                   layer_demand_lost).frame()


class Ranking:
    """A sweep's ranking kept as its arrays; rows become a table only when asked for.

    ``frame()`` is the whole table of :func:`sweep`; ``head(k)`` its first ``k`` rows,
    identical to ``frame().iloc[:k]`` but built from the rows that can be among them only (a
    partition on the score, the ids' text order over those alone), so that a 10^6-element
    sweep whose top 20 is printed never makes a million id strings or rows.
    """

    def __init__(self, system: InfrastructureSystem, c: CompiledSystem, el_node, el_edge, nodes_lost,
                 demand_lost, layer_lost, layer_demand_lost):
        self.system, self.compiled = system, c
        self.el_node = np.asarray(el_node, np.int64)
        self.el_edge = np.asarray(el_edge, np.int64)
        self.nodes_lost = np.asarray(nodes_lost, np.int64)
        self.layer_lost = np.asarray(layer_lost)
        self.layer_demand_lost = np.asarray(layer_demand_lost, np.float64)
        self._kept = None   # positions whose per-layer losses are kept (None: all)
        # The score row by row, in blocks: no (k, L) temporaries of the whole sweep.
        k, block = len(self.el_node), 1 << 16
        self.score = np.empty(k, np.float64)
        totals = layer_totals(c)
        for lo in range(0, k, block):
            self.score[lo:lo + block] = loss_score(system, c, self.layer_demand_lost[lo:lo + block],
                                                   self.layer_lost[lo:lo + block], totals)

    def __len__(self) -> int:
        return len(self.el_node)

    def keep_layers(self, rows: np.ndarray) -> None:
        """Keep the per-layer losses of the positions ``rows`` only (16 bytes per element and
        layer freed: 80 MB for 10^6 nodes in five layers); :meth:`_frame` then takes these
        rows only, every other method works as before.  ``cascade critical`` calls it once
        its table's rows are built, before the comparison's second sweep."""
        kept = np.unique(np.asarray(rows, np.int64))
        if self._kept is not None:
            kept = kept[np.isin(kept, self._kept)]
            at = np.searchsorted(self._kept, kept)
        else:
            at = kept
        self.layer_lost = self.layer_lost[at]
        self.layer_demand_lost = self.layer_demand_lost[at]
        self._kept = kept

    def _layer_rows(self, order: np.ndarray) -> np.ndarray:
        """Where the rows ``order`` are in the per-layer arrays (see :meth:`keep_layers`)."""
        if self._kept is None:
            return order
        at = np.searchsorted(self._kept, order)
        found = at < len(self._kept)
        found[found] = self._kept[at[found]] == order[found]
        if not found.all():
            raise ValueError("Ranking: the per-layer losses of these rows were not kept")
        return at

    def _ids(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids as str objects, element names) of the positions ``rows``."""
        c = self.compiled
        el_node, el_edge = self.el_node[rows], self.el_edge[rows]
        is_node = el_node >= 0
        ids = np.empty(len(rows), object)
        if is_node.any():
            ids[is_node] = np.asarray(c.node_ids[el_node[is_node]], object)
        if (~is_node).any():
            ids[~is_node] = np.asarray(c.edge_ids[el_edge[~is_node]], object)
        if len(ids) and not all(type(v) is str for v in (ids[0], ids[-1])):
            ids = ids.astype(str).astype(object)
        element = np.array(["edge", "node"], object)[is_node.astype(np.intp)]
        return ids, element

    def order(self, top: int | None = None, among: np.ndarray | None = None) -> np.ndarray:
        """Positions of the first ``top`` rows of the ranking (all with None or 0); with
        ``among`` (positions), of the ranking of those rows alone."""
        among = np.arange(len(self)) if among is None else np.asarray(among, np.int64)
        k = len(among)
        key = np.where(np.isnan(self.score[among]), np.inf, -self.score[among])
        if top and top < k:
            # The first `top` rows have the `top` smallest keys: every row whose key is at most
            # the top-th smallest is a candidate, and the candidates keep their relative order.
            rows = among[np.flatnonzero(key <= np.partition(key, top - 1)[top - 1])]
        else:
            rows = among
        ids, element = self._ids(rows)
        return rows[ranking_order(self.score[rows], self.nodes_lost[rows], ids, element)][:top or None]

    def head(self, top: int | None = None) -> pd.DataFrame:
        """The first ``top`` rows of :meth:`frame` (all with None or 0)."""
        return self._frame(self.order(top))

    def frame(self) -> pd.DataFrame:
        """The whole table (see :func:`sweep`)."""
        return self._frame(self.order())

    def _frame(self, order: np.ndarray) -> pd.DataFrame:
        """The rows at positions ``order``, in that order.  Each column is gathered once into
        it (one copy of the numbers, no per-row Python; ids are the compiled system's own str
        objects)."""
        c = self.compiled
        ids, element = self._ids(order)
        el_node, el_edge = self.el_node[order], self.el_edge[order]
        is_node = el_node >= 0
        owner = np.where(is_node, el_node, c.edge_src[np.where(is_node, 0, el_edge)] if c.n_edges else 0)
        layer_idx = c.node_layer[owner] if len(owner) else np.zeros(0, np.int64)
        k, L = len(order), len(c.layer_names)
        # One 2-D block per run of columns of one dtype, in the table's column order, joined
        # without copies (pandas would otherwise stack the columns into new blocks).
        text = np.empty((k, 3), object)
        text[:, 0], text[:, 1] = ids, element
        text[:, 2] = np.asarray(c.layer_names, dtype=object)[layer_idx] if k else np.zeros(0, object)
        del ids, element
        at = self._layer_rows(order)
        counts = np.empty((k, 2 + L), np.int64)
        counts[:, 2:] = self.layer_lost[at]
        counts[:, 0] = self.nodes_lost[order]
        own = counts[np.arange(k), 2 + layer_idx] if k else np.zeros(0, np.int64)
        counts[:, 1] = counts[:, 0] - own
        del own, owner
        blocks = [pd.DataFrame(text, columns=["id", "element", "layer"], copy=False),
                  pd.DataFrame(self.score[order][:, None], columns=["score"], copy=False),
                  pd.DataFrame(counts, columns=["nodes_lost", "cross_layer_lost"]
                               + [f"lost_{name}" for name in c.layer_names], copy=False),
                  pd.DataFrame(self.layer_demand_lost[at],
                               columns=[f"demand_lost_{name}" for name in c.layer_names], copy=False)]
        del text, counts
        return pd.concat(blocks, axis=1, copy=False)


def ranking_order(score: np.ndarray, nodes_lost: np.ndarray, ids: np.ndarray,
                  element: np.ndarray) -> np.ndarray:
    """Positions of the rows by score, then nodes lost (both descending), then id, then element
    (ids compared as text, like Python's ``<`` on str).

    A numpy lexsort on integer keys: the ids' text order is computed by pyarrow (UTF-8 byte
    order is code point order) when it is installed, by pandas' factorize otherwise.
    """
    ids = np.asarray(ids, dtype=object)
    id_rank = _text_rank(ids)
    element_rank = (np.asarray(element, dtype=object) == "node").astype(np.int8)  # 'edge' < 'node'
    score = np.asarray(score, np.float64)
    # -score sorts descending; NaN scores last as pandas' sort_values puts them.
    return np.lexsort((element_rank, id_rank, -np.asarray(nodes_lost, np.int64),
                       np.where(np.isnan(score), np.inf, -score)))


def _text_rank(ids: np.ndarray) -> np.ndarray:
    """Dense rank of each id in text order (equal ids, equal rank)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        order = pc.sort_indices(pa.array(ids, pa.string())).to_numpy().astype(np.intp)
    except Exception:   # no pyarrow, or ids that are not all str
        codes, _ = pd.factorize(ids, sort=True)
        return codes.astype(np.int64)
    ordered = ids[order]
    new = np.ones(len(ids), bool)
    new[1:] = ordered[1:] != ordered[:-1]
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank


def sort_ranking(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by score, then nodes lost (both descending), then id, then element."""
    order = ranking_order(table["score"].to_numpy(), table["nodes_lost"].to_numpy(),
                          table["id"].to_numpy(), table["element"].to_numpy())
    return table.take(order).reset_index(drop=True)


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}' (use core or reference)")


def _check_cluster(c: CompiledSystem, engine: str, cluster) -> None:
    if cluster is None:
        return
    if engine != "core":
        raise InputError("--workers/--scheduler run the core engine only (not --engine reference)")
    if c.has_flow_layers:
        raise InputError("--workers/--scheduler: the sweep of flow layers runs on threads only "
                         "(use --threads)")


def sweep(system: InfrastructureSystem, elements: str = "nodes", threads: int | None = None,
          engine: str = "core", compiled: CompiledSystem | None = None, *,
          layer: str | None = None, plain: bool = False, progress: ProgressArg = None,
          cluster=None) -> pd.DataFrame:
    """N-1 criticality: the cascade of every single element's failure, ranked.

    Parameters
    ----------
    system : InfrastructureSystem
    elements : {"nodes", "edges", "all"}
    threads : int, optional
        Worker threads for the core (default: the machine's cores).
    engine : {"core", "reference"}
        The Cython sweep, or one networkx reference cascade per element (slow; the oracle).
    compiled : CompiledSystem, optional
    layer : str, optional
        Only the elements of this layer (losses are still counted in every layer).
    plain : bool
        Core only: a full cascade per element with no shortcut (for checking).
    progress : None, bool or callable
        Progress of the sweep, in elements (see :mod:`cascade.progress`).
    cluster : cascade.cluster.SweepCluster, optional
        Core engine only: run the sweep's chunks on this Dask cluster (same answer).

    Returns
    -------
    pandas.DataFrame
        One row per element with columns ``id``, ``element`` ("node"/"edge"), ``layer``,
        ``score`` (float64: the weighted sum over layers of the lost fraction of each layer's
        demand, see :mod:`cascade.units`), ``nodes_lost`` (int64), ``cross_layer_lost``
        (int64: lost nodes outside the element's layer), then ``lost_<layer>`` (int64, nodes)
        for each layer in name order, then ``demand_lost_<layer>`` (float64, in the layer's
        unit) for each layer; sorted by score, nodes lost (descending), then id.  No column
        adds demands of different layers.

    Examples
    --------
    >>> import networkx as nx
    >>> from cascade import InfrastructureSystem
    >>> power = nx.Graph([("plant", "sub")]); power.nodes["plant"]["kind"] = "source"
    >>> water = nx.Graph([("pump", "tap")]); water.nodes["pump"]["kind"] = "source"
    >>> s = InfrastructureSystem.from_networkx({"power": power, "water": water}, [("pump", "sub")])
    >>> sweep(s)[["id", "nodes_lost", "cross_layer_lost"]].values.tolist()[:2]
    [['plant', 4, 2], ['sub', 3, 2]]
    """
    return sweep_ranking(system, elements, threads, engine, compiled, layer=layer, plain=plain,
                         progress=progress, cluster=cluster).frame()


def sweep_ranking(system: InfrastructureSystem, elements: str = "nodes", threads: int | None = None,
                  engine: str = "core", compiled: CompiledSystem | None = None, *,
                  layer: str | None = None, plain: bool = False, progress: ProgressArg = None,
                  cluster=None) -> Ranking:
    """:func:`sweep` as a :class:`Ranking`: ``.frame()`` is :func:`sweep`'s table,
    ``.head(k)`` its first ``k`` rows without building the others (same parameters)."""
    _check_engine(engine)
    c = compiled if compiled is not None else compile_system(system)
    _check_cluster(c, engine, cluster)
    el_node, el_edge = element_indices(c, elements, layer)
    if c.has_flow_layers:
        arrays = flow_sweep(system, c, el_node, el_edge, threads=threads, engine=engine, progress=progress,
                            plain=plain)
    elif engine == "core":
        arrays = core_sweep(c, el_node, el_edge, threads=threads, plain=plain, progress=progress,
                            cluster=cluster)
    else:
        arrays = reference_sweep(system, c, el_node, el_edge, progress=progress)
    return Ranking(system, c, el_node, el_edge, *arrays)


def greedy_worst_set(system: InfrastructureSystem, k: int, elements: str = "nodes",
                     threads: int | None = None, engine: str = "core",
                     compiled: CompiledSystem | None = None, *, layer: str | None = None,
                     plain: bool = False, progress: ProgressArg = None, cluster=None) -> pd.DataFrame:
    """Greedy N-k: the set of ``k`` elements whose joint failure has the highest score, greedily.

    Each step sweeps every remaining element on top of the ones already chosen and adds the
    one with the highest score (the weighted lost fractions of the layers' demands, then most
    nodes, then the smallest id).  Greedy, not optimal: the worst set of ``k`` can differ
    (the problem is NP-hard in general).  It stops early when no remaining element loses
    anything more (every node already lost, or none reachable by another failure).
    ``progress`` counts the steps (see :mod:`cascade.progress`).

    Returns
    -------
    pandas.DataFrame
        One row per step: ``step`` (1..k), ``id``, ``element``, ``layer``, ``score`` and
        ``nodes_lost`` (of the whole set so far, against the intact system), ``score_added``
        (what this step added), then ``demand_lost_<layer>`` (the set so far, in each layer's
        unit).  Fewer than ``k`` rows when the system runs out of elements or nothing more
        can be lost.
    """
    _check_engine(engine)
    if k < 0:
        raise InputError(f"k must be >= 0, got {k}")
    c = compiled if compiled is not None else compile_system(system)
    _check_cluster(c, engine, cluster)
    el_node, el_edge = element_indices(c, elements, layer)
    chosen_nodes: list[int] = []
    chosen_edges: list[int] = []
    rows, previous, previous_nodes = [], 0.0, 0
    remaining = np.ones(len(el_node), bool)
    bar = tracker(progress, k, "worst set", "step")
    for step in range(1, k + 1):
        bar.update(step > 1)
        cand = np.flatnonzero(remaining)
        if not len(cand):
            break
        if c.has_flow_layers:
            arrays = flow_sweep(system, c, el_node[cand], el_edge[cand], chosen_nodes, chosen_edges,
                                threads=threads, engine=engine, plain=plain)
        elif engine == "core":
            arrays = core_sweep(c, el_node[cand], el_edge[cand], chosen_nodes, chosen_edges,
                                threads=threads, plain=plain, cluster=cluster)
        else:
            arrays = reference_sweep(system, c, el_node[cand], el_edge[cand], chosen_nodes,
                                     chosen_edges)
        table = _table(system, c, el_node[cand], el_edge[cand], *arrays)
        # _table sorts like the ranking; find the winner's position among the candidates.
        best = table.iloc[0]
        if table["nodes_lost"].max() <= previous_nodes and table["score"].max() <= previous + 1e-12:
            break   # nothing more can be lost: no candidate loses another node or more score
        pos = cand[_position(c, el_node[cand], el_edge[cand], best)]
        remaining[pos] = False
        if el_node[pos] >= 0:
            chosen_nodes.append(int(el_node[pos]))
        else:
            chosen_edges.append(int(el_edge[pos]))
        rows.append({"step": step, "id": best.id, "element": best.element, "layer": best.layer,
                     "score": float(best.score), "nodes_lost": int(best.nodes_lost),
                     "score_added": float(best.score) - previous,
                     **{f"demand_lost_{name}": float(best[f"demand_lost_{name}"])
                        for name in c.layer_names}})
        previous, previous_nodes = float(best.score), int(best.nodes_lost)
    bar.update(len(rows) > 0)
    bar.close()
    lost_cols = [f"demand_lost_{n}" for n in c.layer_names]
    out = pd.DataFrame(rows, columns=["step", "id", "element", "layer", "score", "nodes_lost",
                                      "score_added"] + lost_cols)
    return out.astype({"step": np.int64, "score": np.float64, "nodes_lost": np.int64,
                       "score_added": np.float64, **{col: np.float64 for col in lost_cols}})


def _position(c: CompiledSystem, el_node, el_edge, row) -> int:
    if row.element == "node":
        return int(np.flatnonzero(el_node == c.node_index([row.id])[0])[0])
    return int(np.flatnonzero(el_edge == c.edge_index([row.id])[0])[0])


# ------------------------------------------------------------------ comparisons

def structural_scores(compiled: CompiledSystem, table: pd.DataFrame,
                      betweenness: bool = True) -> pd.DataFrame:
    """Degree and betweenness (all layers' edges undirected) of the table's elements:
    betweenness exact (igraph) or estimated, by :func:`betweenness_method`.

    A node's degree counts its edges; an edge's degree counts the edges that share an end
    with it.  Betweenness is node betweenness for nodes and edge betweenness for edges
    (dependencies are not edges, so each lifeline is scored on its own: the classic
    single-layer view).

    Returns
    -------
    pandas.DataFrame
        Aligned with ``table``: columns ``degree`` and (when asked) ``betweenness``.
    """
    c = compiled
    src, dst = np.asarray(c.edge_src, np.int64), np.asarray(c.edge_dst, np.int64)
    # igraph's degree of the undirected multigraph (a self-loop counts twice), by counting.
    deg = (np.bincount(src, minlength=c.n_nodes) + np.bincount(dst, minlength=c.n_nodes)).astype(np.float64)
    is_node = (table["element"] == "node").to_numpy()
    node_idx = _indices(c.node_ids, table.loc[is_node, "id"], c, "node")
    edge_idx = _indices(c.edge_ids, table.loc[~is_node, "id"], c, "edge")
    out = pd.DataFrame(index=table.index)
    degree = np.zeros(len(table))
    degree[is_node] = deg[node_idx]
    degree[~is_node] = deg[c.edge_src[edge_idx]] + deg[c.edge_dst[edge_idx]] - 2
    out["degree"] = degree
    if betweenness:
        node_b, edge_b = _betweenness_arrays(c, bool(is_node.any()), bool((~is_node).any()))
        btw = np.zeros(len(table))
        if is_node.any():
            btw[is_node] = node_b[node_idx]
        if (~is_node).any():
            btw[~is_node] = edge_b[edge_idx]
        out["betweenness"] = btw
    return out


def _dense_rank(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Dense rank of the pairs (first, second) in ascending order (equal pairs, equal rank)."""
    order = np.lexsort((second, first))
    a, b = first[order], second[order]
    new = np.ones(len(order), bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    rank = np.empty(len(order), np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank


def _pair_keys(*pairs) -> list[np.ndarray]:
    """One int64 key per (id, element) row, consistent across the given (ids, elements) pairs."""
    ids = np.concatenate([np.asarray(i, dtype=object) for i, _ in pairs])
    codes, _ = pd.factorize(ids)
    out, start = [], 0
    for i, e in pairs:
        n = len(i)
        out.append(codes[start:start + n].astype(np.int64) * 2
                   + (np.asarray(e, dtype=object) == "node"))
        start += n
    return out


def _indices(names: np.ndarray, ids, c: CompiledSystem, what: str) -> np.ndarray:
    """Positions of ``ids`` among ``names`` by hashing; an unknown id raises as
    :meth:`CompiledSystem.node_index` does."""
    ids = np.asarray(ids, dtype=object)
    if not len(ids):
        return np.zeros(0, np.int64)
    where = pd.Index(names).get_indexer(ids)
    if np.any(where < 0):
        bad = ids[np.flatnonzero(where < 0)[0]]
        return (c.node_index if what == "node" else c.edge_index)([bad])  # raises the error
    return where.astype(np.int64)


def betweenness_method(compiled: CompiledSystem) -> dict:
    """How :func:`compare_rankings` computes betweenness on this system: ``exact`` (bool),
    ``sources`` (sampled sources, None when exact), ``seed`` (None when exact), ``nodes``,
    ``exact_max`` (the largest system with exact betweenness)."""
    n = compiled.n_nodes
    if n <= BETWEENNESS_EXACT_MAX_NODES:
        return {"exact": True, "sources": None, "seed": None, "nodes": n,
                "exact_max": BETWEENNESS_EXACT_MAX_NODES}
    sizes = np.diff(np.asarray(compiled.layer_ptr, np.int64))
    sizes = sizes[sizes > 0]
    drawn = int(np.minimum(sizes, np.maximum(1, np.round(BETWEENNESS_SOURCES * sizes / n))).sum())
    return {"exact": False, "sources": drawn, "seed": BETWEENNESS_SEED, "nodes": n,
            "exact_max": BETWEENNESS_EXACT_MAX_NODES}


def _betweenness_arrays(c: CompiledSystem, nodes: bool, edges: bool, threads: int | None = None):
    """(node betweenness (n,) or None, edge betweenness (m,) or None) by
    :func:`betweenness_method`: igraph's exact values, or the sampled estimate."""
    how = betweenness_method(c)
    if not how["exact"]:
        from .betweenness import betweenness, sample_sources

        src, weight = sample_sources(c, BETWEENNESS_SOURCES, how["seed"])
        return betweenness(c, src, weight, edges=edges, threads=threads or _default_threads())
    from .light import import_igraph

    ig = import_igraph()
    src, dst = np.asarray(c.edge_src, np.int64), np.asarray(c.edge_dst, np.int64)
    g = ig.Graph(n=c.n_nodes, edges=np.column_stack([src, dst]).tolist(), directed=False)
    return (np.asarray(g.betweenness(directed=False)) if nodes else None,
            np.asarray(g.edge_betweenness(directed=False)) if edges else None)


def _top_by(values: np.ndarray, ids_of, top: int) -> np.ndarray:
    """Positions (into ``values``) of the first ``top`` by value (descending, NaN last), ties
    by id text (``ids_of(positions)`` gives the ids): the first ``top`` of a full lexsort,
    with the text order computed for the candidates alone."""
    key = np.where(np.isnan(values), np.inf, -values)
    if 0 < top < len(key):
        cand = np.flatnonzero(key <= np.partition(key, top - 1)[top - 1])
    else:
        cand = np.arange(len(key))
    order = np.lexsort((_text_rank(np.asarray(ids_of(cand), dtype=object)), key[cand]))
    return cand[order[:top]]


def _compare_ranking(c: CompiledSystem, r: "Ranking", top: int, betweenness: bool,
                     threads: int | None) -> pd.DataFrame:
    """:func:`compare_rankings` from a :class:`Ranking`'s arrays: integer element codes, the
    top K by partition, no table, no id strings but those of tied candidates."""
    from .light import centred_ranks, spearman_ranked

    is_node = r.el_node >= 0
    src, dst = np.asarray(c.edge_src, np.int64), np.asarray(c.edge_dst, np.int64)
    deg = (np.bincount(src, minlength=c.n_nodes) + np.bincount(dst, minlength=c.n_nodes)).astype(np.float64)
    btw = (_betweenness_arrays(c, bool(is_node.any()), bool((~is_node).any()), threads)
           if betweenness else (None, None))
    rows = []
    for kind in ("node", "edge"):
        sel = np.flatnonzero(is_node) if kind == "node" else np.flatnonzero(~is_node)
        if not len(sel):
            continue
        k = min(top, len(sel)) if top > 0 else len(sel)
        if kind == "node":
            idx = r.el_node[sel]
            measures = {"degree": deg[idx]}
            if betweenness:
                measures["betweenness"] = btw[0][idx]
        else:
            idx = r.el_edge[sel]
            measures = {"degree": deg[src[idx]] + deg[dst[idx]] - 2}
            if betweenness:
                measures["betweenness"] = btw[1][idx]
        dense = np.asarray(_dense_rank(r.score[sel], r.nodes_lost[sel].astype(float)), float)
        constant = len(dense) < 2 or np.ptp(dense) == 0
        rx = None if constant else centred_ranks(dense)   # ranked once for every measure
        del dense
        cascade_top = set(r.order(k, among=sel).tolist())

        def ids_of(local, sel=sel):
            return r._ids(sel[local])[0]

        for measure, values in measures.items():
            values = np.asarray(values, np.float64)
            overlap = len(cascade_top & set(sel[_top_by(values, ids_of, k)].tolist())) / k
            # spearman(dense, values), x ranked once (no NaN: dense ranks, finite measures)
            rho = (np.nan if constant or np.ptp(values) == 0 or np.isnan(values).any() else
                   spearman_ranked(rx, centred_ranks(values)))
            rows.append({"measure": measure, "element": kind, "top_k": k, "overlap": overlap,
                         "spearman": rho})
    return pd.DataFrame(rows, columns=["measure", "element", "top_k", "overlap", "spearman"])


def compare_rankings(compiled: CompiledSystem, table: pd.DataFrame | Ranking, top: int = 20,
                     betweenness: bool = True, threads: int | None = None) -> pd.DataFrame:
    """How well degree and betweenness rankings agree with the cascade ranking.

    Betweenness is exact up to ``BETWEENNESS_EXACT_MAX_NODES`` nodes, above an estimate from
    a seeded sample of sources (:func:`betweenness_method` says which).

    Parameters
    ----------
    table : pandas.DataFrame or Ranking
        A :func:`sweep` result (any order; ranked by score, then nodes lost), or the
        :class:`Ranking` of :func:`sweep_ranking` (same answer, computed on its arrays without
        building the table: what ``cascade critical`` uses).
    top : int
        K of the top-K overlap.
    threads : int, optional
        Threads of the betweenness estimate (default: the machine's cores; the answer does
        not depend on it).

    Returns
    -------
    pandas.DataFrame
        One row per measure (``degree``, ``betweenness``) and element kind present:
        ``measure``, ``element``, ``top_k``, ``overlap`` (fraction of the cascade's top K also
        in the measure's top K, ties broken by id) and ``spearman`` (rank correlation with
        the cascade's (score, nodes lost) order over all elements; NaN when constant).
    """
    from .light import spearman

    if isinstance(table, Ranking):
        return _compare_ranking(compiled, table, top, betweenness, threads)
    table = sort_ranking(table)
    scores = structural_scores(compiled, table, betweenness)
    rows = []
    for kind in ("node", "edge"):
        sel = (table["element"] == kind).to_numpy()
        if not sel.any():
            continue
        sub, sc = table[sel], scores[sel]
        k = min(top, len(sub)) if top > 0 else len(sub)
        # Cascade order as one number: dense rank of (score, nodes lost).
        dense = _dense_rank(sub["score"].to_numpy(np.float64), sub["nodes_lost"].to_numpy(float))
        cascade_top = set(sub["id"].iloc[:k])
        sub_ids = sub["id"].to_numpy(dtype=object)
        id_rank = _text_rank(sub_ids)
        for measure in sc.columns:
            values = sc[measure].to_numpy(np.float64)
            # By the measure (descending, NaN last), then id: pandas' sort_values order.
            order = np.lexsort((id_rank, np.where(np.isnan(values), np.inf, -values)))
            overlap = len(cascade_top & set(sub_ids[order[:k]])) / k if k else np.nan
            x, y = np.asarray(dense, float).ravel(), sc[measure].to_numpy()
            rho = np.nan if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0 else spearman(x, y)
            rows.append({"measure": measure, "element": kind, "top_k": k, "overlap": overlap,
                         "spearman": rho})
    return pd.DataFrame(rows, columns=["measure", "element", "top_k", "overlap", "spearman"])


def decoupled(system: InfrastructureSystem) -> InfrastructureSystem:
    """The same system without its dependency rows: each lifeline alone."""
    return replace(system, dependencies=system.dependencies.iloc[0:0].copy())


def blind_spots(system: InfrastructureSystem, table: pd.DataFrame, top: int = 20,
                threads: int | None = None, engine: str = "core", *,
                layer: str | None = None, progress: ProgressArg = None, cluster=None) -> pd.DataFrame:
    """Interdependency blind spots: critical in the coupled ranking, not when each lifeline
    is analysed alone.

    An element of the coupled top ``top`` is a blind spot when, in the sweep of the same
    system without dependencies (the single-lifeline view of peers such as WNTR or
    pandapower's N-1), it is not in that sweep's top ``top``.  ``layer`` limits that sweep
    to the elements of one layer, as :func:`sweep`'s (the table's own elements are the only
    ones compared either way).

    Returns
    -------
    pandas.DataFrame
        ``id``, ``element``, ``layer``, ``rank`` (coupled), ``alone_rank``,
        ``score``, ``alone_score``, ``cross_layer_lost``; in coupled rank order.
    """
    if isinstance(table, Ranking) and engine == "core" and not table.compiled.has_flow_layers:
        return _blind_spots_ranking(system, table, top, threads, progress, cluster)
    if isinstance(table, Ranking):
        table = table.frame()
    table = sort_ranking(table)
    k = min(top, len(table)) if top > 0 else len(table)
    kinds = set(table["element"])
    elements = "all" if kinds == {"node", "edge"} else ("edges" if kinds == {"edge"} else "nodes")
    alone = sweep(decoupled(system), elements, threads=threads, engine=engine, layer=layer,
                  progress=progress, cluster=cluster)
    # Rank in the alone sweep among the table's elements, looked up for the top k only.
    alone_key, table_key = _pair_keys((alone["id"], alone["element"]), (table["id"], table["element"]))
    alone_key, table_key = pd.Index(alone_key), pd.Index(table_key)
    kept = table_key.get_indexer(alone_key) >= 0
    rank_of = np.cumsum(kept)                       # 1-based rank among the kept rows
    top = table.iloc[:k]
    where = alone_key.get_indexer(table_key[:k])
    alone_scores = alone["score"].to_numpy()
    if np.any(where < 0):
        raise ValueError("the table holds elements the sweep without dependencies does not")
    rows = []
    for i, r in enumerate(top.itertuples(index=False)):
        a = int(rank_of[where[i]])
        if a > k and r.score > 0:
            rows.append({"id": r.id, "element": r.element, "layer": r.layer, "rank": i + 1,
                         "alone_rank": a, "score": r.score,
                         "alone_score": alone_scores[where[i]],
                         "cross_layer_lost": r.cross_layer_lost})
    return pd.DataFrame(rows, columns=["id", "element", "layer", "rank", "alone_rank",
                                       "score", "alone_score", "cross_layer_lost"])


def _blind_spots_ranking(system: InfrastructureSystem, r: Ranking, top: int, threads, progress,
                         cluster) -> pd.DataFrame:
    """:func:`blind_spots` from a :class:`Ranking` (core engine): the sweep without
    dependencies runs on the same compiled arrays (:meth:`CompiledSystem.without_dependencies`,
    no table read or compiled again) over the same elements; each top element's rank alone is
    counted from the arrays (elements with a better score or as good and more nodes lost, then
    the tied ones with a smaller id), so neither sweep becomes a table."""
    c = r.compiled
    k = min(top, len(r)) if top > 0 else len(r)
    head = r.order(k)
    shown = r._frame(head)
    alone_c = c.without_dependencies()
    alone = Ranking(system, alone_c, r.el_node, r.el_edge,
                    *core_sweep(alone_c, r.el_node, r.el_edge, threads=threads,
                                progress=progress, cluster=cluster))
    alone.layer_lost = alone.layer_demand_lost = None   # the score and nodes lost suffice
    del alone_c
    key = np.where(np.isnan(alone.score), np.inf, -alone.score)
    lost = alone.nodes_lost
    rows = []
    for i, (p, row) in enumerate(zip(head, shown.itertuples(index=False))):
        if not row.score > 0:
            continue
        same = key == key[p]
        ahead = int(np.count_nonzero(key < key[p])) + int(np.count_nonzero(same & (lost > lost[p])))
        tied = np.flatnonzero(same & (lost == lost[p]))
        tied = tied[tied != p]
        if len(tied):   # ranking_order's tie-break: id as text, then 'edge' before 'node'
            ids, element = alone._ids(tied)
            ids = ids.astype(str) if ids.dtype != object else ids
            mine, my_element = str(row.id), row.element
            ahead += int(np.count_nonzero((ids < mine) | ((ids == mine) & (element < my_element))))
        a = ahead + 1
        if a > k:
            rows.append({"id": row.id, "element": row.element, "layer": row.layer, "rank": i + 1,
                         "alone_rank": a, "score": row.score, "alone_score": alone.score[p],
                         "cross_layer_lost": row.cross_layer_lost})
    return pd.DataFrame(rows, columns=["id", "element", "layer", "rank", "alone_rank",
                                       "score", "alone_score", "cross_layer_lost"])


# ------------------------------------------------------------------ a synthetic system for scale

LIFELINE_SHARES = {"communication": 0.15, "gas": 0.15, "power": 0.25, "transport": 0.20,
                   "water": 0.25}


def synthetic_lifelines(n: int, seed: int = 0, reach: int | None = None) -> InfrastructureSystem:
    """A seeded five-lifeline system of about ``n`` nodes, for benchmarks at 10^3..10^6 nodes.

    Each lifeline is a radial network with loops, unlike the random graphs of
    :func:`cascade.generators.coupled_er`: node i hangs under a uniformly drawn earlier node
    (a random recursive tree: hierarchical, depth about ln n, like substation -> feeder ->
    consumer), or, with ``reach``, under one of the ``reach`` nodes just before it (long
    radial lines, depth about 2 n / reach: the hard case for the sweep, whose cost per
    element grows with the part of the network hanging below it); plus n/10 cross-links
    between nodes at most 40 apart in index.  ``power``, ``water``, ``gas``
    and ``communication`` follow the ``source`` rule with one source per 2 000 nodes;
    ``transport`` follows ``giant``.  Dependencies: 30 % of water nodes, 20 % of gas nodes
    and 10 % of transport nodes (pumps, regulators, signals) need one power node; 5 % of
    power nodes (SCADA) need a communication node; half of the communication sites have two
    alternative power feeds (one group).  Every node works in the intact system.  Ids are
    ``<L>-<i>`` with L the layer's initial (``P-17``), edges ``<L>e<i>``.
    """
    rng = np.random.default_rng(seed)
    nodes, edges, deps, ids = [], [], [], {}
    for layer, share in LIFELINE_SHARES.items():
        size = max(4, int(round(n * share)))
        code = layer[0].upper()
        name = np.char.add(f"{code}-", np.arange(size).astype(str)).astype(object)
        ids[layer] = name
        kind = np.full(size, "", object)
        if layer != "transport":
            kind[: max(1, size // 2000)] = "source"
        if reach:
            parent = np.maximum(0, np.arange(1, size) - rng.integers(1, reach + 1, size - 1))
        else:
            parent = np.floor(rng.random(size - 1) * np.arange(1, size)).astype(np.int64)
        chord_a = rng.integers(0, size, size // 10)
        chord_b = np.clip(chord_a + rng.integers(-40, 41, len(chord_a)), 0, size - 1)
        keep = chord_a != chord_b
        src = np.concatenate([parent, chord_a[keep]])
        dst = np.concatenate([np.arange(1, size), chord_b[keep]])
        demand = np.where(kind == "source", 0.0, rng.integers(1, 10, size).astype(float))
        nodes.append(pd.DataFrame({"id": name, "layer": layer, "kind": kind, "demand": demand}))
        edges.append(pd.DataFrame({"id": np.char.add(f"{code}e", np.arange(len(src)).astype(str)),
                                   "source": name[src], "target": name[dst]}))

    def needs(dependent: str, supplier: str, fraction: float, group: str = "", feeds: int = 1):
        a, b = ids[dependent], ids[supplier]
        who = np.flatnonzero(rng.random(len(a)) < fraction)
        for _ in range(feeds):
            deps.append(pd.DataFrame({"dependent": a[who], "group": group,
                                      "supplier": b[rng.integers(0, len(b), len(who))]}))

    needs("water", "power", 0.3)
    needs("gas", "power", 0.2)
    needs("transport", "power", 0.1)
    needs("power", "communication", 0.05)
    needs("communication", "power", 0.5, group="power", feeds=2)
    return InfrastructureSystem.from_tables(
        pd.concat(nodes, ignore_index=True), pd.concat(edges, ignore_index=True),
        pd.concat(deps, ignore_index=True),
        name=f"lifelines{n}-s{seed}" + (f"-reach{reach}" if reach else ""),
        rules={"transport": "giant"})
