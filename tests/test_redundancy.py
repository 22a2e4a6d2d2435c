"""Redundancy measures: reading candidates, applying them, paired evaluation, the budgeted plan."""
import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import InfrastructureSystem, compile_system, simulate
from cascade.errors import InputError
from cascade.redundancy import (Benefit, Evaluator, FixedSampler, Measure, analyse, apply_measures,
                                greedy_plan, hazard_options, node_impact, parse_candidates,
                                read_candidates, suggest, write_candidates)

from strategies import systems


def make_town(spares=("S3",)) -> InfrastructureSystem:
    """A plant feeding substations; pump PA serves 1000 people on S1, pump PB 10 on S2.

    The spares (S3, ...) supply nothing yet: a second feed can come from them.
    """
    power = nx.Graph([("P", "S1"), ("P", "S2")] + [("P", s) for s in spares])
    power.nodes["P"]["kind"] = "source"
    water = nx.Graph([("W", "PA"), ("PA", "CA"), ("W", "PB"), ("PB", "CB")])
    water.nodes["W"]["kind"] = "source"
    water.nodes["CA"]["demand"] = 1000
    water.nodes["CB"]["demand"] = 10
    # Power serves no one directly here: weight 0, so the losses are water's alone.
    return InfrastructureSystem.from_networkx({"power": power, "water": water},
                                              [("PA", "S1"), ("PB", "S2")], name="town",
                                              weights={"power": 0})


def measures(system, rows):
    return parse_candidates(pd.DataFrame(rows, dtype=object).fillna(""), system)


TOWN_CANDIDATES = [
    dict(id="feed-PA", type="feed", cost="100", node="PA", supplier="S3"),
    dict(id="feed-PB", type="feed", cost="100", node="PB", supplier="S3"),
    dict(id="backup-PA", type="backup", cost="50", node="PA", hours="24"),
    dict(id="harden-S2", type="harden", cost="30", element="S2"),
    dict(id="link-S1-S2", type="link", cost="10", source="S1", target="S2"),
]
# S1 and S2 fail in turns (and sometimes together): the hazard the pumps must ride through.
TOWN_SETS = [["S1"], ["S2"], [], ["S1", "S2"], ["S1"], ["W->PB"]]


def plain_loss(system, fail_ids, engine="reference"):
    """Loss of one cascade, the obvious way: each layer's unserved fraction (of demand, or of
    nodes without demand), averaged with the layers' weights (no demands added across layers)."""
    r = simulate(system, fail_ids, engine=engine)
    layers = r.layers()
    weights = np.array([system.layer_weight(name) for name in layers.index])
    if weights.sum() == 0:
        weights = np.ones(len(weights))
    loss = np.where(layers["demand"] > 0, 1.0 - layers["demand_served"] / layers["demand"].where(
        layers["demand"] > 0, 1), 1.0 - layers["functioning"] / layers["nodes"])
    return float(np.dot(weights, loss) / weights.sum())


# ------------------------------------------------------------------ ranking and plan
def test_the_second_feed_of_the_big_pump_ranks_first():
    town = make_town()
    cands = measures(town, TOWN_CANDIDATES)
    result = analyse(town, cands, FixedSampler(TOWN_SETS), len(TOWN_SETS))
    ranking = result.ranking
    assert list(ranking.columns[:8]) == ["rank", "id", "type", "cost", "benefit", "benefit_low",
                                         "benefit_high", "benefit_per_cost"]
    assert ranking["id"].iloc[0] == "feed-PA"
    assert list(ranking["rank"]) == list(range(1, len(cands) + 1))
    # PA keeps CA (1000 of 1010) when S1 fails: samples 0, 3, 4.
    row = ranking.set_index("id").loc["feed-PA"]
    assert row["benefit"] == pytest.approx(3 * 1000 / 1010 / 6)
    assert row["changed"] == 3
    assert row["benefit_low"] < row["benefit"] < row["benefit_high"]
    assert row["benefit_per_cost"] == pytest.approx(row["benefit"] / 100)
    # Sorted by benefit per cost.
    assert list(ranking["benefit_per_cost"]) == sorted(ranking["benefit_per_cost"], reverse=True)


