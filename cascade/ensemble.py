"""Monte Carlo ensembles of hazard samples and cascades, on threads or a Dask cluster.

For each sample ``i`` of a :class:`cascade.hazards.Scenario`: the hazard's direct
failures (drawn from common random numbers keyed by (seed, i) and element id), then the
static cascade of docs/format.md (:meth:`cascade.Workspace.run`).  Each sample yields its
service loss per layer and overall; nodes accumulate how often they failed and how often
the hazard failed them directly, the rest being the cascade's share.

Executors
---------
* Local threads (default): the Cython kernel releases the GIL; one Workspace per thread.
* ``scheduler="tcp://host:port"``: an existing Dask distributed cluster.  The compiled
  system and the prepared scenario go once to the store of every worker that lacks them
  (:class:`cascade.cluster.SweepCluster`: they stay there for the next run); each task runs a
  range of consecutive samples, sized on the run from the rate the first tasks measured
  (or the last run on the same inputs), and returns small arrays (losses of the range, the
  per-node failure counts in the smallest type, only the nonzero ones when few are).  A task lost with
  its worker is rerun elsewhere by Dask.
* ``workers=N``: a ``distributed.LocalCluster`` of N single-threaded processes
  (:func:`_local_cluster`: without the nanny's ``MALLOC_TRIM_THRESHOLD_``, which made every
  large temporary a fresh mmap, and without leaking the nanny's variables into this process).

Plain samples (no ``immune``, ``fragility_scale``, attribution or feedback) of a hazard with a
compiled plan (every hazard but rainfall) run in :mod:`cascade._ensemble`: per block of
``BLOCK`` samples, numpy draws the per-sample salts, normals and correlated residual fields,
then one nogil call draws each sample's direct failures, runs its cascade and tallies its
losses, with no Python object per sample; bit for bit the results of the Python path
(``COMPILED_SAMPLING = False`` keeps it, as the tests' oracle).

A system with flow layers runs each sample's cascade on :mod:`cascade.flowcore` (one engine
per thread, its kernels reused across samples) and its loss counts served amounts (partial
service); hazards with feedback and loss attribution refuse flow layers in one line.

Results depend only on the seed and the sample indices: batches are reassembled by index
and counts are integer sums, so threads, processes and clusters give identical numbers.
Dask is the optional extra ``cascade-lifelines[dask]``.
"""
from __future__ import annotations

import math
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .compiled import CompiledSystem, Workspace, compile_system
from .errors import InputError
from .hazards import Scenario
from .progress import ProgressArg, tracker
from .resources import require_memory
from .system import InfrastructureSystem
from .units import layer_weights

PERCENTILES = (5, 50, 95)
BLOCK = 32                       # samples drawn at once
COMPILED_SAMPLING = True         # plain samples in cascade._ensemble (False: the Python path)
CONNECT_TIMEOUT = "10s"          # reaching a Dask scheduler
NO_WORKERS_GRACE = 60.0          # seconds a Dask run waits for workers to come back
_local = threading.local()


def _workspace(compiled: CompiledSystem) -> Workspace:
    """This thread's workspace for ``compiled`` (kernels write into it)."""
    ws = getattr(_local, "ws", None)
    if ws is None or ws.compiled is not compiled:
        ws = _local.ws = Workspace(compiled)
    return ws


def _service(compiled: CompiledSystem, working: np.ndarray, totals) -> np.ndarray:
    """Service per layer and overall of a working mask, shape (L+1,).  The overall column is
    the plain mean over layers here; :func:`run_ensemble` weighs it by the layers' weights
    (:func:`_weigh_overall`): demands of different layers are never added."""
    nodes, demand, layer_demand = totals
    L = len(compiled.layer_names)
    w = working.astype(np.float64)
    served = np.bincount(compiled.node_layer, weights=compiled.demand * w, minlength=L)
    count = np.bincount(compiled.node_layer, weights=w, minlength=L)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_layer = np.where(layer_demand > 0, served / np.where(layer_demand > 0, layer_demand, 1),
                             count / np.where(nodes > 0, nodes, 1))
        overall = per_layer.mean() if len(per_layer) else np.nan
    return np.append(per_layer, overall)


def _service_lost(compiled: CompiledSystem, lost: np.ndarray, totals) -> np.ndarray:
    """:func:`_service` from the indices of the nodes that do not work (a fresh run's
    ``Workspace.changed``): bincounts over the few lost nodes instead of all nodes."""
    nodes, demand, layer_demand = totals
    L = len(compiled.layer_names)
    layer = compiled.node_layer[lost]
    served = layer_demand - np.bincount(layer, weights=compiled.demand[lost], minlength=L)
    count = nodes - np.bincount(layer, minlength=L)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_layer = np.where(layer_demand > 0, served / np.where(layer_demand > 0, layer_demand, 1),
                             count / np.where(nodes > 0, nodes, 1))
        overall = per_layer.mean() if len(per_layer) else np.nan
    return np.append(per_layer, overall)


def _totals(compiled: CompiledSystem):
    L = len(compiled.layer_names)
    layer_demand = np.bincount(compiled.node_layer, weights=compiled.demand, minlength=L)
    return (np.bincount(compiled.node_layer, minlength=L).astype(float),
            float(compiled.demand.sum()), layer_demand)


