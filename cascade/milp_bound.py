r"""A combinatorial lower bound of the resilience loss of every repair schedule (v1 systems).

Used by :mod:`cascade.milp` so that a bound, and with it a gap, is known even when HiGHS
gives none in its time limit.  Applies to v1 systems (``source``, ``none``, and ``giant``
through a relaxation); absent (``None``) with flow layers (``dcflow``: a repaired line can
overload others, so service is not monotone in the repairs).

The bound and its proof
-----------------------
Write U(t) for the failed elements not yet repaired at time t in some schedule, and
``x_v(U)`` for "node v works" in the fixpoint of the core with the elements of U damaged.

1. **Relaxation of backups.**  Let x* be the fixpoint with every group that holds a backup
   (``remaining0 > 0``) counted as supplied for ever.  In the event simulation a held group is
   supplied while its backup lasts and otherwise needs a working supplier, so every node that
   works at time t in the simulation works in x*(U(t)) (the core's fixpoint is the largest set
   of nodes that satisfies every rule; the simulation's set satisfies the relaxed rules).
2. **Monotonicity.**  Under ``source`` and ``none`` rules a node works iff it is not damaged,
   every dependency group has a working supplier (or is held) and, in a ``source`` layer, it
   is joined to a working source over working nodes and repaired edges.  Each condition only
   gets easier when fewer elements are damaged, so x*_v(U) <= x*_v(U') for U ⊇ U' and every
   node v.  A ``giant`` layer is not monotone (a repair can make another component the giant
   and stop nodes): x* reads it as ``none`` (a node works when undamaged and supplied), a
   superset of its giant, so x* still bounds every node from above (a supplier that works
   more never stops a dependent).
3. **Earliest completions.**  Element i cannot be repaired before its repair time ``p_i``
   (travel and waiting only add), so U(t) ⊇ F(t) = {i : p_i > t}.  Hence, with
   R(t) = failed \\ F(t) the elements that could be done:
   ``Q(t) <= sum_v w_v x*_v(U(t)) <= sum_{v not in U(t)} w_v x*_v(F(t))`` (a damaged node of
   U(t) does not work; the others are bounded by 2.).
4. **Crews.**  The elements of layer L are repaired only by the crews of L and the pool,
   c_L machines that each repair one element at a time.  The k-th repair of L cannot end before
   ``LB_k = max(p_(k), S_k / c_L, S_ceil(k / c_L))``, p_(1) <= p_(2) <= ... the layer's repair
   times and S_k the sum of the k smallest: the first k repairs are k distinct elements (the
   largest of k distinct times is >= p_(k)), their work S >= S_k is done by c_L crews within
   [0, C_k], and one crew does at least ceil(k / c_L) of them one after the other.  So at most
   N_L(t) = #{k : LB_k <= t} elements of L are done by t, and U(t) holds at least
   r_L(t) = k_L - N_L(t) elements of L.  The same holds for all layers together with
   c = every crew (the total, r(t)).
5. **The bound.**  Give each node u that works in x*(∅) but not when a single failed element
   i alone stays damaged, x*_u({i}) = 0, to one such i, its owner (a damaged node is among its
   own).  If the owner is in U(t) then u does not work (x*_u(U(t)) <= x*_u({i}) = 0 by 2.),
   and each node has one owner, so ``Q(t) <= Q*(F(t)) - sum_{i in U(t) \ F(t)} a_i`` with
   a_i = sum_{u owned by i} w_u x*_u(F(t)) (the nodes of F(t)'s owners do not work in
   x*(F(t)) already).  The elements of U(t) \ F(t) cost at least the cheapest choice of a set that
   holds r_L(t) elements of each layer and r(t) in all: the r_L(t) cheapest of each layer, then
   the cheapest others up to r(t) (a greedy choice is optimal for these nested lower bounds).
6. **Work.**  The elements of L repaired by time s hold at most c_L * s hours of work
   (c_L crews, one repair at a time each; every crew for all layers together), so the
   avoided charge is at most a fractional knapsack of capacity c_L * s (sizes p_i, values
   a_i); the charge is at least the larger of 5.'s and this one's (per layer, summed, or
   all layers at once).  Taken at the end of each interval (whole periods: s = t).
   So ``Q(t) <= Q*(F(t)) - that cost`` and the loss is at least
   ``∫ (Q0 - Q*(F(t)) + cost(t)) dt`` over the step function between the breakpoints
   (the p_i and the LB_k); every term is a bound of the same schedule's integrand.

For the program of :mod:`cascade.milp` the same bound holds with p_i = d_i periods
(completions are whole periods: S_k / c_L rounds up), summed over the periods before the
horizon, counted against the program's reference (the service with everything repaired).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .compiled import RULE_CODES


def applies(p) -> str | None:
    """None when the bound holds for the recovery problem ``p``, else why it does not."""
    if p.flow:
        return ("no combinatorial bound with flow layers (a repaired line can overload others: "
                "service is not monotone in the repairs)")
    return None


def _relaxed(c):
    """The compiled system with every ``giant`` layer read as ``none`` (step 2 of the
    module docstring)."""
    rule = c.layer_rule.copy()
    rule[rule == RULE_CODES["giant"]] = RULE_CODES["none"]
    return replace(c, layer_rule=rule)


def completion_bounds(times: np.ndarray, crews: int, integer: bool = False) -> np.ndarray:
    """LB_k (k = 1..n): no schedule on ``crews`` machines finishes its k-th job earlier.

    ``times`` the jobs' durations; ``integer``: completions are whole numbers (round up)."""
    q = np.sort(np.asarray(times, float))
    n = len(q)
    if n == 0:
        return np.zeros(0)
    if crews <= 0:
        return np.full(n, math.inf)
    s = np.cumsum(q)
    k = np.arange(1, n + 1)
    load = s / crews
    if integer:
        load = np.ceil(load - 1e-9)
    per_crew = s[(k + crews - 1) // crews - 1]
    return np.maximum.accumulate(np.maximum(np.maximum(q, load), per_crew))


def _work_charge(node_w: np.ndarray, times: np.ndarray, cand: np.ndarray, capacity: float) -> float:
    """The least charge of the elements of ``cand`` left undone when the done ones hold at
    most ``capacity`` of work: their total minus a fractional knapsack (an upper bound of what
    the done ones can avoid)."""
    if not math.isfinite(capacity):
        return 0.0
    idx = np.flatnonzero(cand)
    a, w = node_w[idx], times[idx]
    if not a.size or not a.sum() > 0:
        return 0.0
    order = np.argsort(-(a / np.maximum(w, 1e-300)), kind="stable")
    a, w = a[order], w[order]
    filled = np.cumsum(w)
    full = int(np.searchsorted(filled, capacity, side="right"))
    avoided = float(a[:full].sum())
    if full < len(a):
        room = capacity - (filled[full - 1] if full else 0.0)
        avoided += float(a[full]) * max(room, 0.0) / max(float(w[full]), 1e-300)
    return max(float(a.sum()) - avoided, 0.0)


def loss_bound(p, times: np.ndarray, layer_crews: np.ndarray, pool: int, reference: float,
               integer: bool = False, horizon: float = math.inf) -> float | None:
    """The lower bound of the module docstring (in the units of ``times``: hours, or periods
    with ``integer``), or None when it does not apply.

    Parameters
    ----------
    p : recovery._Problem
    times : ndarray (k,)
        Earliest completion of each failed element (its repair time, or d_i periods).
    layer_crews : ndarray (L,)
        Crews of each layer's own (the pool comes on top).
    pool : int
        Shared crews.
    reference : float
        Q counted as no loss (Q0; the program: Q with everything repaired).
    horizon : float
        Integrate up to here only (the program's periods); infinity: to the last breakpoint.
    """
    if applies(p) is not None:
        return None
    c = p.compiled
    k = p.k
    times = np.asarray(times, float)
    n_layers = len(c.layer_names)
    total = p.total if p.total > 0 else 1.0
    # Breakpoints: repair times and every layer's (and the total's) LB_k.
    lbs = []          # (mask of elements, LB array)
    for L in range(n_layers):
        mine = p.layer == L
        if mine.any():
            crews_l = int(layer_crews[L]) + pool
            lbs.append((mine, completion_bounds(times[mine], crews_l, integer), crews_l))
    every = int(np.sum(layer_crews)) + pool
    all_lb = completion_bounds(times, every, integer)
    points = np.unique(np.concatenate([[0.0], times] + [b for _, b, _ in lbs] + [all_lb]))
    points = points[np.isfinite(points) & (points < horizon)]
    # The work bound (step 6) grows with time: more points, so that it is taken at each
    # interval's end (whole periods: every period).
    last = float(points[-1]) if points.size else 0.0
    grid = np.arange(0.0, last + 1.0) if integer else np.linspace(0.0, last, 401)
    points = np.unique(np.concatenate([points, grid[grid < horizon]]))
    from .recovery import workspace

    ws = workspace(_relaxed(c))
    held = (p.remaining0 > 0).astype(np.uint8)
    weight = p.weight.astype(float)
    # Step 5's owners: each node that stops when one failed element alone stays damaged
    # (everything else repaired) is given to one such element, the one repaired last at the
    # earliest (largest time; a damaged node is among its own).
    ws.group_held[:] = held
    none = np.zeros(k, bool)
    p.run_waiting(ws, none)
    intact = ws.working.astype(bool)
    owner = np.full(c.n_nodes, -1, np.int64)
    owner_time = np.full(c.n_nodes, -math.inf)
    for i in range(k):
        none[i] = True
        p.run_waiting(ws, none)
        none[i] = False
        killed = intact & ~ws.working.astype(bool)
        take = killed & (times[i] > owner_time)
        owner[take] = i
        owner_time[take] = times[i]
    owned = np.flatnonzero(owner >= 0)
    node_w = np.zeros(k)
    loss = 0.0
    last_f = None
    served = 0.0
    for j, t in enumerate(points):
        end = points[j + 1] if j + 1 < len(points) else horizon
        forced = times > t + 1e-12
        if last_f is None or not np.array_equal(forced, last_f):
            ws.group_held[:] = held
            p.run_waiting(ws, forced)
            working = ws.working.astype(bool)
            served = float(weight @ working) / total
            node_w[:] = np.bincount(owner[owned], weights=weight[owned] * working[owned],
                                    minlength=k) / total
            last_f = forced
        cost = 0.0
        chosen = forced.copy()           # already undone (their a_v is 0)
        # Step 6: the work done by s < end is at most crews * end (whole periods: * t).
        span = t if integer else end
        work = 0.0
        for mine, lb, crews_l in lbs:
            work += _work_charge(node_w, times, mine & ~forced, crews_l * span)
        work = max(work, _work_charge(node_w, times, ~forced, every * span))
        for mine, lb, _ in lbs:
            r = int(mine.sum()) - int(np.searchsorted(lb, t + 1e-9, side="right"))
            extra = r - int((forced & mine).sum())
            if extra > 0:
                cand = np.flatnonzero(mine & ~chosen)
                pick = cand[np.argsort(node_w[cand], kind="stable")[:extra]]
                cost += float(node_w[pick].sum())
                chosen[pick] = True
        r = k - int(np.searchsorted(all_lb, t + 1e-9, side="right"))
        extra = r - int(chosen.sum())
        if extra > 0:
            cand = np.flatnonzero(~chosen)
            cost += float(np.sort(node_w[cand])[:extra].sum())
        rate = max(reference - served + max(cost, work), 0.0)
        if not math.isfinite(end):
            if rate > 1e-9 * max(1.0, abs(reference)):
                return math.inf
            break
        loss += rate * (end - t)
    # Rounding: a bound must never exceed the exact value by a float's error.
    return float(max(loss * (1 - 1e-9) - 1e-12, 0.0))
