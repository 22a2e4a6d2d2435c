# cython: language_level=3
"""Flow kernels over arrays: max-min fair allocation (``flow`` layers) and DC power flow with
overload trips (``dcflow`` layers), docs/format.md (v2).

Both kernels see only arrays (indices 0..n-1 for nodes, 0..m-1 for edges); the name-to-index
boundary stays in ``cascade/compiled.py``.  The thin Python wrapper is ``cascade/flowkernels.py``.

Max-min fair allocation (:class:`MaxMinFlow`)
---------------------------------------------
The served vector x (0 <= x_i <= d_i) deliverable from the working sources over the capacitated
edges forms a polymatroid; the lexicographically max-min fair vector in x_i / d_i is its
lexicographically optimal base with weights d (Fujishige, "Lexicographically optimal base of a
polymatroid with respect to a weight vector", Math. Oper. Res. 5, 1980), capped at x_i <= d_i.
It is found by the decomposition algorithm, with each step one maximum flow on the graph with a
super source (arcs of capacity supply) and a super sink (arcs of capacity lambda d_i for the
nodes of the class being served, the fixed x_i of the classes served before it):

* a region of nodes with known total tau for its class nodes gets the uniform level
  lambda = tau / d(region); if the max flow at lambda saturates every sink arc, every class
  node of the region is served at lambda (one level);
* otherwise the minimum cut (the nodes not reachable from the source in the residual graph, A)
  is a tight set: its nodes' levels are below lambda, the rest's at or above.  A is solved as
  the *restriction* (the rest contracted into the source: the cut arcs become source arcs) and
  the rest as the *contraction* (A contracted into the sink: the cut arcs become fixed sink
  arcs that stay saturated), lower levels first, so that at any time the finished nodes lie
  below the current region and the pending ones above it (Gallo, Grigoriadis and Tarjan, SIAM
  J. Comput. 18, 1989, section 4, on the same nested cuts).

Each maximum flow is Dinic's algorithm on a compact graph of the region only.  Priority classes
are served in decreasing priority, each with the classes before it as fixed sinks.  Tolerances:
a max flow is feasible when its deficit is at most ``RTOL`` (1e-12) times the layer's scale
(its total supply plus its total demand); residual arcs below ``RTOL`` times that scale count as
saturated.

DC power flow with trips (:class:`DCFlow`)
------------------------------------------
Islands of alive buses over active branches; in each island priority classes are served in
order at one fraction min(1, remaining supply / class demand); generators share the served
total (with or without dispatch); the angles solve the reduced B theta = P / base + shift
terms with a sparse LDL^T in Cython (Davis's LDL algorithm, in the minimum-degree order that
SuperLU finds once for the intact grid); every branch whose
|flow| exceeds capacity * (1 + 1e-9) trips at once, and the loop repeats until none.  A
factorization is reused when branches leave an island without splitting it: the new angles
come from the old factors by the Woodbury identity (the rank-k update that LODFs express),
and an island is refactorised only when its bus set changes or more than ``kmax`` branches have
left it since its factors were computed.

The whole step loop runs in C (``DCFlow._run``, the default; ``cascade_py`` is the numpy loop it
replaced, kept as the oracle): islands by BFS over the CSR, serving, generator shares, then per
changed island a dense solve (at most ``DENSE_MAX`` buses), the intact grid's factor with a
Woodbury update (an island of the intact grid missing at most ``kmax`` branches; the columns
B^-1 a_b are kept for the rest of the cascade), or a fresh LDL^T: all the changed islands of a step
in one block-diagonal factor, each in the intact grid's fill-reducing order (a principal
submatrix eliminated in the inherited order), so no ordering is ever recomputed.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libc.math cimport INFINITY, fabs, isnan, NAN
from libc.stdlib cimport malloc, realloc, free

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu


RTOL = 1e-12
cdef double _RTOL = 1e-12
DC_TRIP_RTOL = 1e-9

# node states inside one priority class of MaxMinFlow
cdef enum:
    ST_OUT = 0        # not working, or not part of the layer
    ST_PENDING = 1    # in a region waiting on the stack (above the current region)
    ST_CURRENT = 2    # in the region being solved
    ST_FINAL = 3      # its region is solved (below the current region)
    ST_ABOVE = 4      # served in full at the root's split (above every region): like pending


# ----------------------------------------------------------------------------------------------
# Max-min fair allocation
# ----------------------------------------------------------------------------------------------

cdef class MaxMinFlow:
    """Max-min fair allocation by priority on one ``flow`` layer, with reusable buffers.

    Parameters
    ----------
    n : int
        Number of nodes (indices 0..n-1; nodes outside the layer are simply never alive).
    edge_src, edge_dst : ndarray of int64, shape (m,)
        Ends of every edge.
    edge_directed : ndarray of uint8, shape (m,)
        1: the edge carries flow src -> dst only; 0: either way (up to its capacity).
    edge_capacity : ndarray of float64, shape (m,)
        The most the edge carries; ``inf`` = unlimited, 0 (or NaN treated as unlimited by the
        wrapper) = unusable.
    """
    cdef readonly Py_ssize_t n, m
    cdef int64_t[::1] src, dst, adj_ptr, adj_nbr, adj_edge
    cdef uint8_t[::1] adj_out, adj_in
    cdef double[::1] cap
    # per-solve state
    cdef uint8_t[::1] active, working, state
    cdef int64_t[::1] order, loc, glob, queue, stk_s, stk_e, bfs
    cdef Py_ssize_t nwork
    cdef double[::1] x, eflow, sink_fixed, sink_dem, stk_tau, supply, lsrc, lfix, wflow, wsrc, wexc
    cdef uint8_t[::1] stk_warm
    cdef int64_t[::1] src_arc
    cdef int32_t[::1] prio
    # local graph (region + S + T)
    cdef int64_t[::1] first, rev, it, path, pair_edge, sink_arc, bnd_edge, bnd_loc
    cdef int32_t[::1] to, level     # node indices of the local graph: 4 bytes halve the traffic
    cdef int64_t[::1] t_tail, t_head, slot
    cdef double[::1] t_cap
    cdef double[::1] res, cap0, bnd_val
    cdef Py_ssize_t narcs, nbnd
    cdef double eps, scale, big
    cdef int32_t[::1] pr_d          # push-relabel (the warm starts' repair): labels, excess, queued
    cdef double[::1] pr_exc
    cdef uint8_t[::1] pr_inq
    cdef readonly Py_ssize_t n_maxflows, n_phases, n_paths, n_visits, n_returns, n_pushes

    def __init__(self, Py_ssize_t n, int64_t[::1] edge_src, int64_t[::1] edge_dst,
                 uint8_t[::1] edge_directed, double[::1] edge_capacity):
        cdef Py_ssize_t m = edge_src.shape[0], e, v, w
        cdef int64_t[::1] fill
        self.n = n
        self.m = m
        self.src = edge_src
        self.dst = edge_dst
        self.cap = edge_capacity
        deg = np.zeros(n + 1, dtype=np.int64)
        np.add.at(deg, np.asarray(edge_src) + 1, 1)
        np.add.at(deg, np.asarray(edge_dst) + 1, 1)
        self.adj_ptr = np.cumsum(deg)
        self.adj_nbr = np.empty(2 * m, dtype=np.int64)
        self.adj_edge = np.empty(2 * m, dtype=np.int64)
        self.adj_out = np.empty(2 * m, dtype=np.uint8)
        self.adj_in = np.empty(2 * m, dtype=np.uint8)
        fill = np.array(self.adj_ptr[:n], dtype=np.int64)
        for e in range(m):
            v = edge_src[e]
            w = edge_dst[e]
            self.adj_nbr[fill[v]] = w
            self.adj_edge[fill[v]] = e
            self.adj_out[fill[v]] = 1
            self.adj_in[fill[v]] = 0 if edge_directed[e] else 1
            fill[v] += 1
            self.adj_nbr[fill[w]] = v
            self.adj_edge[fill[w]] = e
            self.adj_out[fill[w]] = 0 if edge_directed[e] else 1
            self.adj_in[fill[w]] = 1
            fill[w] += 1
        self.active = np.zeros(m, dtype=np.uint8)
        self.working = np.zeros(n, dtype=np.uint8)
        self.state = np.zeros(n, dtype=np.uint8)
        self.order = np.zeros(n, dtype=np.int64)
        self.loc = np.zeros(n, dtype=np.int64)
        self.glob = np.zeros(n, dtype=np.int64)
        self.queue = np.zeros(n + 2, dtype=np.int64)
        self.bfs = np.zeros(n + 2, dtype=np.int64)
        self.stk_s = np.zeros(2 * n + 2, dtype=np.int64)
        self.stk_e = np.zeros(2 * n + 2, dtype=np.int64)
        self.stk_tau = np.zeros(2 * n + 2, dtype=np.float64)
        self.stk_warm = np.zeros(2 * n + 2, dtype=np.uint8)
        self.wflow = np.zeros(m, dtype=np.float64)
        self.wsrc = np.zeros(n, dtype=np.float64)
        self.wexc = np.zeros(n, dtype=np.float64)
        self.src_arc = np.zeros(n, dtype=np.int64)
        self.x = np.zeros(n, dtype=np.float64)
        self.eflow = np.zeros(m, dtype=np.float64)
        self.sink_fixed = np.zeros(n, dtype=np.float64)
        self.sink_dem = np.zeros(n, dtype=np.float64)
        self.lsrc = np.zeros(n, dtype=np.float64)
        self.lfix = np.zeros(n, dtype=np.float64)
        self.first = np.zeros(n + 3, dtype=np.int64)
        self.level = np.zeros(n + 2, dtype=np.int32)
        self.it = np.zeros(n + 2, dtype=np.int64)
        self.path = np.zeros(n + 2, dtype=np.int64)
        self.sink_arc = np.zeros(n, dtype=np.int64)
        na = 2 * m + 4 * n + 4
        self.rev = np.zeros(na, dtype=np.int64)
        self.t_tail = np.zeros(na, dtype=np.int64)
        self.t_head = np.zeros(na, dtype=np.int64)
        self.slot = np.zeros(na, dtype=np.int64)
        self.t_cap = np.zeros(na, dtype=np.float64)
        self.to = np.zeros(na, dtype=np.int32)
        self.res = np.zeros(na, dtype=np.float64)
        self.cap0 = np.zeros(na, dtype=np.float64)
        self.pair_edge = np.zeros(na // 2 + 1, dtype=np.int64)
        self.bnd_edge = np.zeros(2 * m + 1, dtype=np.int64)
        self.bnd_loc = np.zeros(2 * m + 1, dtype=np.int64)
        self.bnd_val = np.zeros(2 * m + 1, dtype=np.float64)
        self.pr_d = np.zeros(n + 2, dtype=np.int32)
        self.pr_exc = np.zeros(n + 2, dtype=np.float64)
        self.pr_inq = np.zeros(n + 2, dtype=np.uint8)

    def solve(self, uint8_t[::1] alive, uint8_t[::1] edge_usable, double[::1] supply,
              double[::1] demand, int32_t[::1] priority):
        """Served amounts, edge flows and working nodes (see :func:`cascade.flowkernels.maxmin_flow`)."""
        cdef Py_ssize_t v, e
        cdef double tot = 0.0
        self.supply = supply
        self.prio = priority
        with nogil:
            self._reach(alive, edge_usable, supply)
            for v in range(self.n):
                self.x[v] = 0.0
                if self.working[v]:
                    if supply[v] > 0:
                        tot += supply[v]
                    if demand[v] > 0:
                        tot += demand[v]
            self.scale = tot if tot > 0 else 1.0
            self.eps = _RTOL * self.scale
            self.big = 4.0 * self.scale   # stands for an unlimited capacity: no flow exceeds the supply
        self.n_maxflows = 0
        self.n_phases = 0
        self.n_paths = 0
        self.n_visits = 0
        self.n_returns = 0
        self.n_pushes = 0
        w = np.asarray(self.working).astype(bool)
        d = np.asarray(demand)
        classes = np.unique(np.asarray(priority)[w & (d > 0)])[::-1]
        for e in range(self.m):
            self.eflow[e] = 0.0
        cdef int32_t cls
        for c in classes:
            cls = <int32_t>c
            with nogil:
                self._serve_class(cls, demand)
        return (np.array(self.x), np.array(self.eflow), np.array(self.working, dtype=bool))

    cdef void _reach(self, uint8_t[::1] alive, uint8_t[::1] usable, double[::1] supply) noexcept nogil:
        """Active edges, and the nodes reachable from an alive source over them (working)."""
        cdef Py_ssize_t e, v, w, j, head = 0, tail = 0
        for e in range(self.m):
            v = self.src[e]
            w = self.dst[e]
            self.active[e] = (usable[e] and alive[v] and alive[w] and v != w
                              and self.cap[e] > 0)
        for v in range(self.n):
            self.working[v] = 0
            if alive[v] and supply[v] > 0:
                self.working[v] = 1
                self.bfs[tail] = v
                tail += 1
        while head < tail:
            v = self.bfs[head]
            head += 1
            for j in range(self.adj_ptr[v], self.adj_ptr[v + 1]):
                if self.adj_out[j] and self.active[self.adj_edge[j]]:
                    w = self.adj_nbr[j]
                    if not self.working[w]:
                        self.working[w] = 1
                        self.bfs[tail] = w
                        tail += 1
        self.nwork = tail        # bfs[:nwork]: the working nodes in breadth-first order

    cdef void _serve_class(self, int32_t cls, double[::1] demand) noexcept nogil:
        cdef Py_ssize_t v, e, cnt = 0, top = 0, s, t, i, k, na, nx
        cdef double tau, lam, value, y, du, du_a, du_x, fixed, tau_a, cut
        cdef uint8_t warm
        for e in range(self.m):
            self.eflow[e] = 0.0
        for v in range(self.n):
            self.sink_fixed[v] = 0.0
            self.sink_dem[v] = 0.0
            self.state[v] = ST_OUT
        # the working nodes in breadth-first order from the sources: local graphs keep
        # neighbours close in memory (the regions inherit the order)
        for i in range(self.nwork):
            v = self.bfs[i]
            self.state[v] = ST_PENDING
            self.order[cnt] = v
            cnt += 1
            if demand[v] > 0:
                if self.prio[v] > cls:
                    self.sink_fixed[v] = self.x[v]
                elif self.prio[v] == cls:
                    self.sink_dem[v] = demand[v]
        self.stk_s[0] = 0
        self.stk_e[0] = cnt
        self.stk_tau[0] = -1.0       # unknown: the root finds it with lambda = 1
        self.stk_warm[0] = 0
        top = 1
        while top > 0:
            top -= 1
            s = self.stk_s[top]
            t = self.stk_e[top]
            tau = self.stk_tau[top]
            warm = self.stk_warm[top]
            k = t - s
            du = 0.0
            fixed = 0.0
            self._build(s, t)
            for i in range(k):
                v = self.order[s + i]
                du += self.sink_dem[v]
                fixed += self.lfix[i]
            if du <= 0:
                lam = 0.0
            elif tau < 0:
                lam = 1.0                # the root: serve in full if possible
            else:
                lam = tau / du
            if lam > 1.0:
                lam = 1.0
            if lam < 0.0:
                lam = 0.0
            self._set_lambda(k, lam)
            value = self._warm_start(k) if warm else 0.0
            value += self._maxflow(k)
            y = fixed + lam * du
            if du <= 0 or y - value <= self.eps:
                self._finish(s, t, lam)
                continue
            if tau < 0:
                tau = value - fixed      # the class total is this maximum flow's
            # Split along the minimum cut: A = not reachable from S in the residual graph (the
            # last BFS of _maxflow), placed first in order[s:t]; X = the rest.
            na = 0
            du_a = 0.0
            for i in range(k):
                if self.level[i] < 0:
                    du_a += self.sink_dem[self.glob[i]]
            du_x = du - du_a
            if du_a <= 0 or (du_x <= 0 and lam < 1.0):
                self._finish(s, t, lam)      # numerically feasible: one level
                continue
            cut = 0.0
            tau_a = 0.0
            for i in range(k):
                if self.level[i] < 0:
                    tau_a += self.lsrc[i] - self.lfix[i]
            for i in range(self.narcs):
                # internal arcs from X into A (original capacity); source and sink arcs excluded
                if (self.t_head[i] < k and self.level[self.t_head[i]] < 0
                        and self.t_tail[i] < k and self.level[self.t_tail[i]] >= 0):
                    cut += self.t_cap[i]
            tau_a += cut
            if tau_a < 0:
                tau_a = 0.0
            if tau_a > lam * du_a:
                tau_a = lam * du_a
            # partition order[s:t]: A first
            for i in range(k):
                self.queue[i] = self.glob[i]
            for i in range(k):
                if self.level[i] < 0:
                    self.order[s + na] = self.queue[i]
                    na += 1
            nx = na
            for i in range(k):
                if self.level[i] >= 0:
                    self.order[s + nx] = self.queue[i]
                    nx += 1
            if lam >= 1.0:
                # X's levels are >= 1: served in full, by this very flow
                self._finish_above(k)
            for i in range(k):
                if self.state[self.glob[i]] == ST_CURRENT:
                    self.state[self.glob[i]] = ST_PENDING
            self._save_warm(k)
            if lam < 1.0:
                self.stk_s[top] = s + na
                self.stk_e[top] = t
                self.stk_tau[top] = tau - tau_a
                self.stk_warm[top] = 1
                top += 1
            self.stk_s[top] = s
            self.stk_e[top] = s + na
            self.stk_tau[top] = tau_a
            self.stk_warm[top] = 1
            top += 1

    cdef inline void _add_pair(self, int64_t a, int64_t b, double cab, double cba,
                               int64_t edge) noexcept nogil:
        """Arc a -> b (capacity cab) and its pair b -> a (cba), laid out in CSR by _pack."""
        cdef int64_t i = self.narcs
        self.t_tail[i] = a
        self.t_head[i] = b
        self.t_cap[i] = cab
        self.t_tail[i + 1] = b
        self.t_head[i + 1] = a
        self.t_cap[i + 1] = cba
        self.pair_edge[i >> 1] = edge
        self.narcs = i + 2

    cdef void _pack(self, Py_ssize_t nodes) noexcept nogil:
        """Counting sort of the arcs by tail: first[v]..first[v+1] are v's arcs, rev[] pairs them."""
        cdef Py_ssize_t i, v, a
        for v in range(nodes + 1):
            self.first[v] = 0
        for a in range(self.narcs):
            self.first[self.t_tail[a] + 1] += 1
        for v in range(nodes):
            self.first[v + 1] += self.first[v]
        for v in range(nodes):
            self.it[v] = self.first[v]
        for a in range(self.narcs):
            v = self.t_tail[a]
            i = self.it[v]
            self.it[v] = i + 1
            self.slot[a] = i
            self.to[i] = self.t_head[a]
            self.cap0[i] = self.t_cap[a]
            self.res[i] = self.t_cap[a]
        for a in range(self.narcs):
            self.rev[self.slot[a]] = self.slot[a ^ 1]

    cdef void _build(self, Py_ssize_t s, Py_ssize_t t) noexcept nogil:
        """Compact graph of region order[s:t]: locals 0..k-1, source k, sink k+1."""
        cdef Py_ssize_t k = t - s, i, j, v, w, e
        cdef uint8_t st
        cdef double c, ls, lf
        for i in range(k):
            v = self.order[s + i]
            self.loc[v] = i
            self.glob[i] = v
            self.state[v] = ST_CURRENT
        self.narcs = 0
        self.nbnd = 0
        for i in range(k):
            v = self.glob[i]
            ls = self.supply[v] if self.supply[v] > 0 else 0.0
            lf = self.sink_fixed[v]
            for j in range(self.adj_ptr[v], self.adj_ptr[v + 1]):
                e = self.adj_edge[j]
                if not self.active[e]:
                    continue
                w = self.adj_nbr[j]
                st = self.state[w]
                c = self.cap[e]
                if c > self.big:
                    c = self.big
                if st == ST_CURRENT:
                    if self.src[e] == v:
                        self._add_pair(i, self.loc[w], c if self.adj_out[j] else 0.0,
                                       c if self.adj_in[j] else 0.0, e)
                elif st == ST_FINAL:
                    if self.adj_out[j]:
                        lf += c
                        self.bnd_edge[self.nbnd] = e
                        self.bnd_loc[self.nbnd] = i
                        self.bnd_val[self.nbnd] = c if self.src[e] == v else -c
                        self.nbnd += 1
                elif st == ST_PENDING or st == ST_ABOVE:
                    if self.adj_in[j]:
                        ls += c
            self.lsrc[i] = ls
            self.lfix[i] = lf
            self.src_arc[i] = -1
            if ls > 0:
                self.src_arc[i] = self.narcs
                self._add_pair(k, i, ls, 0.0, -1)
            self.sink_arc[i] = self.narcs
            self._add_pair(i, k + 1, lf, 0.0, -1)
        self._pack(k + 2)
        for i in range(k):
            self.sink_arc[i] = self.slot[self.sink_arc[i]]
            if self.src_arc[i] >= 0:
                self.src_arc[i] = self.slot[self.src_arc[i]]

    cdef void _set_lambda(self, Py_ssize_t k, double lam) noexcept nogil:
        cdef Py_ssize_t i, a
        cdef double c
        for i in range(k):
            a = self.sink_arc[i]
            c = self.lfix[i] + lam * self.sink_dem[self.glob[i]]
            self.cap0[a] = c
            self.res[a] = c
            self.res[self.rev[a]] = 0.0

    cdef double _maxflow(self, Py_ssize_t k) noexcept nogil:
        """Dinic's algorithm from k (source) to k+1 (sink) on the compact graph; the last BFS
        leaves level[v] >= 0 exactly on the nodes reachable from the source in the residual."""
        cdef Py_ssize_t S = k, T = k + 1, v, u, a, head, tail, plen, i, stop, lt, lu
        cdef double total = 0.0, f, eps = self.eps
        # raw pointers: the compiler keeps them in registers (memoryview fields of self are
        # reloaded at every access)
        cdef int64_t* first = &self.first[0]
        cdef int64_t* rev = &self.rev[0]
        cdef int64_t* it = &self.it[0]
        cdef int64_t* path = &self.path[0]
        cdef int64_t* queue = &self.queue[0]
        cdef int32_t* to = &self.to[0]
        cdef int32_t* level = &self.level[0]
        cdef double* res = &self.res[0]
        self.n_maxflows += 1
        self.n_visits += k
        while True:
            for v in range(k + 2):
                level[v] = -1
            level[S] = 0
            queue[0] = S
            head = 0
            tail = 1
            lt = -1
            while head < tail:
                u = queue[head]
                head += 1
                lu = level[u]
                if lt >= 0 and lu >= lt:
                    break                 # nodes beyond the sink's distance cannot reach it
                for a in range(first[u], first[u + 1]):
                    v = to[a]
                    if level[v] < 0 and res[a] > eps:
                        level[v] = lu + 1
                        queue[tail] = v
                        tail += 1
                        if v == T:
                            lt = lu + 1
            if level[T] < 0:
                return total
            lt = level[T]
            self.n_phases += 1
            for v in range(k + 2):
                it[v] = first[v]
            plen = 0
            u = S
            while True:
                if u == T:
                    f = INFINITY
                    for i in range(plen):
                        if res[path[i]] < f:
                            f = res[path[i]]
                    stop = -1
                    for i in range(plen):
                        a = path[i]
                        res[a] -= f
                        res[rev[a]] += f
                        if stop < 0 and res[a] <= eps:
                            stop = i
                    total += f
                    self.n_paths += 1
                    # retreat to the tail of the first saturated arc
                    plen = stop
                    u = to[rev[path[stop]]]
                    continue
                a = it[u]
                stop = first[u + 1]
                lu = level[u] + 1
                while a < stop:
                    v = to[a]
                    if res[a] > eps and level[v] == lu and (lu < lt or v == T):
                        break
                    a += 1
                it[u] = a
                if a < stop:
                    path[plen] = a
                    plen += 1
                    u = v
                    continue
                # dead end: block u and retreat
                if u == S:
                    break
                level[u] = -2
                plen -= 1
                u = to[rev[path[plen]]]
                it[u] += 1
        return total

    cdef void _finish(self, Py_ssize_t s, Py_ssize_t t, double lam) noexcept nogil:
        """Serve the region's class nodes at lam and record the flows of its arcs."""
        cdef Py_ssize_t k = t - s, i, p, e, v, a
        cdef double f
        for i in range(k):
            v = self.glob[i]
            if self.sink_dem[v] > 0:
                f = lam * self.sink_dem[v]
                self.x[v] = f if f < self.sink_dem[v] else self.sink_dem[v]
            self.state[v] = ST_FINAL
        for p in range(self.narcs >> 1):
            e = self.pair_edge[p]
            if e >= 0:
                a = self.slot[2 * p]          # the arc from the edge's src to its dst
                self.eflow[e] += self.cap0[a] - self.res[a]
        for i in range(self.nbnd):
            self.eflow[self.bnd_edge[i]] += self.bnd_val[i]

    cdef void _finish_above(self, Py_ssize_t k) noexcept nogil:
        """Serve in full the region's nodes reachable in the residual (level >= 0) and record
        the flows of the arcs that touch them; they leave the region as ST_ABOVE."""
        cdef Py_ssize_t i, p, e, v, a
        for i in range(k):
            if self.level[i] >= 0:
                v = self.glob[i]
                if self.sink_dem[v] > 0:
                    self.x[v] = self.sink_dem[v]
                self.state[v] = ST_ABOVE
        for p in range(self.narcs >> 1):
            e = self.pair_edge[p]
            if e >= 0 and (self.level[self.t_tail[2 * p]] >= 0
                           or self.level[self.t_head[2 * p]] >= 0):
                a = self.slot[2 * p]
                self.eflow[e] += self.cap0[a] - self.res[a]
        for i in range(self.nbnd):
            if self.level[self.bnd_loc[i]] >= 0:
                self.eflow[self.bnd_edge[i]] += self.bnd_val[i]

    cdef void _save_warm(self, Py_ssize_t k) noexcept nogil:
        """Keep the flow of both parts of a split region for their own max flows.

        Upper part X (level >= 0): its levels are at or above this lambda, so the flow inside X
        stays feasible for X.  Lower part A (level < 0): A is the sink side of the minimum cut,
        so every arc into A is saturated and all of A's inflow (its source arcs and the arcs
        from X, which become source arcs of A's own graph) ends in A's sinks; the flow is
        kept with A's source arcs taking that inflow.  :meth:`_warm_start` trims what then
        exceeds the new sink capacities."""
        cdef Py_ssize_t p, i, a, ta, hd
        cdef double f
        for i in range(k):
            a = self.src_arc[i]
            self.wsrc[self.glob[i]] = self.cap0[a] - self.res[a] if a >= 0 else 0.0
        for p in range(self.narcs >> 1):
            if self.pair_edge[p] < 0:
                continue
            ta = self.t_tail[2 * p]
            hd = self.t_head[2 * p]
            a = self.slot[2 * p]
            f = self.cap0[a] - self.res[a]          # net flow tail -> head
            if (self.level[ta] >= 0) == (self.level[hd] >= 0):
                self.wflow[self.pair_edge[p]] = f
            elif self.level[hd] < 0:
                self.wsrc[self.glob[hd]] += f        # X -> A: a source arc of A's graph
            else:
                self.wsrc[self.glob[ta]] -= f

    cdef double _warm_start(self, Py_ssize_t k) noexcept nogil:
        """Load the flow saved by _save_warm into the fresh compact graph of a region; each
        node's sink arc takes what the node receives (conservation), within its capacity.
        What a node receives beyond its sink capacity (the lower part of a split, whose lambda
        dropped) is sent back towards the source: nodes in reverse topological order of the
        flow, each returning its surplus over its inflowing arcs.  A flow with a cycle (no
        such order) is dropped: the max flow then starts from zero."""
        cdef Py_ssize_t p, i, a, b, v, w, head = 0, tail = 0, cnt
        cdef double f, c, r, total = 0.0, surplus = 0.0
        cdef int64_t* first = &self.first[0]
        cdef int64_t* rev = &self.rev[0]
        cdef int64_t* outdeg = &self.it[0]
        cdef int64_t* queue = &self.queue[0]
        cdef int32_t* to = &self.to[0]
        cdef double* res = &self.res[0]
        cdef double* cap0 = &self.cap0[0]
        cdef double* wexc = &self.wexc[0]
        for i in range(k):
            wexc[i] = 0.0          # each node's net inflow
        for p in range(self.narcs >> 1):
            if self.pair_edge[p] >= 0:
                a = self.slot[2 * p]
                b = rev[a]
                f = self.wflow[self.pair_edge[p]]
                res[a] = cap0[a] - f
                res[b] = cap0[b] + f
                wexc[self.t_tail[2 * p]] -= f
                wexc[self.t_head[2 * p]] += f
        for i in range(k):
            a = self.src_arc[i]
            if a >= 0:
                f = self.wsrc[self.glob[i]]
                if f > cap0[a]:
                    f = cap0[a]
                if f < 0:
                    f = 0.0
                res[a] = cap0[a] - f
                res[rev[a]] = f
                wexc[i] += f
            a = self.sink_arc[i]
            c = cap0[a]
            f = wexc[i]
            if f < 0:
                f = 0.0
            if f > c:
                f = c
            res[a] = c - f
            res[rev[a]] = f
            total += f
            # from here on wexc[i] is the surplus node i returns over its inflowing arcs
            wexc[i] = wexc[i] - f if wexc[i] > f else 0.0
            surplus += wexc[i]
        if surplus <= 0.0:
            return total
        # the surplus as excess of a preflow (every source arc of the region is saturated):
        # push it on to the sink where it can go, then back to the source
        self.n_returns += 1
        for i in range(k):
            self.pr_exc[i] = wexc[i]
        self._push_relabel(k, k + 1)
        self._push_relabel(k, k)
        total = 0.0
        for i in range(k):
            a = self.sink_arc[i]
            total += cap0[a] - res[a]
        return total

    cdef void _global_label(self, Py_ssize_t k, Py_ssize_t target) noexcept nogil:
        """pr_d[v] = residual distance from v to target (breadth-first from it); k + 2 for the
        nodes that cannot reach it and for the other terminal."""
        cdef Py_ssize_t n2 = k + 2, v, w, a, head = 0, tail = 1
        cdef int64_t* first = &self.first[0]
        cdef int64_t* rev = &self.rev[0]
        cdef int64_t* q = &self.path[0]
        cdef int64_t* cur = &self.it[0]
        cdef int32_t* to = &self.to[0]
        cdef int32_t* d = &self.pr_d[0]
        cdef double* res = &self.res[0]
        cdef double eps = self.eps
        for v in range(n2):
            d[v] = <int32_t>n2
            cur[v] = first[v]
        d[target] = 0
        q[0] = target
        while head < tail:
            v = q[head]
            head += 1
            for a in range(first[v], first[v + 1]):
                w = to[a]
                if w < k and d[w] == n2 and res[rev[a]] > eps:
                    d[w] = d[v] + 1
                    q[tail] = w
                    tail += 1

    cdef void _push_relabel(self, Py_ssize_t k, Py_ssize_t target) noexcept nogil:
        """Move the excesses pr_exc of the region's nodes to ``target`` (the sink k + 1, or the
        source k) as far as the residual graph allows: FIFO push-relabel with global relabels.
        Excess that cannot reach the target stays where it is."""
        cdef Py_ssize_t n2 = k + 2, u, w, a, end, qh = 0, qn = 0, relabels = 0, dmin
        cdef double f, ex, eps = self.eps
        cdef int64_t* first = &self.first[0]
        cdef int64_t* rev = &self.rev[0]
        cdef int64_t* q = &self.queue[0]
        cdef int64_t* cur = &self.it[0]
        cdef int32_t* to = &self.to[0]
        cdef int32_t* d = &self.pr_d[0]
        cdef uint8_t* inq = &self.pr_inq[0]
        cdef double* res = &self.res[0]
        cdef double* exc = &self.pr_exc[0]
        self._global_label(k, target)
        for u in range(k):
            inq[u] = 0
            if exc[u] > 0.0 and d[u] < n2:
                inq[u] = 1
                q[(qh + qn) % n2] = u
                qn += 1
        while qn > 0:
            u = q[qh]
            qh = (qh + 1) % n2
            qn -= 1
            inq[u] = 0
            end = first[u + 1]
            while exc[u] > 0.0 and d[u] < n2:
                a = cur[u]
                if a == end:
                    # relabel
                    dmin = n2
                    for a in range(first[u], end):
                        if res[a] > eps and d[to[a]] + 1 < dmin:
                            dmin = d[to[a]] + 1
                    d[u] = <int32_t>dmin
                    cur[u] = first[u]
                    relabels += 1
                    continue
                w = to[a]
                if res[a] > eps and d[u] == d[w] + 1:
                    ex = exc[u]
                    f = res[a] if res[a] < ex else ex
                    res[a] -= f
                    res[rev[a]] += f
                    exc[u] = ex - f
                    self.n_pushes += 1
                    if w < k:
                        exc[w] += f
                        if not inq[w]:
                            inq[w] = 1
                            q[(qh + qn) % n2] = w
                            qn += 1
                    if exc[u] > 0.0:
                        cur[u] = a + 1
                else:
                    cur[u] = a + 1
            if relabels > k:
                # global relabel: exact distances again, every queued node rescanned
                relabels = 0
                self._global_label(k, target)


