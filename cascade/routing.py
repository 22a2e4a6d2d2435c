"""Pipe loading of ``flow`` layers after a cascade: one routing, and the bottleneck pipes.

The max-min fair allocation of a ``flow`` layer (docs/format.md (v2)) fixes the amount each node
is served, uniquely; the flow on each pipe that delivers those amounts is **not** unique (many
routings deliver the same amounts).  Two pipe quantities are reported:

* a **routing**: the flow on each usable pipe in the allocation the kernel found
  (:class:`cascade.flowkernels.MaxMinFlow`); it delivers the served amounts, but another
  routing may deliver them too, so its loading |flow| / capacity is one possibility;
* the **bottlenecks**: pipes that run at capacity in *every* routing of the served amounts.
  Equivalently (max-flow/min-cut), the pipes of some minimum cut of the network from the
  sources (each at most its ``supply``) to the nodes (each at most its served amount), and the
  pipes whose capacity, lowered by any ε > 0, could no longer deliver the served amounts (so
  some node would be served less: the allocation is maximal, no other deliverable vector is
  at least as large everywhere).  This set is unique.  Found from the routing's residual graph: a pipe u→v at capacity is in
  every routing at capacity iff the residual graph has no path from u to v, i.e. iff u and v
  are in different strongly connected components (a path u⇝v and the residual arc v→u would be
  a cycle along which flow can be moved off the pipe; conversely the difference of two
  routings is a circulation of such cycles).

Only the final state of a cascade is needed: in the last round of the fixpoint each ``flow``
layer's kernel ran on the working nodes and the usable pipes between them, so solving it again
on them gives the allocation of that round.  Works for the results of both engines.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .compiled import RULE_CODES, CompiledSystem

RTOL = 1e-9            # a pipe within RTOL (of the layer's largest finite amount) of capacity is full


class Routing(NamedTuple):
    flows: np.ndarray       # (m,) float64: flow of each usable pipe of a flow layer (signed, source -> target); NaN elsewhere
    bottleneck: np.ndarray  # (m,) bool: at capacity in every routing of the served amounts
    served: np.ndarray      # (n,) float64: served amount of each node of a flow layer (0 elsewhere)


def bottlenecks(n: int, src, dst, directed, capacity, usable, flow, supply, served,
                rtol: float = RTOL) -> np.ndarray:
    """Edges of one ``flow`` layer at capacity in every flow that delivers ``served``.

    Parameters
    ----------
    n : int
        Nodes 0..n-1.
    src, dst : array of int, shape (m,)
    directed : array of bool, shape (m,)
        True: flow src -> dst only; False: either way, |flow| <= capacity.
    capacity : array of float, shape (m,)
        inf = unlimited (never a bottleneck).
    usable : array of bool, shape (m,)
        Edges that may carry flow (not failed, both ends in the layer's allocation).
    flow : array of float, shape (m,)
        A flow delivering ``served`` (signed, positive src -> dst); ignored where not usable.
    supply, served : array of float, shape (n,)
        Most each node injects; amount each node receives.

    Returns
    -------
    ndarray of bool, shape (m,)
    """
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    directed = np.asarray(directed, bool)
    cap = np.asarray(capacity, float)
    flow = np.where(np.asarray(usable, bool), np.asarray(flow, float), 0.0)
    supply = np.asarray(supply, float)
    served = np.asarray(served, float)
    active = np.asarray(usable, bool) & (cap > 0) & (src != dst)
    finite = np.concatenate([cap[active & np.isfinite(cap)], supply[np.isfinite(supply)], [1.0]])
    tol = rtol * float(np.max(np.abs(finite)))
    # net injection of each node: served + flow out - flow in
    outflow = np.bincount(src[active], weights=flow[active], minlength=n)
    inflow = np.bincount(dst[active], weights=flow[active], minlength=n)
    injection = served + outflow - inflow
    S, T = n, n + 1
    a = np.flatnonzero(active)
    fwd_res = cap[a] - flow[a]                                   # room u -> v
    back_res = np.where(directed[a], flow[a], cap[a] + flow[a])  # room v -> u
    rows = [src[a][fwd_res > tol], dst[a][back_res > tol]]
    cols = [dst[a][fwd_res > tol], src[a][back_res > tol]]
    room = supply - injection                                    # S -> node: supply left
    rows += [np.full(int((room > tol).sum()), S), np.flatnonzero(injection > tol)]
    cols += [np.flatnonzero(room > tol), np.full(int((injection > tol).sum()), S)]
    rows.append(np.full(int((served > tol).sum()), T))           # node -> T is full: only T -> node
    cols.append(np.flatnonzero(served > tol))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 2, n + 2)).tocsr()
    _, comp = connected_components(graph, directed=True, connection="strong")
    out = np.zeros(len(src), bool)
    full_fwd = fwd_res <= tol
    full_back = ~directed[a] & (cap[a] + flow[a] <= tol)         # an undirected pipe full v -> u
    split = comp[src[a]] != comp[dst[a]]
    out[a] = np.isfinite(cap[a]) & (full_fwd | full_back) & split
    return out


def flow_routing(compiled: CompiledSystem, working, initial_edges=()) -> Routing:
    """The routing and the bottleneck pipes of every ``flow`` layer in a cascade's final state.

    Parameters
    ----------
    compiled : CompiledSystem
    working : array of bool, shape (n,)
        The final working nodes (:attr:`cascade.simulation.CascadeResult.working`).
    initial_edges : array of int
        Edges failed at the start (edges of ``flow`` layers never trip).

    Returns
    -------
    Routing
    """
    from .flowcore import flow_engine

    c = compiled
    working = np.asarray(working, bool)
    edge_ok = np.ones(c.n_edges, bool)
    edge_ok[np.asarray(initial_edges, np.int64)] = False
    flows = np.full(c.n_edges, np.nan)
    neck = np.zeros(c.n_edges, bool)
    served = np.zeros(c.n_nodes)
    for layer in flow_engine(c).layers:
        if layer.rule != RULE_CODES["flow"]:
            continue
        members = working[layer.nodes]
        here = edge_ok[layer.edges] & members[layer.src] & members[layer.dst]
        r = layer.kernel.solve(members, here, layer.supply, layer.demand, layer.priority)
        cap = layer.kernel.capacity
        usable = here & r.working[layer.src] & r.working[layer.dst] & (cap > 0)
        flows[layer.edges] = np.where(usable, r.edge_flow, np.nan)
        served[layer.nodes] = r.served
        neck[layer.edges] = bottlenecks(len(layer.nodes), layer.src, layer.dst, layer.directed, cap,
                                        usable, r.edge_flow, layer.supply, r.served)
    return Routing(flows, neck, served)
