# cython: language_level=3
"""Cascade kernels over compiled arrays (see cascade/compiled.py for the layout).

The static cascade of docs/format.md, run in rounds until nothing changes:

* round 0: the initial failures;
* round r: a working node fails by *dependency* when one of its supplier groups had no
  working supplier after round r-1; then each layer whose set of candidates changed
  re-applies its rule (``source`` reachability or ``giant`` component) and the working
  nodes that no longer satisfy it fail as *disconnected*.

Only what changed is revisited: each group keeps a count of its working suppliers that the
previous round's failures decrement, and a layer's rule is re-applied only when one of its
nodes failed by dependency in this round (the rules are idempotent, so an untouched layer
cannot lose more).  The loop is the flood-fill shape of scikit-image's
``morphology/_flood_fill_cy.pyx``: explicit queues, uint8 state, no recursion, no Python
objects, all inside ``nogil``.  Buffers are passed in so that callers reuse them.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t

import threading

import numpy as np

cimport cython


cdef inline index_t _fail(index_t v, int32_t rnd, uint8_t why, index_t group,
                          uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause,
                          index_t[::1] via_group, index_t[::1] changed,
                          index_t n_changed) noexcept nogil:
    working[v] = 0
    fail_round[v] = rnd
    cause[v] = why
    via_group[v] = group
    changed[n_changed] = v
    return n_changed + 1


cdef inline index_t _fail_quick(index_t v, uint8_t[::1] working, index_t[::1] changed,
                                index_t n_changed) noexcept nogil:
    """``_fail`` for the N-1 sweep's local cascades, which read only ``working`` and count the
    failures: ``fail_round``, ``cause`` and ``via_group`` are left alone (three fewer random
    writes per failed node, and three fewer in its undo; issue 15)."""
    working[v] = 0
    changed[n_changed] = v
    return n_changed + 1


cdef index_t _apply_source_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] adj_fwd, const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
        const uint8_t[::1] is_source, const uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[::1] mark) noexcept nogil:
    """Fail the working nodes of ``layer`` not reachable from one of its working sources."""
    cdef index_t i, j, u, v, head = 0, tail = 0
    cdef index_t start = layer_ptr[layer], stop = layer_ptr[layer + 1]
    for i in range(start, stop):
        v = layer_nodes[i]
        mark[v] = 0
        if working[v] and is_source[v]:
            mark[v] = 1
            queue[tail] = v
            tail += 1
    while head < tail:
        u = queue[head]
        head += 1
        for j in range(adj_ptr[u], adj_ptr[u + 1]):
            if adj_fwd[j] and not edge_failed[adj_edge[j]]:
                v = adj_nbr[j]
                if working[v] and not mark[v]:
                    mark[v] = 1
                    queue[tail] = v
                    tail += 1
    for i in range(start, stop):
        v = layer_nodes[i]
        if working[v] and not mark[v]:
            n_changed = _fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause,
                              via_group, changed, n_changed)
    return n_changed


cdef index_t _apply_giant_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[::1] comp,
        bint record) noexcept nogil:
    """Fail the working nodes of ``layer`` outside its largest component (edges undirected).

    Components are labelled in node order, so on a tie in size the first labelled one, the
    one holding the node listed first, wins (docs/format.md).
    """
    cdef index_t i, j, u, v, head, tail
    cdef index_t start = layer_ptr[layer], stop = layer_ptr[layer + 1]
    cdef index_t label = 0, best = -1, best_size = 0
    for i in range(start, stop):
        comp[layer_nodes[i]] = -1
    for i in range(start, stop):
        v = layer_nodes[i]
        if not working[v] or comp[v] != -1:
            continue
        comp[v] = label
        queue[0] = v
        head = 0
        tail = 1
        while head < tail:
            u = queue[head]
            head += 1
            for j in range(adj_ptr[u], adj_ptr[u + 1]):
                if not edge_failed[adj_edge[j]]:
                    v = adj_nbr[j]
                    if working[v] and comp[v] == -1:
                        comp[v] = label
                        queue[tail] = v
                        tail += 1
        if tail > best_size:
            best_size = tail
            best = label
        label += 1
    for i in range(start, stop):
        v = layer_nodes[i]
        if working[v] and comp[v] != best:
            n_changed = (_fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause,
                               via_group, changed, n_changed) if record
                         else _fail_quick(v, working, changed, n_changed))
    return n_changed


cdef index_t _arc_source_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const uint8_t[::1] arc,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const uint8_t[::1] is_source,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[::1] mark) noexcept nogil:
    """:func:`_apply_source_rule` over the per-arc flags ``arc`` (``ARC_FWD``: the arc is
    along its edge's direction and the edge works), with the failed nodes marked up front:
    one byte per arc and one mark per neighbour, no edge array.  The same failures in the
    same (node) order."""
    cdef index_t i, j, u, v, head = 0, tail = 0, n_dead = 0
    cdef index_t start = layer_ptr[layer], stop = layer_ptr[layer + 1]
    for i in range(start, stop):
        v = layer_nodes[i]
        mark[v] = 1 - working[v]         # failed nodes count as reached: never entered
        n_dead += 1 - working[v]
        if working[v] and is_source[v]:
            mark[v] = 1
            queue[tail] = v
            tail += 1
    while head < tail:
        u = queue[head]
        head += 1
        for j in range(adj_ptr[u], adj_ptr[u + 1]):
            if arc[j] & ARC_FWD:
                v = adj_nbr[j]
                if not mark[v]:
                    mark[v] = 1
                    queue[tail] = v
                    tail += 1
    if tail + n_dead == stop - start:    # every node reached or failed: nothing new
        return n_changed
    for i in range(start, stop):
        v = layer_nodes[i]
        if not mark[v]:
            n_changed = _fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause,
                              via_group, changed, n_changed)
    return n_changed


cdef index_t _arc_giant_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const uint8_t[::1] arc,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[::1] comp) noexcept nogil:
    """:func:`_apply_giant_rule` over the per-arc flags ``arc`` (``ARC_ANY``: the edge works),
    failed nodes labelled -2 up front (never entered).  The same components, labels, winner
    and failures."""
    cdef index_t i, j, u, v, head, tail
    cdef index_t start = layer_ptr[layer], stop = layer_ptr[layer + 1]
    cdef index_t label = 0, best = -1, best_size = 0
    for i in range(start, stop):
        v = layer_nodes[i]
        comp[v] = -1 if working[v] else -2
    for i in range(start, stop):
        v = layer_nodes[i]
        if comp[v] != -1:
            continue
        comp[v] = label
        queue[0] = v
        head = 0
        tail = 1
        while head < tail:
            u = queue[head]
            head += 1
            for j in range(adj_ptr[u], adj_ptr[u + 1]):
                if arc[j] & ARC_ANY:
                    v = adj_nbr[j]
                    if comp[v] == -1:
                        comp[v] = label
                        queue[tail] = v
                        tail += 1
        if tail > best_size:
            best_size = tail
            best = label
        label += 1
    if label <= 1:                       # one component (or none): nothing new
        return n_changed
    for i in range(start, stop):
        v = layer_nodes[i]
        if comp[v] >= 0 and comp[v] != best:
            n_changed = _fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause,
                              via_group, changed, n_changed)
    return n_changed


cdef index_t _dependency_step(
        index_t frontier_start, index_t frontier_end, int32_t rnd,
        const index_t[::1] rdep_ptr, const index_t[::1] rdep_grp, const index_t[::1] group_owner,
        const uint8_t[::1] group_held, const int32_t[::1] node_layer,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] alive, index_t[::1] changed, index_t n_changed,
        uint8_t[::1] layer_dirty, bint record) noexcept nogil:
    """Round ``rnd``'s dependency step: the failures of ``changed[frontier_start:frontier_end]``
    (last round's) decrement their groups' counts of working suppliers; a dependent whose group
    just emptied, and is not held by a backup, fails.  Marks the dependents' layers dirty."""
    cdef index_t i, j, u, g, owner
    for i in range(frontier_start, frontier_end):
        u = changed[i]
        for j in range(rdep_ptr[u], rdep_ptr[u + 1]):
            g = rdep_grp[j]
            alive[g] -= 1
            owner = group_owner[g]
            if alive[g] == 0 and working[owner] and not group_held[g]:
                n_changed = (_fail(owner, rnd, CAUSE_DEPENDENCY, g, working, fail_round,
                                   cause, via_group, changed, n_changed) if record
                             else _fail_quick(owner, working, changed, n_changed))
                layer_dirty[node_layer[owner]] = 1
    return n_changed


cdef inline void _report_emptied_groups(
        index_t lo, index_t hi, const index_t[::1] changed, const index_t[::1] grp_ptr,
        const index_t[::1] alive, const uint8_t[::1] group_held,
        index_t[::1] via_group) noexcept nogil:
    """For the nodes ``changed[lo:hi]`` (one dependency step's failures): ``via_group`` = their
    first emptied group that no backup holds (groups are numbered in table order)."""
    cdef index_t i, v, g
    for i in range(lo, hi):
        v = changed[i]
        for g in range(grp_ptr[v], grp_ptr[v + 1]):
            if alive[g] == 0 and not group_held[g]:
                via_group[v] = g
                break


cdef index_t _cascade(
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] adj_fwd,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const int32_t[::1] node_layer,
        const uint8_t[::1] layer_rule, const uint8_t[::1] is_source,
        const index_t[::1] grp_ptr, const index_t[::1] sup_ptr, const index_t[::1] rdep_ptr,
        const index_t[::1] rdep_grp, const index_t[::1] group_owner, const uint8_t[::1] group_held,
        const index_t[::1] edge_src, const index_t[::1] init_nodes, const index_t[::1] init_edges, const uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] alive, index_t[::1] changed, index_t[::1] queue, index_t[::1] comp,
        uint8_t[::1] layer_dirty, bint incremental) noexcept nogil:
    """Run one cascade; return how many nodes stopped working (listed in ``changed``).

    ``changed[:returned]`` lists those nodes in the order they failed, so round by round.
    With ``incremental`` the state arrays already hold a fixpoint (for example the intact
    system's) and only the layers touched by ``init_nodes`` / ``init_edges`` are revisited;
    otherwise every node starts working and every layer is checked in round 1.
    ``edge_failed`` must already mark ``init_edges``.  A group with ``group_held[g]`` set
    never fails its dependent (a backup still running: generator, battery, tank); the
    time model of cascade.recovery sets it while a group's ``delay`` lasts.
    """
    cdef Py_ssize_t n = working.shape[0]
    cdef Py_ssize_t n_groups = group_owner.shape[0]
    cdef Py_ssize_t n_layers = layer_rule.shape[0]
    cdef Py_ssize_t layer
    cdef index_t i, j, u, v, g, owner
    cdef index_t n_changed = 0, frontier_start = 0, frontier_end
    cdef int32_t rnd = 0

    if incremental:
        for layer in range(n_layers):
            layer_dirty[layer] = 0
    else:
        for v in range(n):
            working[v] = 1
            fail_round[v] = -1
            cause[v] = CAUSE_NONE
            via_group[v] = -1
        for g in range(n_groups):
            alive[g] = sup_ptr[g + 1] - sup_ptr[g]
        for layer in range(n_layers):
            layer_dirty[layer] = 1

    for i in range(init_nodes.shape[0]):
        v = init_nodes[i]
        if working[v]:
            n_changed = _fail(v, 0, CAUSE_INITIAL, -1, working, fail_round, cause, via_group,
                              changed, n_changed)
            layer_dirty[node_layer[v]] = 1
    for i in range(init_edges.shape[0]):
        layer_dirty[node_layer[edge_src[init_edges[i]]]] = 1
    frontier_end = n_changed

    while True:
        rnd += 1
        # Dependency step: the groups that last round's failures emptied.
        n_changed = _dependency_step(frontier_start, frontier_end, rnd, rdep_ptr, rdep_grp,
                                     group_owner, group_held, node_layer, working, fail_round,
                                     cause, via_group, alive, changed, n_changed, layer_dirty,
                                     True)
        # Report the first emptied group of each.
        _report_emptied_groups(frontier_end, n_changed, changed, grp_ptr, alive, group_held,
                               via_group)
        # Connectivity step, on the layers whose candidates changed.
        for layer in range(n_layers):
            if not layer_dirty[layer]:
                continue
            layer_dirty[layer] = 0
            if layer_rule[layer] == RULE_SOURCE:
                n_changed = _apply_source_rule(
                    layer, rnd, adj_ptr, adj_nbr, adj_edge, adj_fwd, layer_ptr, layer_nodes,
                    is_source, edge_failed, working, fail_round, cause, via_group, changed,
                    n_changed, queue, comp)
            elif layer_rule[layer] == RULE_GIANT:
                n_changed = _apply_giant_rule(
                    layer, rnd, adj_ptr, adj_nbr, adj_edge, layer_ptr, layer_nodes, edge_failed,
                    working, fail_round, cause, via_group, changed, n_changed, queue, comp,
                    True)
        frontier_start = frontier_end
        frontier_end = n_changed
        if frontier_start == frontier_end:
            break
    return n_changed