# ----------------------------------------------------------------------------------------------
# DC power flow with overload trips
# ----------------------------------------------------------------------------------------------

cdef Py_ssize_t DENSE_MAX = 24     # islands up to this many buses are solved densely
cdef double _DC_TRIP_RTOL = 1e-9   # = DC_TRIP_RTOL, for the compiled step loop


def _class_fractions(double[::1] rem, int64_t[::1] gl, double[::1] dc, double[::1] fc):
    """Priority classes in order (grouped by island, decreasing priority): each served at
    min(1, what remains of its island's supply / its demand)."""
    cdef Py_ssize_t g, isl
    cdef double fg
    for g in range(gl.shape[0]):
        isl = gl[g]
        fg = rem[isl] / dc[g] if rem[isl] < dc[g] else 1.0
        fc[g] = fg
        rem[isl] -= fg * dc[g]
        if rem[isl] < 0:
            rem[isl] = 0.0


def _buckets(int64_t[::1] lab, Py_ssize_t ni):
    """Buses grouped by island label (labels >= 0), increasing within each: (order, cuts)."""
    cdef Py_ssize_t n = lab.shape[0], v, c
    cuts = np.zeros(ni + 1, dtype=np.int64)
    cdef int64_t[::1] cv = cuts
    for v in range(n):
        if lab[v] >= 0:
            cv[lab[v] + 1] += 1
    for c in range(ni):
        cv[c + 1] += cv[c]
    order = np.empty(cv[ni], dtype=np.int64)
    cdef int64_t[::1] ov = order
    cdef int64_t[::1] fill = np.array(cuts[:ni], dtype=np.int64)
    for v in range(n):
        if lab[v] >= 0:
            ov[fill[lab[v]]] = v
            fill[lab[v]] += 1
    return order, cuts


