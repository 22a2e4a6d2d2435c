"""Flow kernels on arrays: the Python face of ``cascade/_flow.pyx``.

Two rules of docs/format.md (v2), each on one layer given as plain arrays (indices, masks, amounts):

* :func:`maxmin_flow` / :class:`MaxMinFlow` for a ``flow`` layer: max-min fair served amounts by
  priority class (exact, by parametric maximum flow: Fujishige's decomposition algorithm with
  Dinic's max-flow), a flow per edge that delivers them, and the working nodes;
* :func:`dc_cascade` / :class:`DCFlow` for a ``dcflow`` layer: DC power flow per island with
  proportional shedding by priority class and overload trips to the end, the factorization
  reused by Woodbury updates while branches leave an island without splitting it.

The classes keep buffers (and, for :class:`DCFlow`, the factors of the intact grid) between
calls, so a fixpoint or an N-1 sweep builds them once per layer and calls them many times.
Inputs are checked here (shapes, dtypes, ranges); the compiled code trusts them.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cascade import _flow

__all__ = ["MaxMinFlow", "MaxMinResult", "maxmin_flow", "DCFlow", "DCResult", "DCBatch",
           "dc_cascade"]


def _index(a, name: str, m: int | None = None, n: int | None = None) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.ndim != 1 or (m is not None and a.shape[0] != m):
        raise ValueError(f"{name}: expected shape ({m},), got {a.shape}")
    if n is not None and a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{name}: index outside 0..{n - 1}")
    return a


def _mask(a, name: str, size: int) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=bool).view(np.uint8)
    if a.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},), got {a.shape}")
    return a


def _floats(a, name: str, size: int, nonneg: bool = True, nan: float | None = None,
            allow_nan: bool = False) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True).reshape(-1)
    if a.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},), got {a.shape}")
    if nan is not None:
        a[np.isnan(a)] = nan
    elif not allow_nan and np.isnan(a).any():
        raise ValueError(f"{name}: NaN")
    if nonneg and (a < 0).any():
        raise ValueError(f"{name}: negative value")
    return a


def _capacity(a, name: str, size: int) -> np.ndarray:
    """Capacities: NaN and inf are unlimited (inf), 0 is unusable."""
    return _floats(a, name, size, nan=np.inf)


# ------------------------------------------------------------------------------------------------
# flow layers: max-min fair allocation
# ------------------------------------------------------------------------------------------------

class MaxMinResult(NamedTuple):
    served: np.ndarray      # (n,) float64: amount x_i served (0 <= x_i <= demand_i), 0 if not working
    edge_flow: np.ndarray   # (m,) float64: flow on each edge, signed, positive src -> dst
    working: np.ndarray     # (n,) bool: alive and reachable from an alive source over usable edges


class MaxMinFlow:
    """Max-min fair allocation by priority for one ``flow`` layer, built once, solved many times.

    Parameters
    ----------
    n : int
        Number of nodes (0..n-1).  Nodes outside the layer are passed as not alive.
    edge_src, edge_dst : array of int, shape (m,)
        Ends of each edge (int32 or int64; copied as int64).
    edge_directed : array of bool, shape (m,)
        True: flow src -> dst only; False: either way, at most ``capacity`` in total magnitude.
    edge_capacity : array of float, shape (m,)
        Most the edge carries; NaN or inf = unlimited; 0 = unusable.
    """

    def __init__(self, n: int, edge_src, edge_dst, edge_directed, edge_capacity):
        self.n = int(n)
        self.src = _index(edge_src, "edge_src", n=self.n)
        self.m = self.src.shape[0]
        self.dst = _index(edge_dst, "edge_dst", self.m, self.n)
        self.directed = _mask(edge_directed, "edge_directed", self.m)
        self.capacity = _capacity(edge_capacity, "edge_capacity", self.m)
        self._kernel = _flow.MaxMinFlow(self.n, self.src, self.dst, self.directed, self.capacity)

    def solve(self, alive, edge_usable, supply, demand, priority) -> MaxMinResult:
        """Serve the demands of the alive nodes from the alive sources.

        Parameters
        ----------
        alive : array of bool, shape (n,)
            Nodes that passed the failure and dependency checks.
        edge_usable : array of bool, shape (m,)
            Edges not failed (an edge also needs both ends alive and capacity > 0).
        supply : array of float >= 0, shape (n,)
            Most each node injects; sources are the nodes with supply > 0.
        demand : array of float >= 0, shape (n,)
        priority : array of int, shape (n,)
            Higher classes are served first, as fully as possible.

        Returns
        -------
        MaxMinResult
            ``served`` (n,) amounts, ``edge_flow`` (m,) signed flows, ``working`` (n,) mask.
        """
        n = self.n
        alive = _mask(alive, "alive", n)
        usable = _mask(edge_usable, "edge_usable", self.m)
        supply = _floats(supply, "supply", n)
        demand = _floats(demand, "demand", n)
        if np.isinf(supply).any() or np.isinf(demand).any():
            raise ValueError("supply and demand must be finite")
        priority = np.ascontiguousarray(priority, dtype=np.int32)
        if priority.shape != (n,):
            raise ValueError(f"priority: expected shape ({n},), got {priority.shape}")
        served, flow, working = self._kernel.solve(alive, usable, supply, demand, priority)
        return MaxMinResult(served, flow, working)

    @property
    def n_maxflows(self) -> int:
        """Maximum flows computed by the last :meth:`solve` (one per region of the decomposition)."""
        return self._kernel.n_maxflows

    @property
    def stats(self) -> dict:
        """Counters of the last :meth:`solve`: max flows, Dinic phases and augmenting paths,
        warm starts repaired by push-relabel (``repairs``) and their pushes."""
        k = self._kernel
        return {"maxflows": k.n_maxflows, "phases": k.n_phases, "paths": k.n_paths,
                "repairs": k.n_returns, "pushes": k.n_pushes}


def maxmin_flow(alive, edge_src, edge_dst, edge_directed, edge_capacity, edge_usable,
                supply, demand, priority) -> MaxMinResult:
    """One-shot :meth:`MaxMinFlow.solve` (builds the adjacency each call)."""
    return MaxMinFlow(len(alive), edge_src, edge_dst, edge_directed, edge_capacity).solve(
        alive, edge_usable, supply, demand, priority)


# ------------------------------------------------------------------------------------------------
# dcflow layers: DC power flow with overload trips
# ------------------------------------------------------------------------------------------------

class DCResult(NamedTuple):
    served: np.ndarray       # (n,) float64: served fraction (1 on working buses without demand, 0 if stopped)
    working: np.ndarray      # (n,) bool: alive and in an island with supply at the end
    flows: np.ndarray        # (m,) float64: final flow, from -> to, in the layer's unit; NaN if the branch
    #                          carries nothing (unusable, tripped, or an end not alive); 0 in islands without supply
    trip_branch: np.ndarray  # (k,) int64: tripped branches, in trip order
    trip_step: np.ndarray    # (k,) int32: step of each trip (1, 2, ...)
    trip_flow: np.ndarray    # (k,) float64: flow of the branch when it tripped (signed as flows)


class DCBatch(NamedTuple):
    ptr: np.ndarray          # (k + 1,) int64: the trips of loss c are [ptr[c], ptr[c + 1])
    trip_branch: np.ndarray  # (ptr[k],) int64: tripped branches, loss by loss, in trip order
    trip_step: np.ndarray    # (ptr[k],) int32: step of each trip (1, 2, ...)
    trip_flow: np.ndarray    # (ptr[k],) float64: flow of the branch when it tripped
    served: np.ndarray | None    # (k, n) served fractions of each cascade (``keep``), else None
    working: np.ndarray | None   # (k, n) bool working buses (``keep``), else None
    flows: np.ndarray | None     # (k, m) final flows (``keep``), else None


class DCFlow:
    """DC power flow with overload trips for one ``dcflow`` layer, built once, run many times.

    The intact grid (branches with ``base_usable`` and capacity > 0) is factorised once per
    island, lazily; each :meth:`cascade` reuses those factors through Woodbury updates while at
    most ``kmax`` of an island's branches are missing, and refactorises an island whose bus set
    changed (it split, or lost buses).

    Parameters
    ----------
    n : int
        Number of buses (0..n-1).
    br_from, br_to : array of int, shape (m,)
        Ends of each branch (the ``source`` and ``target`` columns); flows are positive from
        ``br_from`` to ``br_to``.
    reactance : array of float > 0, shape (m,)
        Series reactance in per unit on ``base``.
    shift : array of float, shape (m,)
        Phase shift in **radians** (CompiledSystem.edge_shift); None = 0.
    capacity : array of float, shape (m,)
        Rating in the layer's unit; NaN or inf = unlimited, 0 = unusable.
    base : float
        Per-unit base in the layer's unit (default 100).
    base_usable : array of bool, shape (m,), optional
        The intact grid to factorise once (default: every branch).
    kmax : int
        Most missing branches per island handled by a Woodbury update (0 = always refactorise).
    compiled : bool
        Run the whole step loop in C (default).  False runs the numpy step loop it replaced
        (same results to rounding; kept as the oracle of the tests and the benchmarks'
        baseline).
    partial : bool
        In the compiled loop, solve an island that lies inside one island of the intact grid
        with the intact grid's factor refactorised only on the elimination-tree ancestors of
        the columns that changed (default); False factorises such islands afresh (the same
        results to rounding).  Islands with a series capacitor are always factorised afresh.
    incremental : bool
        In the compiled loop, find each step's islands by splitting the last step's at the
        ends of its trips (default) instead of a BFS of the whole grid (the same islands).
    """

    def __init__(self, n: int, br_from, br_to, reactance, shift=None, capacity=None,
                 base: float = 100.0, base_usable=None, kmax: int = 32, compiled: bool = True,
                 partial: bool = True, incremental: bool = True):
        self.n = int(n)
        self.br_from = _index(br_from, "br_from", n=self.n)
        self.m = m = self.br_from.shape[0]
        self.br_to = _index(br_to, "br_to", m, self.n)
        # negative = a series capacitor (IEEE 300, PEGASE 9241 have them); 0 has no admittance
        self.reactance = _floats(reactance, "reactance", m, nonneg=False)
        if (self.reactance == 0).any() or np.isinf(self.reactance).any():
            raise ValueError("reactance must be finite and not 0")
        self.shift = (np.zeros(m) if shift is None
                      else _floats(shift, "shift", m, nonneg=False))
        self.capacity = (np.full(m, np.inf) if capacity is None
                         else _capacity(capacity, "capacity", m))
        if not base > 0:
            raise ValueError("base must be > 0")
        self.base = float(base)
        usable = np.ones(m, dtype=np.uint8) if base_usable is None else _mask(
            base_usable, "base_usable", m)
        if kmax < 0:
            raise ValueError("kmax must be >= 0")
        self._kernel = _flow.DCFlow(self.n, self.br_from, self.br_to, self.reactance,
                                    self.shift, self.capacity, self.base, usable, int(kmax),
                                    bool(compiled))
        self._kernel.partial = bool(partial)
        self._kernel.incremental = bool(incremental)

    def cascade(self, alive, usable, supply, demand, priority=None, dispatch=None) -> DCResult:
        """Serve, flow and trip until no branch is overloaded.

        Parameters
        ----------
        alive : array of bool, shape (n,)
            Buses that passed the failure and dependency checks.
        usable : array of bool, shape (m,)
            Branches not failed.
        supply : array of float >= 0, shape (n,)
            Generation capacity; sources are the buses with supply > 0.
        demand : array of float >= 0, shape (n,)
        priority : array of int, shape (n,), optional
            Higher classes are served first (default: all 0).
        dispatch : array of float, shape (n,), optional
            The operator's setpoints (NaN = none; an island uses them when all its sources have one).
        """
        alive, usable, supply, demand, priority, dispatch = self._state(alive, usable, supply, demand,
                                                                        priority, dispatch)
        return DCResult(*self._kernel.cascade(alive, usable, supply, dispatch, demand, priority))

    def cascades(self, alive, usable, supply, demand, losses, priority=None, dispatch=None,
                 keep: bool = False) -> "DCBatch":
        """:meth:`cascade` for each single-branch loss of ``losses`` on top of one state, in
        one compiled call (workspace, priority order and the partially refactorised factor
        made once): the same answers as one :meth:`cascade` per loss with
        ``usable[losses[c]] = False``.

        Returns
        -------
        DCBatch
            ``ptr`` (k + 1,): the trips of loss c are ``[ptr[c], ptr[c + 1])`` of
            ``trip_branch``, ``trip_step``, ``trip_flow``; with ``keep``, ``served`` (k, n),
            ``working`` (k, n) and ``flows`` (k, m) of each cascade (else None).
        """
        alive, usable, supply, demand, priority, dispatch = self._state(alive, usable, supply, demand,
                                                                        priority, dispatch)
        losses = _index(losses, "losses", n=self.m)
        if not self._kernel.compiled:
            return self._cascades_py(alive, usable, supply, demand, losses, priority, dispatch, keep)
        return DCBatch(*self._kernel._run_many(alive, usable, supply, dispatch, demand, priority,
                                               losses, bool(keep)))

    def _cascades_py(self, alive, usable, supply, demand, losses, priority, dispatch, keep):
        """:meth:`cascades` as a loop of :meth:`cascade` calls (the numpy path)."""
        n, m, k = self.n, self.m, len(losses)
        ptr = np.zeros(k + 1, dtype=np.int64)
        parts = []
        served = np.empty((k, n)) if keep else None
        working = np.empty((k, n), dtype=bool) if keep else None
        flows = np.empty((k, m)) if keep else None
        for c, b in enumerate(losses):
            u = usable.copy()
            u[b] = 0
            r = DCResult(*self._kernel.cascade(alive, u, supply, dispatch, demand, priority))
            parts.append(r)
            ptr[c + 1] = ptr[c] + len(r.trip_branch)
            if keep:
                served[c], working[c], flows[c] = r.served, r.working, r.flows
        cat = (lambda f, dt: np.concatenate([getattr(r, f) for r in parts]).astype(dt)
               if parts else np.zeros(0, dtype=dt))
        return DCBatch(ptr, cat("trip_branch", np.int64), cat("trip_step", np.int32),
                       cat("trip_flow", np.float64), served, working, flows)

    def _state(self, alive, usable, supply, demand, priority, dispatch) -> tuple:
        """The checked arrays of a grid state (:meth:`cascade`, :meth:`screen`)."""
        n, m = self.n, self.m
        alive = _mask(alive, "alive", n)
        usable = _mask(usable, "usable", m)
        supply = _floats(supply, "supply", n)
        demand = _floats(demand, "demand", n)
        if np.isinf(supply).any() or np.isinf(demand).any():
            raise ValueError("supply and demand must be finite")
        priority = (np.zeros(n, dtype=np.int32) if priority is None
                    else np.ascontiguousarray(priority, dtype=np.int32))
        if priority.shape != (n,):
            raise ValueError(f"priority: expected shape ({n},), got {priority.shape}")
        dispatch = (np.full(n, np.nan) if dispatch is None
                    else _floats(dispatch, "dispatch", n, allow_nan=True))
        return alive, usable, supply, demand, priority, dispatch

    def screen(self, alive, usable, supply, demand, branches, priority=None, dispatch=None,
               rtol: float = 1e-6, flows: bool = False):
        """N-1 screening: which single-branch losses on top of a state can change more than flows.

        One base :meth:`cascade` on ``(alive, usable)``; when it trips nothing, each supplied
        island is factorised once and the first-round flows after the loss of each branch of
        ``branches`` come from its LODF column, f_l + PTDF(l, b) / (1 - PTDF(b, b)) f_b (one
        solve with the factor per branch, no dense inverse).  Bridges (found exactly, by
        Tarjan's low links) are never cleared.

        Returns
        -------
        (status, base, flows)
            ``status`` (k,) bool: False when losing ``branches[c]`` provably ends exactly like
            the base case apart from flows (the branch is not active, sits in an island without
            supply, or every other branch of its island stays below (1 - rtol) of its trip
            limit, and it is no bridge); True when the full cascade must run (an overload or a
            near one, a bridge, an island of at most 24 buses, or a base case that trips).
            ``base``: the base :class:`DCResult`.  ``flows``: (k, m) first-round flows when
            asked (NaN where not computed: bridges, small islands, inactive branches, the lost
            branch itself), else None.
        """
        alive, usable, supply, demand, priority, dispatch = self._state(alive, usable, supply, demand,
                                                                        priority, dispatch)
        branches = _index(branches, "branches", n=self.m)
        if not 0 <= rtol < 1:
            raise ValueError("rtol must be in [0, 1)")
        status, base, out = self._kernel.screen(alive, usable, supply, dispatch, demand, priority,
                                                branches, float(rtol), bool(flows))
        return status.astype(bool), DCResult(*base), out

    @property
    def stats(self) -> dict:
        """Counters since construction: factorizations (``partial`` of them by partial
        refactorization, ``partial_rows`` rows recomputed by those), Woodbury updates,
        triangular solves."""
        k = self._kernel
        return {"factorizations": k.n_factorizations, "woodbury": k.n_woodbury,
                "solves": k.n_solves, "partial": k.n_partial, "partial_rows": k.n_partial_rows}


def dc_cascade(alive, br_from, br_to, reactance, shift, capacity, usable, supply, demand,
               priority=None, dispatch=None, base: float = 100.0) -> DCResult:
    """One-shot :meth:`DCFlow.cascade` (factorises each call)."""
    return DCFlow(len(alive), br_from, br_to, reactance, shift, capacity, base).cascade(
        alive, usable, supply, demand, priority, dispatch)