cdef void _undo(const index_t[::1] rdep_ptr, const index_t[::1] rdep_grp,
                uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause,
                index_t[::1] via_group, index_t[::1] alive, const index_t[::1] changed,
                index_t n_changed) noexcept nogil:
    """Bring the nodes an incremental cascade failed back to working, counts included."""
    cdef index_t i, j, v
    for i in range(n_changed):
        v = changed[i]
        working[v] = 1
        fail_round[v] = -1
        cause[v] = CAUSE_NONE
        via_group[v] = -1
        for j in range(rdep_ptr[v], rdep_ptr[v + 1]):
            alive[rdep_grp[j]] += 1


cdef void _undo_quick(const index_t[::1] rdep_ptr, const index_t[::1] rdep_grp,
                      uint8_t[::1] working, index_t[::1] alive, const index_t[::1] changed,
                      index_t n_changed) noexcept nogil:
    """``_undo`` of ``_cascade_local``'s failures (made by ``_fail_quick``)."""
    cdef index_t i, j, v
    for i in range(n_changed):
        v = changed[i]
        working[v] = 1
        for j in range(rdep_ptr[v], rdep_ptr[v + 1]):
            alive[rdep_grp[j]] += 1


def cascade(const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
            const uint8_t[::1] adj_fwd,
            const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
            const int32_t[::1] node_layer, const uint8_t[::1] layer_rule,
            const uint8_t[::1] is_source,
            const index_t[::1] grp_ptr, const index_t[::1] sup_ptr, const index_t[::1] rdep_ptr,
            const index_t[::1] rdep_grp, const index_t[::1] group_owner,
            const uint8_t[::1] group_held, const index_t[::1] edge_src,
            const index_t[::1] init_nodes,
            const index_t[::1] init_edges,
            const uint8_t[::1] edge_failed,
            uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause,
            index_t[::1] via_group, index_t[::1] alive, index_t[::1] changed,
            index_t[::1] queue, index_t[::1] comp, uint8_t[::1] layer_dirty,
            bint incremental=False):
    """Python entry to ``_cascade``; releases the GIL for the whole fixpoint.

    Callers go through :class:`cascade.compiled.Workspace`, which owns the buffers.  A run
    from scratch on a system of at least ``LOCAL_MIN_NODES`` nodes goes through
    ``_cascade_tree`` (local re-checks after round 1, the same answer in the same order), with
    scratch buffers kept per thread and per shape (:func:`_tree_scratch`).
    """
    cdef index_t n_changed
    cdef index_t[:, ::1] tree
    cdef uint8_t[::1] aff, arc, edge_info
    cdef index_t[::1] aff_list, cursor, layer_root, lcount
    if not incremental and working.shape[0] >= LOCAL_MIN_NODES:
        tree, aff, aff_list, arc, edge_info, cursor, layer_root, lcount = _tree_scratch(
            working.shape[0], adj_nbr.shape[0], edge_failed.shape[0], layer_rule.shape[0],
            np.asarray(adj_nbr).dtype)
        with nogil:
            _arc_flags(adj_edge, adj_fwd, edge_failed, edge_info, arc)
            n_changed = _cascade_tree(adj_ptr, adj_nbr, arc, layer_ptr, layer_nodes, node_layer,
                                      layer_rule, is_source, grp_ptr, sup_ptr, rdep_ptr, rdep_grp,
                                      group_owner, group_held, init_nodes, working, fail_round,
                                      cause, via_group, alive, changed, queue, comp, layer_dirty,
                                      tree, aff, aff_list, cursor, layer_root, lcount)
        return n_changed
    with nogil:
        n_changed = _cascade(adj_ptr, adj_nbr, adj_edge, adj_fwd, layer_ptr, layer_nodes,
                             node_layer, layer_rule, is_source, grp_ptr, sup_ptr, rdep_ptr, rdep_grp,
                             group_owner, group_held, edge_src, init_nodes, init_edges, edge_failed,
                             working, fail_round, cause, via_group, alive, changed, queue, comp,
                             layer_dirty, incremental)
    return n_changed


# Runs from scratch on systems of at least this many nodes use ``_cascade_tree`` (tests set it
# to 0 to send small systems through it as well).
LOCAL_MIN_NODES = 20_000

_scratch = threading.local()


def _tree_scratch(Py_ssize_t n, Py_ssize_t n_arcs, Py_ssize_t m, Py_ssize_t n_layers, dtype):
    """The scratch buffers of ``_cascade_tree``, allocated once per thread and shape (a fresh
    allocation per run would cost page faults comparable to a BFS at 10^6 nodes)."""
    key = (n, n_arcs, m, n_layers, np.dtype(dtype).str)
    cached = getattr(_scratch, "buffers", None)
    if cached is None or cached[0] != key:
        cached = (key, (np.zeros((n, 4), dtype), np.zeros(n, np.uint8), np.zeros(n, dtype),
                        np.zeros(n_arcs, np.uint8), np.zeros(m, np.uint8),
                        np.zeros(n_layers, dtype), np.zeros(n_layers, dtype),
                        np.zeros(n_layers, dtype)))
        _scratch.buffers = cached
    return cached[1]


def undo(const index_t[::1] rdep_ptr, const index_t[::1] rdep_grp,
         uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause,
         index_t[::1] via_group, index_t[::1] alive, const index_t[::1] changed,
         index_t n_changed):
    """Python entry to ``_undo`` (restores the state an incremental cascade started from)."""
    with nogil:
        _undo(rdep_ptr, rdep_grp, working, fail_round, cause, via_group, alive, changed,
              n_changed)



# ---------------------------------------------------------------------------------------------
# N-1 sweep (cascade.criticality): every element's cascade in one call, buffers reused.
#
# Local `source` rule.  After the start fixpoint, a BFS forest from the working sources of each
# `source` layer (the "supply forest") certifies every working node: its tree path from a source.
# When nodes (or tree edges) of the layer fail, only the nodes in their subtrees can lose supply
# (a node outside every such subtree keeps its tree path).  So the rule is re-checked only on
# that "affected" region: affected working nodes with a usable arc from an unaffected working
# node (or that are sources) are supplied, and a search from them inside the region finds the
# rest of the supplied ones.  The outcome is the same set as the whole-layer search of
# `_apply_source_rule`, in time proportional to the region (the idea of dominator-tree
# criticality, docs/model.md, with the BFS tree as a cheap superset of the dominated subtree).