def _weigh_overall(system, compiled: CompiledSystem, rows: np.ndarray) -> None:
    """Set the last column of ``rows`` (shape (..., L+1)) to the weighted mean of the layer
    columns, with the layers' weights (``system.toml``; every weight 0 counts them equally)."""
    w = layer_weights(system, compiled.layer_names)
    if not w.sum() > 0:
        w = np.ones(len(w))
    if len(w):
        rows[..., -1] = rows[..., :-1] @ (w / w.sum())


def run_batch(compiled: CompiledSystem, scenario: Scenario, seed: int, start: int, stop: int,
              baseline: np.ndarray, baseline_service: np.ndarray, immune=(),
              fragility_scale=None, attribute: bool | str = False, cancel=None) -> tuple:
    """Samples ``start .. stop-1``: the work unit of every executor.

    ``cancel`` (a :class:`threading.Event`, threads only) is checked between blocks of
    samples: once set, the batch stops early and returns ``None``.

    Returns
    -------
    start : int
    loss : ndarray of float64, shape (stop-start, L+1)
        Service lost per layer and overall, relative to the intact system.
    failed : ndarray of int32, shape (n,)
        How many of these samples each node (working when intact) stopped working in.
    direct : ndarray of int32, shape (n,)
        How many of them the hazard failed it directly.
    n_direct : ndarray of int32, shape (stop-start, 2)
        Direct node and edge failures per sample.
    node_share, edge_share : ndarray of float64, shapes (n, L+1) and (m, L+1)
        Only with ``attribute`` (``True`` or ``"equal"``, or ``"marginal"``): per element,
        the sum over these samples of its share of the sample's loss among the elements the
        hazard failed directly in it (see :func:`cascade.risk.sample_shares`).

    A hazard with ``feedback`` (rainfall) runs with the cascade to their fixpoint
    (:meth:`Scenario.run`); its direct failures are what it failed in the end.
    """
    if compiled.has_flow_layers:
        return _run_flow_batch(compiled, scenario, seed, start, stop, baseline, baseline_service,
                               immune, fragility_scale, attribute, cancel)
    feedback = getattr(scenario.hazard, "feedback", False)
    plain = not immune and not fragility_scale and not feedback
    if plain and not attribute and COMPILED_SAMPLING:
        plan = _plan(compiled, scenario)
        if plan is not None:
            return _run_compiled_batch(compiled, scenario, plan, seed, start, stop, baseline,
                                       baseline_service, cancel)
    ws = _workspace(compiled)
    totals, loss, failed, direct, n_direct = _batch_buffers(compiled, stop - start)
    if attribute:
        node_share = np.zeros((compiled.n_nodes, loss.shape[1]))
        edge_share = np.zeros((compiled.n_edges, loss.shape[1]))
        how, cache = ("marginal" if attribute == "marginal" else "equal"), {}
        from .risk import sample_shares

    def share(k, i, nodes, edges):
        if len(nodes) + len(edges):
            part = sample_shares(compiled, scenario, ws, i, seed, nodes, edges, loss[k], baseline_service,
                                 totals, how, immune, fragility_scale, cache)
            node_share[nodes] += part[:len(nodes)]
            edge_share[edges] += part[len(nodes):]
    for k, i in enumerate(range(start, stop)):
        if k % BLOCK == 0 and cancel is not None and cancel.is_set():
            return None
        if feedback:
            nodes, edges = scenario.run(compiled, ws, i, seed=seed, immune=immune,
                                        fragility_scale=fragility_scale)
            lost = np.flatnonzero(ws.working == 0)
            loss[k] = baseline_service - _service_lost(compiled, lost, totals)
            failed[lost] += baseline[lost]
            direct[nodes] += baseline[nodes]
            n_direct[k] = len(nodes), len(edges)
            if attribute:
                share(k, i, nodes, edges)
            continue
        if plain and k % BLOCK == 0:
            # Draw BLOCK samples at once (vectorised, identical to one by one).
            block = scenario.sample_block(compiled, i, min(i + BLOCK, stop), seed=seed)
        if plain:
            nodes, edges = block[k % BLOCK]
        else:
            nodes, edges = scenario.sample(compiled, i, seed=seed, immune=immune,
                                           fragility_scale=fragility_scale)
        ws.run(nodes, edges)
        # A fresh run starts from all-working, so `changed` lists every node that is down.
        lost = ws.changed[:ws.n_changed]
        loss[k] = baseline_service - _service_lost(compiled, lost, totals)
        failed[lost] += baseline[lost]
        direct[nodes] += baseline[nodes]
        n_direct[k] = len(nodes), len(edges)
        if attribute:
            share(k, i, nodes, edges)
    if attribute:
        return start, loss, failed, direct, n_direct, node_share, edge_share
    return start, loss, failed, direct, n_direct


def _plan(compiled: CompiledSystem, scenario: Scenario):
    """The scenario's :class:`cascade.hazards.SamplingPlan` for ``compiled`` (built once, kept
    with the prepared scenario), or None when its hazard samples in Python only."""
    prep = scenario._prepared(compiled)
    if "compiled_plan" not in prep:
        plan = scenario.hazard.compiled_plan(prep, compiled) if _plan_is_current(scenario.hazard) else None
        prep["compiled_plan"] = None if plan is None else (
            plan, plan.nodes.arrays(), plan.edges.arrays(),
            (bool(plan.variability), float(plan.break_fraction), bool(plan.grid)))
    return prep["compiled_plan"]