def _dense_b(double[:, ::1] B, int64_t[::1] pf, int64_t[::1] pt, double[::1] x):
    """B += the susceptances 1/x of branches pf -- pt (local indices)."""
    cdef Py_ssize_t j, i, k
    cdef double b
    for j in range(pf.shape[0]):
        i = pf[j]
        k = pt[j]
        b = 1.0 / x[j]
        B[i, i] += b
        B[k, k] += b
        B[i, k] -= b
        B[k, i] -= b


cdef class _LDL:
    """Sparse LDL^T of a symmetric positive definite matrix in its given order (the caller
    permutes it first), after T. A. Davis's LDL package (ACM TOMS 31(4), 2005): elimination
    tree, column counts, then the up-looking numeric factorization; solves in O(nnz(L))."""
    cdef Py_ssize_t n
    cdef int64_t[::1] Lp, Li
    cdef double[::1] Lx, D

    def __init__(self, Py_ssize_t n, int64_t[::1] Ap, int64_t[::1] Ai, double[::1] Ax):
        # A in compressed columns; only the entries on and above the diagonal are read, and
        # duplicates add up.  The factorization is _CLDL's (one copy of the algorithm), its
        # arrays copied into numpy.
        cdef _CLDL f = _CLDL()
        cdef int64_t[::1] work = np.empty(4 * n + 1, dtype=np.int64)
        cdef double[::1] y = np.zeros(n + 1, dtype=np.float64)
        cdef int code
        cdef Py_ssize_t nnz
        with nogil:
            code = f.factor(n, &Ap[0], &Ai[0] if Ai.shape[0] else NULL,
                            &Ax[0] if Ax.shape[0] else NULL, &work[0], &work[n], &work[2 * n],
                            &work[3 * n], &y[0])
        if code == 1:
            raise np.linalg.LinAlgError("matrix is singular (a zero pivot)")
        if code == 2:
            raise MemoryError("LDL^T factor")
        nnz = f.Lp[n]
        self.n = n
        self.Lp = np.array(<int64_t[:n + 1]> f.Lp)
        self.D = np.array(<double[:n]> f.D) if n else np.zeros(0)
        self.Li = np.array(<int64_t[:nnz]> f.Li) if nnz else np.zeros(1, dtype=np.int64)
        self.Lx = np.array(<double[:nnz]> f.Lx) if nnz else np.zeros(1)

    cdef void _solve(self, double* X) noexcept nogil:
        """X <- (L D L^T)^-1 X in place."""
        cdef Py_ssize_t j, p
        for j in range(self.n):
            for p in range(self.Lp[j], self.Lp[j + 1]):
                X[self.Li[p]] -= self.Lx[p] * X[j]
        for j in range(self.n):
            X[j] /= self.D[j]
        for j in range(self.n - 1, -1, -1):
            for p in range(self.Lp[j], self.Lp[j + 1]):
                X[j] -= self.Lx[p] * X[self.Li[p]]

    def solve(self, b):
        """x with (L D L^T) x = b."""
        x = np.array(b, dtype=np.float64, copy=True)
        cdef double[::1] X = x
        if self.n:
            with nogil:
                self._solve(&X[0])
        return x


cdef class _CLDL:
    """A sparse LDL^T in malloc'd arrays, refactorised in place by the compiled step loop
    (the same up-looking algorithm as :class:`_LDL`, without Python objects per call)."""
    cdef Py_ssize_t n, ncap, cap
    cdef int64_t* Lp
    cdef int64_t* Li
    cdef double* Lx
    cdef double* D

    def __cinit__(self):
        self.n = 0
        self.ncap = 0
        self.cap = 0
        self.Lp = NULL
        self.Li = NULL
        self.Lx = NULL
        self.D = NULL

    def __dealloc__(self):
        free(self.Lp)
        free(self.Li)
        free(self.Lx)
        free(self.D)

    cdef int factor(self, Py_ssize_t n, int64_t* Ap, int64_t* Ai, double* Ax, int64_t* parent,
                    int64_t* lnz, int64_t* flag, int64_t* pattern, double* y) noexcept nogil:
        """Factorise the n x n matrix (upper triangle in compressed columns, duplicates add
        up).  0 = done, 1 = a zero pivot, 2 = out of memory."""
        cdef Py_ssize_t k, p, i, top, ln, p2, nnz
        cdef double yi, lki
        cdef void* q
        if n + 1 > self.ncap:
            q = realloc(self.Lp, (n + 1) * sizeof(int64_t))
            if q == NULL:
                return 2
            self.Lp = <int64_t*>q
            q = realloc(self.D, (n + 1) * sizeof(double))
            if q == NULL:
                return 2
            self.D = <double*>q
            self.ncap = n + 1
        self.n = n
        self.Lp[0] = 0
        for k in range(n):
            parent[k] = -1
            flag[k] = k
            lnz[k] = 0
            for p in range(Ap[k], Ap[k + 1]):
                i = Ai[p]
                if i < k:
                    while flag[i] != k:
                        if parent[i] == -1:
                            parent[i] = k
                        lnz[i] += 1
                        flag[i] = k
                        i = parent[i]
        for k in range(n):
            self.Lp[k + 1] = self.Lp[k] + lnz[k]
        nnz = self.Lp[n] if self.Lp[n] > 1 else 1
        if nnz > self.cap:
            nnz = nnz + nnz // 4
            q = realloc(self.Li, nnz * sizeof(int64_t))
            if q == NULL:
                return 2
            self.Li = <int64_t*>q
            q = realloc(self.Lx, nnz * sizeof(double))
            if q == NULL:
                return 2
            self.Lx = <double*>q
            self.cap = nnz
        for k in range(n):
            y[k] = 0.0
            top = n
            flag[k] = k
            lnz[k] = 0
            for p in range(Ap[k], Ap[k + 1]):
                i = Ai[p]
                if i <= k:
                    y[i] += Ax[p]
                    ln = 0
                    while flag[i] != k:
                        pattern[ln] = i
                        ln += 1
                        flag[i] = k
                        i = parent[i]
                    while ln > 0:
                        top -= 1
                        ln -= 1
                        pattern[top] = pattern[ln]
            self.D[k] = y[k]
            y[k] = 0.0
            while top < n:
                i = pattern[top]
                yi = y[i]
                y[i] = 0.0
                p2 = self.Lp[i] + lnz[i]
                for p in range(self.Lp[i], p2):
                    y[self.Li[p]] -= self.Lx[p] * yi
                lki = yi / self.D[i]
                self.D[k] -= lki * yi
                self.Li[p2] = k
                self.Lx[p2] = lki
                lnz[i] += 1
                top += 1
            if not (fabs(self.D[k]) > 1e-300 and fabs(self.D[k]) < INFINITY):
                return 1
        return 0

    cdef void solve(self, double* X) noexcept nogil:
        """X <- (L D L^T)^-1 X in place."""
        cdef Py_ssize_t j, p
        cdef int64_t* Lp = self.Lp
        cdef int64_t* Li = self.Li
        cdef double* Lx = self.Lx
        cdef double xj
        for j in range(self.n):
            xj = X[j]
            for p in range(Lp[j], Lp[j + 1]):
                X[Li[p]] -= Lx[p] * xj
        for j in range(self.n):
            X[j] /= self.D[j]
        for j in range(self.n - 1, -1, -1):
            xj = X[j]
            for p in range(Lp[j], Lp[j + 1]):
                xj -= Lx[p] * X[Li[p]]
            X[j] = xj


cdef int _gesv(Py_ssize_t n, double* A, double* b) noexcept nogil:
    """b <- A^-1 b by Gaussian elimination with partial pivoting (A row-major n x n,
    overwritten); 1 if singular (an exact zero pivot, as LAPACK's getrf)."""
    cdef Py_ssize_t i, j, k, piv
    cdef double mx, t, f
    for k in range(n):
        piv = k
        mx = fabs(A[k * n + k])
        for i in range(k + 1, n):
            if fabs(A[i * n + k]) > mx:
                mx = fabs(A[i * n + k])
                piv = i
        if mx == 0.0 or isnan(mx):
            return 1
        if piv != k:
            for j in range(n):
                t = A[k * n + j]
                A[k * n + j] = A[piv * n + j]
                A[piv * n + j] = t
            t = b[k]
            b[k] = b[piv]
            b[piv] = t
        for i in range(k + 1, n):
            f = A[i * n + k] / A[k * n + k]
            if f != 0.0:
                for j in range(k + 1, n):
                    A[i * n + j] -= f * A[k * n + j]
                b[i] -= f * b[k]
    for k in range(n - 1, -1, -1):
        t = b[k]
        for j in range(k + 1, n):
            t -= A[k * n + j] * b[j]
        b[k] = t / A[k * n + k]
    return 0


cdef struct _PS:
    # per-call state of the partially refactorised factor (the intact grid's symbolic LDL^T,
    # its numbers kept equal to the current matrix in the rows synced so far)
    double* Lx
    double* D
    double* y
    uint8_t* stat       # per position: 1 = a row of the matrix, 0 = an identity row
    uint8_t* mark
    uint8_t* inF        # per branch: counted in the numbers
    uint8_t* uncl       # per island of the step: an active branch outside the intact grid
    bint init
    Py_ssize_t rows     # rows recomputed
    int64_t* chg        # branches whose activity may have changed since the last refactor
    Py_ssize_t nchg, cchg
    bint allbr          # ... or every branch (a new factor, or chg overflowed)
    bint dirty          # the islands (or their uncl) may have changed since the last refactor
    int64_t* ml         # (the marked positions, nrb)


cdef inline void _ps_note(_PS* ps, int64_t e) noexcept nogil:
    """Branch e may have changed its activity since the last refactorization."""
    if ps.nchg < ps.cchg:
        ps.chg[ps.nchg] = e
        ps.nchg += 1
    else:
        ps.allbr = True



cdef void _lsolve(Py_ssize_t n, int64_t* Lp, int64_t* Li, double* Lx, double* D,
                  double* X) noexcept nogil:
    """X <- (L D L^T)^-1 X in place (L unit lower triangular in compressed columns)."""
    cdef Py_ssize_t j, p
    cdef double xj
    for j in range(n):
        xj = X[j]
        if xj != 0.0:
            for p in range(Lp[j], Lp[j + 1]):
                X[Li[p]] -= Lx[p] * xj
    for j in range(n):
        X[j] /= D[j]
    for j in range(n - 1, -1, -1):
        xj = X[j]
        for p in range(Lp[j], Lp[j + 1]):
            xj -= Lx[p] * X[Li[p]]
        X[j] = xj


cdef class _Factor:
    """Sparse LU of one island's reduced susceptance matrix (the island's first bus as reference)."""
    cdef public object lu, pos, branches
    cdef public Py_ssize_t ref, size