def supply_forest(const index_t[::1] adj_ptr, const index_t[::1] adj_nbr,
                  const index_t[::1] adj_edge, const uint8_t[::1] adj_fwd,
                  const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
                  const uint8_t[::1] layer_rule, const uint8_t[::1] is_source,
                  const uint8_t[::1] working, const uint8_t[::1] edge_failed,
                  index_t[::1] parent, index_t[::1] par_edge, index_t[::1] child_ptr,
                  index_t[::1] child_idx, index_t[::1] queue):
    """BFS forest of each `source` layer from its working sources over usable arcs, and BFS
    tree of each `giant` layer from its first working node over usable edges (both ways).

    Fills ``parent`` (the node itself for a source, -1 outside the forest), ``par_edge``
    (the tree edge to the parent, -1 for roots and outside) and the children as CSR
    (``child_ptr``, shape (n+1,); ``child_idx``, shape (n,)).
    """
    cdef Py_ssize_t n = parent.shape[0], n_layers = layer_rule.shape[0], layer
    cdef index_t i, j, u, v, w, head, tail, p
    cdef bint giant
    with nogil:
        for v in range(n):
            parent[v] = -1
            par_edge[v] = -1
        for layer in range(n_layers):
            if layer_rule[layer] == RULE_NONE:
                continue
            giant = layer_rule[layer] == RULE_GIANT
            head = 0
            tail = 0
            for i in range(layer_ptr[layer], layer_ptr[layer + 1]):
                v = layer_nodes[i]
                if working[v] and ((giant and tail == 0) or (not giant and is_source[v])):
                    parent[v] = v
                    queue[tail] = v
                    tail += 1
            while head < tail:
                u = queue[head]
                head += 1
                for j in range(adj_ptr[u], adj_ptr[u + 1]):
                    if (adj_fwd[j] or giant) and not edge_failed[adj_edge[j]]:
                        w = adj_nbr[j]
                        if working[w] and parent[w] == -1:
                            parent[w] = u
                            par_edge[w] = adj_edge[j]
                            queue[tail] = w
                            tail += 1
        for v in range(n + 1):
            child_ptr[v] = 0
        for v in range(n):
            p = parent[v]
            if p >= 0 and p != v:
                child_ptr[p + 1] += 1
        for v in range(n):
            child_ptr[v + 1] += child_ptr[v]
        for v in range(n):
            queue[v] = child_ptr[v]
        for v in range(n):
            p = parent[v]
            if p >= 0 and p != v:
                child_idx[queue[p]] = v
                queue[p] += 1


cdef index_t _mark_subtree(index_t root, const index_t[::1] child_ptr, const index_t[::1] child_idx,
                           uint8_t[::1] aff, index_t[::1] aff_list, index_t n_aff,
                           index_t[::1] stack) noexcept nogil:
    """Add the supply-forest subtree of ``root`` to the affected region; return its new size."""
    cdef index_t top = 0, u, j, c
    if aff[root]:
        return n_aff
    aff[root] = 1
    aff_list[n_aff] = root
    n_aff += 1
    stack[0] = root
    top = 1
    while top > 0:
        top -= 1
        u = stack[top]
        for j in range(child_ptr[u], child_ptr[u + 1]):
            c = child_idx[j]
            if not aff[c]:  # a marked child's subtree is marked already
                aff[c] = 1
                aff_list[n_aff] = c
                n_aff += 1
                stack[top] = c
                top += 1
    return n_aff


cdef index_t _spread_affected(
        index_t head, index_t tail, uint8_t mark, bint forward_only,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] arc, const uint8_t[::1] edge_failed, const uint8_t[::1] working,
        uint8_t[::1] aff, index_t[::1] queue) noexcept nogil:
    """Breadth-first from ``queue[head:tail]`` over usable edges (along their direction only
    with ``forward_only``) into working affected nodes (``aff == 1``), marking them ``mark``.
    Returns the new end of the queue."""
    cdef index_t j, u, w
    while head < tail:
        u = queue[head]
        head += 1
        for j in range(adj_ptr[u], adj_ptr[u + 1]):
            if arc[j] & (ARC_FWD if forward_only else ARC_ANY):
                w = adj_nbr[j]
                if aff[w] == 1 and working[w]:
                    aff[w] = mark
                    queue[tail] = w
                    tail += 1
    return tail


cdef index_t _local_source_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] arc, const uint8_t[::1] edge_directed,
        const int32_t[::1] node_layer, const uint8_t[::1] is_source, const uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue,
        const index_t[::1] child_ptr, const index_t[::1] child_idx,
        uint8_t[::1] aff, index_t[::1] aff_list, index_t* n_aff, index_t[::1] cursor,
        bint ordered, bint record=True) noexcept nogil:
    """``_apply_source_rule`` restricted to the affected region (see the section comment).
    With ``ordered`` the new failures are listed in node order, as the whole-layer rule lists
    them (``layer_nodes`` ascends), else in region order."""
    cdef index_t i, j, u, v, w, e, head = 0, tail = 0, n_new
    # New failures of this layer since its last check become roots of affected subtrees.
    for i in range(cursor[layer], n_changed):
        v = changed[i]
        if node_layer[v] == layer:
            n_aff[0] = _mark_subtree(v, child_ptr, child_idx, aff, aff_list, n_aff[0], queue)
    # Seeds: affected working nodes that are sources or have a usable arc from a supplied node.
    for i in range(n_aff[0]):
        v = aff_list[i]
        if node_layer[v] != layer or not working[v]:
            continue
        if is_source[v]:
            aff[v] = 2
            queue[tail] = v
            tail += 1
            continue
        for j in range(adj_ptr[v], adj_ptr[v + 1]):
            w = adj_nbr[j]
            if aff[w] or not working[w]:
                continue
            if arc[j] & ARC_IN:  # a usable arc w -> v
                aff[v] = 2
                queue[tail] = v
                tail += 1
                break
    tail = _spread_affected(head, tail, 2, True, adj_ptr, adj_nbr, adj_edge, arc,
                            edge_failed, working, aff, queue)
    n_new = n_changed
    for i in range(n_aff[0]):
        v = aff_list[i]
        if node_layer[v] != layer:
            continue
        if aff[v] == 2:
            aff[v] = 1  # still affected: its tree path is broken for the rest of this cascade
        elif working[v]:
            n_new = (_fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause, via_group,
                           changed, n_new) if record else _fail_quick(v, working, changed, n_new))
    if ordered:
        _sort_range(changed, n_changed, n_new)
    cursor[layer] = n_new
    return n_new


cdef index_t _local_giant_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] arc, const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
        const int32_t[::1] node_layer, const uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[::1] comp,
        const index_t[::1] child_ptr, const index_t[::1] child_idx,
        uint8_t[::1] aff, index_t[::1] aff_list, index_t* n_aff, index_t[::1] cursor,
        const index_t[::1] layer_root, const index_t[::1] layer_count, bint ordered,
        bint record=True) noexcept nogil:
    """``_apply_giant_rule`` on a layer whose working nodes were connected at the start.

    Nodes outside the affected subtrees of the layer's spanning tree are connected to its root
    (``layer_root``: the first node working at the start; ``layer_count`` of them worked), so
    they and the affected nodes reached from them form the root's component; the other
    components lie in the affected region.  Only start-working nodes can work, so the root's
    component holds the first candidate and wins ties; when another one is strictly larger
    (or the root failed) the whole-layer rule runs instead.
    """
    cdef index_t i, j, u, v, w, head = 0, tail = 0, n_new, size, best_other = 0
    cdef index_t n_failed = 0, n_unreached = 0, main_size
    cdef index_t root = layer_root[layer]
    cdef index_t layer_size = layer_count[layer]
    for i in range(cursor[layer], n_changed):
        v = changed[i]
        if node_layer[v] == layer:
            n_aff[0] = _mark_subtree(v, child_ptr, child_idx, aff, aff_list, n_aff[0], queue)
    cursor[layer] = n_changed
    if root < 0:  # nothing of the layer worked at the start
        return n_changed
    if aff[root]:
        return _apply_giant_rule(layer, rnd, adj_ptr, adj_nbr, adj_edge, layer_ptr, layer_nodes,
                                 edge_failed, working, fail_round, cause, via_group, changed,
                                 n_changed, queue, comp, record)
    for i in range(n_aff[0]):
        v = aff_list[i]
        if node_layer[v] != layer or not working[v]:
            continue
        for j in range(adj_ptr[v], adj_ptr[v + 1]):
            w = adj_nbr[j]
            if (arc[j] & ARC_ANY) and not aff[w] and working[w]:
                aff[v] = 2
                queue[tail] = v
                tail += 1
                break
    tail = _spread_affected(head, tail, 2, False, adj_ptr, adj_nbr, adj_edge, arc,
                            edge_failed, working, aff, queue)
    # Components of the unreached affected nodes (marked 3).
    for i in range(n_aff[0]):
        v = aff_list[i]
        if node_layer[v] != layer:
            continue
        if not working[v]:
            n_failed += 1
        elif aff[v] == 1:
            aff[v] = 3
            queue[0] = v
            tail = _spread_affected(0, 1, 3, False, adj_ptr, adj_nbr, adj_edge, arc,
                                    edge_failed, working, aff, queue)
            n_unreached += tail
            if tail > best_other:
                best_other = tail
    main_size = layer_size - n_failed - n_unreached
    n_new = n_changed
    if best_other > main_size:
        for i in range(n_aff[0]):
            v = aff_list[i]
            if aff[v] > 1:
                aff[v] = 1
        return _apply_giant_rule(layer, rnd, adj_ptr, adj_nbr, adj_edge, layer_ptr, layer_nodes,
                                 edge_failed, working, fail_round, cause, via_group, changed,
                                 n_changed, queue, comp, record)
    for i in range(n_aff[0]):
        v = aff_list[i]
        if node_layer[v] != layer:
            continue
        if aff[v] == 3:
            aff[v] = 1
            n_new = (_fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause, via_group,
                           changed, n_new) if record else _fail_quick(v, working, changed, n_new))
        elif aff[v] == 2:
            aff[v] = 1
    if ordered:
        _sort_range(changed, n_changed, n_new)
    cursor[layer] = n_new
    return n_new