def _owner(cls, name: str):
    """The class of ``cls``'s MRO that defines attribute ``name``."""
    return next(k for k in cls.__mro__ if name in vars(k))


def _plan_is_current(hazard) -> bool:
    """A hazard's compiled plan stands for its draws only where it is defined at or below the
    class that defines ``draw`` and ``draw_block``: a subclass that changes how it draws but
    inherits its parent's plan samples in Python."""
    cls = type(hazard)
    plan = _owner(cls, "compiled_plan")
    return all(issubclass(plan, _owner(cls, name)) for name in ("draw", "draw_block", "plan_inputs"))


def _run_compiled_batch(compiled, scenario, plan, seed, start, stop, baseline, baseline_service,
                        cancel=None) -> tuple:
    """:func:`run_batch` of a plain sample range in compiled code (:mod:`cascade._ensemble`):
    per block of ``BLOCK`` samples, the samples' salts and normals (and correlated residuals)
    in numpy, then one nogil call that draws, cascades and tallies every sample of the block.
    Bit for bit the results of the Python path (tests/test_ensemble_compiled.py)."""
    from . import _draws, _ensemble
    from .hazards import Draws

    ws = _workspace(compiled)
    c = compiled
    totals, loss, failed, direct, n_direct = _batch_buffers(compiled, stop - start)
    layer_count, _, layer_demand = totals
    L = len(c.layer_names)
    _hplan, n_part, e_part, (variability, bf, grid) = plan
    bufs = getattr(ws, "_ensemble_buffers", None)
    if bufs is None:
        k = max(len(n_part[1]), len(e_part[1]), 1)
        bufs = ws._ensemble_buffers = (np.zeros(c.n_nodes, c.index_dtype), np.zeros(c.n_edges, c.index_dtype),
                                       np.zeros(k), np.zeros(k), np.zeros(L), np.zeros(L, np.int64))
    if len(bufs[2]) < max(len(n_part[1]), len(e_part[1])):
        k = max(len(n_part[1]), len(e_part[1]))
        bufs = ws._ensemble_buffers = bufs[:2] + (np.zeros(k), np.zeros(k)) + bufs[4:]
    local = getattr(ws, "_ensemble_local", None)
    if local is None:
        local = ws._ensemble_local = _local_rule_buffers(c)
    base8 = np.ascontiguousarray(baseline, np.uint8)
    demand = np.ascontiguousarray(c.demand, np.float64)
    service = np.empty((stop - start, L))
    no_eps, no_nug = np.zeros((0, 0)), np.zeros(0)
    ws.edge_failed[:] = 0
    hazard, prep = scenario.hazard, scenario._prepared(compiled)
    for s in range(start, stop, BLOCK):
        if cancel is not None and cancel.is_set():
            return None
        e = min(s + BLOCK, stop)
        salts, first = np.empty((e - s, 4), np.uint64), np.empty(e - s)
        if 0 <= seed < 2**64 and 0 <= s and e < 2**63:
            _draws.sample_draws(seed, s, e, salts, first)       # Draws.of in C, bit for bit
        else:
            draws = [Draws.of(seed, i) for i in range(s, e)]
            salts[:] = [d.salts for d in draws]
            first[:] = [d.rng.standard_normal() for d in draws]
        normal, n_eps, e_eps = hazard.plan_inputs(prep, salts, first)
        # Residuals: None (keyed, drawn in compiled code), (B, k), or (B, k) without the grid
        # fields' nuggets and the nuggets' standard deviations (k,) (-1: none).
        (n_eps, n_nug), (e_eps, e_nug) = (r if isinstance(r, tuple) else (r, no_nug) for r in (n_eps, e_eps))
        a, b = s - start, e - start
        ws.n_changed = _ensemble.run_block(
            *n_part, *e_part, variability, bf, grid, salts, np.ascontiguousarray(normal, np.float64),
            n_eps is not None, no_eps if n_eps is None else np.ascontiguousarray(n_eps, np.float64),
            e_eps is not None, no_eps if e_eps is None else np.ascontiguousarray(e_eps, np.float64),
            np.ascontiguousarray(n_nug, np.float64), np.ascontiguousarray(e_nug, np.float64),
            c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, c.layer_ptr, c.layer_nodes, c.node_layer,
            c.layer_rule, c.is_source, c.grp_ptr, c.sup_ptr, c.rdep_ptr, c.rdep_grp, c.group_owner,
            ws.group_held, c.edge_src, ws.edge_failed, ws.working, ws.fail_round, ws.cause,
            ws.via_group, ws.alive, ws.changed, ws.queue, ws.comp, ws.layer_dirty,
            *bufs, demand, layer_demand, layer_count, base8,
            service[a:b], failed, direct, n_direct[a:b], *local)
    # Loss = intact service - service, the overall column from the plain mean (as _service_lost).
    loss[:, :L] = baseline_service[:L] - service
    loss[:, L] = baseline_service[L] - (service.mean(axis=1) if L else np.nan)
    return start, loss, failed, direct, n_direct