def test_losses_equal_the_reference_engine_on_the_modified_system():
    town = make_town()
    cands = measures(town, TOWN_CANDIDATES)
    ev = Evaluator(town, FixedSampler(TOWN_SETS), len(TOWN_SETS))
    for k in range(len(cands) + 1):
        for combo in itertools.combinations(cands, k):
            changed = apply_measures(town, combo)
            immune, _ = hazard_options(combo)
            expected = [plain_loss(changed, [x for x in s if x not in immune]) for s in TOWN_SETS]
            assert ev.losses(combo)[0] == pytest.approx(expected, abs=1e-12)


def test_a_measure_that_changes_nothing_has_exactly_zero_benefit():
    town = make_town()
    cands = measures(town, TOWN_CANDIDATES + [
        dict(id="harden-S3", type="harden", cost="5", element="S3"),      # never fails
        dict(id="link-P-S3", type="link", cost="5", source="S3", target="P", directed="true"),
    ])
    result = analyse(town, cands, FixedSampler(TOWN_SETS), len(TOWN_SETS)).ranking.set_index("id")
    for mid in ("harden-S3", "link-P-S3", "link-S1-S2"):
        assert result.loc[mid, ["benefit", "benefit_low", "benefit_high", "benefit_per_cost"]].tolist() \
            == [0.0, 0.0, 0.0, 0.0]
        assert result.loc[mid, "changed"] == 0
    assert "changes nothing" in result.loc["harden-S3", "why"]


def test_a_backup_has_zero_static_benefit_and_says_why():
    town = make_town()
    result = analyse(town, measures(town, TOWN_CANDIDATES), FixedSampler(TOWN_SETS), 6)
    row = result.ranking.set_index("id").loc["backup-PA"]
    assert row["benefit"] == 0.0 and row["benefit_high"] == 0.0
    assert "static cascade treats backups as exhausted" in row["why"]


def test_interaction_second_feed_for_the_same_weakness_drops_to_zero():
    """Two feeds covering the same weakness: each alone is worth the same; after the first
    is picked the second's marginal benefit is exactly zero, so the plan skips it."""
    town = make_town(spares=("S3", "S4"))
    cands = measures(town, [
        dict(id="feed-S3", type="feed", cost="100", node="PA", supplier="S3"),
        dict(id="feed-S4", type="feed", cost="90", node="PA", supplier="S4"),
        dict(id="feed-PB", type="feed", cost="100", node="PB", supplier="S3"),
    ])
    result = analyse(town, cands, FixedSampler(TOWN_SETS), 6, budget=1000)
    alone = result.ranking.set_index("id")["benefit"]
    assert alone["feed-S3"] == alone["feed-S4"] > 0
    plan = result.plan
    assert plan.ids == ["feed-S4", "feed-PB"]      # cheaper of the twins first
    assert plan.left_out == {"feed-S3": 0.0}       # exactly: common random numbers
    assert plan.cost == 190
    # The plan's benefit is not the sum of the stand-alone benefits.
    assert plan.benefit.mean == pytest.approx(alone["feed-S4"] + alone["feed-PB"])
    assert plan.benefit.mean < alone.sum()
    assert plan.best_ids is not None and plan.gap == pytest.approx(0.0, abs=1e-12)


