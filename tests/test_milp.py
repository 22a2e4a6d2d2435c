"""Shared crews, crews on roads and the ``milp`` strategy (cascade/milp.py, cascade/travel.py):
the MILP against a brute force over every repair order, against greedy, travel in the event
simulation, road repairs that unblock, the time limit, and bad input."""
import itertools

import numpy as np
import pandas as pd
import pytest

from cascade import InfrastructureSystem, InputError
from cascade.recovery import (_order_policy, _play, _Problem, crews_per_layer, parse_crews,
                              recover, schedule_order)
from cascade.compiled import compile_system


def town(seed: int, n_power=5, n_water=4, with_roads=False):
    """A small seeded town: power and water trees (rule source), water nodes depending on
    power nodes, demands, repair times in whole hours."""
    rng = np.random.default_rng(seed)
    nodes, edges, deps = [], [], []
    for layer, n in (("power", n_power), ("water", n_water)):
        ids = [f"{layer[0]}{i}" for i in range(n)]
        for i, name in enumerate(ids):
            nodes.append({"id": name, "layer": layer, "kind": "source" if i == 0 else "",
                          "demand": float(rng.integers(0, 4)) if i else 0.0,
                          "repair_time": float(rng.integers(1, 4)), "x": 100.0 * i,
                          "y": 0.0 if layer == "power" else 50.0})
        for i in range(1, n):
            parent = ids[int(rng.integers(0, i))]
            edges.append({"id": f"{parent}-{ids[i]}", "source": parent, "target": ids[i],
                          "directed": "false", "repair_time": float(rng.integers(1, 3)),
                          "length": 1000.0})
    for i in range(1, n_water):
        deps.append({"dependent": f"w{i}", "supplier": f"p{int(rng.integers(1, n_power))}",
                     "group": "", "delay": 0.0})
    if with_roads:
        for i in range(4):
            nodes.append({"id": f"r{i}", "layer": "transport", "kind": "", "demand": 0.0,
                          "repair_time": 1.0, "x": 150.0 * i, "y": 20.0})
        for i in range(3):
            edges.append({"id": f"r{i}-r{i + 1}", "source": f"r{i}", "target": f"r{i + 1}",
                          "directed": "false", "repair_time": 1.0, "length": 1000.0})
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes), pd.DataFrame(edges),
                                            pd.DataFrame(deps, columns=["dependent", "supplier",
                                                                        "group", "delay"]))


def brute_force(system, failed, crews, **kw):
    """The smallest resilience loss over every priority order (each replayed)."""
    p = _Problem(system, compile_system(system), failed, crews)
    return min(_play(p, _order_policy(p, np.array(order))).loss
               for order in itertools.permutations(range(p.k)))


def failures(system, k, seed):
    rng = np.random.default_rng(seed)
    ids = list(system.nodes["id"]) + list(system.edges["id"])
    return [str(x) for x in rng.choice(ids, size=k, replace=False)]


# --------------------------------------------------------------------------- crews
@pytest.mark.parametrize("text, expected", [
    ("pool=6", {"pool": 6}), ("power=2,pool=3", {"power": 2, "pool": 3}), ("3", 3)])
def test_parse_crews_with_pool(text, expected):
    assert parse_crews(text) == expected


@pytest.mark.parametrize("text", ["pool=x", "pool=0", "pool=-1", "pool=1.5"])
def test_parse_crews_rejects_bad_pool(text):
    with pytest.raises(InputError, match="pool"):
        parse_crews(text)


def test_pool_gives_layers_no_crew_of_their_own():
    c = compile_system(town(0))
    assert crews_per_layer(c, {"pool": 2}) == {"power": 0, "water": 0, "pool": 2}
    assert crews_per_layer(c, {"power": 1, "pool": 2}) == {"power": 1, "water": 0, "pool": 2}


