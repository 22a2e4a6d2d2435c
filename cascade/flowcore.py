"""The core engine on systems with flow layers (docs/format.md (v2)): the fixpoint on arrays.

:class:`FlowEngine` runs the v2 static cascade of a :class:`~cascade.compiled.CompiledSystem`:
each round the dependency step with thresholds (a supplier counts for a row only while it works
at a served fraction >= the row's ``sup_threshold``, with the 1e-9 slack of docs/format.md),
then every layer's rule among the nodes that passed it: the compiled kernels of
``cascade/_flow.pyx`` (:class:`~cascade.flowkernels.MaxMinFlow` for ``flow``,
:class:`~cascade.flowkernels.DCFlow` for ``dcflow``, trips recorded by round and step) and
array code (scipy's sparse graph routines) for the v1 rules ``source``, ``giant`` and
``none``.  The loop ends when a round changes no working node, trips nothing and leaves every
dependency row counting as before.

The round loop is driven from Python; the heavy work (max-min fair allocation, DC power flow
with its factorization, trips) is inside the kernels.  The kernel objects are built once per
compiled system and thread (:func:`flow_engine`), so repeated cascades (N-1 sweeps, ensembles)
reuse the factors of the intact grid.

The semantics are those of :func:`cascade.reference_flow.run_flow_cascade`, which is the oracle
of tests/test_flow_core.py.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import pandas as pd

from .compiled import RULE_CODES, CompiledSystem
from .flowkernels import DCFlow, MaxMinFlow


def _csr(rows, cols, k):
    """The (k, k) sparse graph of the arcs ``rows[i] -> cols[i]`` (scipy.sparse, imported on
    first use: a system whose layers are all ``flow``/``dcflow`` never needs it)."""
    from scipy.sparse import coo_matrix

    return coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(k, k)).tocsr()


def _components(graph, **kwargs):
    from scipy.sparse.csgraph import connected_components

    return connected_components(graph, **kwargs)


def _bfs(graph, start, **kwargs):
    from scipy.sparse.csgraph import breadth_first_order

    return breadth_first_order(graph, start, **kwargs)

TOLERANCE = 1e-9          # docs/format.md: thresholds are compared with this slack
TRIP_COLUMNS = ["id", "layer", "round", "step", "flow", "capacity"]


class _Layer:
    """One layer's nodes and edges in local indices, and its kernel (flow rules)."""

    def __init__(self, c: CompiledSystem, index: int):
        self.index = index
        self.name = c.layer_names[index]
        self.rule = int(c.layer_rule[index])
        self.nodes = np.asarray(c.layer_nodes[c.layer_ptr[index]:c.layer_ptr[index + 1]], np.int64)
        self.nodes.sort()                                   # file order
        local = np.full(c.n_nodes, -1, np.int64)
        local[self.nodes] = np.arange(len(self.nodes))
        self.edges = np.flatnonzero(c.node_layer[c.edge_src] == index).astype(np.int64)
        self.src = local[np.asarray(c.edge_src, np.int64)[self.edges]]
        self.dst = local[np.asarray(c.edge_dst, np.int64)[self.edges]]
        k = len(self.nodes)
        self.supply = c.supply[self.nodes]
        self.demand = c.demand[self.nodes]
        self.priority = c.priority[self.nodes]
        self.dispatch = c.dispatch[self.nodes]
        self.is_source = c.is_source[self.nodes].astype(bool)
        self.directed = c.edge_directed[self.edges].astype(bool)
        self.kernel = None
        if self.rule == RULE_CODES["flow"]:
            self.kernel = MaxMinFlow(k, self.src, self.dst, self.directed, c.edge_capacity[self.edges])
        elif self.rule == RULE_CODES["dcflow"]:
            # A branch from a bus to itself carries base·(−shift)/x whatever the angles; the
            # kernel leaves it out and :meth:`self_loops` handles it as the reference does.
            self.capacity = c.edge_capacity[self.edges]
            self.loop = self.src == self.dst
            self.loop_flow = -float(c.layer_base[index]) * c.edge_shift[self.edges] / c.edge_reactance[self.edges]
            self.kernel = DCFlow(k, self.src, self.dst, c.edge_reactance[self.edges], c.edge_shift[self.edges],
                                 self.capacity, base=float(c.layer_base[index]), base_usable=~self.loop)

    def self_loops(self, members, here, working):
        """Self-loop branches of a ``dcflow`` layer: (tripped local indices, final flows).

        Such a branch trips in step 1 when its bus is in an island with supply before any trip
        of the round and its constant flow is above capacity; otherwise it carries that flow
        while its bus works at the end.
        """
        live = np.flatnonzero(here & self.loop & (self.capacity > 0) & members[self.src])
        over = live[np.abs(self.loop_flow[live]) > self.capacity[live] * (1 + TOLERANCE)]
        if len(over):
            k = len(self.nodes)
            ok = here & ~self.loop & (self.capacity > 0) & members[self.src] & members[self.dst]
            graph = _csr(self.src[ok], self.dst[ok], k)
            _, labels = _components(graph, directed=False)
            supplied = np.zeros(labels.max() + 1, bool)
            supplied[labels[members & (self.supply > 0)]] = True
            over = over[supplied[labels[self.src[over]]]]
        flows = np.full(len(self.edges), np.nan)
        stay = np.setdiff1d(live, over)
        stay = stay[working[self.src[stay]]]
        flows[stay] = self.loop_flow[stay]
        return over, flows

    # ---------------------------------------------------------------- v1 rules on local arrays
    def _graph(self, usable, both_ways):
        k = len(self.nodes)
        s, d = self.src[usable], self.dst[usable]
        if both_ways is not None:
            back = both_ways[usable]
            s, d = np.concatenate([s, d[back]]), np.concatenate([d, s[back]])
        return s, d, k

    def connectivity(self, members: np.ndarray, usable: np.ndarray) -> np.ndarray:
        """The v1 rules among ``members`` (local mask) over ``usable`` edges (local mask)."""
        if self.rule == RULE_CODES["none"] or not members.any():
            return members.copy()
        if self.rule == RULE_CODES["source"]:
            s, d, k = self._graph(usable, ~self.directed)
            roots = np.flatnonzero(members & self.is_source)
            if not len(roots):
                return np.zeros(k, bool)
            s = np.concatenate([s, np.full(len(roots), k)])
            d = np.concatenate([d, roots])
            graph = _csr(s, d, k + 1)
            reached = _bfs(graph, k, directed=True, return_predecessors=False)
            alive = np.zeros(k + 1, bool)
            alive[reached] = True
            return alive[:k]
        # giant: the largest weakly connected component, the one with the first node on a tie
        s, d, k = self._graph(usable, None)
        graph = _csr(s, d, k)
        _, labels = _components(graph, directed=True, connection="weak")
        inside = np.flatnonzero(members)
        size = np.bincount(labels[inside], minlength=labels.max() + 1)
        first = np.full(len(size), k, np.int64)
        np.minimum.at(first, labels[inside], inside)
        best = np.lexsort((first, -size))[0]
        return members & (labels == best)