def test_budget_limits_the_plan_and_exhaustive_search_finds_what_greedy_misses():
    """Two complementary measures (harden both feeds of PA) are worthless alone, so greedy by
    benefit per cost never starts on them; the exhaustive search does and reports the gap."""
    town = make_town(spares=("S3", "S4"))
    town = InfrastructureSystem.from_tables(
        town.nodes, town.edges,
        pd.concat([town.dependencies, pd.DataFrame([{"dependent": "PA", "supplier": "S3"}])]),
        name="town", weights=town.weights)   # PA now needs S1 AND S3
    cands = measures(town, [
        dict(id="h-S1", type="harden", cost="50", element="S1"),
        dict(id="h-S3", type="harden", cost="50", element="S3"),
        dict(id="feed-PB", type="feed", cost="40", node="PB", supplier="S4"),
    ])
    sampler = FixedSampler([["S1", "S3"], ["S1", "S3", "S2"], ["S2"]])
    result = analyse(town, cands, sampler, 3, budget=100)
    assert result.ranking.set_index("id").loc["h-S1", "why"].startswith(
        "S1 fails in 2/3 samples, but sparing it changes nothing")
    plan = result.plan
    assert plan.ids == ["feed-PB"] and plan.cost == 40
    assert sorted(plan.best_ids) == ["h-S1", "h-S3"] and plan.best_cost == 100
    # The better plan is printed first: the exhaustive one, before the greedy steps.
    best = plan.recommended()
    assert best["source"] == "exhaustive" and sorted(best["ids"]) == ["h-S1", "h-S3"]
    assert best["benefit"] > plan.benefit.mean
    from cascade.commands.redundancy import render_table
    town.currency = "EUR"
    text = render_table(result, "sets", town.currency)
    assert text.index("Best plan under budget 100 (EUR): h-S") < text.index("Greedy plan")
    assert "from the exhaustive search, better than the greedy plan below" in text
    assert plan.gap > 0.5
    # Brute force, the obvious way, agrees with the best plan's benefit.
    base = np.mean([plain_loss(town, s) for s in sampler.failure_sets])
    best = np.mean([plain_loss(town, [x for x in s if x not in ("S1", "S3")]) for s in sampler.failure_sets])
    assert plan.best_benefit == pytest.approx(base - best)
    # A budget of 0 buys nothing; an exhaustive limit below the list size skips the search.
    zero = greedy_plan(Evaluator(town, sampler, 3), cands, 0.0)
    assert zero.steps == [] and zero.best_ids == []
    skipped = greedy_plan(Evaluator(town, sampler, 3), cands, 100.0, exhaustive_limit=2)
    assert skipped.best_ids is None and "no exhaustive search" in skipped.note


def test_free_measure_with_benefit_ranks_first():
    town = make_town()
    cands = measures(town, [dict(id="feed-PA", type="feed", cost="100", node="PA", supplier="S3"),
                            dict(id="free", type="feed", cost="0", node="PB", supplier="S3")])
    ranking = analyse(town, cands, FixedSampler(TOWN_SETS), 6).ranking
    assert ranking["id"].iloc[0] == "free" and np.isinf(ranking["benefit_per_cost"].iloc[0])


# ------------------------------------------------------------------ applying measures
def test_apply_measures_returns_a_new_valid_system_and_leaves_the_input_alone():
    town = make_town()
    before = [t.copy() for t in (town.nodes, town.edges, town.dependencies)]
    cands = measures(town, TOWN_CANDIDATES)
    changed = apply_measures(town, cands)
    for old, new in zip(before, (town.nodes, town.edges, town.dependencies)):
        pd.testing.assert_frame_equal(old, new)
    # The result passes the loader's own validation unchanged in meaning.
    again = InfrastructureSystem.from_tables(changed.nodes, changed.edges, changed.dependencies)
    c, c2 = compile_system(changed), compile_system(again)
    for name in ("group_delay", "sup_ptr", "sup_idx", "adj_ptr", "adj_nbr", "edge_directed"):
        assert np.array_equal(getattr(c, name), getattr(c2, name)), name
    # Base indices stay valid: nodes unchanged, new edges last.
    base = compile_system(town)
    assert list(c.node_ids) == list(base.node_ids)
    assert list(c.edge_ids[:base.n_edges]) == list(base.edge_ids)
    assert c.edge_ids[-1] == "link-S1-S2"
    # PA: one group with S1 and S3 and a 24 h delay; PB gets S3 as an alternative.
    pa = c.node_index(["PA"])[0]
    (g,) = range(c.grp_ptr[pa], c.grp_ptr[pa + 1])
    assert sorted(c.node_ids[c.sup_idx[c.sup_ptr[g]:c.sup_ptr[g + 1]]]) == ["S1", "S3"]
    assert c.group_delay[g] == 24.0


def test_backup_by_layer_and_by_group_label():
    power = nx.Graph([("P", "S1"), ("P", "S2")]); power.nodes["P"]["kind"] = "source"
    comm = nx.Graph([("R", "X")]); comm.nodes["R"]["kind"] = "source"
    water = nx.Graph([("W", "PA")]); water.nodes["W"]["kind"] = "source"
    s = InfrastructureSystem.from_networkx(
        {"power": power, "communication": comm, "water": water},
        [("PA", "S1", {"group": "mains"}), ("PA", "S2", {"group": "mains"}), ("PA", "X")])
    by_layer, by_label, every = measures(s, [
        dict(id="a", type="backup", cost="1", node="PA", group="power", hours="6"),
        dict(id="b", type="backup", cost="1", node="PA", group="mains", hours="7"),
        dict(id="c", type="backup", cost="1", node="PA", hours="8")])
    delays = lambda m: apply_measures(s, [m]).dependencies.set_index("supplier")["delay"].to_dict()
    assert delays(by_layer) == {"S1": 6.0, "S2": 6.0, "X": 0.0}
    assert delays(by_label) == {"S1": 7.0, "S2": 7.0, "X": 0.0}
    assert delays(every) == {"S1": 8.0, "S2": 8.0, "X": 8.0}