cdef index_t _cascade_local(
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] arc, const uint8_t[::1] edge_directed,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const int32_t[::1] node_layer,
        const uint8_t[::1] layer_rule, const uint8_t[::1] is_source,
        const index_t[::1] rdep_ptr, const index_t[::1] rdep_grp, const index_t[::1] group_owner,
        const uint8_t[::1] group_held, const index_t[::1] edge_src, const index_t[::1] edge_dst,
        index_t x, index_t e, const uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] alive, index_t[::1] changed, index_t[::1] queue, index_t[::1] comp,
        uint8_t[::1] layer_dirty, const index_t[::1] child_ptr, const index_t[::1] child_idx,
        const index_t[::1] par_edge, uint8_t[::1] aff, index_t[::1] aff_list,
        index_t[::1] cursor, const index_t[::1] layer_root,
        const index_t[::1] layer_count) noexcept nogil:
    """The incremental ``_cascade`` of node ``x`` (or, when ``x < 0``, edge ``e``, already
    marked in ``edge_failed``) with the local rules; returns the count of
    nodes that stopped working (listed in ``changed``).  Same rounds and same final state as
    ``_cascade(..., incremental=True)``; ``via_group`` is not filled (the sweep counts only).
    """
    cdef Py_ssize_t n_layers = layer_rule.shape[0], layer
    cdef index_t i, j, u, g, owner, n_aff = 0
    cdef index_t n_changed = 0, frontier_start = 0, frontier_end
    cdef int32_t rnd = 0
    for layer in range(n_layers):
        layer_dirty[layer] = 0
        cursor[layer] = 0
    if x >= 0:
        if not working[x]:
            return 0
        n_changed = _fail_quick(x, working, changed, n_changed)
        layer_dirty[node_layer[x]] = 1
    else:
        layer = node_layer[edge_src[e]]
        layer_dirty[layer] = 1
        if layer_rule[layer] != RULE_NONE:
            # A failed tree edge cuts its child's subtree off its tree path.
            if par_edge[edge_dst[e]] == e:
                n_aff = _mark_subtree(edge_dst[e], child_ptr, child_idx, aff, aff_list, n_aff, queue)
            elif par_edge[edge_src[e]] == e:
                n_aff = _mark_subtree(edge_src[e], child_ptr, child_idx, aff, aff_list, n_aff, queue)
    frontier_end = n_changed
    while True:
        rnd += 1
        n_changed = _dependency_step(frontier_start, frontier_end, rnd, rdep_ptr, rdep_grp,
                                     group_owner, group_held, node_layer, working, fail_round,
                                     cause, via_group, alive, changed, n_changed, layer_dirty,
                                     False)
        for layer in range(n_layers):
            if not layer_dirty[layer]:
                continue
            layer_dirty[layer] = 0
            if layer_rule[layer] == RULE_SOURCE:
                n_changed = _local_source_rule(
                    layer, rnd, adj_ptr, adj_nbr, adj_edge, arc, edge_directed, node_layer,
                    is_source, edge_failed, working, fail_round, cause, via_group, changed,
                    n_changed, queue, child_ptr, child_idx, aff, aff_list, &n_aff, cursor, False, False)
            elif layer_rule[layer] == RULE_GIANT:
                n_changed = _local_giant_rule(
                    layer, rnd, adj_ptr, adj_nbr, adj_edge, arc, layer_ptr, layer_nodes, node_layer,
                    edge_failed, working, fail_round, cause, via_group, changed, n_changed, queue,
                    comp, child_ptr, child_idx, aff, aff_list, &n_aff, cursor, layer_root,
                    layer_count, False, False)
        frontier_start = frontier_end
        frontier_end = n_changed
        if frontier_start == frontier_end:
            break
    for i in range(n_aff):
        aff[aff_list[i]] = 0
    return n_changed


cdef double _region_limit = 0.25


def set_region_limit(double fraction):
    """``_cascade_incr`` searches a layer whole once its region holds more than this fraction
    of the layer (default 0.25; tests and benchmarks vary it, the answers do not change)."""
    global _region_limit
    _region_limit = fraction


cdef index_t _cascade_incr(
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] adj_fwd, const uint8_t[::1] arc,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const int32_t[::1] node_layer,
        const uint8_t[::1] layer_rule, const uint8_t[::1] is_source,
        const index_t[::1] grp_ptr, const index_t[::1] rdep_ptr,
        const index_t[::1] rdep_grp, const index_t[::1] group_owner, const uint8_t[::1] group_held,
        const index_t[::1] edge_src, const index_t[::1] edge_dst,
        const index_t[::1] init_nodes, const index_t[::1] init_edges, const uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] alive, index_t[::1] changed, index_t[::1] queue, index_t[::1] comp,
        uint8_t[::1] layer_dirty, const index_t[::1] child_ptr, const index_t[::1] child_idx,
        const index_t[::1] par_edge, uint8_t[::1] aff, index_t[::1] aff_list,
        index_t[::1] cursor, index_t[::1] reg_n, const index_t[::1] layer_root,
        const index_t[::1] layer_count) noexcept nogil:
    """``_cascade(..., incremental=True)`` from a start state where every node works, with the
    local rules of the sweep (:func:`_local_source_rule`, :func:`_local_giant_rule`): a layer
    is re-checked only on the supply-forest subtrees its failures (and failed tree edges) cut.
    The same failures, rounds, causes, groups and ``changed`` order as ``_cascade``.

    Each layer keeps its own region, ``aff_list[layer_ptr[l]:layer_ptr[l] + reg_n[l]]`` (edges
    and so subtrees stay in a layer).  Once a layer's region holds more than a quarter of the
    layer, a local check would cost about what a whole-layer search costs, so the layer is
    searched whole for the rest of the cascade (``reg_n[l] = -1``), as ``_cascade`` does.

    ``arc`` must be the start state's flags with the arcs of ``init_edges`` cleared, and
    ``edge_failed`` must mark ``init_edges``; ``aff`` is all 0 on entry and on return.
    """
    cdef Py_ssize_t n_layers = layer_rule.shape[0], layer
    cdef index_t i, v, g, e, x, base, k
    cdef index_t n_changed = 0, frontier_start = 0, frontier_end
    cdef int32_t rnd = 0
    cdef uint8_t rule
    for layer in range(n_layers):
        layer_dirty[layer] = 0
        cursor[layer] = 0
        reg_n[layer] = 0
    for i in range(init_nodes.shape[0]):
        v = init_nodes[i]
        if working[v]:
            n_changed = _fail(v, 0, CAUSE_INITIAL, -1, working, fail_round, cause, via_group,
                              changed, n_changed)
            layer_dirty[node_layer[v]] = 1
    for i in range(init_edges.shape[0]):
        e = init_edges[i]
        layer = node_layer[edge_src[e]]
        layer_dirty[layer] = 1
        if layer_rule[layer] != RULE_NONE:
            # A failed tree edge cuts its child's subtree off its tree path.
            x = -1
            if par_edge[edge_dst[e]] == e:
                x = edge_dst[e]
            elif par_edge[edge_src[e]] == e:
                x = edge_src[e]
            if x >= 0:
                base = layer_ptr[layer]
                reg_n[layer] = _mark_subtree(x, child_ptr, child_idx, aff,
                                             aff_list[base:layer_ptr[layer + 1]],
                                             reg_n[layer], queue)
    frontier_end = n_changed
    while True:
        rnd += 1
        n_changed = _dependency_step(frontier_start, frontier_end, rnd, rdep_ptr, rdep_grp,
                                     group_owner, group_held, node_layer, working, fail_round,
                                     cause, via_group, alive, changed, n_changed, layer_dirty,
                                     True)
        _report_emptied_groups(frontier_end, n_changed, changed, grp_ptr, alive, group_held,
                               via_group)
        for layer in range(n_layers):
            if not layer_dirty[layer]:
                continue
            layer_dirty[layer] = 0
            rule = layer_rule[layer]
            if rule == RULE_NONE:
                continue
            base = layer_ptr[layer]
            if reg_n[layer] >= 0:
                # The layer's failures since its last check become roots of its region.
                for i in range(cursor[layer], n_changed):
                    v = changed[i]
                    if node_layer[v] == layer:
                        reg_n[layer] = _mark_subtree(v, child_ptr, child_idx, aff,
                                                     aff_list[base:layer_ptr[layer + 1]],
                                                     reg_n[layer], queue)
                cursor[layer] = n_changed
                if reg_n[layer] > _region_limit * (layer_ptr[layer + 1] - base):
                    for k in range(base, base + reg_n[layer]):
                        aff[aff_list[k]] = 0
                    reg_n[layer] = -1
            if reg_n[layer] < 0:
                if rule == RULE_SOURCE:
                    n_changed = _arc_source_rule(
                        layer, rnd, adj_ptr, adj_nbr, arc, layer_ptr, layer_nodes, is_source,
                        working, fail_round, cause, via_group, changed, n_changed, queue, comp)
                else:
                    n_changed = _arc_giant_rule(
                        layer, rnd, adj_ptr, adj_nbr, arc, layer_ptr, layer_nodes,
                        working, fail_round, cause, via_group, changed, n_changed, queue, comp)
            elif rule == RULE_SOURCE:
                n_changed = _local_source_rule(
                    layer, rnd, adj_ptr, adj_nbr, adj_edge, arc, arc, node_layer,
                    is_source, edge_failed, working, fail_round, cause, via_group, changed,
                    n_changed, queue, child_ptr, child_idx, aff,
                    aff_list[base:layer_ptr[layer + 1]], &reg_n[layer], cursor, True)
            else:
                n_changed = _local_giant_rule(
                    layer, rnd, adj_ptr, adj_nbr, adj_edge, arc, layer_ptr, layer_nodes, node_layer,
                    edge_failed, working, fail_round, cause, via_group, changed, n_changed, queue,
                    comp, child_ptr, child_idx, aff, aff_list[base:layer_ptr[layer + 1]],
                    &reg_n[layer], cursor, layer_root, layer_count, True)
        frontier_start = frontier_end
        frontier_end = n_changed
        if frontier_start == frontier_end:
            break
    for layer in range(n_layers):
        base = layer_ptr[layer]
        for k in range(base, base + reg_n[layer]):
            aff[aff_list[k]] = 0
    return n_changed


