"""Optimal restoration as a time-indexed mixed-integer program, solved with HiGHS (``highspy``).

The program (González et al. 2016's time-indexed INDP)
------------------------------------------------------
Time is cut in periods of ``P`` hours, t = 0 .. T-1.  A failed element i takes
``d_i = ceil((repair_time_i + travel_i) / P)`` periods of one crew (travel_i: see below, 0
without depots).  Binary ``st[i,t]`` = "the repair of i has started by period t" (monotone in
t, 1 at T - d_i); i works again from period t when ``st[i, t - d_i] = 1``.

* **Crews**: in every period, the repairs under way in layer L, ``sum_i (st[i,t] - st[i,t-d_i])``,
  use at most ``C_L + y[L,t]`` crews, with ``sum_L y[L,t] <= pool`` (the shared crews).
* **Nodes**: only nodes that work once everything is repaired but not with every failure in
  place (backups exhausted) can change; they get a binary ``x[v,t]`` (works in period t).  A
  damaged node works only once repaired; a node works only while each of its dependency
  groups has a working supplier, except in the periods that lie wholly inside the group's
  backup (``delay`` hours from the event: a backup drains from the event until its suppliers
  come back, and in a recovery where service only grows they never leave again).
* **Connectivity** of a ``source`` layer: single-commodity flow per period from a super source
  (joined to the layer's working sources and to every node that works whatever is repaired),
  every working node consuming one unit; an arc carries flow (at most M = the layer's
  variable nodes) only while both ends work and its edge is repaired; directed edges one way.
  A ``giant`` layer is treated the same way with the nodes of its giant right after the event
  (that stay in it when everything is repaired) as the sources (a fixed root component; when
  there are none, its best-connected node of the intact giant is the root).  ``none``: no
  constraint.  Leaves (a node with one edge, no damage, no dependency in or out) are folded
  into their neighbour (they work exactly when it does).
* **Flow layers** (``flow``, ``dcflow``): nodes work by the connectivity above (``source``-like;
  capacity-0 edges unusable, ``dcflow`` edges both ways).  Each flow layer with demand adds,
  per period, a transport problem: g[v,t] <= supply_v (generation), f[a,t] <= capacity on
  both directions of an edge (one for a directed ``flow`` pipe), s[v,t] <= demand_v, all gated
  by x of the ends and by the edge's repair, conservation g + in - out = s at every node.  Its
  nodes weigh in the objective by s / demand (relative to the intact state's served fraction)
  instead of x.  A dependency row with a threshold counts a supplier of such a layer through a
  binary z <= x with threshold * demand * z <= s.  Exact for ``flow`` layers without priority
  classes or thresholds (the simulation's max-min fair allocation totals the maximum flow);
  ``dcflow`` gets this transport relaxation (no Kirchhoff voltage law, no trips: optimistic).
  The greedy schedule's value is found by solving with its starts fixed, then used as cutoff.
* **Objective**: ``sum_t P * sum_L a_L (1 - service_L(t))``, ``a_L`` the layer's share of Q's
  weight (its demand over the total), i.e. the resilience loss of the discretised schedule
  in hours, plus ``cost_weight`` times the repair-cost-weighted mean completion time (hours).
* **Roads** (depots given): ``travel_i`` is the shortest drive from the nearest depot over the
  roads as if intact; i may start only after the damaged roads on that path are repaired
  (an estimate: real crews drive from their last job; the replay is exact).

Exact (same optimum as the event simulation) for ``source`` and ``none`` layers without
backups or roads, when every repair time is a multiple of P and the best schedule ends
within the horizon; elsewhere an approximation whose schedule is replayed exactly.
"""
from __future__ import annotations

import math
import time as _time

import numpy as np

from .errors import InputError

DEFAULT_TIME_LIMIT = 60.0
#: Seconds HiGHS may overrun its time limit before its answer is given up (see solve).
GRACE = 10.0
#: Constants standing where a column index would: a term fixed at 0, or at 1.
ZERO, ONE = -1, -2


def _is_const(col) -> bool:
    return col < 0


def _value(col) -> int:
    return 1 if col == ONE else 0