def test_pool_crews_repair_any_layer_and_layer_crews_go_first():
    s = town(1)
    failed = ["p1", "p2", "w1", "w2"]
    r = recover(s, failed, crews={"power": 1, "pool": 1})
    crews = dict(zip(r.schedule["id"], r.schedule["crew"]))
    assert set(crews.values()) <= {"power-1", "pool-1"}
    # Water elements can only go to the pool crew.
    assert crews["w1"] == crews["w2"] == "pool-1"
    # Never more than two repairs at once, and never two on one crew at once.
    for crew, rows in r.schedule.groupby("crew"):
        rows = rows.sort_values("start")
        assert (rows["start"].to_numpy()[1:] >= rows["finish"].to_numpy()[:-1] - 1e-9).all()


def test_pool_alone_equals_one_shared_crew_order():
    """One pool crew repairs everything in sequence: the greedy order replayed with a single
    pool crew gives the same loss as that order (an independent replay)."""
    s = town(2)
    failed = failures(s, 5, 2)
    r = recover(s, failed, crews={"pool": 1})
    again = schedule_order(s, failed, list(r.schedule["id"]), crews={"pool": 1})
    assert r.metrics["resilience_loss"] == pytest.approx(again.metrics["resilience_loss"])
    assert r.schedule["finish"].max() == pytest.approx(
        sum(r.schedule["finish"] - r.schedule["start"]))


# --------------------------------------------------------------------------- milp vs brute force
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_milp_equals_brute_force_several_layers_and_a_pool(seed):
    s = town(seed)
    failed = failures(s, 7, seed)
    crews = {"power": 1, "pool": 1} if seed % 2 else {"pool": 2}
    r = recover(s, failed, strategy="milp", crews=crews, period=1.0, time_limit=60)
    assert r.solver["optimal"] and r.solver["gap"] == 0.0
    best = brute_force(s, failed, crews)
    assert r.metrics["resilience_loss"] == pytest.approx(best, abs=1e-9)
    # Exact case: the program's own objective is the simulated loss.
    assert r.solver["objective"] == pytest.approx(best, abs=1e-6)


def branch_and_bound(system, failed, crews):
    """The smallest loss by ``optimal``'s branch and bound over every crew choice (the event
    simulation's own exact search, independent of the MILP), without its 8! refusal."""
    from cascade.recovery import _Greedy, _optimal_order
    p = _Problem(system, compile_system(system), failed, crews)
    greedy = _play(p, _Greedy(p))
    order = _optimal_order(p, greedy)
    return greedy.loss if order is None else _play(p, _order_policy(p, order)).loss


@pytest.mark.slow
@pytest.mark.parametrize("k", [9, 10])
def test_milp_equals_exact_search_beyond_eight_factorial(k):
    """9! and 10! orders with a pool of two crews over two layers: beyond the old limit of
    ``optimal``; checked against its exact branch and bound (a brute force over 9! orders
    takes a quarter of an hour; the 6-7 element cases above use the plain brute force)."""
    s = town(5, n_power=7, n_water=6)
    failed = failures(s, k, 5)
    r = recover(s, failed, strategy="milp", crews={"pool": 2}, period=1.0)
    assert r.solver["optimal"]
    assert r.metrics["resilience_loss"] == pytest.approx(branch_and_bound(s, failed, {"pool": 2}))


@pytest.mark.parametrize("seed", range(4))
def test_milp_is_no_worse_than_greedy(seed):
    s = town(10 + seed, n_power=7, n_water=6)
    failed = failures(s, 9, seed)
    greedy = recover(s, failed, strategy="greedy", crews=2)
    milp = recover(s, failed, strategy="milp", crews=2, period=1.0)
    assert milp.solver["optimal"]
    assert milp.metrics["resilience_loss"] <= greedy.metrics["resilience_loss"] + 1e-9
    assert milp.solver["greedy_resilience_loss"] == pytest.approx(greedy.metrics["resilience_loss"])