def cascade_incr(const index_t[::1] adj_ptr, const index_t[::1] adj_nbr,
                 const index_t[::1] adj_edge, const uint8_t[::1] adj_fwd, uint8_t[::1] arc,
                 const uint8_t[::1] arc0, const index_t[::1] edge_arc,
                 const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
                 const int32_t[::1] node_layer, const uint8_t[::1] layer_rule,
                 const uint8_t[::1] is_source, const index_t[::1] grp_ptr,
                 const index_t[::1] rdep_ptr, const index_t[::1] rdep_grp,
                 const index_t[::1] group_owner, const uint8_t[::1] group_held,
                 const index_t[::1] edge_src, const index_t[::1] edge_dst,
                 const index_t[::1] init_nodes, const index_t[::1] init_edges,
                 uint8_t[::1] edge_failed, uint8_t[::1] working, int32_t[::1] fail_round,
                 uint8_t[::1] cause, index_t[::1] via_group, index_t[::1] alive,
                 index_t[::1] changed, index_t[::1] queue, index_t[::1] comp,
                 uint8_t[::1] layer_dirty, const index_t[::1] child_ptr,
                 const index_t[::1] child_idx, const index_t[::1] par_edge, uint8_t[::1] aff,
                 index_t[::1] aff_list, index_t[::1] cursor, index_t[::1] reg_n,
                 const index_t[::1] layer_root, const index_t[::1] layer_count):
    """Python entry to ``_cascade_incr`` for tests, as ``cascade._ensemble.run_block`` calls
    it: marks ``init_edges`` failed and clears their arcs, runs, and restores ``edge_failed``
    and ``arc`` (the node state stays; :func:`undo` brings it back)."""
    cdef Py_ssize_t i
    cdef index_t e, n_changed
    with nogil:
        for i in range(init_edges.shape[0]):
            e = init_edges[i]
            edge_failed[e] = 1
            arc[edge_arc[2 * e]] = 0
            arc[edge_arc[2 * e + 1]] = 0
        n_changed = _cascade_incr(adj_ptr, adj_nbr, adj_edge, adj_fwd, arc, layer_ptr,
                                  layer_nodes, node_layer, layer_rule, is_source, grp_ptr,
                                  rdep_ptr, rdep_grp, group_owner, group_held, edge_src, edge_dst,
                                  init_nodes, init_edges, edge_failed, working, fail_round, cause,
                                  via_group, alive, changed, queue, comp, layer_dirty, child_ptr,
                                  child_idx, par_edge, aff, aff_list, cursor, reg_n, layer_root,
                                  layer_count)
        for i in range(init_edges.shape[0]):
            e = init_edges[i]
            edge_failed[e] = 0
            arc[edge_arc[2 * e]] = arc0[edge_arc[2 * e]]
            arc[edge_arc[2 * e + 1]] = arc0[edge_arc[2 * e + 1]]
    return n_changed


cdef inline bint _isolated_effect(index_t x, const index_t[::1] adj_ptr, const index_t[::1] adj_nbr,
                                  const index_t[::1] adj_edge, const uint8_t[::1] arc,
                                  const index_t[::1] rdep_ptr, uint8_t rule,
                                  const uint8_t[::1] working, const uint8_t[::1] edge_failed) noexcept nogil:
    """True when failing the working node ``x`` can stop no other node (so it loses itself only).

    It supplies no dependency group, and: in a ``none`` layer nothing else is needed; in a
    ``source`` layer no usable edge leaves ``x`` (so no supply path runs through it); in a
    ``giant`` layer whose working nodes are connected, ``x`` touches at most one other
    working node (removing a leaf keeps the rest connected).  Callers use it only where the
    incremental cascade is exact.
    """
    cdef index_t j, w, other = -1
    if rdep_ptr[x + 1] != rdep_ptr[x]:
        return False
    if rule == RULE_NONE:
        return True
    for j in range(adj_ptr[x], adj_ptr[x + 1]):
        w = adj_nbr[j]
        if w == x or not working[w] or not (arc[j] & ARC_ANY):
            continue
        if rule == RULE_SOURCE:
            if arc[j] & ARC_FWD:
                return False
        elif other == -1:
            other = w
        elif w != other:
            return False
    return True


cdef inline void _write_row(Py_ssize_t r, int64_t lost, double lost_demand,
                            const int64_t[::1] acc_layer, const double[::1] acc_layer_demand,
                            int64_t[::1] out_nodes, double[::1] out_demand,
                            int64_t[:, ::1] out_layer, double[:, ::1] out_layer_demand) noexcept nogil:
    """Row ``r`` of the sweep's outputs, by stores only."""
    cdef Py_ssize_t l
    out_nodes[r] = lost
    out_demand[r] = lost_demand
    for l in range(acc_layer.shape[0]):
        out_layer[r, l] = acc_layer[l]
        out_layer_demand[r, l] = acc_layer_demand[l]


def sweep(const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
          const uint8_t[::1] adj_fwd, const uint8_t[::1] edge_directed,
          const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
          const int32_t[::1] node_layer, const uint8_t[::1] layer_rule,
          const uint8_t[::1] is_source, const double[::1] demand,
          const index_t[::1] grp_ptr, const index_t[::1] sup_ptr, const index_t[::1] rdep_ptr,
          const index_t[::1] rdep_grp, const index_t[::1] group_owner,
          const uint8_t[::1] group_held, const index_t[::1] edge_src, const index_t[::1] edge_dst,
          const index_t[::1] el_node, const index_t[::1] el_edge,
          const index_t[::1] pre_nodes, const index_t[::1] pre_edges,
          const uint8_t[::1] count_mask,
          uint8_t[::1] edge_failed, uint8_t[::1] working, int32_t[::1] fail_round,
          uint8_t[::1] cause, index_t[::1] via_group, index_t[::1] alive, index_t[::1] changed,
          index_t[::1] queue, index_t[::1] comp, uint8_t[::1] layer_dirty,
          index_t[::1] init_nodes, index_t[::1] init_edges, index_t[::1] no_index,
          const index_t[::1] child_ptr, const index_t[::1] child_idx, const index_t[::1] par_edge,
          uint8_t[::1] aff, index_t[::1] aff_list, index_t[::1] cursor,
          const index_t[::1] layer_root, const index_t[::1] layer_count,
          int64_t[::1] out_nodes, double[::1] out_demand, int64_t[:, ::1] out_layer,
          double[:, ::1] out_layer_demand, int mode, bint skip, uint8_t[::1] arc,
          const index_t[::1] edge_arc, const index_t[::1] el_row):
    """Cascade of each element ``k`` failing on top of ``pre_nodes`` / ``pre_edges``.

    Element ``k`` is node ``el_node[k]`` when that is >= 0, else edge ``el_edge[k]``.  Row
    ``k`` of the outputs gets the nodes lost, their demand, and their count and demand per
    layer (``out_layer``, ``out_layer_demand``: layers have their own units).

    ``mode``:

    * 0 (full): every element runs the full cascade from scratch with the pre-failures and
      itself (``init_nodes`` / ``init_edges`` must hold the pre-failures and have one spare
      slot at the end); a node is lost when ``count_mask`` is set and it ends not working.
    * 1 (incremental): the state buffers (``working``, ``fail_round``, ``cause``,
      ``via_group``, ``alive``, ``edge_failed``) hold the fixpoint after the pre-failures;
      each element is failed on top of it with ``_cascade`` and undone (exact where the
      fixpoint does not depend on the update order, see cascade.criticality).  Losses are
      relative to the start fixpoint.
    * 2 (local): as 1, with ``_cascade_local``: layers re-checked only where the supply
      forest (``child_ptr``, ``child_idx``, ``par_edge`` from :func:`supply_forest` on the
      start state) is cut.  ``layer_root`` / ``layer_count``: per layer, the first node
      working at the start (-1 if none) and how many work.  ``aff`` (uint8, zeros),
      ``aff_list`` (n) and ``cursor`` (one per layer) are its scratch buffers.

    ``skip`` (modes 1 and 2): elements that cannot change the start state, and nodes whose
    failure can stop no other node, are answered without a cascade.

    ``arc`` (modes 1 and 2): the start state's per-arc flags (:func:`arc_flags`), a private
    copy per thread; ``edge_arc[2 e]``, ``edge_arc[2 e + 1]``: the two adjacency entries of
    edge ``e``, whose flags an edge element clears while it fails.

    ``el_row``: empty, or the output row of each element (element ``k`` writes row
    ``el_row[k]`` instead of ``k``): the sweep visits elements in its own order and writes
    their rows in the caller's.
    """
    cdef Py_ssize_t n_el = el_node.shape[0], n = working.shape[0]
    cdef Py_ssize_t n_layers = layer_rule.shape[0]
    cdef Py_ssize_t k, i, l
    cdef Py_ssize_t n_pre_nodes = pre_nodes.shape[0], n_pre_edges = pre_edges.shape[0]
    cdef index_t x, e, v, n_changed
    cdef index_t[::1] cur_nodes
    cdef index_t[::1] cur_edges
    cdef int64_t lost
    cdef double lost_demand
    cdef uint8_t arc0 = 0, arc1 = 0
    cdef Py_ssize_t r
    cdef bint has_row = el_row.shape[0] > 0
    # One element's losses per layer, summed here and written to its row once at the end: with
    # ``el_row`` the rows are scattered over outputs of 80 bytes a row per layer pair (96 MB at
    # 10^6 nodes and 5 layers), where adding into the row itself stalls on a cache miss per
    # failed node; a row written by stores alone does not (issue 15).
    cdef int64_t[::1] acc_layer = np.zeros(n_layers, np.int64)
    cdef double[::1] acc_layer_demand = np.zeros(n_layers, np.float64)
    with nogil:
        for k in range(n_el):
            r = el_row[k] if has_row else k
            x = el_node[k]
            e = el_edge[k]
            for l in range(n_layers):
                acc_layer[l] = 0
                acc_layer_demand[l] = 0.0
            lost = 0
            lost_demand = 0.0
            if mode != 0:
                if x >= 0:
                    if skip and not working[x]:
                        _write_row(r, 0, 0.0, acc_layer, acc_layer_demand, out_nodes, out_demand,
                                   out_layer, out_layer_demand)
                        continue
                    if skip and _isolated_effect(x, adj_ptr, adj_nbr, adj_edge, arc, rdep_ptr,
                                                 layer_rule[node_layer[x]], working, edge_failed):
                        acc_layer[node_layer[x]] = 1
                        acc_layer_demand[node_layer[x]] = demand[x]
                        _write_row(r, 1, demand[x], acc_layer, acc_layer_demand, out_nodes,
                                   out_demand, out_layer, out_layer_demand)
                        continue
                    init_nodes[0] = x
                    cur_nodes = init_nodes[:1]
                    cur_edges = no_index
                else:
                    if (skip and (edge_failed[e] or not working[edge_src[e]] or not working[edge_dst[e]]
                                  or layer_rule[node_layer[edge_src[e]]] == RULE_NONE)) \
                            or edge_failed[e]:  # (already failed: nothing changes)
                        _write_row(r, 0, 0.0, acc_layer, acc_layer_demand, out_nodes, out_demand,
                                   out_layer, out_layer_demand)
                        continue
                    init_edges[0] = e
                    edge_failed[e] = 1
                    arc0 = arc[edge_arc[2 * e]]
                    arc1 = arc[edge_arc[2 * e + 1]]
                    arc[edge_arc[2 * e]] = 0
                    arc[edge_arc[2 * e + 1]] = 0
                    cur_nodes = no_index
                    cur_edges = init_edges[:1]
                if mode == 1:
                    n_changed = _cascade(adj_ptr, adj_nbr, adj_edge, adj_fwd, layer_ptr, layer_nodes,
                                         node_layer, layer_rule, is_source, grp_ptr, sup_ptr, rdep_ptr,
                                         rdep_grp, group_owner, group_held, edge_src, cur_nodes,
                                         cur_edges, edge_failed, working, fail_round, cause, via_group,
                                         alive, changed, queue, comp, layer_dirty, True)
                else:
                    n_changed = _cascade_local(adj_ptr, adj_nbr, adj_edge, arc, edge_directed,
                                               layer_ptr, layer_nodes, node_layer, layer_rule, is_source,
                                               rdep_ptr, rdep_grp, group_owner, group_held, edge_src,
                                               edge_dst, x, e, edge_failed, working, fail_round, cause,
                                               via_group, alive, changed, queue, comp, layer_dirty,
                                               child_ptr, child_idx, par_edge, aff, aff_list, cursor,
                                               layer_root, layer_count)
                for i in range(n_changed):
                    v = changed[i]
                    lost_demand += demand[v]
                    acc_layer[node_layer[v]] += 1
                    acc_layer_demand[node_layer[v]] += demand[v]
                _write_row(r, n_changed, lost_demand, acc_layer, acc_layer_demand, out_nodes,
                           out_demand, out_layer, out_layer_demand)
                if mode == 1:
                    _undo(rdep_ptr, rdep_grp, working, fail_round, cause, via_group, alive,
                          changed, n_changed)
                else:
                    _undo_quick(rdep_ptr, rdep_grp, working, alive, changed, n_changed)
                if x < 0:
                    edge_failed[e] = 0
                    arc[edge_arc[2 * e]] = arc0
                    arc[edge_arc[2 * e + 1]] = arc1
            else:
                for v in range(edge_failed.shape[0]):
                    edge_failed[v] = 0
                for i in range(n_pre_edges):
                    edge_failed[pre_edges[i]] = 1
                if x >= 0:
                    init_nodes[n_pre_nodes] = x
                    cur_nodes = init_nodes[:n_pre_nodes + 1]
                    cur_edges = init_edges[:n_pre_edges]
                else:
                    init_edges[n_pre_edges] = e
                    edge_failed[e] = 1
                    cur_nodes = init_nodes[:n_pre_nodes]
                    cur_edges = init_edges[:n_pre_edges + 1]
                _cascade(adj_ptr, adj_nbr, adj_edge, adj_fwd, layer_ptr, layer_nodes,
                         node_layer, layer_rule, is_source, grp_ptr, sup_ptr, rdep_ptr,
                         rdep_grp, group_owner, group_held, edge_src, cur_nodes,
                         cur_edges, edge_failed, working, fail_round, cause, via_group,
                         alive, changed, queue, comp, layer_dirty, False)
                for v in range(n):
                    if count_mask[v] and not working[v]:
                        lost += 1
                        lost_demand += demand[v]
                        acc_layer[node_layer[v]] += 1
                        acc_layer_demand[node_layer[v]] += demand[v]
                _write_row(r, lost, lost_demand, acc_layer, acc_layer_demand, out_nodes,
                           out_demand, out_layer, out_layer_demand)