@settings(max_examples=40, deadline=None)
@given(case=systems(), data=st.data())
def test_random_measures_match_the_reference_and_noops_are_exact(case, data):
    """On random systems: losses with random measures equal the networkx reference on the
    modified system, and a backup never changes the static loss (exactly)."""
    system, nodes, edges = case
    ids = list(system.nodes["id"])
    layer_of = dict(zip(system.nodes["id"], system.nodes["layer"]))
    rows = []
    if len(system.dependencies):
        dep = system.dependencies.iloc[data.draw(st.integers(0, len(system.dependencies) - 1))]
        rows.append(dict(id="bk", type="backup", cost="1", node=dep["dependent"], hours="5"))
        supplier = data.draw(st.sampled_from(ids))
        label = dep["group"] or None
        same = system.dependencies[(system.dependencies["dependent"] == dep["dependent"])]
        layer_rows = same[same["supplier"].map(layer_of) == layer_of[supplier]]
        keys = set(layer_rows["group"].where(layer_rows["group"] != "", layer_rows.index.astype(str)))
        if supplier != dep["dependent"] and len(keys) == 1 and supplier not in set(layer_rows["supplier"]):
            rows.append(dict(id="fd", type="feed", cost="2", node=dep["dependent"], supplier=supplier))
        del label
    u, v = data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(ids))
    if u != v and layer_of[u] == layer_of[v]:
        rows.append(dict(id="ln", type="link", cost="3", source=u, target=v,
                         directed=data.draw(st.sampled_from(["true", "false"]))))
    rows.append(dict(id="hd", type="harden", cost="4", element=data.draw(st.sampled_from(ids))))
    cands = measures(system, rows)
    sets = [nodes + edges, nodes, edges]
    ev = Evaluator(system, FixedSampler(sets), 3)
    for m in cands:
        changed = apply_measures(system, [m])
        immune, _ = hazard_options([m])
        expected = [plain_loss(changed, [x for x in s if x not in immune]) for s in sets]
        assert ev.losses([m])[0] == pytest.approx(expected, abs=1e-12)
        if m.type == "backup":
            assert ev.benefit([m]).mean == 0.0 and ev.benefit([m]).changed == 0


# ------------------------------------------------------------------ bad candidate rows
HEADER = "id,type,cost,node,group,hours,supplier,source,target,directed,element,factor,description\n"
BAD_ROWS = [
    ("x,generator,10,PA,,24,,,,,,,", "unknown type 'generator'"),
    ("x,backup,-5,PA,,24,,,,,,,", "'cost' is negative"),
    ("x,backup,lots,PA,,24,,,,,,,", "'cost' is not a number"),
    ("x,backup,,PA,,24,,,,,,,", "empty 'cost'"),
    ("x,backup,10,PZ,,24,,,,,,,", "node 'PZ' is not a node"),
    ("x,backup,10,PA,,,,,,,,,", "a backup needs 'hours'"),
    ("x,backup,10,PA,,0,,,,,,,", "'hours' must be greater than 0"),
    ("x,backup,10,PA,gas,4,,,,,,,", "no dependency group or supplier layer 'gas'"),
    ("x,backup,10,CA,,4,,,,,,,", "has no dependencies to back up"),
    ("x,backup,10,PA,,4,S2,,,,,,", "column 'supplier' does not apply to a backup"),
    ("x,feed,10,PA,,,S1,,,,,,", "'S1' already supplies that group"),
    ("x,feed,10,PA,,,PA,,,,,,", "cannot supply itself"),
    ("x,feed,10,PA,,,W,,,,,,", "has no dependency on layer 'water'"),
    ("x,link,10,,,,,S1,CA,,,,", "link joins layer 'power' to layer 'water'"),
    ("x,link,10,,,,,S1,S1,,,,", "two different nodes"),
    ("x,link,10,,,,,S1,S9,,,,", "target 'S9' is not a node"),
    ("x,link,10,,,,,S1,S2,maybe,,,", "'directed' must be true or false"),
    ("P->S1,link,10,,,,,S1,S2,,,,", "already uses"),
    ("x,harden,10,,,,,,,,Q,,", "element 'Q' is not a node or edge"),
    ("x,harden,10,,,,,,,,S1,0.5,", "would weaken"),
    ("x,harden,10,,,,,,,,S1,-2,", "'factor' is negative"),
    ("x,harden,10,,,,,,,,S1,2,,extra", "14 fields, the header has 13"),
    (",harden,10,,,,,,,,S1,,", "empty 'id'"),
]


