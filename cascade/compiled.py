"""The name-to-index boundary: an :class:`InfrastructureSystem` compiled to CSR arrays.

This is the only module that turns node, edge, layer and group names into integers (after
WNTR, which maps names to ids once and then flips masks, ``wntr/sim/network_isolation``).
Kernels in :mod:`cascade._core` see only the arrays of :class:`CompiledSystem`; results map
back to names through ``node_ids`` / ``edge_ids``.

Layout
------
* Adjacency: one CSR over all nodes (``adj_ptr``, ``adj_nbr``, ``adj_edge``).  An undirected
  edge u-v appears at u and at v with ``adj_fwd = 1``; a directed edge u->v appears at u with
  ``adj_fwd = 1`` and at v with ``adj_fwd = 0``, so ``source`` reachability follows
  ``adj_fwd`` entries while ``giant`` components use every entry.
* Layers: ``layer_nodes[layer_ptr[l]:layer_ptr[l+1]]`` lists layer l's nodes in file order.
* Dependencies: groups are numbered by dependent, then by first appearance in the table;
  ``grp_ptr[v]:grp_ptr[v+1]`` are the groups of node v; ``sup_idx[sup_ptr[g]:sup_ptr[g+1]]``
  are the suppliers of group g in table order; ``rdep_grp[rdep_ptr[s]:rdep_ptr[s+1]]`` are
  the groups that node s supplies.
* Flow layers (docs/format.md (v2)): ``supply``, ``dispatch`` (NaN = none), ``priority`` per node;
  ``edge_capacity`` (inf = unlimited), ``edge_reactance`` (NaN outside ``dcflow`` layers),
  ``edge_shift`` (radians) per edge; ``sup_threshold`` per entry of ``sup_idx`` (the smallest
  threshold among the rows that name the same supplier in the same group); ``layer_base`` per
  layer.  In ``flow`` and ``dcflow`` layers ``is_source`` is ``supply > 0``.  A v1 system gets
  supply 0, priority as docs/format.md's default, unlimited capacity, threshold 1.  On a system
  without flow layers, each of ``supply``, ``dispatch``, ``edge_capacity``, ``edge_reactance``,
  ``edge_shift`` and ``sup_threshold`` that holds its default everywhere is a read-only view of that one value
  (stride 0: no memory per node or edge; 44 MB at 10^6 nodes).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from . import _core
from .errors import InputError, did_you_mean
from .system import InfrastructureSystem, same_cells

RULE_CODES = {"none": 0, "source": 1, "giant": 2, "flow": 3, "dcflow": 4}
FLOW_CODES = (RULE_CODES["flow"], RULE_CODES["dcflow"])
CAUSES = ("", "initial", "dependency", "disconnected")


def _csr(keys: np.ndarray, n: int, index_dtype) -> tuple[np.ndarray, np.ndarray]:
    """Stable CSR grouping of positions by ``keys`` (0 <= key < n): (indptr, order), ``order``
    being ``np.argsort(keys, kind="stable")`` by one counting pass (the sort took 0.4 s of a
    10^6-node compile)."""
    keys = np.asarray(keys)
    if len(keys) and (keys.min() < 0 or keys.max() >= n):   # the counting pass checks nothing
        raise ValueError("CSR key out of range")
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(np.bincount(keys, minlength=n), out=indptr[1:])
    order = np.zeros(len(keys), index_dtype)
    _core.edge_arcs(np.ascontiguousarray(keys, dtype=index_dtype), n, order)
    return indptr, order


class _NodePositions:
    """Node names to indices (int64) for :func:`compile_system`: the positions
    :meth:`InfrastructureSystem.from_tables` found while checking the tables, when the tables
    still hold exactly those names (checked, one comparison per row: of object pointers first,
    see :func:`cascade.system.same_cells`), else a pandas hash."""

    def __init__(self, system: InfrastructureSystem, node_ids: np.ndarray):
        self.node_ids, self.index, self.found = node_ids, None, {}
        hint = system.__dict__.pop("_node_hint", None)   # used once: its memory goes with it
        if hint is not None and same_cells(hint[0], node_ids):
            self.index, self.found = hint[1], hint[2]

    def get_indexer(self, values: np.ndarray, key: tuple) -> np.ndarray:
        pos = self.found.get(key)
        if pos is not None and len(pos) == len(values) \
                and (len(values) == 0 or same_cells(self.node_ids[pos], values)):
            return np.asarray(pos, np.int64)
        if self.index is None:
            self.index = pd.Index(self.node_ids)
        return self.index.get_indexer(values).astype(np.int64)


@dataclass(frozen=True, eq=False)
class CompiledSystem:
    """Immutable arrays of a system; cheap to share between threads and to ship to workers.

    Index arrays share one dtype, ``index_dtype`` (int32 or int64).
    """

    name: str
    index_dtype: np.dtype
    node_ids: np.ndarray          # (n,) object: node names in file order
    edge_ids: np.ndarray          # (m,) object
    layer_names: list
    layer_rule: np.ndarray        # (L,) uint8, RULE_CODES
    node_layer: np.ndarray        # (n,) int32
    is_source: np.ndarray         # (n,) uint8
    demand: np.ndarray            # (n,) float64
    layer_ptr: np.ndarray         # (L+1,) index
    layer_nodes: np.ndarray       # (n,) index
    edge_src: np.ndarray          # (m,) index
    edge_dst: np.ndarray          # (m,) index
    edge_directed: np.ndarray     # (m,) uint8
    adj_ptr: np.ndarray           # (n+1,) index
    adj_nbr: np.ndarray           # (2m,) index
    adj_edge: np.ndarray          # (2m,) index
    adj_fwd: np.ndarray           # (2m,) uint8
    grp_ptr: np.ndarray           # (n+1,) index
    group_owner: np.ndarray       # (G,) index
    group_name: np.ndarray        # (G,) object: the group's label, '' for a row of its own
    group_delay: np.ndarray       # (G,) float64: hours of backup (largest delay of its rows)
    sup_ptr: np.ndarray           # (G+1,) index
    sup_idx: np.ndarray           # (S,) index
    rdep_ptr: np.ndarray          # (n+1,) index
    rdep_grp: np.ndarray          # (S,) index
    supply: np.ndarray            # (n,) float64
    dispatch: np.ndarray          # (n,) float64, NaN = none
    priority: np.ndarray          # (n,) int32
    edge_capacity: np.ndarray     # (m,) float64, inf = unlimited
    edge_reactance: np.ndarray    # (m,) float64, NaN outside dcflow layers
    edge_shift: np.ndarray        # (m,) float64, radians
    sup_threshold: np.ndarray     # (S,) float64, aligned with sup_idx
    layer_base: np.ndarray        # (L,) float64

    @property
    def has_flow_layers(self) -> bool:
        """Whether a layer uses the ``flow`` or ``dcflow`` rule."""
        return bool(np.isin(self.layer_rule, FLOW_CODES).any())

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return len(self.edge_ids)

    @property
    def n_groups(self) -> int:
        return len(self.group_owner)

    def node_index(self, ids) -> np.ndarray:
        """Indices of node names; unknown names raise :class:`InputError`."""
        return self._lookup(ids, self._node_map, "node")

    def edge_index(self, ids) -> np.ndarray:
        """Indices of edge names; unknown names raise :class:`InputError`."""
        return self._lookup(ids, self._edge_map, "edge")

    def split_ids(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """Split element names into (node indices, edge indices).

        A name that is a node is taken as the node.  Unknown names raise :class:`InputError`.
        """
        nodes, edges = [], []
        for name in ids:
            name = str(name)
            if name in self._node_map:
                nodes.append(self._node_map[name])
            elif name in self._edge_map:
                edges.append(self._edge_map[name])
            else:
                raise InputError(f"unknown node or edge id '{name}'"
                                 + did_you_mean(name, [*self._node_map, *self._edge_map]))
        return (np.unique(np.asarray(nodes, dtype=self.index_dtype)),
                np.unique(np.asarray(edges, dtype=self.index_dtype)))

    @staticmethod
    def _lookup(ids, mapping, what) -> np.ndarray:
        out = []
        for name in ids:
            try:
                out.append(mapping[str(name)])
            except KeyError:
                raise InputError(f"unknown {what} id '{name}'" + did_you_mean(name, mapping)) from None
        return np.asarray(out, dtype=np.int64)

    def without_dependencies(self) -> "CompiledSystem":
        """The same system with no dependency rows (each lifeline alone): the arrays of
        ``compile_system(criticality.decoupled(system))`` without reading the tables again
        (every other array is shared, not copied), except ``priority``, kept as it is (its
        default comes from the dependency rows; only flow layers read it, so a system with
        flow layers is to be compiled from its decoupled tables instead)."""
        n, idx = self.n_nodes, self.index_dtype
        return replace(self, grp_ptr=np.zeros(n + 1, idx), group_owner=np.zeros(0, idx),
                       group_name=np.zeros(0, object), group_delay=np.zeros(0),
                       sup_ptr=np.zeros(1, idx), sup_idx=np.zeros(0, idx),
                       rdep_ptr=np.zeros(n + 1, idx), rdep_grp=np.zeros(0, idx),
                       sup_threshold=np.zeros(0))

    # Name -> index maps, built on first use and not shipped to workers (rebuilt there).
    @cached_property
    def _node_map(self) -> dict:
        return {name: i for i, name in enumerate(self.node_ids)}

    @cached_property
    def _edge_map(self) -> dict:
        return {name: i for i, name in enumerate(self.edge_ids)}

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_node_map", None)
        state.pop("_edge_map", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def compile_system(system: InfrastructureSystem, index_dtype=None) -> CompiledSystem:
    """Compile a validated system to arrays.

    Parameters
    ----------
    system : InfrastructureSystem
    index_dtype : numpy dtype, optional
        ``np.int32`` or ``np.int64``; by default int32 when every index fits.

    Returns
    -------
    CompiledSystem
    """
    nodes, edges, deps = system.nodes, system.edges, system.dependencies
    n, m = len(nodes), len(edges)
    if index_dtype is None:
        index_dtype = np.int32 if 2 * m + n + len(deps) < 2**31 - 1 else np.int64
    index_dtype = np.dtype(index_dtype)
    if index_dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise ValueError("index_dtype must be int32 or int64")

    node_ids = nodes["id"].to_numpy(dtype=object)
    # Names to indices by hashing (pandas Index), never a Python loop per row.
    node_pos = _NodePositions(system, node_ids)
    rules = system.layer_rules()
    layer_names = list(rules)
    node_layer = pd.Index(layer_names).get_indexer(nodes["layer"].to_numpy(dtype=object)).astype(np.int32)
    layer_ptr, layer_nodes = _csr(node_layer, len(layer_names), index_dtype)

    src = node_pos.get_indexer(edges["source"].to_numpy(dtype=object), ("edges", "source"))
    dst = node_pos.get_indexer(edges["target"].to_numpy(dtype=object), ("edges", "target"))
    directed = edges["directed"].to_numpy(bool)
    ends = np.concatenate([src, dst])
    adj_ptr, order = _csr(ends, n, index_dtype)
    edge_of = np.concatenate([np.arange(m), np.arange(m)])
    other = np.concatenate([dst, src])
    fwd = np.concatenate([np.ones(m, bool), ~directed])

    # Dependencies: one group per (dependent, group label), or per row when the label is empty.
    owners = node_pos.get_indexer(deps["dependent"].to_numpy(dtype=object), ("dependencies", "dependent"))
    suppliers = node_pos.get_indexer(deps["supplier"].to_numpy(dtype=object), ("dependencies", "supplier"))
    labels = deps["group"].to_numpy(dtype=object)
    # One integer key per (owner, label), or per row when the label is empty.
    label_code, label_names = pd.factorize(labels)
    own_row = labels == ""
    n_labels = max(len(label_names), 1)
    key = np.where(own_row, n * n_labels + np.arange(len(labels), dtype=np.int64),
                   owners * n_labels + label_code)
    _, first_row, group_of_row = np.unique(key, return_index=True, return_inverse=True) if len(key) \
        else (None, np.zeros(0, np.int64), np.zeros(0, np.int64))
    group_of_row = np.asarray(group_of_row).ravel()
    # Number groups by (owner, first appearance).
    group_order = np.lexsort((first_row, owners[first_row])) if len(first_row) else np.zeros(0, np.int64)
    renumber = np.empty(len(group_order), np.int64)
    renumber[group_order] = np.arange(len(group_order))
    group_of_row = renumber[group_of_row]
    n_groups = len(group_order)
    group_owner = owners[first_row[group_order]]
    group_name = labels[first_row[group_order]] if n_groups else np.zeros(0, object)
    group_delay = np.zeros(n_groups)
    if n_groups:
        np.maximum.at(group_delay, group_of_row, deps["delay"].to_numpy(float))
    # Suppliers of each group in table order, without repeats.
    pair = group_of_row * max(n, 1) + suppliers
    _, keep = np.unique(pair, return_index=True)
    keep = np.sort(keep)
    sup_ptr, sup_order = _csr(group_of_row[keep], n_groups, index_dtype)
    sup_idx = suppliers[keep][sup_order]
    # The smallest threshold among the rows naming the same (group, supplier).
    row_threshold = (deps["threshold"].to_numpy(float) if "threshold" in deps.columns
                     else np.ones(len(deps)))
    pair_threshold = np.full(len(pair), np.inf)
    if len(pair):
        _, pair_of_row = np.unique(pair, return_inverse=True)
        best = np.full(pair_of_row.max() + 1, np.inf)
        np.minimum.at(best, pair_of_row, row_threshold)
        pair_threshold = best[pair_of_row]
    sup_threshold = pair_threshold[keep][sup_order]
    grp_ptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(np.bincount(group_owner, minlength=n), out=grp_ptr[1:])
    rdep_ptr, rdep_order = _csr(sup_idx, n, index_dtype)
    sup_group = np.repeat(np.arange(n_groups), np.diff(sup_ptr))
    rdep_grp = sup_group[rdep_order]

    flow_layer = np.array([rules[name] in ("flow", "dcflow") for name in layer_names], bool)
    dc_layer = np.array([rules[name] == "dcflow" for name in layer_names], bool)
    flowless = not flow_layer.any()

    def arr(values, dtype=index_dtype):
        if isinstance(values, np.ndarray) and values.dtype == dtype and values.strides == (0,):
            return values   # a constant of fill() stays one number
        return np.ascontiguousarray(values, dtype=dtype)

    def fill(size, value):
        """``value`` for each of ``size`` elements.  Without flow layers, no kernel reads the
        flow arrays: a read-only view of one number (no memory per element)."""
        if flowless:
            return np.broadcast_to(np.array(value, np.float64), (size,))
        return np.full(size, value, np.float64)

    def column(table, name, default):
        return table[name].to_numpy(float) if name in table.columns else fill(len(table), default)

    def settle(values, value):
        """``values``, or :func:`fill` of ``value`` when every element holds it (no flow layers)."""
        if flowless and values.strides != (0,) and bool(
                (np.isnan(values) if np.isnan(value) else values == value).all()):
            return fill(len(values), value)
        return values

    supply = column(nodes, "supply", 0.0)
    is_source = nodes["kind"].to_numpy() == "source"
    in_flow = flow_layer[node_layer] if n else np.zeros(0, bool)
    is_source = np.where(in_flow, supply > 0, is_source)
    if "priority" in nodes.columns:
        priority = nodes["priority"].to_numpy(np.int64)
    else:
        priority = np.zeros(n, np.int64)
        priority[suppliers] = 1
    if "capacity" in edges.columns:
        capacity = edges["capacity"].to_numpy(float)
        capacity = np.where(np.isnan(capacity), np.inf, capacity)
    else:
        capacity = fill(m, np.inf)
    if dc_layer.any():
        edge_dc = dc_layer[node_layer[src]] if m else np.zeros(0, bool)
        reactance = np.where(edge_dc, column(edges, "reactance", np.nan), np.nan)
    else:
        reactance = fill(m, np.nan)
    shift = np.deg2rad(edges["shift"].to_numpy(float)) if "shift" in edges.columns else fill(m, 0.0)
    layer_base = np.array([system.layer_base(name) for name in layer_names], float)

    supply, capacity, reactance, shift = (settle(supply, 0.0), settle(capacity, np.inf),
                                          settle(reactance, np.nan), settle(shift, 0.0))
    dispatch = settle(column(nodes, "dispatch", np.nan), np.nan)
    sup_threshold = settle(np.asarray(sup_threshold, np.float64), 1.0)
    return CompiledSystem(
        name=system.name, index_dtype=index_dtype, node_ids=node_ids,
        edge_ids=edges["id"].to_numpy(dtype=object), layer_names=layer_names,
        layer_rule=arr([RULE_CODES[rules[name]] for name in layer_names], np.uint8),
        node_layer=node_layer, is_source=arr(is_source, np.uint8),
        demand=arr(nodes["demand"].to_numpy(float), np.float64),
        layer_ptr=layer_ptr, layer_nodes=arr(layer_nodes), edge_src=arr(src), edge_dst=arr(dst),
        edge_directed=arr(directed, np.uint8), adj_ptr=adj_ptr, adj_nbr=arr(other[order.astype(np.int64)]),
        adj_edge=arr(edge_of[order.astype(np.int64)]), adj_fwd=arr(fwd[order.astype(np.int64)], np.uint8),
        grp_ptr=grp_ptr, group_owner=arr(group_owner), group_name=group_name, group_delay=group_delay,
        sup_ptr=sup_ptr, sup_idx=arr(sup_idx), rdep_ptr=rdep_ptr, rdep_grp=arr(rdep_grp),
        supply=arr(supply, np.float64), dispatch=arr(dispatch, np.float64),
        priority=arr(priority, np.int32), edge_capacity=arr(capacity, np.float64),
        edge_reactance=arr(reactance, np.float64), edge_shift=arr(shift, np.float64),
        sup_threshold=arr(sup_threshold, np.float64), layer_base=arr(layer_base, np.float64))


def require_connectivity_rules(compiled: CompiledSystem) -> None:
    """Refuse a system with ``flow``/``dcflow`` layers where only the v1 kernel runs.

    The v1 kernel (:class:`Workspace`, ``cascade/_core.pyx``) runs the connectivity rules only;
    flow systems run on :mod:`cascade.flowcore` (``simulate``, N-1 sweeps, ensembles).
    """
    flow = [name for name, code in zip(compiled.layer_names, compiled.layer_rule) if code in FLOW_CODES]
    if flow:
        code = compiled.layer_rule[compiled.layer_names.index(flow[0])]
        rule = next(name for name, value in RULE_CODES.items() if value == code)
        raise InputError(f"layer '{flow[0]}' uses the {rule} rule, which this computation does not take yet "
                         "(flow layers run in simulate, critical and scenario)")


class Workspace:
    """Buffers for running cascades on one compiled system, allocated once and reused.

    One workspace per thread: kernels write into it.  After :meth:`run`, ``working``,
    ``fail_round``, ``cause`` and ``via_group`` hold the final state, and
    ``changed[:n_changed]`` the nodes that failed in this run, round by round.
    """

    def __init__(self, compiled: CompiledSystem):
        c = compiled
        require_connectivity_rules(c)
        self.compiled = c
        n, idx = c.n_nodes, c.index_dtype
        self.working = np.ones(n, np.uint8)
        self.fail_round = np.full(n, -1, np.int32)
        self.cause = np.zeros(n, np.uint8)
        self.via_group = np.full(n, -1, idx)
        self.alive = np.diff(c.sup_ptr).astype(idx)
        self.changed = np.zeros(n, idx)
        self.queue = np.zeros(n, idx)
        self.comp = np.zeros(n, idx)
        self.layer_dirty = np.zeros(len(c.layer_names), np.uint8)
        self.edge_failed = np.zeros(c.n_edges, np.uint8)
        # Groups whose backup still runs: they keep their dependent working (cascade.recovery).
        self.group_held = np.zeros(c.n_groups, np.uint8)
        self.n_changed = 0

    def run(self, init_nodes=(), init_edges=(), incremental: bool = False) -> int:
        """Run the static cascade from failed node and edge indices; return how many nodes failed.

        With ``incremental=True`` the state arrays must already hold a fixpoint (as left by a
        previous run) and the new failures are applied on top of it; :meth:`undo` takes them
        back.  Edges failed by this call stay failed until the next non-incremental run.
        """
        c = self.compiled
        init_nodes = np.ascontiguousarray(init_nodes, dtype=c.index_dtype)
        init_edges = np.ascontiguousarray(init_edges, dtype=c.index_dtype)
        if not incremental:
            self.edge_failed[:] = 0
        self.edge_failed[init_edges] = 1
        self.n_changed = _core.cascade(
            c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, c.layer_ptr, c.layer_nodes, c.node_layer,
            c.layer_rule, c.is_source, c.grp_ptr, c.sup_ptr, c.rdep_ptr, c.rdep_grp, c.group_owner, self.group_held, c.edge_src,
            init_nodes, init_edges, self.edge_failed, self.working, self.fail_round, self.cause,
            self.via_group, self.alive, self.changed, self.queue, self.comp, self.layer_dirty,
            incremental)
        return self.n_changed

    def undo(self, init_edges=()) -> None:
        """Take back the last incremental run (nodes and ``init_edges``)."""
        c = self.compiled
        _core.undo(c.rdep_ptr, c.rdep_grp, self.working, self.fail_round, self.cause,
                   self.via_group, self.alive, self.changed, self.n_changed)
        self.edge_failed[np.asarray(init_edges, dtype=np.int64)] = 0
        self.n_changed = 0