# ---------------------------------------------------------------------------------------------
# The static cascade from scratch with local re-checks (``_cascade_tree``), and a plain BFS.
#
# Round 1 applies every layer's rule over the whole layer, as ``_cascade`` does, but records the
# BFS forest it walked (``tree[v] = (parent, first child, next sibling, previous sibling)``, a
# forest that can be re-linked in O(1) per node).  After round 1 every working node of a `source`
# layer hangs in that forest under a working source, and the working nodes of a `giant` layer
# form one tree rooted at the layer's first working node.  Edges fail only in round 0, so from
# round 2 on a layer loses candidates only by dependency; then only the subtrees of the nodes it
# lost (the "region") can lose supply or connection: the rule is re-checked there alone (seeds:
# region nodes with a usable arc from a working node outside it), the nodes it fails are listed
# in node order (the order of the whole-layer rule), and the region's surviving nodes are
# re-linked under the parent that reached them, so the next round starts from a valid forest
# again.  A `giant` layer whose root failed, or where a piece of the region outgrows the root's
# component, runs the whole-layer rule again (and rebuilds its tree).  Rounds, causes, groups,
# final state and the order of ``changed`` are those of ``_cascade``.
#
# Arcs carry their own usability flags (``arc``, laid out like ``adj_nbr``), so a BFS reads no
# edge array per arc.

cdef void _arc_flags(const index_t[::1] adj_edge, const uint8_t[::1] adj_fwd,
                     const uint8_t[::1] edge_failed, uint8_t[::1] edge_info,
                     uint8_t[::1] arc) noexcept nogil:
    """Fill ``arc`` (one byte per adjacency entry) from ``adj_fwd`` and ``edge_failed``."""
    cdef Py_ssize_t j, e, n_arcs = arc.shape[0], m = edge_failed.shape[0]
    cdef bint special = False
    cdef uint8_t info
    for e in range(m):
        edge_info[e] = 2 if edge_failed[e] else 0
        if edge_failed[e]:
            special = True
    for j in range(n_arcs):
        if not adj_fwd[j]:
            edge_info[adj_edge[j]] |= 1   # directed
            special = True
    if not special:
        for j in range(n_arcs):
            arc[j] = ARC_FWD | ARC_IN | ARC_ANY
        return
    for j in range(n_arcs):
        info = edge_info[adj_edge[j]]
        if info & 2:
            arc[j] = 0
        elif adj_fwd[j]:
            arc[j] = ARC_FWD | ARC_ANY if info & 1 else ARC_FWD | ARC_IN | ARC_ANY
        else:
            arc[j] = ARC_IN | ARC_ANY


cdef inline void _link(index_t v, index_t p, index_t[:, ::1] tree) noexcept nogil:
    cdef index_t first = tree[p, 1]
    tree[v, 0] = p
    tree[v, 2] = first
    tree[v, 3] = -1
    if first >= 0:
        tree[first, 3] = v
    tree[p, 1] = v


cdef inline void _unlink(index_t v, index_t[:, ::1] tree) noexcept nogil:
    cdef index_t p = tree[v, 0], prv = tree[v, 3], nxt = tree[v, 2]
    if p < 0:
        return
    if prv >= 0:
        tree[prv, 2] = nxt
    else:
        tree[p, 1] = nxt
    if nxt >= 0:
        tree[nxt, 3] = prv
    tree[v, 0] = -1


cdef void _sort_range(index_t[::1] a, index_t lo, index_t hi) noexcept nogil:
    """Sort ``a[lo:hi]`` ascending in place (heap sort; no allocation)."""
    cdef index_t n = hi - lo, i, start, end, root, child, t
    if n < 2:
        return
    if n <= 16:
        for i in range(lo + 1, hi):
            t = a[i]
            start = i
            while start > lo and a[start - 1] > t:
                a[start] = a[start - 1]
                start -= 1
            a[start] = t
        return
    start = n // 2
    end = n
    while end > 1:
        if start > 0:
            start -= 1
        else:
            end -= 1
            t = a[lo + end]
            a[lo + end] = a[lo]
            a[lo] = t
        root = start
        while True:
            child = 2 * root + 1
            if child >= end:
                break
            if child + 1 < end and a[lo + child] < a[lo + child + 1]:
                child += 1
            if a[lo + root] < a[lo + child]:
                t = a[lo + root]
                a[lo + root] = a[lo + child]
                a[lo + child] = t
                root = child
            else:
                break


cdef index_t _tree_source_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const uint8_t[::1] arc,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const uint8_t[::1] is_source,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[:, ::1] tree,
        uint8_t[::1] mark) noexcept nogil:
    """``_apply_source_rule`` over the whole layer, recording its BFS forest in ``tree``."""
    cdef index_t i, j, u, v, w, head = 0, tail = 0
    cdef index_t start = layer_ptr[layer], stop = layer_ptr[layer + 1]
    for i in range(start, stop):
        v = layer_nodes[i]
        tree[v, 0] = -1
        tree[v, 1] = -1
        if working[v] and is_source[v]:
            mark[v] = 1
            queue[tail] = v
            tail += 1
    while head < tail:
        u = queue[head]
        head += 1
        for j in range(adj_ptr[u], adj_ptr[u + 1]):
            if arc[j] & ARC_FWD:
                w = adj_nbr[j]
                if working[w] and not mark[w]:
                    mark[w] = 1
                    _link(w, u, tree)
                    queue[tail] = w
                    tail += 1
    for i in range(start, stop):
        v = layer_nodes[i]
        if working[v] and not mark[v]:
            n_changed = _fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause,
                              via_group, changed, n_changed)
        mark[v] = 0
    return n_changed