class FlowEngine:
    """The per-layer kernels of one compiled system, for one thread; :meth:`run` is one cascade.

    Build it once (or take the cached one of :func:`flow_engine`) and call :meth:`run` many
    times: the ``dcflow`` kernels keep the factors of the intact grid between runs.
    """

    def __init__(self, compiled: CompiledSystem):
        c = compiled
        # A weak reference: the per-thread cache of :func:`flow_engine` is keyed weakly by the
        # compiled system, and a strong one here would keep every compiled system alive.
        self._compiled = weakref.ref(compiled)
        self.layers = [_Layer(c, i) for i in range(len(c.layer_names))]
        self.entry_group = np.repeat(np.arange(c.n_groups), np.diff(np.asarray(c.sup_ptr, np.int64)))
        self.sup_idx = np.asarray(c.sup_idx, np.int64)
        self.threshold = c.sup_threshold - TOLERANCE
        self.group_owner = np.asarray(c.group_owner, np.int64)
        self.sup_ptr = np.asarray(c.sup_ptr, np.int64)
        self.grp_ptr = np.asarray(c.grp_ptr, np.int64)
        self.src = np.asarray(c.edge_src, np.int64)
        self.dst = np.asarray(c.edge_dst, np.int64)

    @property
    def compiled(self) -> CompiledSystem:
        return self._compiled()

    def _counting(self, working, frac):
        """Per dependency entry: does its supplier count (works at >= the row's threshold)?"""
        s = self.sup_idx
        return working[s] & (frac[s] >= self.threshold)

    def run(self, init_nodes=(), init_edges=(), held=None, record: list | None = None,
            dc_record: list | None = None, table: bool = True):
        """One static cascade from failed node and edge indices.

        ``held`` (bool, shape (n_groups,), optional): groups whose backup still runs
        (:mod:`cascade.recovery`); they keep their dependent working whatever their suppliers
        do, as ``Workspace.group_held`` does in the v1 core.  None (the default): no backup.
        ``record``, a list, receives one entry per round: ``{layer index: (members, here,
        served, edge_flow, working)}`` for the ``flow`` layers (the kernel's inputs and
        result), as :meth:`inert` reads them.  ``dc_record`` (a list, optional) receives
        ``(layer position, members, usable)`` for every call of a ``dcflow`` kernel, in order:
        the states :meth:`screen_dc` screens from.  ``table=False`` returns the trips as a list
        of tuples (id index, layer, round, step, flow, capacity) instead of a DataFrame (sweeps
        need none).  A ``flow`` layer whose members and usable edges are those of the round
        before, but for nodes and edges that worked for nothing then, keeps that round's
        allocation (:meth:`_same_allocation`).

        Returns
        -------
        tuple
            ``(working, fail_round, cause, via_group, served, flows, trips, via)`` exactly as
            :func:`cascade.simulation._run_reference_flow`.
        """
        c = self.compiled
        n, m, G = c.n_nodes, c.n_edges, c.n_groups
        held_groups = None if held is None else np.asarray(held, bool)
        init_nodes = np.asarray(init_nodes, np.int64)
        init_edges = np.asarray(init_edges, np.int64)
        working = np.ones(n, bool)
        working[init_nodes] = False
        fail_round = np.full(n, -1, np.int32)
        fail_round[init_nodes] = 0
        cause = np.zeros(n, np.uint8)
        cause[init_nodes] = 1
        via_group = np.full(n, -1, np.int64)
        via = np.full(n, -1, np.int64)
        frac = np.ones(n)
        edge_ok = np.ones(m, bool)
        edge_ok[init_edges] = False
        flows = np.full(m, np.nan)
        trips: list[tuple] = []
        ok_before = np.ones(len(self.sup_idx), bool)          # the state before round 1: all work
        rnd = 0
        last = {}                                            # flow layer -> (members, here, result)
        while True:
            rnd += 1
            ok = self._counting(working, frac)
            candidates = working.copy()
            if G:
                held = np.bincount(self.entry_group, weights=ok, minlength=G) > 0
                if held_groups is not None:
                    held |= held_groups
                empty = np.flatnonzero(~held)
                owners = self.group_owner[empty]
                keep = working[owners]
                empty, owners = empty[keep], owners[keep]
                owners, first = np.unique(owners, return_index=True)   # groups are numbered by owner
                for v, g in zip(owners, empty[first]):
                    candidates[v] = False
                    fail_round[v] = rnd
                    cause[v] = 2
                    via_group[v] = g
                    lo, hi = self.sup_ptr[g], self.sup_ptr[g + 1]
                    counted = np.flatnonzero(ok_before[lo:hi])
                    via[v] = self.sup_idx[lo + counted[0]] if len(counted) else -1
            survivors = np.zeros(n, bool)
            new_frac = np.zeros(n)
            usable = edge_ok & candidates[self.src] & candidates[self.dst]
            round_trips = []
            if record is not None:
                record.append({})
            for layer in self.layers:
                members = candidates[layer.nodes]
                here = usable[layer.edges]
                if layer.rule == RULE_CODES["flow"]:
                    prev = last.get(layer.index)
                    if prev is not None and self._same_allocation(layer, prev, members, here):
                        r = prev[2]
                    else:
                        r = layer.kernel.solve(members, here, layer.supply, layer.demand, layer.priority)
                        last[layer.index] = (members, here, r)
                    alive = r.working
                    if record is not None:
                        record[-1][layer.index] = (members, here, r.served, r.edge_flow, r.working)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        fractions = np.where(layer.demand > 0, r.served / np.where(layer.demand > 0,
                                                                                   layer.demand, 1), 1.0)
                elif layer.rule == RULE_CODES["dcflow"]:
                    if dc_record is not None:
                        dc_record.append((layer.index, members.copy(), here.copy()))
                    r = layer.kernel.cascade(members, here, layer.supply, layer.demand, layer.priority,
                                             layer.dispatch)
                    alive = r.working
                    fractions = r.served
                    live = alive[layer.src] & alive[layer.dst] & ~np.isnan(r.flows) & ~layer.loop
                    layer_flows = np.where(live, r.flows, np.nan)
                    trip_branch, trip_step, trip_flow = r.trip_branch, r.trip_step, r.trip_flow
                    if layer.loop.any():
                        over, loop_flows = layer.self_loops(members, here, alive)
                        layer_flows = np.where(layer.loop, loop_flows, layer_flows)
                        trip_branch = np.concatenate([trip_branch, over])
                        trip_step = np.concatenate([trip_step, np.ones(len(over), np.int32)])
                        trip_flow = np.concatenate([trip_flow, layer.loop_flow[over]])
                    gone = layer.edges[trip_branch]
                    edge_ok[gone] = False                       # tripped: out for good
                    order = np.lexsort((gone, trip_step))
                    round_trips += [(int(gone[k]), layer.name, rnd, int(trip_step[k]),
                                     float(trip_flow[k]), float(c.edge_capacity[gone[k]])) for k in order]
                    flows[layer.edges] = layer_flows
                else:
                    alive = layer.connectivity(members, here)
                    fractions = np.ones(len(layer.nodes))
                survivors[layer.nodes] = alive
                new_frac[layer.nodes] = np.where(alive, fractions, 0.0)
            trips += round_trips
            lost = candidates & ~survivors
            fail_round[lost] = rnd
            cause[lost] = 3
            ok_after = self._counting(survivors, new_frac)
            if (survivors == working).all() and not round_trips and (ok_after == ok).all():
                if not table:
                    return working, fail_round, cause, via_group, new_frac, flows, trips, via
                trips_table = pd.DataFrame([(c.edge_ids[e], *rest) for e, *rest in trips], columns=TRIP_COLUMNS)
                return working, fail_round, cause, via_group, new_frac, flows, trips_table, via
            ok_before = ok
            working, frac = survivors, new_frac

    def screen_dc(self, edges, record) -> np.ndarray:
        """Which edges, lost alone, provably end like the cascade ``record`` was taken from.

        ``record`` is what :meth:`run` recorded as ``dc_record`` on a cascade that tripped nothing.  An edge
        of a ``dcflow`` layer is cleared (True) when, in every recorded state of its layer, its
        loss trips nothing, splits no island and leaves every branch below its limit by the
        margin of :meth:`cascade.flowkernels.DCFlow.screen` (first-round flows from LODF
        columns): each round then ends exactly as in the recorded cascade (the same working
        nodes and served fractions, only the flows differ), so the cascade without the edge
        ends in the same state.  Other edges are not cleared.
        """
        edges = np.asarray(edges, np.int64)
        clear = np.zeros(len(edges), bool)
        for layer in self.layers:
            if layer.rule != RULE_CODES["dcflow"]:
                continue
            states = [(members, here) for i, members, here in record if i == layer.index]
            mine = np.flatnonzero(np.isin(edges, layer.edges))
            if not len(mine) or not states:
                continue
            local = np.searchsorted(layer.edges, edges[mine])
            ok = np.ones(len(mine), bool)
            for members, here in states:
                status, _, _ = layer.kernel.screen(members, here, layer.supply, layer.demand,
                                                   local, layer.priority, layer.dispatch)
                ok &= ~status
            clear[mine] = ok
        return clear

    @staticmethod
    def _same_allocation(layer, prev, members, here) -> bool:
        """Does the allocation ``prev = (members, here, result)`` of a flow layer hold for
        ``members`` and ``here``?  Yes when nothing was added and what left did not work in it:
        nodes that were not working (unreachable from every source), edges with an end that
        was not working (no flow from a source can pass them).  Reachability and the feasible
        flows of the working nodes are then unchanged, so is the (unique) allocation."""
        old_members, old_here, r = prev
        if (members & ~old_members).any() or (here & ~old_here).any():
            return False
        if (old_members & ~members & r.working).any():
            return False
        gone = old_here & ~here
        return not (gone & r.working[layer.src] & r.working[layer.dst]).any()

    def inert(self, record: list, el_node, el_edge) -> np.ndarray:
        """Elements whose failure cannot change the cascade ``record`` was taken from, but
        for themselves: a mask over the elements (node index >= 0, else edge index).

        An element of a ``flow`` layer is inert when, in every round of the recorded run, it
        is out of its layer already, or it carries no flow (an edge: zero flow; a node: no
        supply, nothing served, zero flow on every edge it touches), no working node is reached
        through it in the breadth-first forest from the sources (so reachability is unchanged
        without it), and (a node) it supplies no dependency row.  The recorded allocation is
        then still feasible without the element and stays max-min fair (the feasible set only
        shrank), so each round's kernel result is the recorded one but for the element, and so
        is the whole cascade: an edge's cascade is the recorded run, a node's is the recorded
        run with that node lost.  Elements of other layers are never inert.
        """
        c = self.compiled
        el_node = np.asarray(el_node, np.int64)
        el_edge = np.asarray(el_edge, np.int64)
        out = np.zeros(len(el_node), bool)
        flow_layers = [layer for layer in self.layers if layer.rule == RULE_CODES["flow"]]
        if not flow_layers:
            return out
        supplier = np.zeros(c.n_nodes, bool)
        supplier[self.sup_idx] = True
        is_node = el_node >= 0
        node_layer = np.asarray(c.node_layer, np.int64)
        el_layer = np.full(len(el_node), -1, np.int64)
        el_layer[is_node] = node_layer[el_node[is_node]]
        el_layer[~is_node] = node_layer[self.src[el_edge[~is_node]]]
        for layer in flow_layers:
            mine = np.flatnonzero(el_layer == layer.index)
            if not len(mine):
                continue
            local = np.full(c.n_nodes, -1, np.int64)
            local[layer.nodes] = np.arange(len(layer.nodes))
            elocal = np.full(c.n_edges, -1, np.int64)
            elocal[layer.edges] = np.arange(len(layer.edges))
            sel = is_node[mine]
            nodes_i = np.full(len(mine), -1, np.int64)
            nodes_i[sel] = local[el_node[mine][sel]]
            edges_j = np.full(len(mine), -1, np.int64)
            edges_j[~sel] = elocal[el_edge[mine][~sel]]
            ok = (nodes_i >= 0) | (edges_j >= 0)
            ok[sel] &= ~supplier[el_node[mine][sel]]
            for rounds in record:
                if layer.index not in rounds:
                    continue
                members, here, served, flow, working = rounds[layer.index]
                ok &= self._inert_round(layer, members, here, served, flow, working, nodes_i, edges_j)
            out[mine] = ok
        return out

    @staticmethod
    def _inert_round(layer, members, here, served, flow, working, nodes_i, edges_j):
        """One round of :meth:`inert` for the elements ``nodes_i`` (local, -1 = an edge) and
        ``edges_j`` (local, -1 = a node) of one flow layer."""
        k = len(layer.nodes)
        cap = layer.kernel.capacity
        active = here & members[layer.src] & members[layer.dst] & (layer.src != layer.dst) & (cap > 0)
        # a forest of the nodes reachable from the alive sources (the kernel's working nodes):
        # first breadth-first along the flow (arcs in the direction they carry it), then on
        # from everything so reached over every active edge; edges and nodes off the forest
        # reach nobody that could not be reached without them
        roots = np.flatnonzero(members & (layer.supply > 0))
        fl = np.flatnonzero(active & ((flow > 0) | ((flow < 0) & ~layer.directed)))
        fwd = flow[fl] > 0
        fs = np.where(fwd, layer.src[fl], layer.dst[fl])
        fd = np.where(fwd, layer.dst[fl], layer.src[fl])
        rows = np.concatenate([fs, np.full(len(roots), k)])
        cols = np.concatenate([fd, roots])
        graph = _csr(rows, cols, k + 1)
        order, pred1 = _bfs(graph, k, directed=True, return_predecessors=True)
        along = np.zeros(k + 1, bool)
        along[order] = True
        along = along[:k]
        s, d = layer.src[active], layer.dst[active]
        back = ~layer.directed[active]
        first = np.flatnonzero(along)
        rows = np.concatenate([s, d[back], np.full(len(first), k)])
        cols = np.concatenate([d, s[back], first])
        graph = _csr(rows, cols, k + 1)
        _, pred2 = _bfs(graph, k, directed=True, return_predecessors=True)
        pred = np.where(along, pred1[:k], pred2[:k])
        has_child = np.zeros(k + 1, bool)
        has_child[pred[pred >= 0]] = True
        # nodes: out of the layer this round, or no supply, nothing served, no flow through
        # and no child in the forest
        touch = np.zeros(k, bool)
        live_flow = active & (flow != 0)
        touch[layer.src[live_flow]] = True
        touch[layer.dst[live_flow]] = True
        out = np.zeros(len(nodes_i), bool)
        at = np.flatnonzero(nodes_i >= 0)
        i = nodes_i[at]
        out[at] = (~members[i] | ((layer.supply[i] <= 0) & (served[i] == 0) & ~touch[i]
                                  & ~has_child[i]))
        # edges: not active, or no flow and no tree arc of the forest along them (a parallel
        # edge along a tree arc counts as one, conservatively)
        at = np.flatnonzero(edges_j >= 0)
        j = edges_j[at]
        a, b = layer.src[j], layer.dst[j]
        tree = (pred[b] == a) | (~layer.directed[j] & (pred[a] == b))
        out[at] = ~active[j] | ((flow[j] == 0) & ~tree)
        return out

_local = threading.local()


def flow_engine(compiled: CompiledSystem) -> FlowEngine:
    """The :class:`FlowEngine` of ``compiled`` for the calling thread, built on first use.

    Kept as long as the compiled system lives, so repeated cascades reuse the kernels (and the
    factors of the intact grids); one per thread because kernels hold buffers.
    """
    cache = getattr(_local, "engines", None)
    if cache is None:
        cache = _local.engines = weakref.WeakKeyDictionary()
    engine = cache.get(compiled)
    if engine is None:
        engine = cache[compiled] = FlowEngine(compiled)
    return engine