class _Model:
    """Columns and rows collected in arrays, then passed to HiGHS at once."""

    def __init__(self):
        self.lb, self.ub, self.cost, self.integer = [], [], [], []
        self.n = 0
        self.r_lb, self.r_ub = [], []
        self.rows, self.cols, self.vals = [], [], []
        self.m = 0
        self.offset = 0.0

    def var(self, count: int, lb=0.0, ub=1.0, cost=0.0, integer=False) -> np.ndarray:
        idx = np.arange(self.n, self.n + count)
        self.lb.append(np.broadcast_to(np.asarray(lb, float), (count,)))
        self.ub.append(np.broadcast_to(np.asarray(ub, float), (count,)))
        self.cost.append(np.broadcast_to(np.asarray(cost, float), (count,)))
        self.integer.append(np.full(count, bool(integer)))
        self.n += count
        return idx

    def row(self, cols, vals, lb=-math.inf, ub=math.inf) -> None:
        cols = np.asarray(cols, np.int64)
        if cols.size == 0:
            return
        self.rows.append(np.full(cols.size, self.m))
        self.cols.append(cols)
        self.vals.append(np.broadcast_to(np.asarray(vals, float), cols.shape))
        self.r_lb.append(lb)
        self.r_ub.append(ub)
        self.m += 1

    def highs(self, threads: int | None = None):
        import highspy
        from scipy.sparse import csc_matrix

        h = _new_highs()
        lp = highspy.HighsLp()
        lp.num_col_ = self.n
        lp.num_row_ = self.m
        lp.offset_ = float(self.offset)
        lp.col_cost_ = np.concatenate(self.cost) if self.cost else np.zeros(0)
        lp.col_lower_ = np.concatenate(self.lb) if self.lb else np.zeros(0)
        lp.col_upper_ = np.concatenate(self.ub) if self.ub else np.zeros(0)
        lp.row_lower_ = np.array(self.r_lb, float)
        lp.row_upper_ = np.array(self.r_ub, float)
        if self.rows:
            a = csc_matrix((np.concatenate(self.vals), (np.concatenate(self.rows),
                                                        np.concatenate(self.cols))),
                           shape=(self.m, self.n))
        else:
            a = csc_matrix((self.m, self.n))
        a.sum_duplicates()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        lp.a_matrix_.num_col_ = self.n
        lp.a_matrix_.num_row_ = self.m
        integer = np.concatenate(self.integer) if self.integer else np.zeros(0, bool)
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous
                           for b in integer]
        h.passModel(lp)
        if threads:
            h.setOptionValue("threads", int(threads))
        return h


def _new_highs():
    """A silent Highs instance (its first construction prints a banner on file descriptor 1,
    which would land in our JSON)."""
    import os
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
            h.setOptionValue("output_flag", bool(os.environ.get("CASCADE_HIGHS_LOG")))
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


def default_period(repair_time: np.ndarray) -> float:
    """The median repair time of the failed elements (hours), at least a minute."""
    return max(float(np.median(repair_time)), 1.0 / 60.0) if len(repair_time) else 1.0


def _road_estimates(p):
    """Travel estimate (hours) of each failed element from its nearest depot over the roads as
    if intact, and the damaged road elements on that path (its precedences)."""
    roads = p.roads
    k = p.k
    travel = np.zeros(k)
    before = [[] for _ in range(k)]
    if roads is None or k == 0:
        return travel, before
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    n = roads.n
    g = csr_matrix((roads.arc_hours + 1e-12, (roads.arc_tail, roads.arc_head)), shape=(n, n))
    depots = np.unique(roads.base)
    dist, pred = dijkstra(g, directed=True, indices=depots, return_predecessors=True)
    # Which failed element blocks each arc's edge and each node.
    edge_elem = np.full(len(roads.edges), -1, np.int64)
    node_elem = np.full(n, -1, np.int64)
    for i in np.flatnonzero(roads.road_elem):
        if roads.block_edge[i] >= 0:
            edge_elem[roads.block_edge[i]] = i
        else:
            node_elem[roads.block_node[i]] = i
    # Edge between two nodes (cheapest), for walking the predecessor chains.
    arc_of = {}
    for a in np.argsort(-roads.arc_hours):
        arc_of[(int(roads.arc_tail[a]), int(roads.arc_head[a]))] = int(roads.arc_edge[a])
    for i in range(k):
        acc = roads.access[i]
        d = dist[:, acc]                               # (depots, 2)
        j = np.unravel_index(np.argmin(d), d.shape)
        if not np.isfinite(d[j]):
            continue
        travel[i] = round(float(d[j]), 9)
        row, v = j[0], int(acc[j[1]])
        blocks = set()
        while pred[row, v] >= 0:
            u = int(pred[row, v])
            e = edge_elem[arc_of[(u, v)]]
            if e >= 0:
                blocks.add(int(e))
            if node_elem[u] >= 0:
                blocks.add(int(node_elem[u]))
            v = u
        blocks.discard(i)
        before[i] = sorted(blocks)
    return travel, before


def _list_schedule(order, dur, elem_layer, layer_crews, pool, before, horizon):
    """Start periods of a serial list schedule in ``order`` (each element at the earliest
    period where its precedences are done and a crew of its layer, else of the pool, is free
    for its whole repair); None if it does not fit in ``horizon``."""
    n_layers = len(layer_crews)
    span = 2 * int(dur.sum()) + 2
    busy = np.zeros((n_layers, span), np.int64)
    busy_pool = np.zeros(span, np.int64)
    start = np.full(len(dur), -1, np.int64)
    for i in order:
        L, d = int(elem_layer[i]), int(dur[i])
        t = max([start[r] + dur[r] for r in before[i]] + [0])
        while True:
            own = np.all(busy[L, t:t + d] < layer_crews[L])
            shared = np.all(busy_pool[t:t + d] < pool)
            if own or shared:
                break
            t += 1
        if own:
            busy[L, t:t + d] += 1
        else:
            busy_pool[t:t + d] += 1
        start[i] = t
    if (start + dur).max(initial=0) > horizon:
        return None
    return start


