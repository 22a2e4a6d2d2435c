# Fixed-width types shared by the kernels (docs/development.md, rule 3, after sklearn's utils/_typedefs.pxd).
from libc.stdint cimport int32_t, int64_t, uint8_t

ctypedef fused index_t:
    int32_t
    int64_t

# Rules of a layer, as compiled by cascade.compiled.
cdef enum:
    RULE_NONE = 0
    RULE_SOURCE = 1
    RULE_GIANT = 2

# Causes of a node's failure.
cdef enum:
    CAUSE_NONE = 0
    CAUSE_INITIAL = 1
    CAUSE_DEPENDENCY = 2
    CAUSE_DISCONNECTED = 3

# The static cascade of _core.pyx, for other kernels that run it per sample inside their own
# nogil loop (cascade/_ensemble.pyx).
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
        uint8_t[::1] layer_dirty, bint incremental) noexcept nogil

# The incremental _cascade from a start state where every node works, with the local rules of
# the N-1 sweep (re-checks only the supply-forest subtrees a sample's failures cut).
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
        const index_t[::1] layer_count) noexcept nogil

# Undo of an incremental _cascade: the nodes it failed work again, counts included.
cdef void _undo(const index_t[::1] rdep_ptr, const index_t[::1] rdep_grp,
                uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause,
                index_t[::1] via_group, index_t[::1] alive, const index_t[::1] changed,
                index_t n_changed) noexcept nogil

# Usability flags of an adjacency entry (one byte per arc, laid out like ``adj_nbr``).
cdef enum:
    ARC_FWD = 1     # usable along ``adj_fwd`` (for `source` reachability, from this node out)
    ARC_IN = 2      # usable towards this node (an arc neighbour -> node)
    ARC_ANY = 4     # usable at all (for `giant` components)
