# cython: language_level=3
"""Ensemble samples in one nogil loop: keyed hazard draws, the cascade, the loss tally.

:func:`run_block` runs samples ``0 .. B-1`` of a block.  For each sample it draws the direct
failures of a hazard *plan* (two parts, one over nodes and one over edges, built by the hazards
in :mod:`cascade.hazards`: ``Hazard.compiled_plan``), runs the static cascade of
:mod:`cascade._core` on them and adds the sample's service per layer, failure counts per node
and direct failure counts to the outputs.  No Python object and no allocation per sample.

The arithmetic is the numpy code's of each hazard's ``draw_block``, operation by operation, so
the results are bit for bit those of the Python path (tested in tests/test_ensemble_compiled.py):

* keyed uniforms: the SplitMix64 finaliser of ``key ^ salt`` (:func:`cascade.hazards.keyed_uniform`);
* Φ and Φ⁻¹: scipy's own ``ndtr`` / ``ndtri`` (``scipy.special.cython_special``);
* ``exp`` and ``expm1`` (pipe repair rates): numpy's own float64 inner loops, taken from the
  ufuncs at import (numpy's SIMD versions differ from libm's in the last bit for some inputs).

Part modes (``mode``), per element ``j`` of the part, ``u`` its keyed uniform of salt ``s_fail``:

0 threshold: fails when ``u < a[j]`` (random, targeted, region, probability tables);
1 normal:    ``z = a[j] + (ev·b[j] + c[j]·ε) / d[j]`` (without variability ``z = a[j]``), fails
             when ``u < Φ(z)`` (fragility curves);
2 repair:    ``ln RR = a[j] + 2.25 (ev·b[j] + c[j]·ε)`` (without variability ``a[j]``), fails
             when ``u < -expm1(-bf · exp(ln RR) · d[j])`` (Hazus pipe breaks);
3 flood:     ``depth = a[j] + offset`` (a grid: only where ``a[j] > 0``), fails when
             ``depth > 0`` and ``depth > b[j]``.

Modes 1 and 2 decide most elements without Φ, Φ⁻¹, exp or expm1, from two tables and a
bracket of ``z`` (see "Fast decisions" below); only elements close to their threshold take the
arithmetic above.  When every node works in the intact system, each sample's cascade runs
incrementally from the intact state (only the layers its failures touch are searched) and is
undone after the tally; the failures and their order are those of a run from scratch.

``ε`` is a per-sample residual: from ``eps[b, j]`` when given (correlated fields, drawn by
numpy per block; where ``nug[j] >= 0`` plus ``nug[j]`` times ``Φ⁻¹`` of the keyed uniform of salt
``s_gm``, the grid field's nugget term), else ``Φ⁻¹`` of the keyed uniform of salt ``s_gm``.  ``ev`` is the sample's
event term (``normal[b]``) and ``offset`` the flood's (``normal[b]`` too, already scaled).
"""
from libc.math cimport ldexp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

cimport numpy as cnp
from scipy.special.cython_special cimport ndtr, ndtri

from ._core cimport _cascade, _cascade_incr, _undo, index_t

import numpy as np

cnp.import_array()

ctypedef void (*loop_t)(char **, cnp.npy_intp *, cnp.npy_intp *, void *) noexcept nogil

cdef uint64_t _M1 = 0xBF58476D1CE4E5B9
cdef uint64_t _M2 = 0x94D049BB133111EB
cdef double _TWO_M53 = ldexp(1.0, -53)

cdef loop_t _exp_loop = NULL
cdef loop_t _expm1_loop = NULL
cdef void *_exp_data = NULL
cdef void *_expm1_data = NULL


cdef void _find_loop(cnp.ufunc u, loop_t *fn, void **data) except *:
    cdef int i
    for i in range(u.ntypes):
        if u.types[2 * i] == cnp.NPY_DOUBLE and u.types[2 * i + 1] == cnp.NPY_DOUBLE:
            fn[0] = <loop_t>u.functions[i]
            data[0] = u.data[i]
            return
    raise RuntimeError(f"numpy's {u.__name__} has no float64 loop")


_find_loop(np.exp, &_exp_loop, &_exp_data)
_find_loop(np.expm1, &_expm1_loop, &_expm1_data)