def _local_rule_buffers(c: CompiledSystem) -> tuple:
    """What :func:`cascade._ensemble.run_block`'s local rules need, for the intact system
    (every node working, no edge failed; run_block uses them only when that is a fixpoint):
    the supply forest, each layer's first node and size, the per-arc flags and each edge's two
    arcs (read-only), then this thread's copy of the flags and the region's scratch."""
    from . import _core

    n, L, idx = c.n_nodes, len(c.layer_names), c.index_dtype
    working, edge_failed = np.ones(n, np.uint8), np.zeros(c.n_edges, np.uint8)
    parent, par_edge, scratch = np.zeros(n, idx), np.zeros(n, idx), np.zeros(n, idx)
    child_ptr, child_idx = np.zeros(n + 1, idx), np.zeros(n, idx)
    _core.supply_forest(c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, c.layer_ptr, c.layer_nodes,
                        c.layer_rule, c.is_source, working, edge_failed, parent, par_edge,
                        child_ptr, child_idx, scratch)
    sizes = np.diff(np.asarray(c.layer_ptr)).astype(idx)
    first = np.asarray(c.layer_nodes)[np.minimum(np.asarray(c.layer_ptr[:-1]), max(n - 1, 0))] if n else sizes
    layer_root = np.where(sizes > 0, first, -1).astype(idx)
    arc0 = np.zeros(len(c.adj_nbr), np.uint8)
    _core.arc_flags(c.adj_edge, c.adj_fwd, edge_failed, arc0)
    edge_arc = np.zeros(len(c.adj_edge), idx)
    _core.edge_arcs(c.adj_edge, c.n_edges, edge_arc)
    return (np.ascontiguousarray(c.edge_dst, idx), arc0, edge_arc, child_ptr, child_idx, par_edge,
            layer_root, sizes, arc0.copy(), np.zeros(n, np.uint8), np.zeros(n, idx), np.zeros(L, idx),
            np.zeros(L, idx))


def require_plain_flow_ensemble(compiled: CompiledSystem, scenario: Scenario, attribute, what: str) -> None:
    """Refuse, in one line, what ensembles on flow layers do not do yet: hazards with feedback
    (rainfall) and loss attribution (``cascade risk``)."""
    if not compiled.has_flow_layers:
        return
    if getattr(scenario.hazard, "feedback", False):
        raise InputError(f"{what}: hazards that run with the cascade (rainfall) do not take flow layers yet")
    if attribute:
        raise InputError(f"{what}: loss attribution does not take flow layers yet")


def _flow_service(compiled: CompiledSystem, working: np.ndarray, served: np.ndarray, totals) -> np.ndarray:
    """:func:`_service` of a flow system: each node counts ``demand × served fraction`` (0 for
    a node that stopped), so partial service counts."""
    nodes, demand, layer_demand = totals
    L = len(compiled.layer_names)
    amount = np.bincount(compiled.node_layer, weights=compiled.demand * served, minlength=L)
    count = np.bincount(compiled.node_layer, weights=working.astype(np.float64), minlength=L)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_layer = np.where(layer_demand > 0, amount / np.where(layer_demand > 0, layer_demand, 1),
                             count / np.where(nodes > 0, nodes, 1))
        overall = per_layer.mean() if len(per_layer) else np.nan
    return np.append(per_layer, overall)


def _batch_buffers(compiled: CompiledSystem, b: int) -> tuple:
    """What a batch of ``b`` samples fills: the layers' totals, then loss (b, L+1), failed and
    direct counts per node, and direct failures per sample."""
    return (_totals(compiled), np.empty((b, len(compiled.layer_names) + 1)),
            np.zeros(compiled.n_nodes, np.int32), np.zeros(compiled.n_nodes, np.int32),
            np.zeros((b, 2), np.int32))


def _run_flow_batch(compiled, scenario, seed, start, stop, baseline, baseline_service, immune,
                    fragility_scale, attribute, cancel=None) -> tuple:
    """:func:`run_batch` on a system with flow layers: each sample's cascade on the flow core
    (:func:`cascade.flowcore.flow_engine`, one per thread), the loss from served amounts."""
    from .flowcore import flow_engine

    engine = flow_engine(compiled)
    totals, loss, failed, direct, n_direct = _batch_buffers(compiled, stop - start)
    plain = not immune and not fragility_scale
    for k, i in enumerate(range(start, stop)):
        if k % BLOCK == 0 and cancel is not None and cancel.is_set():
            return None
        if plain and k % BLOCK == 0:
            block = scenario.sample_block(compiled, i, min(i + BLOCK, stop), seed=seed)
        if plain:
            nodes, edges = block[k % BLOCK]
        else:
            nodes, edges = scenario.sample(compiled, i, seed=seed, immune=immune,
                                           fragility_scale=fragility_scale)
        working, *_rest = run = engine.run(nodes, edges, table=False)     # trips not needed
        lost = np.flatnonzero(~working)
        loss[k] = baseline_service - _flow_service(compiled, working, run[4], totals)
        failed[lost] += baseline[lost]
        direct[nodes] += baseline[nodes]
        n_direct[k] = len(nodes), len(edges)
    return start, loss, failed, direct, n_direct