@pytest.mark.parametrize("row,message", BAD_ROWS)
def test_bad_candidate_rows_name_file_and_line(tmp_path, row, message):
    path = tmp_path / "cands.csv"
    path.write_text(HEADER + "# a comment line\nok,harden,1,,,,,,,,S1,,fine\n\n" + row + "\n")
    with pytest.raises(InputError) as err:
        read_candidates(path, make_town())
    assert message in str(err.value)
    assert err.value.file == str(path) and err.value.line == 5


def test_candidate_file_level_errors(tmp_path):
    town = make_town()
    with pytest.raises(InputError, match="no such file"):
        read_candidates(tmp_path / "missing.csv", town)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty file"):
        read_candidates(tmp_path / "empty.csv", town)
    (tmp_path / "nocost.csv").write_text("id,type\nx,harden\n")
    with pytest.raises(InputError, match="missing required column 'cost'"):
        read_candidates(tmp_path / "nocost.csv", town)
    (tmp_path / "dup.csv").write_text("id,type,cost,element\nx,harden,1,S1\nx,harden,2,S2\n")
    with pytest.raises(InputError, match="duplicate measure id 'x' \\(also on line 2\\)") as err:
        read_candidates(tmp_path / "dup.csv", town)
    assert err.value.line == 3


def test_candidates_round_trip_through_csv(tmp_path):
    town = make_town()
    cands = measures(town, TOWN_CANDIDATES)
    path = tmp_path / "c.csv"
    path.write_text(write_candidates(cands))
    again = read_candidates(path, town)
    assert [(m.id, m.type, m.cost, m.node, m.supplier, m.hours, m.element, m.source, m.directed)
            for m in again] == \
        [(m.id, m.type, m.cost, m.node, m.supplier, m.hours, m.element, m.source, m.directed)
         for m in cands]


# ------------------------------------------------------------------ suggestions
def test_node_impact_is_the_score_of_each_node_alone():
    """The weighted lost fractions of each layer's demand, never raw demands added."""
    town = make_town()
    town.weights["water"] = 2.0
    table = node_impact(town).set_index("id")["score"]
    for name in town.nodes["id"]:
        r = simulate(town, [name], engine="reference")
        before, after = r.layers(before=True), r.layers()
        expected = 0.0
        for layer in before.index:
            if before.loc[layer, "demand"] > 0:
                f = (before.loc[layer, "demand_served"] - after.loc[layer, "demand_served"]) \
                    / before.loc[layer, "demand"]
            else:
                f = (before.loc[layer, "functioning"] - after.loc[layer, "functioning"]) \
                    / before.loc[layer, "nodes"]
            expected += town.layer_weight(layer) * f
        assert table[name] == pytest.approx(expected)


def test_suggest_backs_up_and_feeds_the_pump_that_serves_most_people():
    town = make_town()
    sug = suggest(town, 1)
    assert {(m.type, m.node) for m in sug} == {("backup", "PA"), ("feed", "PA")}
    feed = next(m for m in sug if m.type == "feed")
    assert feed.supplier in {"S2", "S3"} and feed.cost == 300.0   # no coordinates
    backup = next(m for m in sug if m.type == "backup")
    assert backup.hours == 24 and backup.cost == 50 + 2 * 24
    # Suggestions are valid candidates (they survive the CSV reader).
    assert len(parse_candidates(pd.read_csv(pd.io.common.StringIO(write_candidates(sug)), dtype=str,
                                            keep_default_na=False), town)) == 2
    assert suggest(town, 0) == []
    two = suggest(town, 2)
    assert {m.node for m in two} == {"PA", "PB"}