cdef inline double _uniform(uint64_t key, uint64_t salt) noexcept nogil:
    cdef uint64_t z = key ^ salt
    z = (z ^ (z >> 30)) * _M1
    z = (z ^ (z >> 27)) * _M2
    z = z ^ (z >> 31)
    return (<double>(z >> 11) + 0.5) * _TWO_M53


cdef inline void _ufunc(loop_t fn, void *data, double *src, double *dst, Py_ssize_t k) noexcept nogil:
    cdef char *args[2]
    cdef cnp.npy_intp dims[1]
    cdef cnp.npy_intp steps[2]
    if k == 0:
        return
    args[0] = <char *>src
    args[1] = <char *>dst
    dims[0] = k
    steps[0] = sizeof(double)
    steps[1] = sizeof(double)
    fn(args, dims, steps, data)


def numpy_loops(double[::1] x, double[::1] out_exp, double[::1] out_expm1):
    """``np.exp(x)`` and ``np.expm1(x)`` through the loops this module calls (for tests)."""
    with nogil:
        _ufunc(_exp_loop, _exp_data, &x[0], &out_exp[0], x.shape[0])
        _ufunc(_expm1_loop, _expm1_data, &x[0], &out_expm1[0], x.shape[0])


def keyed_uniform(const uint64_t[::1] keys, uint64_t salt, double[::1] out):
    """:func:`cascade.hazards.keyed_uniform` in C (for tests)."""
    cdef Py_ssize_t j
    with nogil:
        for j in range(keys.shape[0]):
            out[j] = _uniform(keys[j], salt)


# Fast decisions (exact): most elements are decided from two tables without Φ, Φ⁻¹, exp.
#
# ``_QL[k] <= Φ⁻¹(u) <= _QH[k + 1]`` for every u in [k/NQ, (k+1)/NQ) (scipy's ndtri at the
# grid points, widened by 1e-9 (1 + |q|) for its rounding), and likewise ``_TL``/``_TH`` for
# t(u) = ln(-ln(1 - u)).  In real arithmetic a normal part's element fails iff
# ``z > Φ⁻¹(u)`` (u < Φ(z)) and a repair part's iff ``ln RR > t(u) - ln(bf · d)``
# (u < 1 - exp(-bf · RR · d)).  z (ln RR) is bracketed without drawing ε: with c >= 0 and
# d > 0 every floating-point step of ``a + (ev·b + c·ε) / d`` is monotone in ε, so ε's cell
# gives [zlo, zhi] that holds the z the exact code computes.  An element is decided only when
# the bracket clears the threshold by ``_DELTA`` = 1e-6 in z, far more than the rounding of
# ndtr / exp / expm1 (relative errors ~1e-15; u is at least 1/NQ from 0 and 1 there);
# anything closer, in an edge cell, or not finite goes through the exact arithmetic of the
# numpy path.  Tested against that exact path (set_fast(False)) in tests/test_ensemble_compiled.py.
cdef enum:
    NQ = 2048
cdef double _DELTA = 1e-6
cdef double _QL[NQ + 1]
cdef double _QH[NQ + 1]
cdef double _TL[NQ + 1]
cdef double _TH[NQ + 1]
cdef bint _fast = True
cdef bint _fast_cascade = True
cdef bint _local_cascade = True


def _build_tables():
    cdef int k
    u = np.arange(NQ + 1) / NQ
    q = np.empty(NQ + 1)
    for k in range(NQ + 1):
        q[k] = ndtri(u[k])
    with np.errstate(divide="ignore"):
        t = np.log(-np.log1p(-u))
    q[0], q[NQ], t[0], t[NQ] = -np.inf, np.inf, -np.inf, np.inf
    for k in range(NQ + 1):
        _QL[k] = q[k] - 1e-9 * (1.0 + abs(q[k])) if np.isfinite(q[k]) else q[k]
        _QH[k] = q[k] + 1e-9 * (1.0 + abs(q[k])) if np.isfinite(q[k]) else q[k]
        _TL[k] = t[k] - 1e-9 * (1.0 + abs(t[k])) if np.isfinite(t[k]) else t[k]
        _TH[k] = t[k] + 1e-9 * (1.0 + abs(t[k])) if np.isfinite(t[k]) else t[k]