@dataclass
class EnsembleResult:
    """The outcome of :func:`run_ensemble`.

    Attributes
    ----------
    compiled : CompiledSystem
    loss : ndarray of float64, shape (samples, L+1)
        Service loss per sample: one column per layer (``compiled.layer_names`` order),
        the last one overall: the mean of the layers' losses weighted by their weights
        (``system.toml``, default 1), never raw demands added.  Loss = intact service -
        service after.
    failed, direct : ndarray of int64, shape (n,)
        Per node, in how many samples it stopped working / was failed by the hazard itself
        (only nodes that work in the intact system are counted).
    n_direct : ndarray of int64, shape (samples, 2)
        Direct node and edge failures per sample.
    node_share, edge_share : ndarray of float64, shapes (n, L+1) and (m, L+1), or None
        With ``run_ensemble(..., attribute=True)``: per element, the sum over samples of
        each sample's loss split equally among the elements the hazard failed directly in
        it, or in proportion to the loss each avoids when spared (``attribute="marginal"``);
        ``cascade risk`` attributes expected losses with it.
    """

    compiled: CompiledSystem
    loss: np.ndarray
    failed: np.ndarray
    direct: np.ndarray
    n_direct: np.ndarray
    seed: int
    scenario: dict = field(default_factory=dict)
    executor: str = "threads"
    node_share: np.ndarray | None = None
    edge_share: np.ndarray | None = None

    @property
    def samples(self) -> int:
        return len(self.loss)

    def summary(self) -> pd.DataFrame:
        """Loss distribution: columns ``layer``, ``mean``, ``p5``, ``p50``, ``p95``, then
        ``mean_low`` and ``mean_high``, the Student t 95 % interval of the mean
        (``mean ± t(0.975, n-1) · sd / √n``, NaN below two samples); one row per layer and a
        last row ``overall``."""
        names = list(self.compiled.layer_names) + ["overall"]
        low = high = np.full(len(names), np.nan)
        if self.samples == 0:
            q = np.full((len(PERCENTILES), len(names)), np.nan)
            mean = np.full(len(names), np.nan)
        else:
            q = np.percentile(self.loss, PERCENTILES, axis=0)
            mean = self.loss.mean(axis=0)
            if self.samples > 1:
                from .light import t95

                half = t95(self.samples) * self.loss.std(axis=0, ddof=1) \
                    / math.sqrt(self.samples)
                low, high = mean - half, mean + half
        return pd.DataFrame({"layer": names, "mean": mean, "p5": q[0], "p50": q[1], "p95": q[2],
                             "mean_low": low, "mean_high": high})

    def node_probability(self) -> pd.DataFrame:
        """Per node: ``id``, ``layer``, ``p_fail`` (stopped working), ``p_direct`` (failed by
        the hazard), ``p_cascade`` = p_fail - p_direct (failed only through the cascade);
        sorted by p_fail, then p_direct, descending, then file order."""
        c = self.compiled
        s = max(self.samples, 1)
        p_fail, p_direct = self.failed / s, self.direct / s
        order = np.lexsort((np.arange(c.n_nodes), -p_direct, -p_fail))
        layers = np.asarray(c.layer_names, dtype=object)[c.node_layer]
        return pd.DataFrame({"id": c.node_ids[order], "layer": layers[order],
                             "p_fail": p_fail[order], "p_direct": p_direct[order],
                             "p_cascade": (p_fail - p_direct)[order]})

    def to_dict(self, top: int | None = None) -> dict:
        """The JSON of ``cascade scenario --format json``: the scenario, the loss summary and
        every node that failed in at least one sample (or the ``top`` most likely)."""
        summary = self.summary()
        nodes = self.node_probability()
        nodes = nodes[nodes["p_fail"] > 0]
        failing = len(nodes)
        if top is not None:
            nodes = nodes.head(top)
        nd = self.n_direct.mean(axis=0) if self.samples else np.full(2, np.nan)
        return {
            "system": self.compiled.name, "scenario": self.scenario, "seed": self.seed,
            "samples": self.samples, "executor": self.executor,
            "direct_failures_mean": {"nodes": float(nd[0]), "edges": float(nd[1])},
            "loss": {r.layer: {"mean": r.mean, "p5": r.p5, "p50": r.p50, "p95": r.p95,
                               "mean_low": r.mean_low, "mean_high": r.mean_high}
                     for r in summary.itertuples(index=False)},
            "nodes_failing": failing,   # nodes that fail in some sample; "nodes" lists the top
            "nodes": [{"id": str(r.id), "layer": r.layer, "p_fail": r.p_fail, "p_direct": r.p_direct,
                       "p_cascade": r.p_cascade} for r in nodes.itertuples(index=False)],
        }


def _batches(samples: int, parts: int, cap: int = 256) -> list[tuple[int, int]]:
    size = max(1, min(cap, math.ceil(samples / max(1, parts))))
    return [(s, min(s + size, samples)) for s in range(0, samples, size)]


def _dask():
    try:
        import distributed
    except ImportError:
        raise InputError("running on Dask needs the optional extra 'dask': "
                         "pip install 'cascade-lifelines[dask]'") from None
    return distributed