def _combine(highs_bound: float, comb: float | None, objective: float) -> tuple[float, str | None]:
    """The larger of HiGHS's bound and the combinatorial one (both valid lower bounds of the
    program), never above the objective; and which one holds ("highs", "combinatorial",
    None when neither is known)."""
    h = highs_bound if highs_bound is not None and not math.isnan(highs_bound) else -math.inf
    c = comb if comb is not None else -math.inf
    if h == -math.inf and c == -math.inf:
        return -math.inf, None
    bound, source = (h, "highs") if h >= c else (c, "combinatorial")
    if objective < math.inf and bound > objective:
        bound = objective
    return float(bound), source


def _gap(objective: float, bound: float) -> float:
    """(objective - bound) / objective, 0 within rounding, infinity when either is unknown."""
    if not (objective < math.inf and bound > -math.inf):
        return math.inf
    if abs(objective - bound) <= 1e-7 * max(1.0, abs(objective)):
        return 0.0
    return float(max((objective - bound) / max(abs(objective), 1e-9), 0.0))


def solve(p, warm_order: np.ndarray | None, period: float | None = None,
          time_limit: float = DEFAULT_TIME_LIMIT, gap: float = 0.0, cost_weight: float = 0.0,
          threads: int | None = None):
    """Build and solve the program for the recovery problem ``p`` (``recovery._Problem``).

    Returns
    -------
    order : ndarray of int64
        The elements by MILP start period (ties: the warm start's order), a priority list for
        the event simulation.
    info : dict
        ``period`` (h), ``horizon`` (periods), ``objective`` and ``bound`` (hours of the
        discretised loss, plus the cost term), ``gap`` (relative, the MIP's proven gap),
        ``status``, ``optimal`` (a proof within ``gap``), ``solve_time`` (s), ``warm_start``
        (objective of the greedy schedule in the program, or None), sizes.
    """
    from .compiled import FLOW_CODES
    from .recovery import workspace

    try:
        import highspy  # noqa: F401
    except ImportError:
        raise InputError("the milp strategy needs HiGHS: pip install 'cascade-lifelines[milp]' "
                         "(highspy)") from None
    if period is None:
        period = default_period(p.repair_time)
    if not (period > 0 and math.isfinite(period)):
        raise InputError(f"--period must be a positive number of hours, not {period}")
    if not (time_limit > 0):
        raise InputError(f"--time-limit must be positive, not {time_limit}")
    if not (0 <= gap < 1):
        raise InputError(f"--gap must be a fraction in [0, 1), not {gap}")
    if cost_weight < 0:
        raise InputError(f"--cost-weight must be >= 0, not {cost_weight}")
    c = p.compiled
    k = p.k
    n_layers = len(c.layer_names)
    crews = p.crews
    layer_crews = np.array([crews.get(name, 0) for name in c.layer_names], np.int64)
    pool = int(crews.get("pool", 0))
    travel, before = _road_estimates(p)
    dur = np.maximum(1, np.ceil((p.repair_time + travel) / period - 1e-9)).astype(np.int64)

    # Horizon: no non-idling schedule ends later (for layer L: while a job of L waits, every
    # crew of L and of the pool works), plus the road repairs a job may wait for.
    horizon = 1
    for L in range(n_layers):
        mine = p.layer == L
        if not mine.any():
            continue
        work = int(dur[mine].sum() + (dur[~mine].sum() if pool else 0))
        # The last job j of L starts once the others are done or under way: at most
        # floor((work - d_j) / crews), and ends d_j later (Graham's list-scheduling bound).
        d = dur[mine]
        horizon = max(horizon, int(((work - d) // (layer_crews[L] + pool) + d).max()))
    if p.roads is not None:
        horizon += int(dur[p.roads.road_elem].sum())
    warm_start = None
    if warm_order is not None:
        warm_start = _list_schedule(np.asarray(warm_order), dur, p.layer, layer_crews, pool, before,
                                    10 ** 9)
        horizon = max(horizon, int((warm_start + dur).max(initial=0)))
    T = horizon

    # ---- which nodes can change
    ws = workspace(c)
    ws.group_held[:] = 0
    p.run_waiting(ws, np.ones(k, bool))
    w_min = ws.working.astype(bool)
    ws.run()
    w_final = ws.working.astype(bool)
    share_final = np.asarray(p.share(ws), float).copy()
    # The combinatorial bound (cascade.milp_bound) of the program and of the simulation.
    from .milp_bound import applies, loss_bound

    comb_prog = loss_bound(p, dur, layer_crews, pool,
                           float(p.weight @ w_final) / (p.total if p.total > 0 else 1.0),
                           integer=True, horizon=T)
    if comb_prog is not None:
        comb_prog *= float(period)
    sim_crews = np.bincount(p.crew_layer[p.crew_layer >= 0], minlength=n_layers)
    comb_sim = loss_bound(p, p.repair_time, sim_crews, int((p.crew_layer < 0).sum()), p.q0)
    comb_info = {"combinatorial_bound": comb_prog, "loss_bound": comb_sim,
                 "bound_note": applies(p)}
    rule = c.layer_rule[c.node_layer]
    # Flow layers with demand: served amounts are variables (see "Flow layers" above).
    flow_layer = np.isin(c.layer_rule, FLOW_CODES)
    layer_demand = np.bincount(c.node_layer, weights=c.demand, minlength=n_layers)
    amount_layer = flow_layer & (layer_demand > 0)
    amount_node = amount_layer[c.node_layer]
    damaged_elem = np.full(c.n_nodes, -1, np.int64)
    damaged_elem[p.elem[p.is_node]] = np.flatnonzero(p.is_node)
    edge_elem = np.full(c.n_edges, -1, np.int64)
    edge_elem[p.elem[~p.is_node]] = np.flatnonzero(~p.is_node)
    const_on = w_min & w_final
    var = w_final & ~w_min
    roots = np.zeros(c.n_nodes, bool)
    roots[(c.is_source == 1) & var] = True
    for L in np.flatnonzero(c.layer_rule == 2):
        in_l = c.node_layer == L
        if not (const_on & in_l).any():
            cand = np.flatnonzero(in_l & var)
            if cand.size:
                deg = np.bincount(np.concatenate([c.edge_src, c.edge_dst]), minlength=c.n_nodes)
                roots[cand[np.argmax(deg[cand])]] = True
    roots &= (rule != 0)
    # Folding leaves: weight moves to the neighbour.
    weight = p.weight.astype(float).copy()
    has_group = np.zeros(c.n_nodes, bool)
    has_group[c.group_owner] = True
    supplies = np.zeros(c.n_nodes, bool)
    supplies[c.sup_idx] = True
    alive = var.copy()
    usable_edge = var[c.edge_src] & var[c.edge_dst]
    fold_to = np.arange(c.n_nodes)
    while True:
        deg = np.bincount(np.concatenate([c.edge_src[usable_edge], c.edge_dst[usable_edge]]),
                          minlength=c.n_nodes)
        touch_const = np.zeros(c.n_nodes, bool)
        ce = (const_on[c.edge_src] & var[c.edge_dst]) | (const_on[c.edge_dst] & var[c.edge_src])
        touch_const[c.edge_src[ce]] = True
        touch_const[c.edge_dst[ce]] = True
        leaf = alive & (deg == 1) & (damaged_elem < 0) & ~has_group & ~supplies & ~roots \
            & (rule != 0) & ~touch_const & ~flow_layer[c.node_layer]
        cand_edges = np.flatnonzero(usable_edge & (leaf[c.edge_src] ^ leaf[c.edge_dst])
                                    & (edge_elem < 0) & (c.edge_directed == 0))
        if not cand_edges.size:
            break
        a, b = c.edge_src[cand_edges], c.edge_dst[cand_edges]
        leaf_end = np.where(leaf[a], a, b)
        other = np.where(leaf[a], b, a)
        leaf_end, first = np.unique(leaf_end, return_index=True)
        other = other[first]
        for v, u in zip(leaf_end.tolist(), other.tolist()):
            if not alive[v] or not alive[u]:
                continue
            weight[u] += weight[v]
            weight[v] = 0.0
            alive[v] = False
            fold_to[v] = u
        usable_edge = alive[c.edge_src] & alive[c.edge_dst]

    nodes = np.flatnonzero(alive)
    xcol = np.full(c.n_nodes, -1, np.int64)
    m = _Model()
    total = p.total if p.total > 0 else 1.0
    # st[i, t]: started by period t (t < T - d_i are variables; later: fixed 1).
    st_first = np.zeros(k, np.int64)
    for i in range(k):
        cw = 0.0
        if cost_weight > 0 and p.repair_cost.sum() > 0:
            cw = cost_weight * period * p.repair_cost[i] / p.repair_cost.sum()
        # Completion (periods) = d_i + sum_t (1 - st[i,t]): each st[i,t] = 1 saves a period.
        st_first[i] = m.var(T - dur[i], 0, 1, -cw, True)[0] if T - dur[i] > 0 else m.n

    def st(i, t):
        """Column of st[i,t] or a constant 0/1."""
        if t < 0:
            return ZERO
        if t >= T - dur[i]:
            return ONE
        return int(st_first[i] + t)

    x_first = m.var(len(nodes) * T, 0, 1, 0.0, True)[0] if len(nodes) else 0
    xcol[nodes] = x_first + np.arange(len(nodes)) * T
    # Loss = sum_t period * sum_v weight_v (1 - x[v,t]) / total: a constant minus the x terms.
    # In a flow layer with demand the served amounts carry the weight instead (below).
    xweight = np.where(amount_node, 0.0, weight)
    if len(nodes):
        m.cost[-1] = np.repeat(-period * xweight[nodes] / total, T)
    obj_const = period * T * xweight[nodes].sum() / total
    # Served amounts s[v,t] (0..demand) of the nodes of flow layers with demand that work once
    # everything is repaired; loss = period * weight_v * (share_final_v - s[v,t] / d_v) / total.
    served_nodes = np.flatnonzero(amount_node & w_final & (c.demand > 0))
    scol = np.full(c.n_nodes, -1, np.int64)
    if served_nodes.size:
        first = m.var(len(served_nodes) * T, 0, np.repeat(c.demand[served_nodes], T),
                      np.repeat(-period * weight[served_nodes] / (c.demand[served_nodes] * total), T))[0]
        scol[served_nodes] = first + np.arange(len(served_nodes)) * T
        obj_const += period * T * float(weight[served_nodes] @ share_final[served_nodes]) / total

    def x(v, t):
        if const_on[v]:
            return ONE
        if not alive[v]:
            return ZERO if not var[v] else x(fold_to[v], t)
        return int(xcol[v] + t)

    fixed_rows = {"ub0": []}
    # monotone starts, precedences
    for i in range(k):
        for t in range(1, T - dur[i]):
            m.row([st(i, t), st(i, t - 1)], [1, -1], 0)
        for r in before[i]:
            for t in range(T - dur[i]):
                dep = st(r, t - dur[r])
                if dep == ONE:
                    continue
                if dep == ZERO:
                    fixed_rows["ub0"].append(st(i, t))
                else:
                    m.row([st(i, t), dep], [1, -1], ub=0)
    # crews
    y = None
    if pool:
        y = m.var(n_layers * T, 0, pool)
    for t in range(T):
        for L in range(n_layers):
            mine = np.flatnonzero(p.layer == L)
            if not mine.size:
                continue
            cc, vv, const = [], [], 0.0
            for i in mine:
                for col, sign in ((st(i, t), 1), (st(i, t - dur[i]), -1)):
                    if _is_const(col):
                        const += sign * _value(col)
                    else:
                        cc.append(col)
                        vv.append(sign)
            if y is not None:
                cc.append(int(y[L * T + t]))
                vv.append(-1)
            m.row(cc, vv, ub=layer_crews[L] - const)
        if y is not None:
            m.row(y[np.arange(n_layers) * T + t], 1, ub=pool)

    def le_sum(v, t, terms):
        """x(v,t) <= sum of terms (columns or constants)."""
        xv = x(v, t)
        if _is_const(xv):
            return
        cols, const = [], 0
        for col in terms:
            if _is_const(col):
                const += _value(col)
            else:
                cols.append(col)
        if const >= 1:
            return
        if not cols:
            fixed_rows["ub0"].append(xv)
            return
        m.row([xv] + cols, [1] + [-1] * len(cols), ub=0)

    held_periods = np.floor(p.remaining0 / period + 1e-9).astype(np.int64)
    group_of = [[] for _ in range(c.n_nodes)]
    for g in range(c.n_groups):
        group_of[c.group_owner[g]].append(g)
    def counts(s_node, entry, t):
        """The column that says supplier s_node counts for a dependency row in period t: x, or
        for a node of a flow layer with demand and a threshold, a binary z <= x with
        threshold * demand * z <= s (its served amount)."""
        xs = x(s_node, t)
        th = float(c.sup_threshold[entry])
        if scol[s_node] < 0 or th <= 1e-9 or xs == ZERO:
            return xs
        z = int(m.var(1, 0, 1, 0.0, True)[0])
        if xs != ONE:
            m.row([z, xs], [1, -1], ub=0)
        m.row([z, int(scol[s_node] + t)], [th * (1 - 1e-9) * c.demand[s_node], -1], ub=0)
        return z

    for v in nodes:
        for t in range(T):
            i = damaged_elem[v]
            if i >= 0:
                le_sum(v, t, [st(i, t - dur[i])])
            for g in group_of[v]:
                if t < held_periods[g]:
                    continue
                lo, hi = int(c.sup_ptr[g]), int(c.sup_ptr[g + 1])
                le_sum(v, t, [counts(int(c.sup_idx[j]), j, t) for j in range(lo, hi)
                              if var[c.sup_idx[j]] or const_on[c.sup_idx[j]]])
    # flows
    n_arcs = 0
    layer_arcs = []
    for L in range(n_layers):
        if c.layer_rule[L] == 0:
            continue
        in_l = alive & (c.node_layer == L)
        vs = np.flatnonzero(in_l)
        if not vs.size:
            continue
        big = float(len(vs))
        arcs = []           # (tail or -1 for super source, head, edge element or -1)
        for v in vs[roots[vs]]:
            arcs.append((-1, int(v), -1))
        for e in np.flatnonzero(c.node_layer[c.edge_src] == L):
            if flow_layer[L] and not c.edge_capacity[e] > 0:
                continue                      # capacity 0: unusable in a flow layer
            a, b = int(c.edge_src[e]), int(c.edge_dst[e])
            one_way = c.edge_directed[e] and c.layer_rule[L] != 4     # dcflow ignores directed
            dirs = [(a, b)] if one_way else [(a, b), (b, a)]
            for u, w in dirs:
                if not alive[w]:
                    continue
                if alive[u]:
                    arcs.append((u, w, int(edge_elem[e])))
                elif const_on[u]:
                    arcs.append((-1, w, int(edge_elem[e])))
        if not arcs:
            for v in vs:
                for t in range(T):
                    fixed_rows["ub0"].append(x(v, t))
            continue
        n_arcs += len(arcs)
        layer_arcs.append((vs, arcs))
        f0 = m.var(len(arcs) * T, 0, big)[0]
        inflow = {int(v): [] for v in vs}
        outflow = {int(v): [] for v in vs}
        for j, (u, w, e) in enumerate(arcs):
            inflow[w].append(j)
            if u >= 0:
                outflow[u].append(j)
        for t in range(T):
            for j, (u, w, e) in enumerate(arcs):
                f = f0 + j * T + t
                m.row([f, x(w, t)], [1, -big], ub=0)
                if u >= 0:
                    m.row([f, x(u, t)], [1, -big], ub=0)
                if e >= 0:
                    done = st(e, t - dur[e])
                    if done == ZERO:
                        fixed_rows["ub0"].append(f)
                    elif done != ONE:
                        m.row([f, done], [1, -big], ub=0)
            for v in vs:
                v = int(v)
                cols = [f0 + j * T + t for j in inflow[v]] + [f0 + j * T + t for j in outflow[v]]
                vals = [1] * len(inflow[v]) + [-1] * len(outflow[v])
                m.row(cols + [x(v, t)], vals + [-1], lb=0)
    # served amounts: per flow layer with demand and period, a transport problem (capacities
    # and supplies; no Kirchhoff voltage law in dcflow layers, no trips: a relaxation).
    for L in np.flatnonzero(amount_layer):
        vs = np.flatnonzero((c.node_layer == L) & w_final)
        if not vs.size:
            continue
        cap_total = float(c.supply[vs].sum())
        arcs = []
        if cap_total > 0:
            for e in np.flatnonzero(c.node_layer[c.edge_src] == L):
                a, b = int(c.edge_src[e]), int(c.edge_dst[e])
                if not (c.edge_capacity[e] > 0 and w_final[a] and w_final[b]) or a == b:
                    continue
                cap = min(float(c.edge_capacity[e]), cap_total)
                one_way = c.edge_directed[e] and c.layer_rule[L] == 3
                for u, w in ([(a, b)] if one_way else [(a, b), (b, a)]):
                    arcs.append((u, w, int(edge_elem[e]), cap))
        n_arcs += len(arcs)
        f0 = m.var(len(arcs) * T, 0, np.repeat([a[3] for a in arcs], T))[0] if arcs else 0
        gens = vs[c.supply[vs] > 0]
        g0 = m.var(len(gens) * T, 0, np.repeat(c.supply[gens], T))[0] if gens.size else 0
        gcol = {int(v): g0 + j * T for j, v in enumerate(gens)}
        inflow = {int(v): [] for v in vs}
        outflow = {int(v): [] for v in vs}
        for j, (u, w, e, cap) in enumerate(arcs):
            inflow[w].append(j)
            outflow[u].append(j)

        def gate(col, bound, v, t):
            """col <= bound * x(v, t)."""
            xv = x(v, t)
            if xv == ZERO:
                fixed_rows["ub0"].append(col)
            elif xv != ONE:
                m.row([col, xv], [1, -bound], ub=0)

        for t in range(T):
            for j, (u, w, e, cap) in enumerate(arcs):
                f = f0 + j * T + t
                gate(f, cap, u, t)
                gate(f, cap, w, t)
                if e >= 0:
                    done = st(e, t - dur[e])
                    if done == ZERO:
                        fixed_rows["ub0"].append(f)
                    elif done != ONE:
                        m.row([f, done], [1, -cap], ub=0)
            for v in vs:
                v = int(v)
                cols = [f0 + j * T + t for j in inflow[v]] + [f0 + j * T + t for j in outflow[v]]
                vals = [1.0] * len(inflow[v]) + [-1.0] * len(outflow[v])
                if v in gcol:
                    gate(gcol[v] + t, float(c.supply[v]), v, t)
                    cols.append(gcol[v] + t)
                    vals.append(1.0)
                if scol[v] >= 0:
                    gate(int(scol[v] + t), float(c.demand[v]), v, t)
                    cols.append(int(scol[v] + t))
                    vals.append(-1.0)
                m.row(cols, vals, lb=0, ub=0)
    # columns fixed to 0
    ub0_set = set(int(col) for col in fixed_rows["ub0"] if not _is_const(col))
    ub = np.concatenate(m.ub).copy()
    for col in fixed_rows["ub0"]:
        if not _is_const(col):
            ub[col] = 0.0
    m.ub = [ub]
    cost_const = 0.0
    if cost_weight > 0 and p.repair_cost.sum() > 0:     # completion = d_i + sum_t (1 - st[i,t])
        cost_const = cost_weight * period * T * float(p.repair_cost.sum()) / p.repair_cost.sum()
    m.offset = obj_const + cost_const
    h = m.highs(threads)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(gap))
    tic = _time.perf_counter()
    warm_value = None
    if warm_start is not None and amount_layer.any():
        # Flow layers: the greedy schedule's value in the program is the program with its
        # starts fixed (HiGHS finds the amounts and states), then the starts are freed again.
        idx = np.array([st(i, t) for i in range(k) for t in range(T - dur[i])], np.int32)
        val = np.array([1.0 if t >= warm_start[i] else 0.0 for i in range(k) for t in range(T - dur[i])])
        lb_all = np.concatenate(m.lb)
        if idx.size:
            h.changeColsBounds(idx.size, idx, np.maximum(val, lb_all[idx]), np.minimum(val, ub[idx]))
        h.setOptionValue("time_limit", max(0.25 * float(time_limit), 0.1))
        h.run()
        if h.getInfo().primal_solution_status >= 2:
            warm_value = float(h.getInfo().objective_function_value)
        if idx.size:
            h.changeColsBounds(idx.size, idx, lb_all[idx], ub[idx])
        h.clearSolver()
        if warm_value is not None:
            h.setOptionValue("objective_bound", warm_value + 1e-9 * max(1.0, abs(warm_value)))
    elif warm_start is not None:
        # Warm start: the greedy schedule's starts and the nodes that work under them in the
        # program (its largest fixpoint, computed here); HiGHS completes the flows.
        idx = [st(i, t) for i in range(k) for t in range(T - dur[i])]
        val = [1.0 if t >= warm_start[i] else 0.0 for i in range(k) for t in range(T - dur[i])]

        def done(i, t):
            return t - dur[i] >= warm_start[i]

        def xval(v, t, on):
            col = x(v, t)
            return _value(col) if _is_const(col) else on.get(int(v), 0)

        for t in range(T):
            on = {int(v): 1 for v in nodes if xcol[v] + t not in ub0_set}
            changed = True
            while changed:
                changed = False
                for v in list(on):
                    if not on[v]:
                        continue
                    i = damaged_elem[v]
                    ok = i < 0 or done(i, t)
                    for g in group_of[v] if ok else ():
                        if t < held_periods[g]:
                            continue
                        sups = c.sup_idx[c.sup_ptr[g]:c.sup_ptr[g + 1]]
                        if not any(xval(sv, t, on) for sv in sups if var[sv] or const_on[sv]):
                            ok = False
                            break
                    if not ok:
                        on[v] = 0
                        changed = True
                for vs, arcs in layer_arcs:
                    reached = set()
                    out = {}
                    for (u, w, e) in arcs:
                        if on.get(w) and (e < 0 or done(e, t)) and (u < 0 or on.get(u)):
                            out.setdefault(u, []).append(w)
                    stack = list(out.get(-1, []))
                    while stack:
                        w = stack.pop()
                        if w in reached:
                            continue
                        reached.add(w)
                        stack += out.get(w, [])
                    for v in vs:
                        if on.get(int(v)) and int(v) not in reached:
                            on[int(v)] = 0
                            changed = True
            for v in nodes:
                idx.append(int(xcol[v] + t))
                val.append(float(on.get(int(v), 0)))
        idx = np.array(idx, np.int64)
        warm_value = float(m.offset + np.concatenate(m.cost)[idx] @ np.array(val, float))
        # The greedy schedule's value is the MIP's first cutoff: only better schedules are
        # searched.  (HiGHS 1.16 returned wrong optima after setSolution with a full, feasible
        # start in our tests, so the schedule itself is not handed over.)
        h.setOptionValue("objective_bound", warm_value + 1e-9 * max(1.0, abs(warm_value)))
    h.setOptionValue("time_limit", max(float(time_limit) - (_time.perf_counter() - tic), 0.1))
    # HiGHS checks its time limit in some phases only (not while solving the root LP of a
    # large program): interrupt it from its callbacks at the deadline as well.
    deadline = tic + float(time_limit)
    # Symmetry detection on a large program runs for minutes without checking the clock.
    h.setOptionValue("mip_detect_symmetry", False)

    def stop(event) -> None:
        if _time.perf_counter() > deadline:
            event.interrupt()

    # HiGHS's dual bound as its MIP search reports it, kept for when HiGHS does not return.
    seen_bound = [-math.inf]

    def stop_mip(event) -> None:
        try:
            b = float(event.data_out.mip_dual_bound)
        except (AttributeError, TypeError, ValueError):
            b = -math.inf
        if math.isfinite(b) and b > seen_bound[0]:
            seen_bound[0] = b
        stop(event)

    for name, fn in (("cbSimplexInterrupt", stop), ("cbIpmInterrupt", stop), ("cbMipInterrupt", stop_mip)):
        if hasattr(h, name):
            getattr(h, name).subscribe(fn)
    # Some phases (the root LP of a program of 10^5 columns) check neither: HiGHS runs in a
    # thread of its own, and when it has not returned GRACE seconds after the deadline it is
    # left to finish in the background and the warm start is the answer (bound unknown).
    import threading

    worker = threading.Thread(target=h.run, daemon=True)
    worker.start()
    worker.join(max(deadline - _time.perf_counter(), 0.0) + GRACE)
    elapsed = _time.perf_counter() - tic
    if worker.is_alive():
        objective = warm_value if warm_value is not None else math.inf
        # The last bound HiGHS reported before the deadline (its search holds it).
        highs_bound = seen_bound[0] if seen_bound[0] > -math.inf else None
        if highs_bound is not None and warm_value is not None:
            highs_bound = min(highs_bound, warm_value)
        bound, source = _combine(highs_bound, comb_prog, objective)
        out = {"period": float(period), "horizon": int(T), "objective": objective,
               "bound": bound, "gap": _gap(objective, bound),
               "status": "Time limit reached (HiGHS did not stop; left running)", "optimal": False,
               "solve_time": float(elapsed), "variables": int(m.n), "constraints": int(m.m),
               "binaries": int(np.concatenate(m.integer).sum()) if m.integer else 0,
               "arcs": int(n_arcs), "warm_start": warm_value, "highs_bound": highs_bound,
               "bound_source": source, **comb_info}
        return None, out
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    if status == "Interrupted by user":        # our deadline callback
        status = "Time limit reached"
    has_sol = info.primal_solution_status >= 2
    objective = float(info.objective_function_value) if has_sol else math.inf
    bound = float(info.mip_dual_bound)
    if has_sol and warm_value is not None and objective > warm_value:
        has_sol = False       # HiGHS's incumbent is worse than the greedy schedule: keep that
    if not has_sol and warm_value is not None:
        # Nothing better than the cutoff: the greedy schedule is the incumbent, and optimal
        # when the search finished (the program is then "infeasible" below the cutoff).
        objective = warm_value
        if status == "Infeasible":
            status, bound = "Optimal", warm_value
        bound = min(bound, warm_value) if not math.isnan(bound) else -math.inf
    if warm_value is not None and not math.isnan(bound):
        bound = min(bound, warm_value)     # nodes cut off by the cutoff hold nothing better
    if objective < math.inf and bound > objective:
        bound = objective
    found = objective < math.inf
    highs_bound = None if math.isnan(bound) or bound == -math.inf else float(bound)
    bound, source = _combine(bound, comb_prog, objective)
    mip_gap = _gap(objective, bound)
    if found and status != "Optimal" and mip_gap <= gap and source == "combinatorial":
        status = "Optimal (the combinatorial bound meets the objective)"
    out = {"period": float(period), "horizon": int(T), "objective": objective,
           "bound": bound, "gap": mip_gap, "status": status,
           "optimal": bool(found and status.startswith("Optimal")),
           "solve_time": float(elapsed), "variables": int(m.n), "constraints": int(m.m),
           "binaries": int(np.concatenate(m.integer).sum()) if m.integer else 0, "arcs": int(n_arcs),
           "warm_start": warm_value, "highs_bound": highs_bound, "bound_source": source,
           **comb_info}
    if not has_sol:
        return None, out
    sol = np.asarray(h.getSolution().col_value)
    start = np.array([next((t for t in range(T - dur[i]) if sol[st(i, t)] > 0.5), T - dur[i])
                      for i in range(k)], np.int64)
    out["start_periods"] = start
    tie = np.empty(k, np.int64)
    tie[np.asarray(warm_order) if warm_order is not None else np.arange(k)] = np.arange(k)
    return np.lexsort((tie, start)), out