_build_tables()


def set_fast(bint on, bint cascade=True, bint local=True):
    """Use the table decisions (default) or the exact arithmetic for every element, the
    incremental cascades from the intact state (default) or runs from scratch, and in the
    incremental cascades the local rules (default) or whole-layer searches (tests)."""
    global _fast, _fast_cascade, _local_cascade
    _fast = on
    _fast_cascade = cascade
    _local_cascade = local


def part_checks(int mode, a, b, c, d, double bf):
    """Per element of a part: 1 where the table decisions may be used (finite inputs, c >= 0,
    d > 0; for repair parts bf > 0 and ln(bf · d) finite), and ln(bf · d) (repair parts)."""
    a_, b_, c_, d_ = np.asarray(a), np.asarray(b), np.asarray(c), np.asarray(d)
    ok = np.isfinite(a_) & np.isfinite(b_) & np.isfinite(c_) & np.isfinite(d_) & (c_ >= 0) & (d_ > 0)
    w = np.zeros(len(a_))
    if mode == 2:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            w = np.log(bf * d_) if len(d_) else w
        ok &= np.isfinite(w) & (bf > 0)
    return np.ascontiguousarray(ok, np.uint8), np.ascontiguousarray(w, np.float64)


cdef inline double _residual(bint has_eps, const double[:, ::1] eps, Py_ssize_t row, Py_ssize_t j,
                            bint has_nug, const double[::1] nug, const uint64_t[::1] keys,
                            uint64_t sg) noexcept nogil:
    """ε of element ``j``: keyed (Φ⁻¹ of the uniform of salt ``sg``), or the field's value,
    plus, where ``nug[j] >= 0``, its nugget times that keyed normal (GridField.draw's
    ``out += nugget * keyed normal``)."""
    cdef double e
    if not has_eps:
        return ndtri(_uniform(keys[j], sg))
    e = eps[row, j]
    if has_nug and nug[j] >= 0:
        e = e + nug[j] * ndtri(_uniform(keys[j], sg))
    return e


