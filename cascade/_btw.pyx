# cython: language_level=3
"""Brandes' dependency accumulation from a list of sources over a CSR adjacency (undirected:
every arc is used), for :mod:`cascade.betweenness`.  Arrays only; validated by the caller."""
import numpy as np
cimport numpy as cnp

ctypedef fused index_t:
    cnp.int32_t
    cnp.int64_t


def brandes(const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
            const cnp.int64_t[::1] sources, const double[::1] weight, double[::1] node_sum,
            double[::1] edge_sum, bint edges):
    """Add, for every source s = sources[i], weight[i] * delta_s(v) to node_sum[v] (v != s)
    and, with ``edges``, weight[i] times each arc's dependency term to edge_sum[its edge]
    (not halved).  Releases the GIL."""
    cdef Py_ssize_t n = adj_ptr.shape[0] - 1
    # Per node (distance, path count, dependency) side by side: one cache line per visit.
    cdef double[:, ::1] st = np.zeros((n, 3))
    cdef cnp.int64_t[::1] order = np.zeros(max(n, 1), np.int64)   # BFS order (a queue, then a stack)
    cdef Py_ssize_t i, head, tail, a, v, w, s
    cdef double term, wt
    for v in range(n):
        st[v, 0] = -1
    with nogil:
        for i in range(sources.shape[0]):
            s = sources[i]
            wt = weight[i]
            st[s, 0] = 0
            st[s, 1] = 1.0
            order[0] = s
            head, tail = 0, 1
            while head < tail:
                v = order[head]
                head += 1
                for a in range(adj_ptr[v], adj_ptr[v + 1]):
                    w = adj_nbr[a]
                    if st[w, 0] < 0:
                        st[w, 0] = st[v, 0] + 1
                        order[tail] = w
                        tail += 1
                    if st[w, 0] == st[v, 0] + 1:
                        st[w, 1] += st[v, 1]
            # Deepest first: every successor w of v has its delta complete before v's turn.
            for head in range(tail - 1, -1, -1):
                w = order[head]
                for a in range(adj_ptr[w], adj_ptr[w + 1]):
                    v = adj_nbr[a]
                    if st[v, 0] == st[w, 0] - 1:
                        term = st[v, 1] / st[w, 1] * (1.0 + st[w, 2])
                        st[v, 2] += term
                        if edges:
                            edge_sum[adj_edge[a]] += wt * term
                if w != s:
                    node_sum[w] += wt * st[w, 2]
            for head in range(tail):
                w = order[head]
                st[w, 0] = -1
                st[w, 1] = 0.0
                st[w, 2] = 0.0