cdef class DCFlow:
    """DC power flow with overload trips for one ``dcflow`` layer, built once, run many times.

    Parameters
    ----------
    n : int
        Number of buses (0..n-1).
    br_from, br_to : ndarray of int64, shape (m,)
        Ends of each branch; flows are positive from ``br_from`` to ``br_to``.
    reactance : ndarray of float64, nonzero (negative: a series capacitor), shape (m,)
        Series reactance in per unit on ``base``.
    shift : ndarray of float64, shape (m,)
        Phase shift in radians.
    capacity : ndarray of float64, shape (m,)
        Rating in the layer's unit; ``inf`` = unlimited, 0 = unusable.
    base : float
        Per-unit base of the layer (in its unit, e.g. MVA).
    base_usable : ndarray of uint8, shape (m,)
        Branches of the intact grid whose islands are factorised once and reused by every call
        (a call's islands are updated from these factors while at most ``kmax`` of their
        branches are missing).
    kmax : int
        Most missing branches handled by a Woodbury update before an island is refactorised.
    """
    cdef readonly Py_ssize_t n, m
    cdef int64_t[::1] fr, to_, adj_ptr, adj_nbr, adj_edge, label, queue
    cdef double[::1] x, shift, cap
    cdef readonly double base
    cdef public Py_ssize_t kmax
    cdef object base_active, base_label, base_size, base_factors, base_branches, rank
    cdef readonly Py_ssize_t n_factorizations, n_woodbury, n_solves
    cdef public bint compiled
    # the compiled step loop (_run): workspaces sized once, the intact grid's factor kept
    cdef object _ws
    cdef int64_t[::1] byrank, base_lab, base_sz, base_ref, bb_ptr, bb_idx, posb
    cdef uint8_t[::1] base_act
    cdef bint have_base
    cdef Py_ssize_t nrb, nws_i, nws_d
    cdef _CLDL bf
    # partial refactorization: the intact factor's elimination tree and rows, the bus of each
    # position (built once, after the intact factor)
    cdef public bint partial, incremental
    cdef int64_t[::1] shifted                  # the branches with a phase shift
    cdef Py_ssize_t nshift
    cdef readonly Py_ssize_t n_partial, n_partial_rows
    cdef bint have_rows
    cdef int64_t[::1] epar, rptr, rcol, rpos, pbus

    def __init__(self, Py_ssize_t n, int64_t[::1] br_from, int64_t[::1] br_to,
                 double[::1] reactance, double[::1] shift, double[::1] capacity, double base,
                 uint8_t[::1] base_usable, Py_ssize_t kmax=32, bint compiled=True):
        cdef Py_ssize_t m = br_from.shape[0], e, v, w
        cdef int64_t[::1] fill
        self.n = n
        self.m = m
        self.fr = br_from
        self.to_ = br_to
        self.x = reactance
        self.shift = shift
        self.cap = capacity
        # (a branch without shift adds +-0.0 to the shift terms: skipping it changes no bit)
        self.shifted = np.flatnonzero(np.asarray(shift) != 0).astype(np.int64)
        self.nshift = self.shifted.shape[0]
        self.base = base
        self.kmax = kmax
        deg = np.zeros(n + 1, dtype=np.int64)
        np.add.at(deg, np.asarray(br_from) + 1, 1)
        np.add.at(deg, np.asarray(br_to) + 1, 1)
        self.adj_ptr = np.cumsum(deg)
        self.adj_nbr = np.empty(2 * m, dtype=np.int64)
        self.adj_edge = np.empty(2 * m, dtype=np.int64)
        fill = np.array(self.adj_ptr[:n], dtype=np.int64)
        for e in range(m):
            v = br_from[e]
            w = br_to[e]
            self.adj_nbr[fill[v]] = w
            self.adj_edge[fill[v]] = e
            fill[v] += 1
            self.adj_nbr[fill[w]] = v
            self.adj_edge[fill[w]] = e
            fill[w] += 1
        self.label = np.zeros(n, dtype=np.int64)
        self.queue = np.zeros(n, dtype=np.int64)
        fr_a = np.asarray(br_from)
        to_a = np.asarray(br_to)
        self.base_active = (np.asarray(base_usable).astype(bool) & (np.asarray(capacity) > 0)
                            & (fr_a != to_a))
        nb = self._islands(np.ones(n, dtype=np.uint8), self.base_active.view(np.uint8))
        self.base_label = np.array(self.label)
        self.base_size = np.bincount(self.base_label, minlength=nb)
        # branches of each base island, by island
        lab_br = self.base_label[fr_a]
        ids = np.flatnonzero(self.base_active)
        order = np.argsort(lab_br[ids], kind="stable")
        ids = ids[order]
        cuts = np.searchsorted(lab_br[ids], np.arange(nb + 1))
        self.base_branches = [ids[cuts[i]:cuts[i + 1]] for i in range(nb)]
        self.base_factors = {}
        # one fill-reducing order for every factorization: SuperLU's minimum degree on the
        # pattern of the intact grid's B + I (values irrelevant), each island's buses in it
        bi = np.flatnonzero(self.base_active)
        pat = sp.coo_matrix((np.ones(2 * len(bi)), (np.r_[fr_a[bi], to_a[bi]],
                                                    np.r_[to_a[bi], fr_a[bi]])), shape=(n, n))
        pat = (pat + sp.identity(n) * (2.0 * len(bi) + 1.0)).tocsc()
        self.rank = (np.asarray(splu(pat, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                     options={"SymmetricMode": True}).perm_c)
                     if n > DENSE_MAX else np.arange(n))
        self.n_factorizations = 0
        self.n_woodbury = 0
        self.n_solves = 0
        self.compiled = compiled
        self.byrank = np.argsort(np.asarray(self.rank), kind="stable").astype(np.int64)
        self.base_lab = np.ascontiguousarray(self.base_label, dtype=np.int64)
        self.base_sz = np.ascontiguousarray(self.base_size, dtype=np.int64)
        self.base_act = np.ascontiguousarray(self.base_active, dtype=np.uint8)
        self.bb_ptr = np.ascontiguousarray(np.cumsum([0] + [len(b) for b in self.base_branches]),
                                           dtype=np.int64)
        self.bb_idx = (np.ascontiguousarray(np.concatenate(self.base_branches), dtype=np.int64)
                       if len(self.base_branches) else np.zeros(0, dtype=np.int64))
        ref = np.full(len(self.base_size), n, dtype=np.int64)
        np.minimum.at(ref, self.base_label, np.arange(n, dtype=np.int64))
        self.base_ref = ref
        # workspaces of the compiled loop are per call (threads share a kernel); the intact
        # factor and its positions are built once, with the GIL held, and only read after
        self.nws_i = 27 * n + 10 * m + 8
        self.nws_d = 20 * n + 2 * m + 2 * DENSE_MAX * DENSE_MAX + 8
        self.posb = np.full(n, -1, dtype=np.int64)
        self.have_base = False
        self.nrb = 0
        self.bf = _CLDL()
        self.partial = True
        self.incremental = True
        self.n_partial = 0
        self.n_partial_rows = 0
        self.have_rows = False

    cdef Py_ssize_t _islands(self, uint8_t[::1] alive, uint8_t[::1] active) noexcept nogil:
        """label[v] = island of each alive bus over active branches (-1 if not alive)."""
        cdef Py_ssize_t v, s, j, u, w, head, tail, nl = 0
        for v in range(self.n):
            self.label[v] = -1
        for s in range(self.n):
            if not alive[s] or self.label[s] >= 0:
                continue
            self.label[s] = nl
            self.queue[0] = s
            head = 0
            tail = 1
            while head < tail:
                u = self.queue[head]
                head += 1
                for j in range(self.adj_ptr[u], self.adj_ptr[u + 1]):
                    if active[self.adj_edge[j]]:
                        w = self.adj_nbr[j]
                        if self.label[w] < 0:
                            self.label[w] = nl
                            self.queue[tail] = w
                            tail += 1
            nl += 1
        return nl

    cdef _Factor _factorize(self, object buses, object br):
        """LDL^T of the reduced B over branches ``br`` of the island ``buses`` (sorted), its
        buses in the fill-reducing order of the whole grid (``rank``)."""
        cdef _Factor f = _Factor()
        nb = len(buses)
        rest = buses[1:]
        rest = rest[np.argsort(self.rank[rest], kind="stable")]
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[rest] = np.arange(nb - 1)
        f.lu = self._ldl(pos, br, nb - 1)
        f.pos = pos
        f.branches = br
        f.ref = buses[0]
        f.size = nb
        self.n_factorizations += 1
        return f

    cdef _LDL _ldl(self, int64_t[::1] pos, int64_t[::1] br, Py_ssize_t nr):
        """LDL^T of the reduced B (rows/columns pos[bus] >= 0) over branches br, assembled as
        the upper triangle in compressed columns without going through scipy.sparse."""
        cdef Py_ssize_t nbr = br.shape[0], j, e, i, k, c, q
        cdef double b
        cdef int64_t[::1] Ap = np.zeros(nr + 1, dtype=np.int64)
        cdef int64_t[::1] fill
        cdef int64_t[::1] Ai = np.empty(nr + nbr, dtype=np.int64)
        cdef double[::1] Ax = np.empty(nr + nbr, dtype=np.float64)
        cdef double[::1] diag = np.zeros(nr, dtype=np.float64)
        with nogil:
            for j in range(nbr):
                e = br[j]
                i = pos[self.fr[e]]
                k = pos[self.to_[e]]
                b = 1.0 / self.x[e]
                if i >= 0:
                    diag[i] += b
                if k >= 0:
                    diag[k] += b
                if i >= 0 and k >= 0 and i != k:
                    c = i if i > k else k
                    Ap[c + 1] += 1
            for c in range(nr):
                Ap[c + 1] += Ap[c] + 1          # + the diagonal
        fill = np.array(Ap[:nr], dtype=np.int64)
        with nogil:
            for c in range(nr):
                Ai[fill[c]] = c
                Ax[fill[c]] = diag[c]
                fill[c] += 1
            for j in range(nbr):
                e = br[j]
                i = pos[self.fr[e]]
                k = pos[self.to_[e]]
                if i >= 0 and k >= 0 and i != k:
                    c = i if i > k else k
                    q = fill[c]
                    Ai[q] = k if i > k else i
                    Ax[q] = -1.0 / self.x[e]
                    fill[c] = q + 1
        return _LDL(nr, Ap, Ai[:Ap[nr]], Ax[:Ap[nr]])

    cdef object _theta(self, object buses, object br, object rhs, object active, dict cache,
                       dict wcache):
        """Angles (radians) of the island ``buses`` (sorted; the first is the reference, 0)."""
        cdef _Factor f = None
        cdef Py_ssize_t nb = len(buses), lab
        if nb <= DENSE_MAX:
            # local index by search in the sorted buses (no n-sized arrays per small island)
            pf = np.searchsorted(buses, np.asarray(self.fr)[br])
            pt = np.searchsorted(buses, np.asarray(self.to_)[br])
            B = np.zeros((nb, nb))
            _dense_b(B, pf, pt, np.asarray(self.x)[br])
            theta = np.zeros(nb)             # the reference, buses[0], is row and column 0
            theta[1:] = np.linalg.solve(B[1:, 1:], rhs[buses[1:]])
            self.n_solves += 1
            return theta
        removed = None
        lab = self.base_label[buses[0]]
        if self.base_size[lab] == nb:
            cand = self.base_branches[lab]
            if self.base_active[br].all():
                removed = cand[~active[cand]]
                if len(removed) <= self.kmax:
                    f = self.base_factors.get(lab)
                    if f is None:
                        f = self._factorize(buses, cand)
                        self.base_factors[lab] = f
                else:
                    removed = None
        if f is None:
            key = (int(buses[0]), nb)
            f = cache.get(key)
            if f is not None:
                removed = f.branches[~active[f.branches]]
                if len(removed) > self.kmax:
                    f = None
            if f is None:
                f = self._factorize(buses, br)
                cache[key] = f
                removed = br[:0]
        pos = f.pos
        rest = buses[1:]
        pr = rest if pos is None else pos[rest]
        rr = np.empty(nb - 1)
        rr[pr] = rhs[rest]
        z = f.lu.solve(rr)
        self.n_solves += 1
        k = len(removed)
        if k:
            # Woodbury: (B - A D A^T)^-1 p = z + W (D^-1 - A^T W)^-1 A^T z, W = B^-1 A
            self.n_woodbury += 1
            nr = nb - 1
            W = np.empty((nr + 1, k))
            W[nr] = 0.0                       # the reference's row
            for j in range(k):
                b = int(removed[j])
                col = wcache.get((id(f), b))
                if col is None:
                    a = np.zeros(nr)
                    if pos[self.fr[b]] >= 0:
                        a[pos[self.fr[b]]] += 1.0
                    if pos[self.to_[b]] >= 0:
                        a[pos[self.to_[b]]] -= 1.0
                    col = f.lu.solve(a)
                    self.n_solves += 1
                    wcache[(id(f), b)] = col
                W[:nr, j] = col
            px = np.where(pos >= 0, pos, nr)
            pfr = px[np.asarray(self.fr)[removed]]
            pto = px[np.asarray(self.to_)[removed]]
            M = np.diag(np.asarray(self.x)[removed]) - (W[pfr] - W[pto])
            zx = np.append(z, 0.0)
            z = z + W[:nr] @ np.linalg.solve(M, zx[pfr] - zx[pto])
        theta = np.zeros(nb)
        theta[1:] = z[pr]
        return theta

    def cascade(self, uint8_t[::1] alive, uint8_t[::1] usable, double[::1] supply,
                double[::1] dispatch, double[::1] demand, int32_t[::1] priority):
        """Run the DC power flow and its overload trips to the end: the compiled step loop
        (:meth:`_run`) unless ``compiled`` is off, else (and when the compiled loop meets a
        singular matrix, to raise the same error) the numpy path :meth:`cascade_py`."""
        if self.compiled:
            r = self._run(alive, usable, supply, dispatch, demand, priority)
            if r is not None:
                return r
        return self.cascade_py(alive, usable, supply, dispatch, demand, priority)

    def cascade_py(self, uint8_t[::1] alive, uint8_t[::1] usable, double[::1] supply,
                   double[::1] dispatch, double[::1] demand, int32_t[::1] priority):
        """Run the DC power flow and its overload trips to the end (the numpy step loop, kept
        as the oracle of the compiled one).

        Returns (served fraction (n,), working (n,) bool, flows (m,) with NaN on branches that
        carry nothing at the end, trip branches (k,) int64, trip steps (k,) int32 counted from
        1, trip flows (k,) float64).
        """
        cdef Py_ssize_t ni, step = 0
        n, m = self.n, self.m
        fr = np.asarray(self.fr)
        to = np.asarray(self.to_)
        x = np.asarray(self.x)
        phi = np.asarray(self.shift)
        cap = np.asarray(self.cap)
        alive_b = np.asarray(alive).astype(bool)
        sup = np.asarray(supply)
        disp = np.asarray(dispatch)
        dem = np.asarray(demand)
        prio = np.asarray(priority)
        active = (np.asarray(usable).astype(bool) & (cap > 0) & alive_b[fr] & alive_b[to]
                  & (fr != to))
        flow = np.full(m, np.nan)
        frac = np.zeros(n)
        working = np.zeros(n, dtype=bool)
        trip_b, trip_s, trip_f = [], [], []
        cache = {}
        wcache = {}
        dirty = np.ones(n, dtype=bool)
        limit = cap * (1.0 + DC_TRIP_RTOL)
        while True:
            step += 1
            ni = self._islands(alive, active.view(np.uint8))
            lab = np.asarray(self.label)
            ok = lab >= 0
            labk = lab[ok]
            G = np.bincount(labk, weights=np.where(sup > 0, sup, 0.0)[ok], minlength=ni)
            has = G > 0
            work = ok.copy()
            work[ok] = has[labk]
            working = work
            # priority classes in each island, in decreasing priority, at one fraction each
            frac = np.where(work, 1.0, 0.0)
            idx = np.flatnonzero(work & (dem > 0))
            served_isl = np.zeros(ni)
            if len(idx):
                idx = idx[np.lexsort((-prio[idx], lab[idx]))]
                li = lab[idx]
                pi = prio[idx]
                nl = len(li) - 1          # (no negative indices: wraparound is off)
                start = np.flatnonzero(np.concatenate(([True], (li[1:] != li[:nl]) | (pi[1:] != pi[:nl]))))
                dc = np.add.reduceat(dem[idx], start)
                gl = li[start]
                fc = np.empty(len(start))
                rem = G.copy()
                _class_fractions(rem, gl, dc, fc)
                frac[idx] = np.repeat(fc, np.diff(np.append(start, len(idx))))
                served_isl = G - rem
            # generators share the served total
            src = work & (sup > 0)
            S = served_isl
            gen = np.zeros(n)
            nanc = np.bincount(lab[src], weights=np.isnan(disp[src]).astype(float), minlength=ni)
            usep = nanc == 0
            P = np.where(src & ~np.isnan(disp), disp, 0.0)
            Psum = np.bincount(lab[src], weights=P[src], minlength=ni)
            ls = lab[src]
            g_prop = S[ls] * sup[src] / G[ls]
            head = G - Psum
            with np.errstate(divide="ignore", invalid="ignore"):
                g_up = P[src] + (S - Psum)[ls] * (sup[src] - P[src]) / head[ls]
                g_dn = S[ls] * P[src] / Psum[ls]
            g_disp = np.where((S[ls] > Psum[ls]) & (head[ls] > 0), g_up,
                              np.where(S[ls] < Psum[ls], g_dn, P[src]))
            gen[src] = np.where(usep[ls], g_disp, g_prop)
            inj = gen - frac * np.where(work, dem, 0.0)
            rhs = inj / self.base
            act = np.flatnonzero(active)
            sx = phi[act] / x[act]
            rhs += np.bincount(fr[act], sx, minlength=n) - np.bincount(to[act], sx, minlength=n)
            # solve the islands that changed
            solve_isl = np.zeros(ni, dtype=bool)
            solve_isl[lab[ok & dirty]] = True
            ab = act[work[fr[act]]]                  # active branches of supplied islands
            dead = act[~work[fr[act]]]
            flow[dead] = 0.0
            lab_ab = lab[fr[ab]]
            sel = solve_isl[lab_ab]
            ab = ab[sel]
            lab_ab = lab_ab[sel]
            if len(ab):
                order = np.argsort(lab_ab, kind="stable")
                ab = ab[order]
                lab_ab = lab_ab[order]
                bounds = np.flatnonzero(np.concatenate(([True], lab_ab[1:] != lab_ab[:len(lab_ab) - 1], [True])))
                theta = np.zeros(n)
                bus_order, bus_cuts = _buckets(lab, ni)
                for j in range(len(bounds) - 1):
                    br = ab[bounds[j]:bounds[j + 1]]
                    isl = lab_ab[bounds[j]]
                    buses = bus_order[bus_cuts[isl]:bus_cuts[isl + 1]]      # sorted
                    theta[buses] = self._theta(buses, br, rhs, active, cache, wcache)
                    flow[br] = self.base * (theta[fr[br]] - theta[to[br]] - phi[br]) / x[br]
            over = act[np.abs(flow[act]) > limit[act]]
            if len(over) == 0:
                break
            trip_b.append(over)
            trip_s.append(np.full(len(over), step, dtype=np.int32))
            trip_f.append(flow[over].copy())
            active[over] = False
            flow[over] = np.nan
            dirty = np.zeros(n, dtype=bool)
            dirty[fr[over]] = True
            dirty[to[over]] = True
        flow[~active] = np.nan
        served = np.where(working, frac, 0.0)
        if trip_b:
            tb = np.concatenate(trip_b)
            ts = np.concatenate(trip_s)
            tf = np.concatenate(trip_f)
        else:
            tb = np.zeros(0, dtype=np.int64)
            ts = np.zeros(0, dtype=np.int32)
            tf = np.zeros(0)
        return served, working, flow, tb, ts, tf

    cdef object _ps_setup(self, _PS* ps):
        """Point ps at a new workspace of the partially refactorised factor (the intact grid's
        symbolic LDL^T; no rows synced yet) and return the arrays behind it: the caller keeps
        them alive as long as ps is used."""
        cdef Py_ssize_t n = self.n, m = self.m, nrb = self.nrb
        cdef Py_ssize_t nnzl = self.bf.Lp[nrb]
        p_lx = np.empty(max(nnzl, 1), dtype=np.float64)
        p_d = np.empty(nrb + 1, dtype=np.float64)
        p_y = np.zeros(nrb + 1, dtype=np.float64)
        p_u8 = np.zeros(2 * nrb + m + n + 4, dtype=np.uint8)
        p_i64 = np.empty(nrb + 2 * m + 18, dtype=np.int64)
        cdef double[::1] v_lx = p_lx, v_d = p_d, v_y = p_y
        cdef uint8_t[::1] v_u8 = p_u8
        cdef int64_t[::1] v_i64 = p_i64
        ps.Lx = &v_lx[0]
        ps.D = &v_d[0]
        ps.y = &v_y[0]
        ps.stat = &v_u8[0]
        ps.mark = ps.stat + nrb + 1
        ps.inF = ps.mark + nrb + 1
        ps.uncl = ps.inF + m + 1
        ps.init = False
        ps.rows = 0
        ps.ml = &v_i64[0]
        ps.chg = ps.ml + nrb + 1
        ps.cchg = 2 * m + 16
        ps.nchg = 0
        ps.allbr = True
        ps.dirty = True
        return (p_lx, p_d, p_y, p_u8, p_i64)

    # ------------------------------------------------------------------ the compiled step loop
    def _run(self, uint8_t[::1] alive, uint8_t[::1] usable, double[::1] supply,
             double[::1] dispatch, double[::1] demand, int32_t[::1] priority):
        """:meth:`cascade_py` with the whole step loop in C (no numpy temporaries or Python per
        step): the same islands, serving, generator shares, solves and all-at-once trips.
        Islands of the intact grid missing at most ``kmax`` branches are solved with the
        intact grid's factor and a Woodbury update; every other changed island of more than
        ``DENSE_MAX`` buses is refactorised, all of them in one LDL^T (block diagonal) in the
        intact grid's fill-reducing order; smaller islands densely.  Returns None when a matrix
        is singular (the caller then runs :meth:`cascade_py`, which raises)."""
        cdef Py_ssize_t n = self.n, m = self.m, nt = 0, e, l
        cdef int rc = 0
        cdef Py_ssize_t st[4]
        cdef _PS ps
        cdef _PS* psp = NULL
        if n == 0 or m == 0:
            return None
        ws_i = np.empty(self.nws_i, dtype=np.int64)
        ws_d = np.empty(self.nws_d, dtype=np.float64)
        cdef int64_t[::1] wiv = ws_i
        cdef double[::1] wdv = ws_d
        cdef _CLDL sf = _CLDL()
        if not self.have_base:
            # the intact grid's factor, once (with the GIL held: one thread builds it)
            for l in range(self.base_sz.shape[0]):
                if self.base_sz[l] > DENSE_MAX:
                    rc = self._base_factor(&wiv[0], &wdv[0])
                    break
            if rc:
                return None
        if self.have_base and not self.have_rows and self.nrb > 0:
            self._build_rows()
        st[0] = st[1] = st[2] = st[3] = 0
        if self.partial and self.have_rows:
            ps_arrays = self._ps_setup(&ps)     # (kept alive while ps is used)
            psp = &ps
        porder = np.argsort(-np.asarray(priority), kind="stable").astype(np.int64)
        flow = np.full(m, np.nan)
        frac = np.zeros(n)
        work = np.zeros(n, dtype=np.uint8)
        act = np.empty(m, dtype=np.uint8)
        tb = np.empty(m, dtype=np.int64)
        ts = np.empty(m, dtype=np.int32)
        tf = np.empty(m, dtype=np.float64)
        cdef int64_t[::1] po = porder
        cdef double[::1] fl = flow, fr_ = frac, tfv = tf
        cdef uint8_t[::1] wk = work, av = act
        cdef int64_t[::1] tbv = tb
        cdef int32_t[::1] tsv = ts
        with nogil:
            for e in range(m):
                av[e] = (usable[e] != 0 and self.cap[e] > 0 and alive[self.fr[e]] != 0
                         and alive[self.to_[e]] != 0 and self.fr[e] != self.to_[e])
            rc = self._loop(&alive[0], &av[0], &supply[0], &dispatch[0], &demand[0],
                            &priority[0], &po[0], &fl[0], &fr_[0], &wk[0], &tbv[0], &tsv[0],
                            &tfv[0], &nt, &wiv[0], &wdv[0], sf, st, psp)
        self.n_factorizations += st[0]
        self.n_partial += st[3]
        if psp != NULL:
            self.n_partial_rows += ps.rows
        self.n_woodbury += st[1]
        self.n_solves += st[2]
        if rc:
            return None
        return frac, work.view(bool), flow, tb[:nt].copy(), ts[:nt].copy(), tf[:nt].copy()

    def _run_many(self, uint8_t[::1] alive, uint8_t[::1] usable, double[::1] supply,
                  double[::1] dispatch, double[::1] demand, int32_t[::1] priority,
                  int64_t[::1] losses, bint keep):
        """:meth:`_run` for many single-branch losses on top of one state, in one call: the
        workspace, the priority order and the partially refactorised factor are made once
        (the factor's numbers follow each cascade's matrix through the rows that changed
        since the last one, as within a cascade).  Returns (ptr, trip_branch, trip_step,
        trip_flow, served, working, flows): the trips of loss c are [ptr[c], ptr[c + 1]) of the
        trip arrays; served (k, n), working (k, n) and flows (k, m) when ``keep``, else None.
        A loss whose matrix is singular is run by :meth:`cascade_py` (which raises)."""
        cdef Py_ssize_t n = self.n, m = self.m, nk = losses.shape[0], nt = 0, e, l, c, b
        cdef Py_ssize_t tot = 0, cap_t
        cdef int rc = 0
        cdef Py_ssize_t st[4]
        cdef _PS ps
        cdef _PS* psp = NULL
        for c in range(nk):
            if losses[c] < 0 or losses[c] >= m:
                raise ValueError("losses: index outside 0..m-1")
        ptr = np.zeros(nk + 1, dtype=np.int64)
        cdef int64_t[::1] pv = ptr
        if n == 0 or m == 0 or nk == 0:
            served = np.zeros((nk, n)) if keep else None
            working = np.zeros((nk, n), dtype=bool) if keep else None
            flows = np.full((nk, m), np.nan) if keep else None
            if n == 0 or m == 0:
                # (nothing to cascade: each loss by the plain path)
                for c in range(nk):
                    u = np.array(usable, dtype=np.uint8)
                    u[losses[c]] = 0
                    r = self.cascade(alive, u, supply, dispatch, demand, priority)
                    if keep:
                        served[c] = r[0]
                        working[c] = r[1]
                        flows[c] = r[2]
            return (ptr, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32),
                    np.zeros(0), served, working, flows)
        ws_i = np.empty(self.nws_i, dtype=np.int64)
        ws_d = np.empty(self.nws_d, dtype=np.float64)
        cdef int64_t[::1] wiv = ws_i
        cdef double[::1] wdv = ws_d
        cdef _CLDL sf = _CLDL()
        if not self.have_base:
            for l in range(self.base_sz.shape[0]):
                if self.base_sz[l] > DENSE_MAX:
                    rc = self._base_factor(&wiv[0], &wdv[0])
                    break
            if rc:
                # (a singular intact matrix: each loss by the plain path, which raises)
                for c in range(nk):
                    u = np.array(usable, dtype=np.uint8)
                    u[losses[c]] = 0
                    self.cascade(alive, u, supply, dispatch, demand, priority)
                raise AssertionError("the intact grid's factorization failed")
        if self.have_base and not self.have_rows and self.nrb > 0:
            self._build_rows()
        st[0] = st[1] = st[2] = st[3] = 0
        if self.partial and self.have_rows:
            ps_arrays = self._ps_setup(&ps)     # (kept alive while ps is used)
            psp = &ps
        porder = np.argsort(-np.asarray(priority), kind="stable").astype(np.int64)
        flow = np.empty(m)
        frac = np.zeros(n)
        work = np.zeros(n, dtype=np.uint8)
        act0 = np.empty(m, dtype=np.uint8)
        act = np.empty(m, dtype=np.uint8)
        tb = np.empty(m, dtype=np.int64)
        ts = np.empty(m, dtype=np.int32)
        tf = np.empty(m, dtype=np.float64)
        cap_t = max(16, 4 * nk)
        all_b = np.empty(cap_t, dtype=np.int64)
        all_s = np.empty(cap_t, dtype=np.int32)
        all_f = np.empty(cap_t, dtype=np.float64)
        served = np.empty((nk, n)) if keep else None
        working = np.empty((nk, n), dtype=bool) if keep else None
        flows = np.empty((nk, m)) if keep else None
        cdef int64_t[::1] po = porder
        cdef double[::1] fl = flow, fr_ = frac, tfv = tf
        cdef uint8_t[::1] wk = work, av = act, a0 = act0
        cdef int64_t[::1] tbv = tb
        cdef int32_t[::1] tsv = ts
        with nogil:
            for e in range(m):
                a0[e] = (usable[e] != 0 and self.cap[e] > 0 and alive[self.fr[e]] != 0
                         and alive[self.to_[e]] != 0 and self.fr[e] != self.to_[e])
        for c in range(nk):
            b = losses[c]
            with nogil:
                if psp != NULL:
                    # (the branches whose activity changes from the last cascade's end)
                    if c > 0:
                        _ps_note(psp, losses[c - 1])
                        for e in range(nt):
                            _ps_note(psp, tbv[e])
                    _ps_note(psp, b)
                for e in range(m):
                    av[e] = a0[e]
                    fl[e] = NAN
                av[b] = 0
                rc = self._loop(&alive[0], &av[0], &supply[0], &dispatch[0], &demand[0],
                                &priority[0], &po[0], &fl[0], &fr_[0], &wk[0], &tbv[0], &tsv[0],
                                &tfv[0], &nt, &wiv[0], &wdv[0], sf, st, psp)
            if rc:
                # (a singular matrix: the numpy path raises; a failed refactorization
                # restarts the partial factor from the intact one)
                u = np.array(usable, dtype=np.uint8)
                u[b] = 0
                r = self.cascade_py(alive, u, supply, dispatch, demand, priority)
                nt = r[3].shape[0]
                tb[:nt] = r[3]
                ts[:nt] = r[4]
                tf[:nt] = r[5]
                frac[:] = r[0]
                work[:] = r[1]
                flow[:] = r[2]
                if psp != NULL:
                    ps.init = False
            if tot + nt > cap_t:
                cap_t = max(2 * cap_t, tot + nt)
                all_b = np.resize(all_b, cap_t)
                all_s = np.resize(all_s, cap_t)
                all_f = np.resize(all_f, cap_t)
            all_b[tot:tot + nt] = tb[:nt]
            all_s[tot:tot + nt] = ts[:nt]
            all_f[tot:tot + nt] = tf[:nt]
            tot += nt
            pv[c + 1] = tot
            if keep:
                served[c] = frac
                working[c] = work.view(bool)
                flows[c] = flow
        self.n_factorizations += st[0]
        self.n_partial += st[3]
        if psp != NULL:
            self.n_partial_rows += ps.rows
        self.n_woodbury += st[1]
        self.n_solves += st[2]
        return (ptr, all_b[:tot].copy(), all_s[:tot].copy(), all_f[:tot].copy(), served, working,
                flows)

    cdef Py_ssize_t _assemble(self, Py_ssize_t nr, int64_t* pos, int64_t* br, Py_ssize_t nbr,
                              int64_t* Ap, int64_t* Ai, double* Ax, double* diag,
                              int64_t* fill) noexcept nogil:
        """The upper triangle of the reduced B (rows pos[bus] >= 0) over branches br, in
        compressed columns, exactly as :meth:`_ldl` assembles it."""
        cdef Py_ssize_t j, e, i, k, c, q
        cdef double b
        for c in range(nr + 1):
            Ap[c] = 0
        for c in range(nr):
            diag[c] = 0.0
        for j in range(nbr):
            e = br[j]
            i = pos[self.fr[e]]
            k = pos[self.to_[e]]
            b = 1.0 / self.x[e]
            if i >= 0:
                diag[i] += b
            if k >= 0:
                diag[k] += b
            if i >= 0 and k >= 0 and i != k:
                c = i if i > k else k
                Ap[c + 1] += 1
        for c in range(nr):
            Ap[c + 1] += Ap[c] + 1
        for c in range(nr):
            fill[c] = Ap[c]
            Ai[fill[c]] = c
            Ax[fill[c]] = diag[c]
            fill[c] += 1
        for j in range(nbr):
            e = br[j]
            i = pos[self.fr[e]]
            k = pos[self.to_[e]]
            if i >= 0 and k >= 0 and i != k:
                c = i if i > k else k
                q = fill[c]
                Ai[q] = k if i > k else i
                Ax[q] = -1.0 / self.x[e]
                fill[c] = q + 1
        return nr

    cdef _build_rows(self):
        """For partial refactorization: the rows of the intact factor (row k's columns j < k in
        increasing order, with the place of L[k, j] in column j), its elimination tree (the
        parent of column j is its first row below the diagonal) and the bus of each position."""
        cdef Py_ssize_t nr = self.nrb, j, p, k, q, v
        cdef _CLDL f = self.bf
        cdef Py_ssize_t nnz = f.Lp[nr]
        epar = np.full(nr, -1, dtype=np.int64)
        rptr = np.zeros(nr + 1, dtype=np.int64)
        rcol = np.zeros(max(nnz, 1), dtype=np.int64)
        rpos = np.zeros(max(nnz, 1), dtype=np.int64)
        pbus = np.full(nr, -1, dtype=np.int64)
        cdef int64_t[::1] ep = epar, rp = rptr, rc = rcol, rq = rpos, pb = pbus, fill
        for j in range(nr):
            if f.Lp[j + 1] > f.Lp[j]:
                ep[j] = f.Li[f.Lp[j]]
            for p in range(f.Lp[j], f.Lp[j + 1]):
                if p > f.Lp[j] and f.Li[p] <= f.Li[p - 1]:
                    raise AssertionError("the intact factor's columns are not sorted")
                rp[f.Li[p] + 1] += 1
        for k in range(nr):
            rp[k + 1] += rp[k]
        fill = np.array(rptr[:nr], dtype=np.int64)
        for j in range(nr):
            for p in range(f.Lp[j], f.Lp[j + 1]):
                k = f.Li[p]
                q = fill[k]
                rc[q] = j
                rq[q] = p
                fill[k] = q + 1
        for v in range(self.n):
            if self.posb[v] >= 0:
                pb[self.posb[v]] = v
        self.epar = epar
        self.rptr = rptr
        self.rcol = rcol
        self.rpos = rpos
        self.pbus = pbus
        self.have_rows = True

    cdef int _refactor(self, _PS* ps, int64_t* lab, int64_t* isz, int64_t* iref,
                       uint8_t* act) noexcept nogil:
        """Bring the partial factor's numbers to the current matrix: the reduced B of every
        island of more than DENSE_MAX buses that lies in one island of the intact grid (the
        others, references and dead buses are identity rows), recomputing only the rows of
        the elimination-tree ancestors of the columns that changed since the last call (the
        up-looking LDL^T row by row in the intact grid's symbolic pattern).  1 = a zero pivot."""
        cdef Py_ssize_t nr = self.nrb, n = self.n, m = self.m, k, v, l, j, w, pw, e, r, p, q
        cdef uint8_t s, a
        cdef double d, b, yj, lkj
        cdef int64_t* posb = &self.posb[0]
        cdef int64_t* pbus = &self.pbus[0]
        cdef int64_t* epar = &self.epar[0]
        cdef int64_t* rptr = &self.rptr[0]
        cdef int64_t* rcol = &self.rcol[0]
        cdef int64_t* rpos = &self.rpos[0]
        cdef int64_t* Lp = self.bf.Lp
        cdef int64_t* Li = self.bf.Li
        cdef int64_t* adj_ptr = &self.adj_ptr[0]
        cdef int64_t* adj_nbr = &self.adj_nbr[0]
        cdef int64_t* adj_edge = &self.adj_edge[0]
        cdef int64_t* fr = &self.fr[0]
        cdef int64_t* to = &self.to_[0]
        cdef double* x = &self.x[0]
        cdef double* Lx = ps.Lx
        cdef double* D = ps.D
        cdef double* y = ps.y
        cdef uint8_t* stat = ps.stat
        cdef uint8_t* mark = ps.mark
        cdef uint8_t* inF = ps.inF
        cdef uint8_t* uncl = ps.uncl
        cdef int64_t* ml = ps.ml
        cdef Py_ssize_t nm, ne, i
        if not ps.init:
            # the intact grid's factor: every position a row, every branch of it counted
            for p in range(Lp[nr]):
                Lx[p] = self.bf.Lx[p]
            for k in range(nr):
                D[k] = self.bf.D[k]
                stat[k] = 1
                mark[k] = 0
                y[k] = 0.0
            for e in range(m):
                inF[e] = self.base_act[e]
            ps.init = True
            ps.allbr = True
            ps.dirty = True
        # the columns that changed: rows that became or stopped being identity rows (and
        # their neighbours), ends of branches lost or regained; the positions marked are
        # listed in ml[:nm].  Only when the islands may have changed since the last call (the
        # status of a row depends on nothing else), and only the branches noted since.
        nm = 0
        if ps.dirty:
            for k in range(nr):
                v = pbus[k]
                l = lab[v]
                s = l >= 0 and isz[l] > DENSE_MAX and v != iref[l] and not uncl[l]
                if s != stat[k]:
                    stat[k] = s
                    if not mark[k]:
                        mark[k] = 1
                        ml[nm] = k
                        nm += 1
                    for j in range(adj_ptr[v], adj_ptr[v + 1]):
                        pw = posb[adj_nbr[j]]
                        if pw >= 0 and not mark[pw]:
                            mark[pw] = 1
                            ml[nm] = pw
                            nm += 1
        ne = m if ps.allbr else ps.nchg
        for i in range(ne):
            e = i if ps.allbr else ps.chg[i]
            a = act[e] != 0 and self.base_act[e] != 0
            if a != inF[e]:
                inF[e] = a
                pw = posb[fr[e]]
                if pw >= 0 and not mark[pw]:
                    mark[pw] = 1
                    ml[nm] = pw
                    nm += 1
                pw = posb[to[e]]
                if pw >= 0 and not mark[pw]:
                    mark[pw] = 1
                    ml[nm] = pw
                    nm += 1
        ps.nchg = 0
        ps.allbr = False
        ps.dirty = False
        # their elimination-tree ancestors, then in increasing order (a parent comes after
        # its children: every row recomputed after the rows it reads)
        ne = nm
        for i in range(ne):
            p = epar[ml[i]]
            while p >= 0 and not mark[p]:
                mark[p] = 1
                ml[nm] = p
                nm += 1
                p = epar[p]
        if nm <= 48:
            # (insertion sort of a short list)
            for i in range(1, nm):
                p = ml[i]
                j = i
                while j > 0 and ml[j - 1] > p:
                    ml[j] = ml[j - 1]
                    j -= 1
                ml[j] = p
        else:
            nm = 0
            for k in range(nr):
                if mark[k]:
                    ml[nm] = k
                    nm += 1
        for i in range(nm):
            k = ml[i]
            mark[k] = 0
            if not stat[k]:
                D[k] = 1.0
                for r in range(rptr[k], rptr[k + 1]):
                    Lx[rpos[r]] = 0.0
                continue
            # column k of the upper triangle, as the fresh assembly builds it
            v = pbus[k]
            d = 0.0
            for j in range(adj_ptr[v], adj_ptr[v + 1]):
                e = adj_edge[j]
                if act[e] and self.base_act[e]:
                    b = 1.0 / x[e]
                    d += b
                    pw = posb[adj_nbr[j]]
                    if pw >= 0 and pw < k and stat[pw]:
                        y[pw] += -1.0 / x[e]
            D[k] = d
            for r in range(rptr[k], rptr[k + 1]):
                j = rcol[r]
                p = rpos[r]
                yj = y[j]
                y[j] = 0.0
                for q in range(Lp[j], p):
                    y[Li[q]] -= Lx[q] * yj
                lkj = yj / D[j]
                D[k] -= lkj * yj
                Lx[p] = lkj
            ps.rows += 1
            if not (fabs(D[k]) > 1e-300 and fabs(D[k]) < INFINITY):
                # leave the rest marked: the next call starts from the intact factor again
                ps.init = False
                return 1
        return 0

    cdef int _race(self, uint8_t* act, Py_ssize_t r, Py_ssize_t sd, int64_t* vis, int64_t* qa,
                   int64_t* qb, Py_ssize_t* stamp, Py_ssize_t* pta, Py_ssize_t* ptb,
                   Py_ssize_t* work) noexcept nogil:
        """Two BFS's over the active branches, from r (into qa) and from sd (into qb), taking
        one bus each in turn: 0 = they met (r and sd connected), 1 = the search from r ran out
        (qa[:pta] is a whole island), 2 = the search from sd ran out (qb[:ptb])."""
        cdef Py_ssize_t sa, sb, ha = 0, ta = 1, hb = 0, tb_ = 1, v, w, j
        cdef int res = -1
        cdef int64_t* adj_ptr = &self.adj_ptr[0]
        cdef int64_t* adj_nbr = &self.adj_nbr[0]
        cdef int64_t* adj_edge = &self.adj_edge[0]
        sa = stamp[0]
        sb = sa + 1
        stamp[0] = sa + 2
        vis[r] = sa
        qa[0] = r
        vis[sd] = sb
        qb[0] = sd
        while res < 0:
            if ha == ta:
                res = 1
                break
            v = qa[ha]
            ha += 1
            for j in range(adj_ptr[v], adj_ptr[v + 1]):
                if act[adj_edge[j]]:
                    w = adj_nbr[j]
                    if vis[w] == sb:
                        res = 0
                        break
                    if vis[w] != sa:
                        vis[w] = sa
                        qa[ta] = w
                        ta += 1
            if res >= 0:
                break
            if hb == tb_:
                res = 2
                break
            v = qb[hb]
            hb += 1
            for j in range(adj_ptr[v], adj_ptr[v + 1]):
                if act[adj_edge[j]]:
                    w = adj_nbr[j]
                    if vis[w] == sa:
                        res = 0
                        break
                    if vis[w] != sb:
                        vis[w] = sb
                        qb[tb_] = w
                        tb_ += 1
        work[0] += ha + hb
        pta[0] = ta
        ptb[0] = tb_
        return res

    cdef void _peel(self, int64_t* X, Py_ssize_t k, int64_t* lab, int64_t* iref, int64_t* isz,
                    Py_ssize_t ni) noexcept nogil:
        """The buses X[:k], a whole island, leave their label for the new label ni (its
        reference its smallest bus); when the old label's reference left, it becomes -1 (the
        caller finds the smallest remaining bus)."""
        cdef Py_ssize_t j, mn = self.n
        cdef Py_ssize_t l = lab[X[0]]
        for j in range(k):
            lab[X[j]] = ni
            if X[j] < mn:
                mn = X[j]
        iref[ni] = mn
        isz[ni] = k
        isz[l] -= k
        if iref[l] >= 0 and lab[iref[l]] == ni:
            iref[l] = -1

    cdef int _split(self, uint8_t* act, int64_t* lab, int64_t* iref, int64_t* isz,
                    Py_ssize_t* pni, int64_t* tb, Py_ssize_t t0, Py_ssize_t nt, int64_t* vis,
                    int64_t* qa, int64_t* qb, int64_t* seeds, int64_t* rep, int64_t* met,
                    Py_ssize_t* stamp, Py_ssize_t budget) noexcept nogil:
        """The islands after the trips tb[t0:nt] from those before them, without a BFS of the
        whole grid.  First each trip's own two ends race each other (two BFS's, one bus each in
        turn; usually short: the way around a lost branch): meeting = connected, one search
        running out = its buses are a whole island, which gets a new label (the reference of
        each island stays its smallest bus).  An island none of whose trips split anything off
        is whole: had it split, some trip would join two of its parts, and that trip's ends
        would not have met.  In an island that lost a part, every part left holds the end of a
        trip whose ends did not meet (the trips around it), so only those ends race the
        island's representative (the last one found in it).  1 = the searches visited more
        than ``budget`` buses (the caller then runs the full BFS)."""
        cdef Py_ssize_t n = self.n, ns = 0, i, sd, r, l, a, b, k, ta, tb_, v
        cdef Py_ssize_t work = 0, ni = pni[0]
        cdef int res
        cdef bint lost_ref = False
        cdef int64_t* X
        for i in range(t0, nt):
            seeds[ns] = self.fr[tb[i]]
            seeds[ns + 1] = self.to_[tb[i]]
            ns += 2
        # rep[label]: -1 nothing split off it, -2 lost a part (no representative yet), -3 a
        # whole island split off in this call, >= 0 the representative seed (phase two)
        for i in range(ns):
            rep[lab[seeds[i]]] = -1
        # phase one: each trip's ends (met[i] = 1: the ends of seed i's trip are connected)
        for i in range(0, ns, 2):
            a = seeds[i]
            b = seeds[i + 1]
            l = lab[a]
            met[i] = 0
            met[i + 1] = 0
            if lab[b] != l:
                continue                      # (already apart)
            if rep[l] == -3:
                met[i] = 1                    # a whole island: connected
                met[i + 1] = 1
                continue
            res = self._race(act, a, b, vis, qa, qb, stamp, &ta, &tb_, &work)
            if work > budget:
                return 1
            if res == 0:
                met[i] = 1
                met[i + 1] = 1
                continue
            if res == 1:
                X = qa
                k = ta
            else:
                X = qb
                k = tb_
            self._peel(X, k, lab, iref, isz, ni)
            if iref[l] < 0:
                lost_ref = True
            rep[l] = -2
            rep[ni] = -3
            ni += 1
        # phase two: in the islands that lost a part, the unmet ends against the rest
        for i in range(ns):
            if met[i]:
                continue
            sd = seeds[i]
            l = lab[sd]
            if rep[l] == -1 or rep[l] == -3:
                continue
            if rep[l] == -2:
                rep[l] = i
                continue
            r = rep[l]
            if seeds[r] == sd:
                continue                      # the same bus (another trip's end)
            res = self._race(act, seeds[r], sd, vis, qa, qb, stamp, &ta, &tb_, &work)
            if work > budget:
                return 1
            if res == 0:
                continue
            if res == 1:
                X = qa
                k = ta
                rep[l] = i
            else:
                X = qb
                k = tb_
            self._peel(X, k, lab, iref, isz, ni)
            if iref[l] < 0:
                lost_ref = True
            rep[ni] = -3
            ni += 1
        if lost_ref:
            # the smallest bus of each island whose reference split off
            for v in range(n):
                l = lab[v]
                if l >= 0 and iref[l] < 0:
                    iref[l] = v
        pni[0] = ni
        return 0

    def _split_islands(self, uint8_t[::1] alive, uint8_t[::1] active, int64_t[::1] trips,
                       Py_ssize_t budget=-1):
        """For the tests: the islands (label per bus, -1 not alive) after the branches
        ``trips`` of ``active`` are lost, found by :meth:`_split` from the islands before
        (a BFS), or None when the searches needed more than ``budget`` buses (-1: no limit)."""
        cdef Py_ssize_t n = self.n, m = self.m, nt = trips.shape[0], ni, i
        cdef Py_ssize_t stamp = 0
        act = np.array(active, dtype=np.uint8)
        cdef uint8_t[::1] av = act
        ni = self._islands(alive, av)
        lab = np.array(self.label, dtype=np.int64)
        iref = np.full(n + 1, -1, dtype=np.int64)
        isz = np.zeros(n + 1, dtype=np.int64)
        for i in range(n):
            if lab[i] >= 0:
                isz[lab[i]] += 1
                if iref[lab[i]] < 0:
                    iref[lab[i]] = i
        for i in range(nt):
            av[trips[i]] = 0
        tb = np.ascontiguousarray(trips, dtype=np.int64)
        vis = np.full(n + 1, -1, dtype=np.int64)
        qa = np.zeros(n + 1, dtype=np.int64)
        qb = np.zeros(n + 1, dtype=np.int64)
        seeds = np.zeros(2 * nt + 2, dtype=np.int64)
        rep = np.zeros(n + 1, dtype=np.int64)
        uf = np.zeros(2 * nt + 2, dtype=np.int64)
        cdef int64_t[::1] vl = lab, vr = iref, vs = isz, vt = tb, vv = vis, va = qa, vb = qb
        cdef int64_t[::1] vd = seeds, vp = rep, vu = uf
        if self._split(&av[0], &vl[0], &vr[0], &vs[0], &ni, &vt[0], 0, nt, &vv[0], &va[0],
                       &vb[0], &vd[0], &vp[0], &vu[0], &stamp,
                       budget if budget >= 0 else 4 * (n + m) * (nt + 1)):
            return None
        return lab, iref[:ni].copy(), isz[:ni].copy()

    cdef int _base_factor(self, int64_t* wi, double* wd) noexcept nogil:
        """The intact grid's LDL^T, every base island of more than DENSE_MAX buses in one
        (block diagonal) factor, positions posb (-1: a base island's reference or a small
        island)."""
        cdef Py_ssize_t n = self.n, m = self.m, t, v, bl, nr = 0, nbr = 0, e, nbig = 0
        cdef int64_t* posb = &self.posb[0]
        cdef int64_t* brl = wi + 16 * n + 3 * m + 3
        cdef int rc
        for t in range(n):
            v = self.byrank[t]
            bl = self.base_lab[v]
            if self.base_sz[bl] > DENSE_MAX and v != self.base_ref[bl]:
                posb[v] = nr
                nr += 1
            else:
                posb[v] = -1
        for e in range(m):
            if self.base_act[e] and self.base_sz[self.base_lab[self.fr[e]]] > DENSE_MAX:
                brl[nbr] = e
                nbr += 1
        self._assemble(nr, posb, brl, nbr, wi + 6 * n + 1, wi + 15 * n + 3, wd + 13 * n + 1,
                       wd + 11 * n, wi + 14 * n + 3)
        rc = self.bf.factor(nr, wi + 6 * n + 1, wi + 15 * n + 3, wd + 13 * n + 1,
                            wi + 7 * n + 2, wi + 8 * n + 2, wi + 9 * n + 2, wi + 10 * n + 2,
                            wd + 10 * n)
        if rc:
            return rc
        for bl in range(self.base_sz.shape[0]):
            if self.base_sz[bl] > DENSE_MAX:
                nbig += 1
        self.n_factorizations += nbig
        self.nrb = nr
        self.have_base = True
        return 0

    cdef int _loop(self, uint8_t* alive, uint8_t* act, double* sup, double* disp, double* dem,
                   int32_t* prio, int64_t* porder, double* flow, double* frac, uint8_t* work,
                   int64_t* tb, int32_t* ts, double* tf, Py_ssize_t* ntrip, int64_t* wi,
                   double* wd, _CLDL sf, Py_ssize_t* st, _PS* ps) noexcept nogil:
        cdef Py_ssize_t n = self.n, m = self.m
        cdef Py_ssize_t v, s, e, l, ni = 0, t, i, j, k, q, c, p, head, tail, step = 0, nt = 0, t0
        cdef Py_ssize_t nd, nr, nbr, nrem, nfresh, nbase, nwood, ncol = 0, colcap = 0, mcap = 0
        cdef Py_ssize_t bl, nb, pf, pt, nrb, npart, nsmall
        cdef int32_t pr
        cdef double dc, fg, S, P, g, b, sx, acc
        cdef int rc = 0
        cdef int64_t* fr = &self.fr[0]
        cdef int64_t* to = &self.to_[0]
        cdef double* x = &self.x[0]
        cdef double* phi = &self.shift[0]
        cdef double* cap = &self.cap[0]
        cdef int64_t* adj_ptr = &self.adj_ptr[0]
        cdef int64_t* adj_nbr = &self.adj_nbr[0]
        cdef int64_t* adj_edge = &self.adj_edge[0]
        cdef int64_t* byrank = &self.byrank[0]
        cdef int64_t* lab = wi + 19 * n + 5 * m + 4
        cdef int64_t* queue = wi + 20 * n + 5 * m + 4
        cdef int64_t* iref = wi
        cdef int64_t* isz = wi + n
        cdef int64_t* cnt = wi + 2 * n            # n + 1
        cdef int64_t* didx = wi + 3 * n + 1
        cdef int64_t* pos = wi + 4 * n + 1
        cdef int64_t* mode = wi + 5 * n + 1
        cdef int64_t* Ap = wi + 6 * n + 1         # n + 1
        cdef int64_t* parent = wi + 7 * n + 2
        cdef int64_t* lnz = wi + 8 * n + 2
        cdef int64_t* flag = wi + 9 * n + 2
        cdef int64_t* pattern = wi + 10 * n + 2
        cdef int64_t* bord = wi + 11 * n + 2
        cdef int64_t* bcut = wi + 12 * n + 2      # n + 1
        cdef int64_t* loc = wi + 13 * n + 3
        cdef int64_t* bfill = wi + 14 * n + 3
        cdef int64_t* Ai = wi + 15 * n + 3        # n + m
        cdef int64_t* slot = wi + 16 * n + m + 3  # m
        cdef int64_t* remb = wi + 16 * n + 2 * m + 3
        cdef int64_t* brl = wi + 16 * n + 3 * m + 3
        cdef int64_t* colb = wi + 16 * n + 4 * m + 3
        cdef int64_t* vis = wi + 21 * n + 5 * m + 4     # n: race stamps
        cdef int64_t* qa = wi + 22 * n + 5 * m + 4      # n
        cdef int64_t* qb = wi + 23 * n + 5 * m + 4      # n
        cdef int64_t* seeds = wi + 24 * n + 5 * m + 4   # 2 m
        cdef int64_t* rep = wi + 24 * n + 7 * m + 4     # n
        cdef int64_t* met = wi + 25 * n + 7 * m + 4     # 2 m: seeds whose trip's ends met
        cdef Py_ssize_t stamp = 0, tprev = 0, ni0
        cdef bint same, oneclass = True
        cdef int64_t* posb = &self.posb[0]              # the intact factor's positions
        cdef int64_t* pbus
        cdef double* G = wd
        cdef double* rem = wd + n
        cdef double* Srv = wd + 2 * n
        cdef double* Psum = wd + 3 * n
        cdef double* nanc = wd + 4 * n
        cdef double* rhs0 = wd + 5 * n            # the injections without the shift terms
        cdef double* rhs = wd + 6 * n
        cdef double* theta = wd + 7 * n
        cdef double* sfr = wd + 8 * n
        cdef double* sto = wd + 9 * n
        cdef double* y = wd + 10 * n
        cdef double* diag = wd + 11 * n
        cdef double* z = wd + 12 * n              # n + 1
        cdef double* Ax = wd + 13 * n + 1         # n + m
        cdef double* Bd = wd + 14 * n + m + 1     # DENSE_MAX^2
        cdef double* bd = Bd + DENSE_MAX * DENSE_MAX
        cdef double* W = NULL
        cdef double* M = NULL
        cdef double* col
        cdef void* qp
        for e in range(m):
            slot[e] = -1
        for v in range(n):
            vis[v] = -1
        for v in range(1, n):
            if prio[v] != prio[0]:
                oneclass = False
                break
        while True:
            step += 1
            # islands over the active branches; each one's reference is its first (smallest) bus:
            # after the first step, split from the last step's islands at the trips' ends
            ni0 = ni
            same = False
            if (step > 1 and self.incremental and
                    self._split(act, lab, iref, isz, &ni, tb, tprev, nt, vis, qa, qb, seeds,
                                rep, met, &stamp, n) == 0):
                s = n
                # no island split off: every island keeps its buses, so its serving, shares
                # and injections are those of the last step (the same operations on the same
                # numbers); only the shift terms of the tripped branches change
                same = ni == ni0
            else:
                for v in range(n):
                    lab[v] = -1
                ni = 0
                s = 0
            for s in range(s, n):
                if not alive[s] or lab[s] >= 0:
                    continue
                lab[s] = ni
                queue[0] = s
                head = 0
                tail = 1
                while head < tail:
                    v = queue[head]
                    head += 1
                    for j in range(adj_ptr[v], adj_ptr[v + 1]):
                        if act[adj_edge[j]]:
                            k = adj_nbr[j]
                            if lab[k] < 0:
                                lab[k] = ni
                                queue[tail] = k
                                tail += 1
                iref[ni] = s
                isz[ni] = tail
                ni += 1
            if not same:
                for l in range(ni):
                    G[l] = 0.0
                    Psum[l] = 0.0
                    nanc[l] = 0.0
                for v in range(n):
                    if lab[v] >= 0 and sup[v] > 0:
                        G[lab[v]] += sup[v]
                if oneclass:
                    for l in range(ni):
                        rem[l] = G[l]
                        Srv[l] = 0.0
                # (in the same pass, each in bus order: the dispatch of the working generators
                # and, with one priority class, each island's demand)
                for v in range(n):
                    work[v] = lab[v] >= 0 and G[lab[v]] > 0
                    frac[v] = 1.0 if work[v] else 0.0
                    if work[v]:
                        if sup[v] > 0:
                            if isnan(disp[v]):
                                nanc[lab[v]] += 1.0
                            else:
                                Psum[lab[v]] += disp[v]
                        if oneclass and dem[v] > 0:
                            Srv[lab[v]] += dem[v]
                if oneclass:
                    # one priority class: each island's demand summed in bus order, as the
                    # classes' order gives it when every priority is equal (a stable sort)
                    for l in range(ni):
                        if Srv[l] > 0:
                            dc = Srv[l]
                            fg = rem[l] / dc if rem[l] < dc else 1.0
                            Srv[l] = fg
                            rem[l] -= fg * dc
                            if rem[l] < 0:
                                rem[l] = 0.0
                    for v in range(n):
                        if work[v] and dem[v] > 0:
                            frac[v] = Srv[lab[v]]
                else:
                    # priority classes per island (decreasing priority, buses in index order)
                    for l in range(ni + 1):
                        cnt[l] = 0
                    for v in range(n):
                        if work[v] and dem[v] > 0:
                            cnt[lab[v] + 1] += 1
                    for l in range(ni):
                        cnt[l + 1] += cnt[l]
                    nd = cnt[ni]
                    for t in range(n):
                        v = porder[t]
                        if work[v] and dem[v] > 0:
                            didx[cnt[lab[v]]] = v
                            cnt[lab[v]] += 1
                    for l in range(ni):
                        rem[l] = G[l]
                    i = 0
                    while i < nd:
                        l = lab[didx[i]]
                        pr = prio[didx[i]]
                        j = i
                        dc = 0.0
                        while j < nd and lab[didx[j]] == l and prio[didx[j]] == pr:
                            dc += dem[didx[j]]
                            j += 1
                        fg = rem[l] / dc if rem[l] < dc else 1.0
                        for q in range(i, j):
                            frac[didx[q]] = fg
                        rem[l] -= fg * dc
                        if rem[l] < 0:
                            rem[l] = 0.0
                        i = j
                for l in range(ni):
                    Srv[l] = G[l] - rem[l]
                # generators share the served total; injections in per unit plus shift terms
                for v in range(n):
                    g = 0.0
                    if work[v] and sup[v] > 0:
                        l = lab[v]
                        S = Srv[l]
                        if nanc[l] == 0:
                            P = disp[v]
                            if S > Psum[l] and G[l] > Psum[l]:   # (no headroom: S > ΣP by rounding only)
                                g = P + (S - Psum[l]) * (sup[v] - P) / (G[l] - Psum[l])
                            elif S < Psum[l]:
                                g = S * P / Psum[l]
                            else:
                                g = P
                        else:
                            g = S * sup[v] / G[l]
                    rhs0[v] = (g - frac[v] * (dem[v] if work[v] else 0.0)) / self.base
            for v in range(n):
                sfr[v] = 0.0
                sto[v] = 0.0
            for j in range(self.nshift):
                e = self.shifted[j]
                if act[e]:
                    sx = phi[e] / x[e]
                    sfr[fr[e]] += sx
                    sto[to[e]] += sx
            for v in range(n):
                rhs[v] = rhs0[v] + (sfr[v] - sto[v])
            # which islands to solve (those with a bus at a trip's end), and how
            for l in range(ni):
                mode[l] = 1 if step == 1 else 0
            if step > 1:
                # (the islands holding an end of the last step's trips)
                for i in range(tprev, nt):
                    e = tb[i]
                    if lab[fr[e]] >= 0:
                        mode[lab[fr[e]]] = 1
                    if lab[to[e]] >= 0:
                        mode[lab[to[e]]] = 1
            nfresh = 0
            nbase = 0
            npart = 0
            nsmall = 0
            for l in range(ni):
                if mode[l] and G[l] > 0 and isz[l] >= 2:
                    if isz[l] <= DENSE_MAX:
                        mode[l] = 2
                        nsmall += 1
                    elif self.base_sz[self.base_lab[iref[l]]] == isz[l]:
                        mode[l] = 3                       # the intact factor, if it fits
                    else:
                        mode[l] = 4
                else:
                    mode[l] = 0
            if ps != NULL:
                if not same:
                    ps.dirty = True
                for l in range(ni):
                    if ps.uncl[l]:
                        ps.dirty = True           # (it may go from 1 to 0)
                    ps.uncl[l] = 0
            # (and the active branches of the islands to solve, in index order: which islands
            # those are does not change below, only how they are solved)
            nbr = 0
            for e in range(m):
                if act[e]:
                    l = lab[fr[e]]
                    if ps != NULL and (not self.base_act[e] or x[e] < 0):
                        # (a series capacitor: the matrix is indefinite and rounding is
                        # amplified; its island is factorised afresh, in the fresh op order)
                        ps.uncl[l] = 1
                    if not work[fr[e]]:
                        flow[e] = 0.0
                    elif mode[l] == 3 and not self.base_act[e]:
                        mode[l] = 4
                    if mode[l]:
                        brl[nbr] = e
                        nbr += 1
            nrem = 0
            nwood = 0
            for l in range(ni):
                if mode[l] == 3:
                    bl = self.base_lab[iref[l]]
                    k = 0
                    for p in range(self.bb_ptr[bl], self.bb_ptr[bl + 1]):
                        if not act[self.bb_idx[p]]:
                            k += 1
                    if k > self.kmax:
                        mode[l] = 4
                    else:
                        for p in range(self.bb_ptr[bl], self.bb_ptr[bl + 1]):
                            if not act[self.bb_idx[p]]:
                                remb[nrem] = self.bb_idx[p]
                                nrem += 1
                        nbase += 1
                        if k:
                            nwood += 1
                if mode[l] == 4:
                    if ps != NULL and not ps.uncl[l]:
                        mode[l] = 5               # in one island of the intact grid
                        npart += 1
                    else:
                        nfresh += 1
            # small islands: dense, local indices in bus order (the reference first); their
            # branches by island, in index order, in seeds[] (free after the split)
            if nsmall:
                for l in range(ni + 1):
                    cnt[l] = 0
                for p in range(nbr):
                    l = lab[fr[brl[p]]]
                    if mode[l] == 2:
                        cnt[l + 1] += 1
                for l in range(ni):
                    cnt[l + 1] += cnt[l]
                    bfill[l] = cnt[l]
                for p in range(nbr):
                    l = lab[fr[brl[p]]]
                    if mode[l] == 2:
                        seeds[bfill[l]] = brl[p]
                        bfill[l] += 1
                for l in range(ni + 1):
                    bcut[l] = 0
                for v in range(n):
                    if lab[v] >= 0 and mode[lab[v]] == 2:
                        bcut[lab[v] + 1] += 1
                for l in range(ni):
                    bcut[l + 1] += bcut[l]
                    bfill[l] = bcut[l]
                for v in range(n):
                    if lab[v] >= 0 and mode[lab[v]] == 2:
                        l = lab[v]
                        loc[v] = bfill[l] - bcut[l]
                        bord[bfill[l]] = v
                        bfill[l] += 1
                for l in range(ni):
                    if mode[l] != 2:
                        continue
                    nb = isz[l] - 1
                    for i in range(nb * nb):
                        Bd[i] = 0.0
                    for p in range(cnt[l], cnt[l + 1]):
                        e = seeds[p]
                        i = loc[fr[e]] - 1
                        k = loc[to[e]] - 1
                        b = 1.0 / x[e]
                        if i >= 0:
                            Bd[i * nb + i] += b
                        if k >= 0:
                            Bd[k * nb + k] += b
                        if i >= 0 and k >= 0:
                            Bd[i * nb + k] -= b
                            Bd[k * nb + i] -= b
                    for i in range(nb):
                        bd[i] = rhs[bord[bcut[l] + i + 1]]
                    if _gesv(nb, Bd, bd):
                        rc = 1
                        break
                    st[2] += 1
                    theta[bord[bcut[l]]] = 0.0
                    for i in range(nb):
                        theta[bord[bcut[l] + i + 1]] = bd[i]
            if rc:
                break
            # large islands that changed shape: one LDL^T of all of them, in the intact order
            if nfresh:
                nr = 0
                for t in range(n):
                    v = byrank[t]
                    pos[v] = -1
                    if lab[v] >= 0 and mode[lab[v]] == 4 and v != iref[lab[v]]:
                        pos[v] = nr
                        nr += 1
                k = 0
                for p in range(nbr):
                    e = brl[p]
                    if mode[lab[fr[e]]] == 4:
                        remb[nrem + k] = e
                        k += 1
                # (each island's branches in index order, as the numpy path assembles them:
                # the islands' buses are disjoint, so interleaving islands changes no sum)
                self._assemble(nr, pos, remb + nrem, k, Ap, Ai, Ax, diag, bfill)
                rc = sf.factor(nr, Ap, Ai, Ax, parent, lnz, flag, pattern, y)
                if rc:
                    break
                st[0] += nfresh
                for v in range(n):
                    if pos[v] >= 0:
                        z[pos[v]] = rhs[v]
                sf.solve(z)
                st[2] += 1
                for v in range(n):
                    if lab[v] >= 0 and mode[lab[v]] == 4:
                        theta[v] = z[pos[v]] if pos[v] >= 0 else 0.0
            # islands inside one island of the intact grid: the partially refactorised factor
            if npart:
                rc = self._refactor(ps, lab, isz, iref, act)
                if rc:
                    break
                st[0] += npart
                st[3] += npart
                nrb = self.nrb
                pbus = &self.pbus[0]                # (the bus of each position)
                for i in range(nrb):
                    v = pbus[i]
                    l = lab[v]
                    z[i] = rhs[v] if (l >= 0 and mode[l] == 5 and v != iref[l]) else 0.0
                z[nrb] = 0.0
                _lsolve(nrb, self.bf.Lp, self.bf.Li, ps.Lx, ps.D, z)
                st[2] += 1
                for v in range(n):
                    if lab[v] >= 0 and mode[lab[v]] == 5:
                        theta[v] = (z[posb[v]] if posb[v] >= 0 and v != iref[lab[v]]
                                    else 0.0)
            # islands of the intact grid missing at most kmax branches: its factor + Woodbury
            if nbase:
                nrb = self.nrb
                for i in range(nrb + 1):
                    z[i] = 0.0
                for v in range(n):
                    if lab[v] >= 0 and mode[lab[v]] == 3 and posb[v] >= 0:
                        z[posb[v]] = rhs[v]
                self.bf.solve(z)
                st[2] += 1
                z[nrb] = 0.0
                if nrem:
                    st[1] += nwood
                    for j in range(nrem):
                        e = remb[j]
                        if slot[e] < 0:
                            if ncol == colcap:
                                colcap = 2 * colcap + 8
                                qp = realloc(W, colcap * (nrb + 1) * sizeof(double))
                                if qp == NULL:
                                    rc = 2
                                    break
                                W = <double*>qp
                            col = W + ncol * (nrb + 1)
                            for i in range(nrb + 1):
                                col[i] = 0.0
                            if posb[fr[e]] >= 0:
                                col[posb[fr[e]]] += 1.0
                            if posb[to[e]] >= 0:
                                col[posb[to[e]]] -= 1.0
                            self.bf.solve(col)
                            col[nrb] = 0.0
                            st[2] += 1
                            slot[e] = ncol
                            colb[ncol] = e
                            ncol += 1
                    if rc:
                        break
                    if nrem * (nrem + 1) > mcap:
                        mcap = nrem * (nrem + 1)
                        qp = realloc(M, mcap * sizeof(double))
                        if qp == NULL:
                            rc = 2
                            break
                        M = <double*>qp
                    for i in range(nrem):
                        e = remb[i]
                        pf = posb[fr[e]] if posb[fr[e]] >= 0 else nrb
                        pt = posb[to[e]] if posb[to[e]] >= 0 else nrb
                        for j in range(nrem):
                            col = W + slot[remb[j]] * (nrb + 1)
                            M[i * nrem + j] = (x[e] if i == j else 0.0) - (col[pf] - col[pt])
                        M[nrem * nrem + i] = z[pf] - z[pt]
                    if _gesv(nrem, M, M + nrem * nrem):
                        rc = 1
                        break
                    for j in range(nrem):
                        col = W + slot[remb[j]] * (nrb + 1)
                        acc = M[nrem * nrem + j]
                        for i in range(nrb):
                            z[i] += col[i] * acc
                for v in range(n):
                    if lab[v] >= 0 and mode[lab[v]] == 3:
                        theta[v] = z[posb[v]] if posb[v] >= 0 else 0.0
            # flows of the solved islands, then every overloaded branch trips at once
            for p in range(nbr):
                e = brl[p]
                flow[e] = self.base * (theta[fr[e]] - theta[to[e]] - phi[e]) / x[e]
            t0 = nt
            tprev = nt
            for e in range(m):
                if act[e] and fabs(flow[e]) > cap[e] * (1.0 + _DC_TRIP_RTOL):
                    tb[nt] = e
                    ts[nt] = <int32_t>step
                    tf[nt] = flow[e]
                    nt += 1
            if nt == t0:
                break
            for i in range(t0, nt):
                e = tb[i]
                act[e] = 0
                flow[e] = NAN
                if ps != NULL:
                    _ps_note(ps, e)
        for e in range(m):
            if not act[e]:
                flow[e] = NAN
        for i in range(ncol):
            slot[colb[i]] = -1
        free(W)
        free(M)
        ntrip[0] = nt
        return rc

    # ------------------------------------------------------------------ N-1 screening (LODF)
    cdef object _bridges(self, uint8_t[::1] active):
        """Mask of the active branches whose loss splits their island (Tarjan's low links,
        iteratively; parallel branches are not bridges)."""
        cdef Py_ssize_t n = self.n, s, u, w, j, e, top, t = 0
        cdef int64_t[::1] disc = np.full(n, -1, dtype=np.int64)
        cdef int64_t[::1] low = np.zeros(n, dtype=np.int64)
        cdef int64_t[::1] it = np.zeros(n, dtype=np.int64)
        cdef int64_t[::1] pedge = np.full(n, -1, dtype=np.int64)
        cdef int64_t[::1] stack = np.zeros(n, dtype=np.int64)
        out = np.zeros(self.m, dtype=np.uint8)
        cdef uint8_t[::1] br = out
        with nogil:
            for s in range(n):
                if disc[s] >= 0:
                    continue
                disc[s] = t
                low[s] = t
                t += 1
                it[s] = self.adj_ptr[s]
                stack[0] = s
                top = 1
                while top > 0:
                    u = stack[top - 1]
                    if it[u] < self.adj_ptr[u + 1]:
                        j = it[u]
                        it[u] += 1
                        e = self.adj_edge[j]
                        if not active[e] or e == pedge[u]:
                            continue
                        w = self.adj_nbr[j]
                        if disc[w] < 0:
                            disc[w] = t
                            low[w] = t
                            t += 1
                            it[w] = self.adj_ptr[w]
                            pedge[w] = e
                            stack[top] = w
                            top += 1
                        elif disc[w] < low[u]:
                            low[u] = disc[w]
                    else:
                        top -= 1
                        if top > 0:
                            w = stack[top - 1]
                            if low[u] < low[w]:
                                low[w] = low[u]
                            if low[u] > disc[w]:
                                br[pedge[u]] = 1
        return out.astype(bool)

    cdef void _lodf(self, _LDL L, int64_t[::1] pos, int64_t[::1] ibr, int64_t[::1] cand,
                    int64_t[::1] crow, double[::1] flow, double[::1] lim, double tol_abs,
                    double rtol, int8_t[::1] status, double[:, ::1] out, bint want,
                    double[::1] w) noexcept nogil:
        """First-round flows after the loss of each branch of ``cand`` (one island, its factor
        ``L``): f_l + LODF(l, b) f_b, with LODF(l, b) = PTDF(l, b) / (1 - PTDF(b, b)) and the
        PTDF column from one solve with the factor.  status[crow[c]] = 1 when a branch comes
        within ``rtol`` of its limit (or the column is numerically degenerate), else 0."""
        cdef Py_ssize_t nr = L.n, c, q, l, b, i, j
        cdef double dbb, t, fl, lm
        cdef int8_t st
        for c in range(cand.shape[0]):
            b = cand[c]
            for q in range(nr + 1):
                w[q] = 0.0
            i = pos[self.fr[b]]
            j = pos[self.to_[b]]
            if i < 0:
                i = nr
            if j < 0:
                j = nr
            w[i] += 1.0
            w[j] -= 1.0
            w[nr] = 0.0
            L._solve(&w[0])
            dbb = 1.0 - (w[i] - w[j]) / self.x[b]
            if not dbb > 1e-9:
                status[crow[c]] = 1
                continue
            t = flow[b] / dbb
            st = 0
            for q in range(ibr.shape[0]):
                l = ibr[q]
                if l == b:
                    continue
                i = pos[self.fr[l]]
                j = pos[self.to_[l]]
                if i < 0:
                    i = nr
                if j < 0:
                    j = nr
                fl = flow[l] + (w[i] - w[j]) / self.x[l] * t
                if want:
                    out[crow[c], l] = fl
                lm = lim[l]
                if lm < INFINITY and fabs(fl) > lm - rtol * lm - tol_abs:
                    st = 1
                    if not want:
                        break
            status[crow[c]] = st

    def screen(self, uint8_t[::1] alive, uint8_t[::1] usable, double[::1] supply,
               double[::1] dispatch, double[::1] demand, int32_t[::1] priority,
               int64_t[::1] branches, double rtol=1e-6, bint flows=False):
        """Which single-branch losses on top of (alive, usable) change more than flows.

        Runs the base cascade once; when it trips nothing, factorises each supplied island once
        and finds the first-round flows after the loss of every branch of ``branches`` from
        LODF columns (one solve each with the factor).  Returns ``(status, base, out)``:
        status[c] = 0 when losing branches[c] provably ends exactly like the base case (no
        trip, same islands, same served fractions and working buses; only flows differ): the
        branch is inactive, in an island without supply, or its loss keeps every other
        branch of its island below (1 - rtol) of its trip limit; 1 when the full cascade must
        run (it overloads something or comes within rtol of a limit, it is a bridge, its island
        is small (solved densely), or the base case itself trips branches).  ``base`` is the
        base cascade's result tuple; ``out`` (k, m) holds the first-round flows when
        ``flows`` (NaN where not computed, and on every row whose status is 1 for a reason
        other than a limit), else None.
        """
        cdef Py_ssize_t k = branches.shape[0], nb, c
        cdef _Factor f
        base = self.cascade(alive, usable, supply, dispatch, demand, priority)
        status = np.ones(k, dtype=np.int8)
        out = np.full((k, self.m), np.nan) if flows else None
        if len(base[3]) or k == 0:
            return status, base, out
        fr = np.asarray(self.fr)
        to = np.asarray(self.to_)
        cap = np.asarray(self.cap)
        alive_b = np.asarray(alive).astype(bool)
        active = (np.asarray(usable).astype(bool) & (cap > 0) & alive_b[fr] & alive_b[to]
                  & (fr != to))
        working = base[1]
        flow = np.array(base[2])
        br = np.asarray(branches)
        act_c = active[br]
        status[~act_c] = 0
        dead = act_c & ~working[fr[br]]
        status[dead] = 0
        ni = self._islands(alive, active.view(np.uint8))
        lab = np.array(self.label)
        bridge = self._bridges(active.view(np.uint8))
        todo = np.flatnonzero(act_c & working[fr[br]] & ~bridge[br])
        if not len(todo):
            return status, base, out
        lim = cap * (1.0 + DC_TRIP_RTOL)
        lab_c = lab[fr[br[todo]]]
        size = np.bincount(lab[lab >= 0], minlength=ni)
        act = np.flatnonzero(active)
        lab_act = lab[fr[act]]
        fmax = np.zeros(ni)
        np.maximum.at(fmax, lab_act, np.abs(flow[act]))
        cdef int8_t[::1] st = status
        cdef double[:, ::1] ov = out if flows else np.zeros((1, 1))
        cdef _LDL L
        cdef int64_t[::1] pos, ibr, cand, crow
        cdef double[::1] fv, lv, wv
        cdef double tol
        for isl in np.unique(lab_c):
            rows = todo[lab_c == isl]
            nb = size[isl]
            if nb <= DENSE_MAX:
                continue                          # solved densely: the full cascade is cheap
            buses = np.flatnonzero(lab == isl)
            ibr = np.ascontiguousarray(act[lab_act == isl], dtype=np.int64)
            f = self._factorize(buses, ibr)
            L = f.lu
            pos = f.pos
            cand = np.ascontiguousarray(br[rows])
            crow = rows.astype(np.int64)
            fv = flow
            lv = lim
            wv = np.zeros(L.n + 1)
            tol = 1e-9 * fmax[isl]
            with nogil:
                self._lodf(L, pos, ibr, cand, crow, fv, lv, tol, rtol, st, ov, flows, wv)
        return status, base, out