cdef Py_ssize_t _draw_part(
        int mode, const int64_t[::1] idx, const uint64_t[::1] keys, const double[::1] a,
        const double[::1] b, const double[::1] c, const double[::1] d, int s_fail, int s_gm,
        bint variability, bint has_eps, const double[:, ::1] eps, const double[::1] nug,
        Py_ssize_t row, double ev, double bf, bint grid, const uint64_t[:, ::1] salts,
        double[::1] tmp1, double[::1] tmp2, index_t[::1] out, Py_ssize_t n_out,
        const uint8_t[::1] ok, const double[::1] w, index_t[::1] amb_j, index_t[::1] amb_pos) noexcept nogil:
    """Append the part's failed elements of sample ``row`` to ``out`` (ascending idx order
    when ``idx`` ascends); return the new count."""
    cdef Py_ssize_t j, k = idx.shape[0], kf, kg, m = 0, r, wr, mi
    cdef uint64_t sf = salts[row, s_fail], sg = salts[row, s_gm]
    cdef double u, z, e, depth, zhi, t, lo, hi, elo, ehi
    cdef bint has_nug = nug.shape[0] > 0
    cdef int state   # 0 no, 1 fails, 2 exact arithmetic
    cdef bint fast = _fast and (ev - ev == 0)      # ev finite
    if mode == 0:
        for j in range(k):
            if _uniform(keys[j], sf) < a[j]:
                out[n_out] = <index_t>idx[j]
                n_out += 1
    elif mode == 1:
        for j in range(k):
            u = _uniform(keys[j], sf)
            state = 2
            if fast and ok[j]:
                kf = <Py_ssize_t>(u * NQ)
                if kf < NQ:
                    lo = _QL[kf] - _DELTA           # fails when z > hi, not when z < lo
                    hi = _QH[kf + 1] + _DELTA
                    if variability and (not has_eps or (has_nug and nug[j] >= 0)):
                        kg = <Py_ssize_t>(_uniform(keys[j], sg) * NQ)
                        if kg > 0 and kg < NQ - 1:
                            t = ev * b[j]
                            elo, ehi = _QL[kg], _QH[kg + 1]
                            if has_eps:             # a field plus its nugget's keyed normal
                                elo = eps[row, j] + nug[j] * elo
                                ehi = eps[row, j] + nug[j] * ehi
                            zhi = a[j] + (t + c[j] * ehi) / d[j]
                            if zhi < lo:
                                state = 0
                            elif a[j] + (t + c[j] * elo) / d[j] > hi:
                                state = 1
                    else:
                        z = a[j]
                        if variability:
                            z = z + (ev * b[j] + c[j] * eps[row, j]) / d[j]
                        if z < lo:
                            state = 0
                        elif z > hi:
                            state = 1
            if state == 2:
                z = a[j]
                if variability:
                    e = _residual(has_eps, eps, row, j, has_nug, nug, keys, sg)
                    z = z + (ev * b[j] + c[j] * e) / d[j]
                state = u < ndtr(z)
            if state:
                out[n_out] = <index_t>idx[j]
                n_out += 1
    elif mode == 2:
        for j in range(k):
            u = _uniform(keys[j], sf)
            state = 2
            if fast and ok[j]:
                kf = <Py_ssize_t>(u * NQ)
                if kf < NQ:
                    lo = (_TL[kf] - w[j]) - _DELTA   # breaks when ln RR > hi, not when < lo
                    hi = (_TH[kf + 1] - w[j]) + _DELTA
                    if variability and (not has_eps or (has_nug and nug[j] >= 0)):
                        kg = <Py_ssize_t>(_uniform(keys[j], sg) * NQ)
                        if kg > 0 and kg < NQ - 1:
                            t = ev * b[j]
                            elo, ehi = _QL[kg], _QH[kg + 1]
                            if has_eps:             # a field plus its nugget's keyed normal
                                elo = eps[row, j] + nug[j] * elo
                                ehi = eps[row, j] + nug[j] * ehi
                            zhi = a[j] + 2.25 * (t + c[j] * ehi)
                            if zhi < lo:
                                state = 0
                            elif a[j] + 2.25 * (t + c[j] * elo) > hi:
                                state = 1
                    else:
                        z = a[j]
                        if variability:
                            z = z + 2.25 * (ev * b[j] + c[j] * eps[row, j])
                        if z < lo:
                            state = 0
                        elif z > hi:
                            state = 1
            if state == 2:
                # The exact arithmetic, in a batch after the loop (numpy's exp / expm1 loops).
                z = a[j]
                if variability:
                    e = _residual(has_eps, eps, row, j, has_nug, nug, keys, sg)
                    z = z + 2.25 * (ev * b[j] + c[j] * e)
                tmp1[m] = z
                amb_j[m] = <index_t>j
                amb_pos[m] = <index_t>n_out
                m += 1
            if state:
                out[n_out] = <index_t>idx[j]
                n_out += 1
        if m:
            _ufunc(_exp_loop, _exp_data, &tmp1[0], &tmp2[0], m)
            for r in range(m):
                tmp1[r] = (-bf * tmp2[r]) * d[amb_j[r]]
            _ufunc(_expm1_loop, _expm1_data, &tmp1[0], &tmp2[0], m)
            # Keep the undecided elements that fail; the rest of out keeps its order.
            wr = amb_pos[0]
            mi = 0
            for r in range(amb_pos[0], n_out):
                if mi < m and r == amb_pos[mi]:
                    if _uniform(keys[amb_j[mi]], sf) < -tmp2[mi]:
                        out[wr] = out[r]
                        wr += 1
                    mi += 1
                else:
                    out[wr] = out[r]
                    wr += 1
            n_out = wr
    elif mode == 3:
        for j in range(k):
            depth = a[j] + ev
            if grid and not (a[j] > 0):
                depth = a[j]
            if depth > 0 and depth > b[j]:
                out[n_out] = <index_t>idx[j]
                n_out += 1
    return n_out