def test_milp_with_backups_and_odd_repair_times_replays_the_schedule():
    """Not exact here (a backup, repair times that are not multiples of the period): the
    reported loss is the replay's, the same as replaying the order by hand."""
    s = town(3)
    deps = s.dependencies.copy()
    deps["delay"] = 1.5
    n = s.nodes.copy()
    n["repair_time"] = n["repair_time"] + 0.4
    s = InfrastructureSystem.from_tables(n, s.edges, deps)
    failed = failures(s, 6, 3)
    r = recover(s, failed, strategy="milp", crews={"pool": 2})
    again = schedule_order(s, failed, list(r.schedule["id"]), crews={"pool": 2})
    assert r.metrics["resilience_loss"] == pytest.approx(again.metrics["resilience_loss"])
    assert r.solver["period"] == pytest.approx(np.median(
        [float(x) for x in r.schedule["finish"] - r.schedule["start"]]))


def test_time_limit_returns_the_incumbent_and_its_gap():
    s = town(7, n_power=12, n_water=10)
    failed = failures(s, 30, 7)
    r = recover(s, failed, strategy="milp", crews={"pool": 3}, period=0.5, time_limit=0.5)
    info = r.solver
    assert info["status"] in ("Time limit reached", "Optimal")
    assert info["bound"] <= info["objective"] + 1e-6
    assert info["gap"] == pytest.approx((info["objective"] - info["bound"]) / info["objective"], abs=1e-9)
    if info["status"] != "Optimal":
        assert not info["optimal"]
    assert len(r.schedule) == 30 and r.schedule["finish"].notna().all()


# --------------------------------------------------------------------------- roads
def road_town(tmp_path=None):
    """Power plant p0 at the west end of a road r0-r1-r2-r3; a far substation p1 at the east
    end.  The depot is at r0."""
    nodes = pd.DataFrame([
        {"id": "p0", "layer": "power", "kind": "source", "demand": 0, "x": 0, "y": 0, "repair_time": 2},
        {"id": "p1", "layer": "power", "kind": "", "demand": 5, "x": 3000, "y": 0, "repair_time": 2},
        {"id": "p2", "layer": "power", "kind": "", "demand": 1, "x": 0, "y": 10, "repair_time": 2},
    ] + [{"id": f"r{i}", "layer": "transport", "kind": "", "demand": 0, "x": 1000 * i, "y": 5,
          "repair_time": 1} for i in range(4)])
    edges = pd.DataFrame([
        {"id": "p0-p1", "source": "p0", "target": "p1", "directed": "false", "length": 3000, "repair_time": 1},
        {"id": "p0-p2", "source": "p0", "target": "p2", "directed": "false", "length": 10, "repair_time": 1},
    ] + [{"id": f"r{i}-r{i + 1}", "source": f"r{i}", "target": f"r{i + 1}", "directed": "false",
          "length": 1000 * 30, "repair_time": 3} for i in range(3)])   # 1 h each at 30 km/h
    return InfrastructureSystem.from_tables(nodes, edges, pd.DataFrame(
        columns=["dependent", "supplier", "group", "delay"]))


def test_travel_makes_a_far_element_wait():
    s = road_town()
    r = recover(s, ["p1"], crews={"pool": 1}, depots=["r0"])
    row = r.schedule.iloc[0]
    assert row["travel"] == pytest.approx(3.0)            # r0 -> r3: three 1 h roads
    assert row["start"] == pytest.approx(3.0) and row["finish"] == pytest.approx(5.0)
    assert row["from"] == "r0"
    # p1 lost 5 of 6 power demand units for 5 h; Q is the mean of the two layers' services
    # (power and transport, weight 1 each; transport loses nothing): 5/12 for 5 h.
    assert r.metrics["resilience_loss"] == pytest.approx(5 / 12 * 5.0)
    near = recover(s, ["p2"], crews={"pool": 1}, depots=["r0"]).schedule.iloc[0]
    assert near["travel"] == pytest.approx(0.0)