cdef index_t _tree_giant_rule(
        Py_ssize_t layer, int32_t rnd,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const uint8_t[::1] arc,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[::1] comp,
        index_t[:, ::1] tree, index_t[::1] layer_root) noexcept nogil:
    """``_apply_giant_rule`` over the whole layer, recording the BFS tree of each component;
    ``layer_root[layer]`` becomes the winner's first node (the layer's first working node)."""
    cdef index_t i, j, u, v, w, head, tail
    cdef index_t start = layer_ptr[layer], stop = layer_ptr[layer + 1]
    cdef index_t label = 0, best = -1, best_size = 0
    layer_root[layer] = -1
    for i in range(start, stop):
        v = layer_nodes[i]
        comp[v] = -1
        tree[v, 0] = -1
        tree[v, 1] = -1
    for i in range(start, stop):
        v = layer_nodes[i]
        if not working[v] or comp[v] != -1:
            continue
        comp[v] = label
        queue[0] = v
        head = 0
        tail = 1
        while head < tail:
            u = queue[head]
            head += 1
            for j in range(adj_ptr[u], adj_ptr[u + 1]):
                if arc[j] & ARC_ANY:
                    w = adj_nbr[j]
                    if working[w] and comp[w] == -1:
                        comp[w] = label
                        _link(w, u, tree)
                        queue[tail] = w
                        tail += 1
        if tail > best_size:
            best_size = tail
            best = label
            layer_root[layer] = v
        label += 1
    for i in range(start, stop):
        v = layer_nodes[i]
        if working[v] and comp[v] != best:
            n_changed = _fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause,
                              via_group, changed, n_changed)
    return n_changed


cdef index_t _tree_mark(index_t root, index_t[:, ::1] tree, uint8_t[::1] aff,
                        index_t[::1] aff_list, index_t n_aff, index_t[::1] stack) noexcept nogil:
    """Add the subtree of ``root`` in ``tree`` to the region; return the region's new size."""
    cdef index_t top, u, c
    if aff[root]:
        return n_aff
    aff[root] = 1
    aff_list[n_aff] = root
    n_aff += 1
    stack[0] = root
    top = 1
    while top > 0:
        top -= 1
        u = stack[top]
        c = tree[u, 1]
        while c >= 0:
            if not aff[c]:
                aff[c] = 1
                aff_list[n_aff] = c
                n_aff += 1
                stack[top] = c
                top += 1
            c = tree[c, 2]
    return n_aff


cdef index_t _tree_spread(index_t head, index_t tail, uint8_t mark, uint8_t flag,
                          const index_t[::1] adj_ptr, const index_t[::1] adj_nbr,
                          const uint8_t[::1] arc, const uint8_t[::1] working, uint8_t[::1] aff,
                          index_t[::1] queue, index_t[::1] newpar, bint record) noexcept nogil:
    """BFS from ``queue[head:tail]`` over arcs with ``flag`` into working region nodes still
    marked 1, marking them ``mark`` (and their new parent with ``record``); returns the tail."""
    cdef index_t j, u, w
    while head < tail:
        u = queue[head]
        head += 1
        for j in range(adj_ptr[u], adj_ptr[u + 1]):
            if arc[j] & flag:
                w = adj_nbr[j]
                if aff[w] == 1 and working[w]:
                    aff[w] = mark
                    if record:
                        newpar[w] = u
                    queue[tail] = w
                    tail += 1
    return tail


cdef void _tree_repair(index_t n_aff, const index_t[::1] aff_list, uint8_t[::1] aff,
                       const uint8_t[::1] working, index_t[:, ::1] tree,
                       const index_t[::1] newpar) noexcept nogil:
    """Re-link the region's surviving nodes (``aff == 2``) under their new parents, drop the
    rest from the forest, and clear the region's marks."""
    cdef index_t i, v, p
    for i in range(n_aff):
        v = aff_list[i]
        p = tree[v, 0]
        if p >= 0 and not aff[p]:
            _unlink(v, tree)
    for i in range(n_aff):
        v = aff_list[i]
        tree[v, 0] = -1
        tree[v, 1] = -1
    for i in range(n_aff):
        v = aff_list[i]
        if aff[v] == 2 and working[v] and newpar[v] >= 0:
            _link(v, newpar[v], tree)
        aff[v] = 0


cdef index_t _tree_local_rule(
        Py_ssize_t layer, int32_t rnd, bint giant,
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const uint8_t[::1] arc,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const int32_t[::1] node_layer,
        const uint8_t[::1] is_source,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] changed, index_t n_changed, index_t[::1] queue, index_t[::1] comp,
        index_t[:, ::1] tree, uint8_t[::1] aff, index_t[::1] aff_list, index_t[::1] cursor,
        index_t[::1] layer_root, const index_t[::1] lcount) noexcept nogil:
    """The layer's rule re-checked on the subtrees of the nodes it lost since its last check."""
    cdef index_t i, j, v, w, n_aff = 0, tail = 0, n_new = n_changed, n_unreached = 0
    cdef index_t best_other = 0, size
    cdef index_t root = layer_root[layer]
    cdef uint8_t seed_flag = ARC_ANY if giant else ARC_IN
    for i in range(cursor[layer], n_changed):
        v = changed[i]
        if node_layer[v] == layer:
            n_aff = _tree_mark(v, tree, aff, aff_list, n_aff, queue)
    if n_aff == 0:
        cursor[layer] = n_changed
        return n_changed
    if giant and (root < 0 or aff[root]):
        for i in range(n_aff):
            aff[aff_list[i]] = 0
        n_new = _tree_giant_rule(layer, rnd, adj_ptr, adj_nbr, arc, layer_ptr, layer_nodes,
                                 working, fail_round, cause, via_group, changed, n_changed,
                                 queue, comp, tree, layer_root)
        cursor[layer] = n_new
        return n_new
    # Seeds: region nodes with a usable arc from a working node outside the region.
    for i in range(n_aff):
        v = aff_list[i]
        if not working[v]:
            continue
        if not giant and is_source[v]:
            aff[v] = 2
            comp[v] = -1
            queue[tail] = v
            tail += 1
            continue
        for j in range(adj_ptr[v], adj_ptr[v + 1]):
            if arc[j] & seed_flag:
                w = adj_nbr[j]
                if working[w] and not aff[w]:
                    aff[v] = 2
                    comp[v] = w
                    queue[tail] = v
                    tail += 1
                    break
    _tree_spread(0, tail, 2, ARC_ANY if giant else ARC_FWD, adj_ptr, adj_nbr, arc, working, aff,
                 queue, comp, True)
    if giant:
        # The other pieces (marked 3): when one outgrows the root's component, the whole layer.
        for i in range(n_aff):
            v = aff_list[i]
            if aff[v] == 1 and working[v]:
                aff[v] = 3
                queue[0] = v
                size = _tree_spread(0, 1, 3, ARC_ANY, adj_ptr, adj_nbr, arc, working, aff,
                                    queue, comp, False)
                n_unreached += size
                if size > best_other:
                    best_other = size
        if best_other > lcount[layer] - n_unreached:
            for i in range(n_aff):
                aff[aff_list[i]] = 0
            n_new = _tree_giant_rule(layer, rnd, adj_ptr, adj_nbr, arc, layer_ptr, layer_nodes,
                                     working, fail_round, cause, via_group, changed, n_changed,
                                     queue, comp, tree, layer_root)
            cursor[layer] = n_new
            return n_new
    for i in range(n_aff):
        v = aff_list[i]
        if working[v] and aff[v] != 2:
            changed[n_new] = v
            n_new += 1
    _sort_range(changed, n_changed, n_new)   # the whole-layer rule fails them in node order
    for i in range(n_changed, n_new):
        v = changed[i]
        _fail(v, rnd, CAUSE_DISCONNECTED, -1, working, fail_round, cause, via_group, changed, i)
    _tree_repair(n_aff, aff_list, aff, working, tree, comp)
    cursor[layer] = n_new
    return n_new