def run_block(
        # the hazard plan: a node part (n_*) and an edge part (e_*)
        int n_mode, const int64_t[::1] n_idx, const uint64_t[::1] n_keys, const double[::1] n_a,
        const double[::1] n_b, const double[::1] n_c, const double[::1] n_d, int n_sfail, int n_sgm,
        int e_mode, const int64_t[::1] e_idx, const uint64_t[::1] e_keys, const double[::1] e_a,
        const double[::1] e_b, const double[::1] e_c, const double[::1] e_d, int e_sfail, int e_sgm,
        bint variability, double bf, bint grid,
        # per sample of the block
        const uint64_t[:, ::1] salts, const double[::1] normal,
        bint n_has_eps, const double[:, ::1] n_eps, bint e_has_eps, const double[:, ::1] e_eps,
        const double[::1] n_nug, const double[::1] e_nug,
        # the compiled system and a workspace (cascade.compiled.Workspace)
        const index_t[::1] adj_ptr, const index_t[::1] adj_nbr, const index_t[::1] adj_edge,
        const uint8_t[::1] adj_fwd, const index_t[::1] layer_ptr, const index_t[::1] layer_nodes,
        const int32_t[::1] node_layer, const uint8_t[::1] layer_rule, const uint8_t[::1] is_source,
        const index_t[::1] grp_ptr, const index_t[::1] sup_ptr, const index_t[::1] rdep_ptr,
        const index_t[::1] rdep_grp, const index_t[::1] group_owner, const uint8_t[::1] group_held,
        const index_t[::1] edge_src, uint8_t[::1] edge_failed,
        uint8_t[::1] working, int32_t[::1] fail_round, uint8_t[::1] cause, index_t[::1] via_group,
        index_t[::1] alive, index_t[::1] changed, index_t[::1] queue, index_t[::1] comp,
        uint8_t[::1] layer_dirty,
        # buffers: failed node and edge indices, two scratch rows, per-layer accumulators
        index_t[::1] init_nodes, index_t[::1] init_edges, double[::1] tmp1, double[::1] tmp2,
        double[::1] acc_demand, int64_t[::1] acc_count,
        # the loss tally
        const double[::1] demand, const double[::1] layer_demand, const double[::1] layer_count,
        const uint8_t[::1] baseline,
        double[:, ::1] service, int32_t[::1] failed, int32_t[::1] direct, int32_t[:, ::1] n_direct,
        # the local rules (_core._cascade_incr): the intact state's supply forest and per-arc
        # flags (shared, read-only), a private copy of the flags and the region's scratch
        const index_t[::1] edge_dst, const uint8_t[::1] arc0, const index_t[::1] edge_arc,
        const index_t[::1] child_ptr, const index_t[::1] child_idx, const index_t[::1] par_edge,
        const index_t[::1] layer_root, const index_t[::1] layer_size,
        uint8_t[::1] arc, uint8_t[::1] aff, index_t[::1] aff_list, index_t[::1] cursor,
        index_t[::1] reg_n):
    """Run every sample of a block (see the module docstring); return the last sample's
    number of failed nodes (``changed[:returned]``).  ``edge_failed`` must be all 0 on entry
    and is all 0 on return; ``arc`` must equal ``arc0`` and ``aff`` be all 0 on entry, and
    they are on return.

    The incremental cascades use the local rules of ``_core._cascade_incr`` (cost of a sample
    follows its damage, not the layer's size): ``child_ptr`` / ``child_idx`` / ``par_edge``
    the supply forest of the intact system (``_core.supply_forest``), ``layer_root`` /
    ``layer_size`` each layer's first node and size, ``arc0`` the intact system's per-arc
    flags (``_core.arc_flags``) and ``edge_arc`` the two arcs of each edge (``_core.edge_arcs``).
    """
    cdef Py_ssize_t B = salts.shape[0], L = layer_demand.shape[0]
    cdef Py_ssize_t row, i, nn, ne, l
    cdef index_t v, n_changed = 0
    cdef double served, count
    cdef const uint8_t[::1] n_ok, e_ok
    cdef const double[::1] n_w, e_w
    cdef index_t[::1] amb_j, amb_pos
    cdef bint incremental, local
    cdef index_t j, e
    n_ok, n_w = part_checks(n_mode, n_a, n_b, n_c, n_d, bf)
    e_ok, e_w = part_checks(e_mode, e_a, e_b, e_c, e_d, bf)
    amb_j = np.empty(max(n_idx.shape[0], e_idx.shape[0], 1), np.asarray(init_nodes).dtype)
    amb_pos = np.empty_like(amb_j)
    with nogil:
        # The intact system from scratch: when every node works there, each sample's cascade
        # runs incrementally from that state (only the layers its failures touch are
        # searched; round 1 of a run from scratch finds nothing in the others, so the same
        # failures in the same order) and is undone after its tally.
        n_changed = _cascade(adj_ptr, adj_nbr, adj_edge, adj_fwd, layer_ptr, layer_nodes,
                             node_layer, layer_rule, is_source, grp_ptr, sup_ptr, rdep_ptr,
                             rdep_grp, group_owner, group_held, edge_src,
                             init_nodes[:0], init_edges[:0], edge_failed,
                             working, fail_round, cause, via_group, alive, changed, queue,
                             comp, layer_dirty, False)
        incremental = n_changed == 0 and _fast_cascade
        local = incremental and _local_cascade and arc.shape[0] == adj_nbr.shape[0]
        for row in range(B):
            nn = _draw_part(n_mode, n_idx, n_keys, n_a, n_b, n_c, n_d, n_sfail, n_sgm, variability,
                            n_has_eps, n_eps, n_nug, row, normal[row], bf, grid, salts, tmp1, tmp2,
                            init_nodes, 0, n_ok, n_w, amb_j, amb_pos)
            ne = _draw_part(e_mode, e_idx, e_keys, e_a, e_b, e_c, e_d, e_sfail, e_sgm, variability,
                            e_has_eps, e_eps, e_nug, row, normal[row], bf, grid, salts, tmp1, tmp2,
                            init_edges, 0, e_ok, e_w, amb_j, amb_pos)
            for i in range(ne):
                e = init_edges[i]
                edge_failed[e] = 1
                if local:
                    arc[edge_arc[2 * e]] = 0
                    arc[edge_arc[2 * e + 1]] = 0
            if local:
                n_changed = _cascade_incr(adj_ptr, adj_nbr, adj_edge, adj_fwd, arc, layer_ptr, layer_nodes,
                                          node_layer, layer_rule, is_source, grp_ptr, rdep_ptr,
                                          rdep_grp, group_owner, group_held, edge_src, edge_dst,
                                          init_nodes[:nn], init_edges[:ne], edge_failed,
                                          working, fail_round, cause, via_group, alive, changed,
                                          queue, comp, layer_dirty, child_ptr, child_idx, par_edge,
                                          aff, aff_list, cursor, reg_n, layer_root, layer_size)
            else:
                n_changed = _cascade(adj_ptr, adj_nbr, adj_edge, adj_fwd, layer_ptr, layer_nodes,
                                     node_layer, layer_rule, is_source, grp_ptr, sup_ptr, rdep_ptr,
                                     rdep_grp, group_owner, group_held, edge_src,
                                     init_nodes[:nn], init_edges[:ne], edge_failed,
                                     working, fail_round, cause, via_group, alive, changed, queue,
                                     comp, layer_dirty, incremental)
            for i in range(ne):
                e = init_edges[i]
                edge_failed[e] = 0
                if local:
                    arc[edge_arc[2 * e]] = arc0[edge_arc[2 * e]]
                    arc[edge_arc[2 * e + 1]] = arc0[edge_arc[2 * e + 1]]
            # The loss tally of ensemble._service_lost: sums in the order nodes failed.
            for l in range(L):
                acc_demand[l] = 0.0
                acc_count[l] = 0
            for i in range(n_changed):
                v = changed[i]
                l = node_layer[v]
                acc_demand[l] += demand[v]
                acc_count[l] += 1
                failed[v] += baseline[v]
            for l in range(L):
                served = layer_demand[l] - acc_demand[l]
                count = layer_count[l] - <double>acc_count[l]
                if layer_demand[l] > 0:
                    service[row, l] = served / layer_demand[l]
                else:
                    service[row, l] = count / (layer_count[l] if layer_count[l] > 0 else 1.0)
            for i in range(nn):
                direct[init_nodes[i]] += baseline[init_nodes[i]]
            n_direct[row, 0] = <int32_t>nn
            n_direct[row, 1] = <int32_t>ne
            if incremental and row < B - 1:
                # Back to the intact state (the last sample's stays, as a run from scratch leaves it).
                _undo(rdep_ptr, rdep_grp, working, fail_round, cause, via_group, alive, changed,
                      n_changed)
    return n_changed