def test_suggested_feed_is_the_nearest_node_of_the_same_kind():
    power = nx.Graph([("P", "S1"), ("P", "S2"), ("P", "S3")]); power.nodes["P"]["kind"] = "source"
    for name, x in (("S1", 0.0), ("S2", 500.0), ("S3", 2000.0), ("P", 100.0)):
        power.nodes[name].update(x=x, y=0.0, kind=power.nodes[name].get("kind", "sub"))
    water = nx.Graph([("W", "PA"), ("PA", "CA")]); water.nodes["W"]["kind"] = "source"
    water.nodes["CA"]["demand"] = 5
    for name, x in (("W", 0.0), ("PA", 1900.0), ("CA", 0.0)):
        water.nodes[name].update(x=x, y=0.0)
    s = InfrastructureSystem.from_networkx({"power": power, "water": water}, [("PA", "S1")])
    feed = next(m for m in suggest(s, 1) if m.type == "feed")
    assert feed.supplier == "S3" and feed.cost == pytest.approx(100 + 0.2 * 100)


# ------------------------------------------------------------------ the hazard module
def test_scenario_sampler_common_random_numbers(tmp_path):
    from cascade import hazards
    from cascade.redundancy import ScenarioSampler
    path = tmp_path / "storm.toml"
    path.write_text('[scenario]\nname = "storm"\nseed = 3\n\n[hazard]\ntype = "random"\n'
                    '[hazard.fraction]\npower = 0.4\n')
    town = make_town()
    sampler = ScenarioSampler(hazards.load_scenario(path), town)
    cands = measures(town, TOWN_CANDIDATES + [
        dict(id="harden-P", type="harden", cost="80", element="P"),
        dict(id="raise-S1", type="harden", cost="20", element="S1", factor="3"),
        dict(id="harden-W", type="harden", cost="5", element="W")])   # water never fails
    result = analyse(town, cands, sampler, 120, budget=150)
    ranking = result.ranking.set_index("id")
    assert ranking.loc["harden-W", "benefit"] == 0.0 and ranking.loc["harden-W", "changed"] == 0
    assert ranking.loc["feed-PA", "benefit"] > ranking.loc["feed-PB", "benefit"] > 0
    assert ranking.loc["harden-P", "benefit"] > 0
    # The same evaluation with another seed gives other samples but the same ranking leader.
    other = analyse(town, cands, ScenarioSampler(hazards.load_scenario(path), town, seed=11), 120)
    assert other.base_loss != result.base_loss
    assert other.ranking["id"].iloc[0] == result.ranking["id"].iloc[0]
    # Hardening acts only where it acts: the immune sample is the base sample minus P.
    c = compile_system(town)
    for i in range(50):
        n0, e0 = sampler.sample(c, i)
        n1, e1 = sampler.sample(c, i, immune=("P",))
        assert set(c.node_ids[n1]) == set(c.node_ids[n0]) - {"P"}


# ------------------------------------------------------------------ the time model
def timed_town():
    town = make_town()
    town.nodes["repair_time"] = 10.0
    town.edges["repair_time"] = 4.0
    return town


def test_a_backup_has_a_resilience_benefit_in_the_time_model():
    """S1 is repaired after 10 h; until then PA (1000 of 1010 people) is dry without a backup.
    A 24 h backup bridges the whole repair, a 5 h one half of it; statically both are worth 0."""
    town = timed_town()
    cands = measures(town, [dict(id="long", type="backup", cost="50", node="PA", hours="24"),
                            dict(id="short", type="backup", cost="10", node="PA", hours="5"),
                            dict(id="spare", type="harden", cost="1", element="S3")])
    sampler = FixedSampler([["S1"]])
    result = analyse(town, cands, sampler, 1, metric="resilience", crews=1)
    benefit = result.ranking.set_index("id")["benefit"]
    assert result.base_loss == pytest.approx(10 * 1000 / 1010)
    assert benefit["long"] == pytest.approx(10 * 1000 / 1010)
    assert benefit["short"] == pytest.approx(5 * 1000 / 1010)
    assert benefit["spare"] == 0.0
    static = analyse(town, cands, sampler, 1, metric="served").ranking.set_index("id")["benefit"]
    assert static["long"] == static["short"] == 0.0