cdef index_t _cascade_tree(
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const uint8_t[::1] arc,
        const index_t[::1] layer_ptr, const index_t[::1] layer_nodes, const int32_t[::1] node_layer,
        const uint8_t[::1] layer_rule, const uint8_t[::1] is_source,
        const index_t[::1] grp_ptr, const index_t[::1] sup_ptr, const index_t[::1] rdep_ptr,
        const index_t[::1] rdep_grp, const index_t[::1] group_owner, const uint8_t[::1] group_held,
        const index_t[::1] init_nodes,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] alive, index_t[::1] changed, index_t[::1] queue, index_t[::1] comp,
        uint8_t[::1] layer_dirty, index_t[:, ::1] tree, uint8_t[::1] aff, index_t[::1] aff_list,
        index_t[::1] cursor, index_t[::1] layer_root, index_t[::1] lcount) noexcept nogil:
    """``_cascade`` from scratch (``incremental=False``) with local re-checks from round 2 on;
    the same rounds, causes, groups, final state and ``changed`` order."""
    cdef Py_ssize_t n = working.shape[0]
    cdef Py_ssize_t n_groups = group_owner.shape[0]
    cdef Py_ssize_t n_layers = layer_rule.shape[0]
    cdef Py_ssize_t layer
    cdef index_t i, v, g, before
    cdef index_t n_changed = 0, frontier_start = 0, frontier_end
    cdef int32_t rnd = 0

    for v in range(n):
        working[v] = 1
        fail_round[v] = -1
        cause[v] = CAUSE_NONE
        via_group[v] = -1
        aff[v] = 0
    for g in range(n_groups):
        alive[g] = sup_ptr[g + 1] - sup_ptr[g]
    for layer in range(n_layers):
        layer_dirty[layer] = 1
        cursor[layer] = 0
        lcount[layer] = layer_ptr[layer + 1] - layer_ptr[layer]
        layer_root[layer] = -1
    for i in range(init_nodes.shape[0]):
        v = init_nodes[i]
        if working[v]:
            n_changed = _fail(v, 0, CAUSE_INITIAL, -1, working, fail_round, cause, via_group,
                              changed, n_changed)
            lcount[node_layer[v]] -= 1
    frontier_end = n_changed

    while True:
        rnd += 1
        before = n_changed
        n_changed = _dependency_step(frontier_start, frontier_end, rnd, rdep_ptr, rdep_grp,
                                     group_owner, group_held, node_layer, working, fail_round,
                                     cause, via_group, alive, changed, n_changed, layer_dirty,
                                     True)
        _report_emptied_groups(frontier_end, n_changed, changed, grp_ptr, alive, group_held,
                               via_group)
        for i in range(frontier_end, n_changed):
            lcount[node_layer[changed[i]]] -= 1
        for layer in range(n_layers):
            if not layer_dirty[layer]:
                continue
            layer_dirty[layer] = 0
            before = n_changed
            if layer_rule[layer] == RULE_NONE:
                continue
            if rnd == 1:
                if layer_rule[layer] == RULE_SOURCE:
                    n_changed = _tree_source_rule(
                        layer, rnd, adj_ptr, adj_nbr, arc, layer_ptr, layer_nodes, is_source,
                        working, fail_round, cause, via_group, changed, n_changed, queue, tree,
                        aff)
                else:
                    n_changed = _tree_giant_rule(
                        layer, rnd, adj_ptr, adj_nbr, arc, layer_ptr, layer_nodes, working,
                        fail_round, cause, via_group, changed, n_changed, queue, comp, tree,
                        layer_root)
                cursor[layer] = n_changed
            else:
                n_changed = _tree_local_rule(
                    layer, rnd, layer_rule[layer] == RULE_GIANT, adj_ptr, adj_nbr, arc,
                    layer_ptr, layer_nodes, node_layer, is_source, working, fail_round, cause,
                    via_group, changed, n_changed, queue, comp, tree, aff, aff_list, cursor,
                    layer_root, lcount)
            lcount[layer] -= n_changed - before
        frontier_start = frontier_end
        frontier_end = n_changed
        if frontier_start == frontier_end:
            break
    return n_changed


def arc_flags(const index_t[::1] adj_edge, const uint8_t[::1] adj_fwd,
              const uint8_t[::1] edge_failed, uint8_t[::1] arc):
    """Fill ``arc`` (one byte per adjacency entry: 1 usable out along ``adj_fwd``, 2 usable in,
    4 usable at all) from ``adj_fwd`` and ``edge_failed``."""
    cdef uint8_t[::1] edge_info = np.zeros(edge_failed.shape[0], np.uint8)
    with nogil:
        _arc_flags(adj_edge, adj_fwd, edge_failed, edge_info, arc)


def forest_rank(const index_t[::1] parent, const index_t[::1] child_ptr,
                const index_t[::1] child_idx, index_t[::1] stack, index_t[::1] rank):
    """Depth-first preorder of the supply forest (:func:`supply_forest`'s ``parent``, roots
    where ``parent[v] == v``, taken in node order; children in ``child_idx`` order): ``rank[v]``
    is ``v``'s place in it, so that each subtree is a run of consecutive ranks.  Nodes outside
    the forest (``parent[v] == -1``) follow, in node order.  The sweep visits its node elements
    in this order: an element's subtree was just walked by its parent's element, so its
    memory is still in the CPU cache."""
    cdef Py_ssize_t n = parent.shape[0], v
    cdef index_t top, u, j, r = 0
    with nogil:
        for v in range(n):
            if parent[v] != v:
                continue
            stack[0] = <index_t>v
            top = 1
            while top > 0:
                top -= 1
                u = stack[top]
                rank[u] = r
                r += 1
                j = child_ptr[u + 1]
                while j > child_ptr[u]:   # pushed in reverse: popped in child order
                    j -= 1
                    stack[top] = child_idx[j]
                    top += 1
        for v in range(n):
            if parent[v] == -1:
                rank[v] = r
                r += 1
    return r


def edge_arcs(const index_t[::1] adj_edge, Py_ssize_t n_edges, index_t[::1] out):
    """Adjacency entries grouped by edge, in entry order within an edge (a stable counting sort
    of keys in ``[0, n_edges)``; the sweep also orders its elements with it): exactly
    ``np.argsort(adj_edge, kind="stable")`` (so ``out[2 e]``, ``out[2 e + 1]`` are the two
    entries of edge ``e`` when each edge has two), by one counting pass instead of a sort."""
    cdef Py_ssize_t j, e, n_arcs = adj_edge.shape[0]
    cdef index_t[::1] pos = np.zeros(n_edges + 1, np.asarray(out).dtype)
    with nogil:
        for j in range(n_arcs):
            pos[adj_edge[j] + 1] += 1
        for e in range(n_edges):
            pos[e + 1] += pos[e]
        for j in range(n_arcs):
            e = adj_edge[j]
            out[pos[e]] = <index_t>j
            pos[e] += 1


def gather_ranges(const index_t[::1] ptr, const index_t[::1] rank, index_t[::1] new_ptr,
                  const index_t[::1] vals, const index_t[::1] vmap, index_t[::1] out):
    """A CSR with its rows renumbered (old row ``v`` becomes row ``rank[v]``, its entries in the
    same order): fills ``new_ptr`` (shape (len(rank)+1,)) and ``out`` (shape (ptr[-1],)) with,
    for each entry at old position ``j``, ``vmap[vals[j]]`` (``vals[j]`` when ``vmap`` is empty,
    ``j`` itself when ``vals`` is empty too).  Reads the old rows in order and writes each to
    its new place (scattered writes cost less than scattered reads).  The sweep renumbers its
    system by the supply forest's preorder with it (cascade.criticality._Renumbered)."""
    cdef Py_ssize_t v, k = rank.shape[0]
    cdef index_t j, pos
    cdef bint has_vals = vals.shape[0] > 0, has_map = vmap.shape[0] > 0
    with nogil:
        new_ptr[0] = 0
        for v in range(k):
            new_ptr[rank[v] + 1] = ptr[v + 1] - ptr[v]
        for v in range(k):
            new_ptr[v + 1] += new_ptr[v]
        for v in range(k):
            pos = new_ptr[rank[v]]
            if has_map:
                for j in range(ptr[v], ptr[v + 1]):
                    out[pos] = vmap[vals[j]]
                    pos += 1
            elif has_vals:
                for j in range(ptr[v], ptr[v + 1]):
                    out[pos] = vals[j]
                    pos += 1
            else:
                for j in range(ptr[v], ptr[v + 1]):
                    out[pos] = j
                    pos += 1


def renumber_arcs(const index_t[::1] adj_ptr, const index_t[::1] adj_nbr,
                  const index_t[::1] adj_edge, const uint8_t[::1] adj_fwd,
                  const index_t[::1] rank, index_t[::1] new_ptr,
                  index_t[::1] new_nbr, index_t[::1] new_edge, uint8_t[::1] new_fwd):
    """The adjacency renumbered by ``rank`` (old node ``v`` is node ``rank[v]``), each node's
    arcs in the same order: :func:`gather_ranges` for the three arc arrays in one pass."""
    cdef Py_ssize_t v, k = rank.shape[0]
    cdef index_t j, pos
    with nogil:
        new_ptr[0] = 0
        for v in range(k):
            new_ptr[rank[v] + 1] = adj_ptr[v + 1] - adj_ptr[v]
        for v in range(k):
            new_ptr[v + 1] += new_ptr[v]
        for v in range(k):
            pos = new_ptr[rank[v]]
            for j in range(adj_ptr[v], adj_ptr[v + 1]):
                new_nbr[pos] = rank[adj_nbr[j]]
                new_edge[pos] = adj_edge[j]
                new_fwd[pos] = adj_fwd[j]
                pos += 1


def map_index(const index_t[::1] vals, const index_t[::1] vmap, index_t[::1] out):
    """``out[i] = vmap[vals[i]]``, and -1 where ``vals[i] < 0``."""
    cdef Py_ssize_t i
    cdef index_t v
    with nogil:
        for i in range(vals.shape[0]):
            v = vals[i]
            out[i] = vmap[v] if v >= 0 else -1


def element_keys(const index_t[::1] el_node, const index_t[::1] el_edge,
                 const index_t[::1] rank, const index_t[::1] edge_src, index_t[::1] out):
    """The sweep's order of elements as keys for :func:`edge_arcs`: node ``x`` gets
    ``rank[x]``, edge ``e`` gets ``n + rank[edge_src[e]]`` (``n = len(rank)``)."""
    cdef Py_ssize_t k, n = rank.shape[0]
    with nogil:
        for k in range(el_node.shape[0]):
            if el_node[k] >= 0:
                out[k] = rank[el_node[k]]
            else:
                out[k] = <index_t>n + rank[edge_src[el_edge[k]]]


def plain_bfs(const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, uint8_t[::1] mark,
              index_t[::1] queue):
    """A plain BFS over the whole CSR (every component, arcs both ways, no rule, no flags):
    the benchmarks' yardstick for one pass over a system.  Returns the number of components."""
    cdef Py_ssize_t n = mark.shape[0], s
    cdef index_t j, u, w, head, tail
    cdef Py_ssize_t n_comp = 0
    with nogil:
        for s in range(n):
            mark[s] = 0
        for s in range(n):
            if mark[s]:
                continue
            n_comp += 1
            mark[s] = 1
            queue[0] = <index_t>s
            head = 0
            tail = 1
            while head < tail:
                u = queue[head]
                head += 1
                for j in range(adj_ptr[u], adj_ptr[u + 1]):
                    w = adj_nbr[j]
                    if not mark[w]:
                        mark[w] = 1
                        queue[tail] = w
                        tail += 1
    return n_comp