def run_ensemble(system: InfrastructureSystem, scenario: Scenario, samples: int,
                 seed: int | None = None, threads: int | None = None, scheduler: str | None = None,
                 workers: int | None = None, compiled: CompiledSystem | None = None,
                 progress: ProgressArg = False, immune=(), fragility_scale=None,
                 batch_size: int | None = None, attribute: bool | str = False,
                 cluster=None) -> EnsembleResult:
    """Run ``samples`` hazard samples, each followed by the cascade.

    Parameters
    ----------
    system : InfrastructureSystem
    scenario : Scenario
    samples : int
        Number of samples (indices 0 .. samples-1).
    seed : int, optional
        Overrides the scenario's seed.
    threads : int, optional
        Local threads (default: the usable CPUs).  Ignored with ``scheduler``/``workers``.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    workers : int, optional
        Start a local Dask cluster of this many single-threaded worker processes.
    cluster : cascade.cluster.SweepCluster, optional
        An open Dask client to run on (instead of ``scheduler``/``workers``), left open: a
        loop of runs on one cluster connects once (see *Dask speed* in the README).
    compiled : CompiledSystem, optional
    progress : None, bool or callable
        ``True``: a tqdm bar on stderr; a callable gets ``(samples done, samples, label)``
        after each batch (see :mod:`cascade.progress`).
    immune, fragility_scale
        Passed to :meth:`Scenario.sample` for every sample.
    batch_size : int, optional
        Samples per task.  Default: threads take about 8 batches per thread, at most 256
        samples each; on Dask the first tasks hold 64 samples and time the work on the
        workers, the later ones about ``cascade.cluster.TASK_SECONDS`` of samples each,
        shrinking toward the end (:meth:`cascade.cluster.SweepCluster.run_ranges`).
    attribute : bool or {"equal", "marginal"}
        Also accumulate ``node_share`` / ``edge_share`` (see :class:`EnsembleResult`):
        ``True``/``"equal"`` splits each sample's loss equally among its direct failures,
        ``"marginal"`` in proportion to what sparing each one alone avoids (one more hazard
        sample and cascade per direct failure of every sample with a loss).

    Returns
    -------
    EnsembleResult

    Raises
    ------
    InputError
        On bad arguments, a missing Dask, or a scheduler that cannot be reached.
    """
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
        raise InputError(f"samples must be a non-negative integer, not {samples!r}")
    if scheduler is not None and workers is not None:
        raise InputError("give either a scheduler address or a number of workers, not both")
    if cluster is not None and (scheduler is not None or workers is not None):
        raise InputError("give either a cluster or a scheduler address or a number of workers")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, not {threads}")
    compiled = compiled if compiled is not None else compile_system(system)
    seed = scenario.seed if seed is None else int(seed)
    scenario.prepared_for(system, compiled)
    if compiled.has_flow_layers:
        from .flowcore import flow_engine

        require_plain_flow_ensemble(compiled, scenario, attribute, "ensembles")
        intact = flow_engine(compiled).run()
        baseline = intact[0].astype(bool)
        baseline_service = _flow_service(compiled, intact[0], intact[4], _totals(compiled))
    else:
        ws = Workspace(compiled)
        ws.run()
        baseline = ws.working.astype(bool)
        baseline_service = _service(compiled, baseline, _totals(compiled))
    n, L = compiled.n_nodes, len(compiled.layer_names)
    require_memory(samples * ((L + 1) * 8 + 16), f"{samples:,} samples")
    loss = np.empty((samples, L + 1))
    failed = np.zeros(n, np.int64)
    direct = np.zeros(n, np.int64)
    n_direct = np.zeros((samples, 2), np.int64)
    node_share = np.zeros((n, L + 1)) if attribute else None
    edge_share = np.zeros((compiled.n_edges, L + 1)) if attribute else None

    def collect(part):
        start, lb, fb, db, nb = part[:5]
        loss[start:start + len(lb)] = lb
        n_direct[start:start + len(lb)] = nb
        np.add(failed, fb, out=failed)
        np.add(direct, db, out=direct)
        if attribute:
            np.add(node_share, part[5], out=node_share)
            np.add(edge_share, part[6], out=edge_share)
        return len(lb)

    bar = tracker(progress, samples, str(scenario.name), "sample")
    args = (scenario, seed)
    kw = dict(immune=tuple(immune), fragility_scale=dict(fragility_scale) if fragility_scale else None)
    if attribute:
        kw["attribute"] = attribute
    try:
        if scheduler is None and workers is None and cluster is None:
            threads = threads or _default_threads()
            executor = f"threads ({threads})"
            spans = _batches(samples, threads * 8, batch_size or 256)
            if threads == 1:
                for a, b in spans:
                    done = collect(run_batch(compiled, *args, a, b, baseline, baseline_service, **kw))
                    bar.update(done)
            else:
                cancel = threading.Event()
                pool = ThreadPoolExecutor(threads)
                try:
                    futures = [pool.submit(run_batch, compiled, *args, a, b, baseline,
                                           baseline_service, cancel=cancel, **kw) for a, b in spans]
                    for f in futures:
                        done = collect(f.result())
                        bar and bar.update(done)
                except BaseException:
                    # Ctrl-C (or an error): drop the queued batches and stop the running ones at
                    # their next block, instead of computing the rest of the ensemble first.
                    cancel.set()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                pool.shutdown(wait=True)
        else:
            executor = _run_dask(compiled, args, kw, samples, baseline, baseline_service, scheduler,
                                 workers, batch_size, collect, bar, cluster)
    finally:
        bar.close()
    _weigh_overall(system, compiled, loss)
    return EnsembleResult(compiled, loss, failed, direct, n_direct, seed,
                          scenario={**scenario.describe(), "seed": seed}, executor=executor,
                          node_share=node_share, edge_share=edge_share)


def _default_threads() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _seconds(timeout) -> float:
    if isinstance(timeout, (int, float)):
        return float(timeout)
    from dask.utils import parse_timedelta

    return float(parse_timedelta(timeout))