def test_resilience_with_crews_and_the_plan_reuses_identical_samples():
    town = timed_town()
    cands = measures(town, TOWN_CANDIDATES)
    sets = TOWN_SETS * 3            # every failed set three times
    ev = Evaluator(town, FixedSampler(sets), len(sets), metric="resilience", crews={"power": 2},
                   strategy="critical")
    base = ev.losses([])[0]
    assert np.array_equal(base, np.tile(base[:len(TOWN_SETS)], 3))
    assert ev.recoveries == len({tuple(s) for s in TOWN_SETS})   # repeats not recovered again
    # Two power crews repair S1 and S2 at once: the joint sample costs PA 10 h, PB 10 h.
    assert base[3] == pytest.approx(10 * 1010 / 1010)
    plan = greedy_plan(ev, cands, 150)
    assert plan.ids[0] in {"feed-PA", "backup-PA"}
    assert ev.benefit([m for m in cands if m.id == "link-S1-S2"]).mean == 0.0


def test_plan_reports_a_single_measure_that_beats_the_greedy_plan():
    """Knapsack trap: a cheap measure with the best ratio eats the budget that the one big
    measure needed; the plan says so."""
    town = make_town()
    cands = measures(town, [dict(id="small", type="feed", cost="0.5", node="PB", supplier="S3"),
                            dict(id="big", type="feed", cost="100", node="PA", supplier="S3")])
    plan = analyse(town, cands, FixedSampler(TOWN_SETS), 6, budget=100).plan
    assert plan.ids == ["small"]
    assert plan.single_id == "big" and plan.single_benefit > plan.benefit.mean
    assert plan.best_ids == ["big"] and plan.gap == pytest.approx(plan.single_benefit - plan.benefit.mean)
    roomy = analyse(town, cands, FixedSampler(TOWN_SETS), 6, budget=100.5).plan
    assert roomy.ids == ["small", "big"] and roomy.single_id is None


def test_base_losses_are_the_ensemble_losses(tmp_path):
    """The base system's served-demand loss per sample is run_ensemble's, column by column."""
    from cascade.ensemble import run_ensemble
    from cascade.hazards import load_scenario
    from cascade.redundancy import ScenarioSampler
    path = tmp_path / "mixed.toml"
    path.write_text('[scenario]\nname = "mixed"\nseed = 9\n\n[hazard]\ntype = "random"\n'
                    'elements = "all"\n[hazard.fraction]\ndefault = 0.25\n')
    town = make_town()
    scenario = load_scenario(path)
    ensemble = run_ensemble(town, scenario, 80, threads=1)
    ev = Evaluator(town, ScenarioSampler(scenario, town), 80)
    loss, per_layer = ev.losses([])
    assert loss.std() > 0                                  # the samples differ
    np.testing.assert_allclose(loss, ensemble.loss[:, -1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(per_layer, ensemble.loss[:, :-1], rtol=0, atol=1e-12)


def test_threads_give_the_same_losses():
    town = make_town()
    rng = np.random.default_rng(4)
    names = list(town.nodes["id"]) + list(town.edges["id"])
    sets = [list(rng.choice(names, size=rng.integers(0, 4), replace=False)) for _ in range(40)]
    cands = measures(town, TOWN_CANDIDATES)
    serial = Evaluator(town, FixedSampler(sets), 40)
    parallel = Evaluator(town, FixedSampler(sets), 40, threads=2)
    for m in [[]] + [[c] for c in cands]:
        a, la = serial.losses(m)
        b, lb = parallel.losses(m)
        assert np.array_equal(a, b) and np.array_equal(la, lb)


def test_served_loss_weighs_layers_not_raw_demands():
    """With power's weight 1 (the default) a substation down counts as power's lost share of
    nodes, next to water's lost share of demand; v1 added power's and water's demands."""
    town = make_town()
    town.weights.clear()
    ev = Evaluator(town, FixedSampler([["S1"]]), 1)
    # S1 down: power loses 1 of its 4 nodes; water loses PA and CA: 1000 of 1010.
    assert ev.losses([])[0][0] == pytest.approx((1 / 4 + 1000 / 1010) / 2)
    town.weights.update({"water": 3.0})
    ev = Evaluator(town, FixedSampler([["S1"]]), 1)
    assert ev.losses([])[0][0] == pytest.approx((1 / 4 + 3 * 1000 / 1010) / 4)


def test_intervals_use_the_t_quantile():
    """Two samples: t(0.975, 1) = 12.7 times sd/sqrt(2), not 1.96 times."""
    b = Benefit.paired(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
    assert b.mean == 2.0
    assert b.high - b.mean == pytest.approx(12.7062047 * np.std([1.0, 3.0], ddof=1) / np.sqrt(2))
