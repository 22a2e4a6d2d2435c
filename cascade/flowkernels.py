"""Flow kernels on arrays: the Python face of ``cascade/_flow.pyx``.

Two rules of FORMAT.md v2, each on one layer given as plain arrays (indices, masks, amounts):

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

__all__ = ["MaxMinFlow", "MaxMinResult", "maxmin_flow", "DCFlow", "DCResult", "dc_cascade"]


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


def _floats(a, name: str, size: int, nonneg: bool = True, nan: float | None = None) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True).reshape(-1)
    if a.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},), got {a.shape}")
    if nan is not None:
        a[np.isnan(a)] = nan
    elif np.isnan(a).any():
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


def maxmin_flow(alive, edge_src, edge_dst, edge_directed, edge_capacity, edge_usable,
                supply, demand, priority) -> MaxMinResult:
    """One-shot :meth:`MaxMinFlow.solve` (builds the adjacency each call)."""
    return MaxMinFlow(len(alive), edge_src, edge_dst, edge_directed, edge_capacity).solve(
        alive, edge_usable, supply, demand, priority)