def test_a_blocked_element_waits_for_the_road_and_the_road_goes_first():
    s = road_town()
    failed = ["p1", "r1-r2"]
    for strategy in ("greedy", "milp"):
        r = recover(s, failed, strategy=strategy, crews={"pool": 1}, depots=["r0"], period=1.0)
        order = list(r.schedule["id"])
        assert order == ["r1-r2", "p1"], strategy
        road, sub = r.schedule.iloc[0], r.schedule.iloc[1]
        assert road["travel"] == pytest.approx(1.0)         # r0 -> r1
        assert sub["depart"] == pytest.approx(road["finish"])
        assert sub["travel"] == pytest.approx(2.0)          # from r1 (or r2) to r3
        assert sub["start"] >= road["finish"] + 1.0 - 1e-9


def test_unreachable_forever_is_reported_not_scheduled():
    s = road_town()
    # The only crew is at r0; the road r0-r1 is damaged but transport has no crew of its own
    # and the pool... a power crew cannot repair a road.
    r = recover(s, ["p1", "r0-r1"], crews={"power": 1, "transport": 1}, depots=["r3", "r1"])
    # transport-1 sits at r1 (second base) and repairs r0-r1; power-1 at r3 reaches p1.
    assert r.schedule["finish"].notna().all()
    stuck = recover(s, ["p1", "r2-r3"], crews={"power": 1, "transport": 1}, depots=["r0"])
    assert stuck.schedule["finish"].notna().all()        # the road crew opens the way
    assert float(stuck.schedule.set_index("id").loc["p1", "depart"]) >= \
        float(stuck.schedule.set_index("id").loc["r2-r3", "finish"]) - 1e-9


@pytest.mark.parametrize("depots, message", [
    (["nowhere"], "nowhere"), (["p0"], "transport")])
def test_bad_depots(depots, message):
    with pytest.raises(InputError, match=message):
        recover(road_town(), ["p1"], depots=depots)


def test_replay_of_the_milp_order_with_roads_is_the_reported_schedule():
    s = road_town()
    failed = ["p1", "r1-r2", "p2", "p0-p2"]
    r = recover(s, failed, strategy="milp", crews={"pool": 2}, depots=["r0", "r3"], period=1.0)
    again = schedule_order(s, failed, list(r.schedule["id"]), crews={"pool": 2}, depots=["r0", "r3"])
    pd.testing.assert_frame_equal(r.schedule.reset_index(drop=True), again.schedule.reset_index(drop=True))
    assert r.metrics["resilience_loss"] == pytest.approx(again.metrics["resilience_loss"])


def test_cost_weight_finishes_the_expensive_repair_first():
    """Two equal repairs of equal service value: the cost term breaks the tie toward the
    expensive one, in both orders of the failure list."""
    nodes = pd.DataFrame([
        {"id": "plant", "layer": "power", "kind": "source", "demand": 0, "repair_time": 1, "repair_cost": 0},
        {"id": "cheap", "layer": "power", "kind": "", "demand": 1, "repair_time": 2, "repair_cost": 1},
        {"id": "dear", "layer": "power", "kind": "", "demand": 1, "repair_time": 2, "repair_cost": 100}])
    edges = pd.DataFrame([{"source": "plant", "target": "cheap", "directed": "false"},
                          {"source": "plant", "target": "dear", "directed": "false"}])
    s = InfrastructureSystem.from_tables(nodes, edges, pd.DataFrame(
        columns=["dependent", "supplier", "group", "delay"]))
    for failed in (["cheap", "dear"], ["dear", "cheap"]):
        r = recover(s, failed, strategy="milp", period=2.0, cost_weight=1.0)
        assert list(r.schedule["id"]) == ["dear", "cheap"]
        assert r.solver["optimal"]