def check_scheduler(address: str) -> str:
    """Ask ``address`` who it is, within ``CONNECT_TIMEOUT``; return the address when a Dask
    scheduler answers.

    ``distributed.Client`` alone waits forever on a port that accepts connections but does
    not speak Dask, and prints tracebacks for a malformed address; this probe does neither.

    Raises
    ------
    InputError
        One line: a malformed address, nothing listening, or something that is not a Dask
        scheduler.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor as _Pool

    _dask()
    from distributed.comm import connect

    text = str(address).strip()
    if not text:
        raise InputError("the Dask scheduler address is empty (e.g. tcp://10.0.0.5:8786)", "--scheduler")
    seconds = _seconds(CONNECT_TIMEOUT)

    async def probe():
        comm = await connect(text, timeout=seconds)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def run():
        return asyncio.run(asyncio.wait_for(probe(), seconds))

    try:
        with _Pool(1) as pool:  # its own event loop, also when the caller has one running
            reply = pool.submit(run).result()
    except (asyncio.TimeoutError, TimeoutError):
        raise InputError(f"cannot reach the Dask scheduler at {text}: no answer within {seconds:g} s "
                         "(nothing listening there, or not a Dask scheduler)", "--scheduler") from None
    except Exception as exc:  # a malformed address, a refused or reset connection
        raise InputError(f"cannot reach the Dask scheduler at {text}: {_one_line(exc)}", "--scheduler") from None
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise InputError(f"{text} answered, but not as a Dask scheduler", "--scheduler")
    return text


def _dask_batch(compiled_token: str, state_token: str, seed: int, kw: dict, start: int,
                stop: int):
    """A Dask task: :func:`run_batch` of samples ``start .. stop-1`` on the compiled system
    and the (scenario, baseline, baseline service) of the workers' store
    (:func:`cascade.cluster.stored`): prepared once per worker, its workspace kept between
    tasks."""
    from .cluster import stored

    compiled = stored(compiled_token)
    scenario, baseline, baseline_service = stored(state_token)
    part = run_batch(compiled, scenario, seed, start, stop, baseline, baseline_service, **kw)
    # The per-node counts travel compacted (they are most of a result on a large system).
    return part[:2] + (_pack_counts(part[2], stop - start), _pack_counts(part[3], stop - start)) + part[4:]


def _pack_counts(counts: np.ndarray, samples: int) -> tuple:
    """Per-node counts of a range of ``samples`` samples as a task returns them: the smallest
    unsigned type that holds ``samples``, and only the nonzero ones (positions and values)
    when fewer than a third of the nodes have any.  :func:`_unpack_counts` reverses it."""
    dtype = np.uint8 if samples < 2**8 else np.uint16 if samples < 2**16 else np.uint32
    nonzero = np.flatnonzero(counts)
    if 3 * len(nonzero) < len(counts):
        index = nonzero.astype(np.int32 if len(counts) < 2**31 else np.int64)
        return len(counts), index, counts[nonzero].astype(dtype)
    return len(counts), None, counts.astype(dtype)


def _unpack_counts(packed: tuple) -> np.ndarray:
    """The dense int64 counts of :func:`_pack_counts`."""
    n, index, values = packed
    if index is None:
        return values.astype(np.int64)
    out = np.zeros(n, np.int64)
    out[index] = values
    return out


def _unpacked(collect):
    """``collect`` of a :func:`_dask_batch` result (its per-node counts unpacked)."""
    def unpack(part):
        return collect(part[:2] + (_unpack_counts(part[2]), _unpack_counts(part[3])) + part[4:])
    return unpack


def _run_dask(compiled, args, kw, samples, baseline, baseline_service, scheduler, workers,
              batch_size, collect, bar, cluster=None) -> str:
    """The ensemble on Dask (:class:`cascade.cluster.SweepCluster`): the compiled system and the
    prepared scenario go to the workers' stores (only to those that lack them: a second run
    on the same cluster sends nothing), then tasks of sample ranges sized while the run goes
    (:meth:`~cascade.cluster.SweepCluster.run_ranges`; ``batch_size`` fixes their size)."""
    from .cluster import SweepCluster, content_token

    state = (args[0], baseline, baseline_service)
    if cluster is not None:
        return _run_on(cluster, compiled, state, args, kw, samples, batch_size, collect, bar)
    # A local cluster's workers start as forks of this process: with the compiled system and
    # the prepared scenario in their stores already (nothing to send).
    tokens = [content_token(compiled, True), content_token(state)]
    carry = dict(zip(tokens, (compiled, state))) if workers is not None else None
    with SweepCluster(scheduler, workers, carry=carry) as cluster:
        return _run_on(cluster, compiled, state, args, kw, samples, batch_size, collect, bar, tokens)


def _run_on(cluster, compiled, state, args, kw, samples, batch_size, collect, bar,
            tokens=None) -> str:
    """:func:`_run_dask` on an open :class:`~cascade.cluster.SweepCluster` (left open)."""
    c_token, s_token = cluster.share_all([compiled, state], tokens, memo=[True, False])
    cluster.run_ranges(_dask_batch, lambda a, b: (c_token, s_token, args[1], kw, a, b), samples,
                       _unpacked(collect), bar, first=2 * BLOCK, minimum=BLOCK, size=batch_size,
                       unit="samples", name="run_batch",
                       rate_key=("run_batch", c_token, s_token, repr(sorted(kw.items()))))
    return cluster.label


#: How :func:`_local_cluster` starts its worker processes: ``fork`` on Linux (a copy of this
#: process, with numpy, distributed and cascade already imported: about 0.5 s for 2 workers on
#: 2 cores, where Dask's default ``spawn`` starts fresh interpreters that import everything
#: again, 4 s on the quiet machine and 8-9 s under load), Dask's default elsewhere (macOS:
#: fork is unsafe with its system libraries).  ``None``: Dask's configured method.
LOCAL_START_METHOD = "fork" if sys.platform.startswith("linux") else None


def local_start_method() -> str | None:
    """The start method of the local workers: the environment variable
    ``CASCADE_START_METHOD`` (``fork``, ``spawn`` or ``forkserver``; fork with threads alive
    here can deadlock a child) if set, else :data:`LOCAL_START_METHOD`."""
    import os

    value = os.environ.get("CASCADE_START_METHOD", "").strip()
    if value and value not in ("fork", "spawn", "forkserver"):
        raise InputError(f"must be fork, spawn or forkserver, not '{value}'", "CASCADE_START_METHOD")
    return value or LOCAL_START_METHOD

#: Variables distributed's nanny puts in ``os.environ`` of the process that starts the workers
#: (``distributed.nanny.pre-spawn-environ``): restored after the cluster starts and stops.
_NANNY_ENVIRON = ("MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "OPENBLAS_NUM_THREADS")


#: Dask settings of the local cluster's scheduler, nannies and workers (issue 15): its
#: periodic work made quieter.  Each of these runs on the event loops whatever the tasks do,
#: and on 2 cores the parent (scheduler, nannies, client) and the workers' loops take their
#: time from the cores the tasks run on.  Idle, 2 workers and the parent took 9 % of a core
#: with Dask's defaults, 2 % with these (``/proc`` thread times over 4 s); in a run the
#: overhead counts per wall second (the ticks) and per task.  None of them changes what a
#: task computes.
QUIET_CONFIG = {
    # The workers' statistical profiler: a stack sample every 10 ms, for a dashboard nobody
    # opens here.
    "distributed.worker.profile.enabled": False,
    # The event loops' tick (it measures how long a loop was blocked, for a warning after
    # 3 s): every 1 s instead of every 20 ms.
    "distributed.admin.tick.interval": "1s",
    # psutil's look at the process (CPU, memory, network; disk off) for the dashboard's
    # plots and the heartbeats: every 2 s instead of 0.5 s.
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
    # The nannies' and workers' memory checks (spill, pause, restart at 95 % of the limit):
    # every 0.5 s instead of 0.1 s.
    "distributed.worker.memory.monitor-interval": "500ms",
}


def _restore_environ(saved: dict) -> None:
    """Put back the variables of :data:`_NANNY_ENVIRON` as ``saved`` had them (None: unset)."""
    import os

    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _local_cluster(distributed, workers: int):
    """A LocalCluster of ``workers`` single-threaded worker processes, for ``--workers``.

    * Its processes ignore SIGINT: Ctrl-C at the terminal reaches the whole process group, and
      the command (not each worker, with its traceback) decides what stops.  The worker
      processes inherit the ignored SIGINT from this process, which ignores it while they
      start (a few seconds); a Ctrl-C in that window is lost (press it again).
    * Without the allocator penalty: distributed's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536``
      in its workers, which makes glibc return every large freed block to the system at once,
      so every large temporary array becomes a fresh ``mmap`` and its pages fault again (on the
      demo town's ensembles, 2 workers were slower than 1 thread).  The workers start without
      it (glibc's adaptive default; a value already in this process's environment is kept).
    * Started by ``fork`` on Linux (:data:`LOCAL_START_METHOD`): the workers begin as copies of
      this process, its modules already imported, instead of fresh interpreters (``spawn``)
      that import numpy, distributed and cascade again; the variables below are inherited
      the same way.
    * Quiet (:data:`QUIET_CONFIG`): no profiler, and the event loops' periodic checks less
      often, since on a machine with as many cores as workers they run on the tasks' cores.
    * Without leaking: the nanny writes its variables (that one, ``PYTHONHASHSEED``) into this
      process's ``os.environ`` before it spawns a worker; they are put back as they were once
      the workers run, and again by :func:`close_local_cluster`.

    Close it with :func:`close_local_cluster` (``cluster.close()`` works too, minus the
    second restore).  ``cascade risk`` and the sweeps' ``--workers`` share this helper.
    """
    import os
    import signal

    import dask

    method = local_start_method()
    saved = {key: os.environ.get(key) for key in _NANNY_ENVIRON}
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        config = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None, **QUIET_CONFIG}
        if method:
            config["distributed.worker.multiprocessing-method"] = method
        with dask.config.set(config):
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=40)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        _restore_environ(saved)
    cluster._cascade_environ = saved
    return cluster


def close_local_cluster(cluster) -> None:
    """Close a cluster of :func:`_local_cluster` and restore the environment variables its
    nanny may have set again (a worker restarted after a crash); errors while shutting down
    (Ctrl-C) are swallowed: the run's own error matters."""
    try:
        cluster.close()
    except Exception:
        pass
    finally:
        saved = getattr(cluster, "_cascade_environ", None)
        if saved is not None:
            _restore_environ(saved)
