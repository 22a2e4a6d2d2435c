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

# Usability flags of an adjacency entry (one byte per arc, laid out like ``adj_nbr``).
cdef enum:
    ARC_FWD = 1     # usable along ``adj_fwd`` (for `source` reachability, from this node out)
    ARC_IN = 2      # usable towards this node (an arc neighbour -> node)
    ARC_ANY = 4     # usable at all (for `giant` components)
