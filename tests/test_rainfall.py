"""Rainfall through the drainage system: design storms, catchments, the flood-cascade fixpoint."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from cascade import compile_system, read_system
from cascade.cli import cli
from cascade.compiled import Workspace
from cascade.ensemble import run_ensemble
from cascade.errors import InputError
from cascade.hazards import Draws, load_scenario
from cascade.rainfall import gev_depth, gumbel_depth, read_catchments
from cascade.redundancy import Evaluator, ScenarioSampler, read_candidates

from conftest import write_dir

CASCADE = str(Path(sys.executable).parent / "cascade")


def square(x0, y0, size=1000.0):
    return [[[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]]


def catchment_file(path: Path, features=None) -> Path:
    if features is None:
        features = [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square(0, 0)},
             "properties": {"id": "A", "storage_mm": 20, "ponding_area_m2": 200000, "pumps": ["PA"]}},
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square(1000, 0)},
             "properties": {"id": "B", "storage_m3": 30000, "ponding_area_m2": 200000,
                            "pumps": {"PB": 25000}}},
        ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.fixture
def basin(tmp_path):
    """Two catchments A (x 0-1000 m) and B (x 1000-2000 m), each 1 km²; see the fixpoint test."""
    system = write_dir(
        tmp_path / "basin",
        """id,layer,kind,demand,x,y,flood_threshold,pump_capacity
           SRC,power,source,0,5000,500,,
           S1,power,substation,0,1500,500,0.30,
           S2,power,substation,0,500,500,0.15,
           X,power,feeder,0,100,900,0.30,
           T,power,consumer,10,100,100,,
           Y,power,consumer,5,700,700,0.50,
           PA,drainage,pump,0,300,300,,20000
           PB,drainage,pump,0,1700,300,,""",
        """id,source,target,directed,kind
           SRC-S1,SRC,S1,true,line
           SRC-S2,SRC,S2,true,line
           SRC-X,SRC,X,true,line
           X-T,X,T,true,cable
           SRC-Y,SRC,Y,true,line""",
        """dependent,supplier,group,delay
           PA,S1,,0
           PB,S2,,0""",
        """[system]
           name = "basin"
           [layers.power]
           rule = "source"
           [layers.drainage]
           rule = "none"
        """)
    catchment_file(tmp_path / "catchments.geojson")
    scen = tmp_path / "storm.toml"
    scen.write_text(f"""
[scenario]
name = "storm"
system = "basin"
seed = 1
samples = 4
annual_rate = 0.05

[hazard]
type = "rainfall"
catchments = "catchments.geojson"
depth = 100.0
duration = 2.0

[hazard.threshold]
cable = 0.25
""")
    return system, scen


def test_design_storm_quantiles_match_scipy():
    # Independent oracle: scipy's distributions (genextreme uses c = -shape).
    assert gumbel_depth(100, 50.0, 15.0) == pytest.approx(stats.gumbel_r.ppf(0.99, 50.0, 15.0))
    assert gev_depth(100, 50.0, 15.0, 0.1) == pytest.approx(stats.genextreme.ppf(0.99, -0.1, 50.0, 15.0))
    assert gev_depth(50, 50.0, 15.0, -0.2) == pytest.approx(stats.genextreme.ppf(0.98, 0.2, 50.0, 15.0))
    assert gev_depth(10, 50.0, 15.0, 0.0) == pytest.approx(gumbel_depth(10, 50.0, 15.0))


def test_catchment_areas_and_storage(tmp_path):
    cats = read_catchments(catchment_file(tmp_path / "c.geojson"))
    assert [c.id for c in cats] == ["A", "B"]
    assert cats[0].area == pytest.approx(1e6) and cats[0].storage_m3 == pytest.approx(20000)
    assert cats[1].storage_m3 == 30000 and cats[1].pumps == {"PB": 25000.0}
    # A hole counts out of the area.
    ring = square(0, 0)[0]
    hole = [[100, 100], [200, 100], [200, 200], [100, 200]]
    f = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring, hole]},
          "properties": {"id": "H", "storage_mm": 0}}]
    assert read_catchments(catchment_file(tmp_path / "h.geojson", f))[0].area == pytest.approx(1e6 - 1e4)


def test_fixpoint_against_a_hand_computed_case(basin):
    """Rain P = 100 mm over 2 h on two catchments of A = 1 km² each, water ponding on
    200 000 m² of each; rain volume 100 000 m³ per catchment.

    Catchment A: storage 20 mm = 20 000 m³; pump PA, 20 000 m³/h (node column), fed by S1 in B.
    Catchment B: storage 30 000 m³; pump PB, 25 000 m³/h (catchment file), fed by S2 in A.

    Step 1, both pumps run: A ponds 100 000 - 20 000 - 2·20 000 = 40 000 m³ -> 0.20 m;
    B ponds 100 000 - 30 000 - 2·25 000 = 20 000 m³ -> 0.10 m.  S2 (threshold 0.15 m) floods,
    S1 (0.30 m, in B) does not; X (0.30 m), Y (0.50 m) and the cable X-T (0.25 m) stay dry.
    The cascade: PB loses S2 and stops.
    Step 2, PB off: B ponds 70 000 m³ -> 0.35 m > 0.30: S1 floods (the second iteration), PA
    loses S1 and stops.
    Step 3, both off: A ponds 80 000 m³ -> 0.40 m: X (0.30) and the cable X-T (0.25, by its
    midpoint (100, 500) in A) flood, Y (0.50) does not; T loses its feed.
    Step 4: no pump changed, done.  Flooded: S2, S1, X and X-T; down: those, PA, PB, T.
    """
    system_dir, scen_path = basin
    system = read_system(system_dir)
    compiled = compile_system(system)
    scenario = load_scenario(scen_path)
    prep = scenario.prepare(system, compiled)
    ws = Workspace(compiled)
    trace = []
    nodes, edges = scenario.hazard.settle(prep, Draws.of(1, 0), compiled, ws, trace=trace)
    depths = [t["depth"].tolist() for t in trace]
    assert depths == [pytest.approx([0.20, 0.10]), pytest.approx([0.20, 0.35]), pytest.approx([0.40, 0.35])]
    assert [t["pumps"].tolist() for t in trace] == [[True, True], [True, False], [False, False]]
    name = lambda idx: sorted(compiled.node_ids[idx])
    assert [name(t["nodes"]) for t in trace] == [["S2"], ["S1", "S2"], ["S1", "S2", "X"]]
    assert name(nodes) == ["S1", "S2", "X"]
    assert list(compiled.edge_ids[edges]) == ["X-T"]
    down = sorted(compiled.node_ids[ws.working == 0])
    assert down == ["PA", "PB", "S1", "S2", "T", "X"]
    # The fixpoint state is the cascade of the final direct failures run at once.
    fresh = Workspace(compiled)
    fresh.run(nodes, edges)
    assert np.array_equal(fresh.working, ws.working)
    # Without the feedback (every pump running) only S2 floods: sample() is the first step.
    n0, e0 = scenario.sample(compiled, 0)
    assert name(n0) == ["S2"] and len(e0) == 0


def test_immune_and_threshold_scale_act_inside_the_fixpoint(basin):
    system_dir, scen_path = basin
    system = read_system(system_dir)
    compiled = compile_system(system)
    scenario = load_scenario(scen_path)
    scenario.prepare(system, compiled)
    ws = Workspace(compiled)
    # S2 walled: PB keeps running, B stays at 0.10 m, nothing floods.
    nodes, edges = scenario.run(compiled, ws, 0, immune=["S2"])
    assert len(nodes) == 0 and len(edges) == 0 and ws.working.all()
    # S1 raised to 0.30 · 1.2 = 0.36 m > 0.35: PA keeps running, A stays at 0.20 m.
    nodes, _ = scenario.run(compiled, ws, 0, fragility_scale={"S1": 1.2})
    assert sorted(compiled.node_ids[nodes]) == ["S2"]


@pytest.mark.parametrize("delay, flooded", [(1.0, ["S1", "S2", "X"]), (2.0, ["S2"]), (24.0, ["S2"])])
def test_a_backup_that_outlasts_the_storm_keeps_the_pump_running(basin, delay, flooded):
    """PB's feed from S2 gets a backup of `delay` hours.  The storm lasts 2 h: a backup of at
    least 2 h keeps PB pumping after S2 floods, so B stays at 0.10 m and only S2 floods (the
    static cascade still counts PB as down: backups are exhausted there); 1 h is too short and
    the chain of the hand-computed case follows."""
    system_dir, scen_path = basin
    deps = system_dir / "dependencies.csv"
    deps.write_text(deps.read_text().replace("PB,S2,,0", f"PB,S2,,{delay}"))
    system = read_system(system_dir)
    compiled = compile_system(system)
    scenario = load_scenario(scen_path)
    scenario.prepare(system, compiled)
    ws = Workspace(compiled)
    nodes, _ = scenario.run(compiled, ws, 0)
    assert sorted(compiled.node_ids[nodes]) == flooded
    assert not ws.working[list(compiled.node_ids).index("PB")]


def test_a_flooded_pump_does_not_run_on_its_backup(basin):
    """As the backup case, but PB itself floods at 0.05 m (B is at 0.10 m with both pumps):
    it stops although its backup outlasts the storm, and B rises to 0.35 m -> S1 floods."""
    system_dir, scen_path = basin
    deps = system_dir / "dependencies.csv"
    deps.write_text(deps.read_text().replace("PB,S2,,0", "PB,S2,,24"))
    nodes_csv = system_dir / "nodes.csv"
    nodes_csv.write_text(nodes_csv.read_text().replace("PB,drainage,pump,0,1700,300,,", "PB,drainage,pump,0,1700,300,0.05,"))
    system = read_system(system_dir)
    compiled = compile_system(system)
    scenario = load_scenario(scen_path)
    scenario.prepare(system, compiled)
    nodes, _ = scenario.run(compiled, Workspace(compiled), 0)
    assert sorted(compiled.node_ids[nodes]) == ["PB", "S1", "S2", "X"]


def test_ensemble_runs_the_fixpoint_on_threads_and_attributes_losses(basin):
    system_dir, scen_path = basin
    system = read_system(system_dir)
    scenario = load_scenario(scen_path)
    one = run_ensemble(system, scenario, 6, threads=1, attribute=True)
    two = run_ensemble(system, scenario, 6, threads=2, attribute=True)
    assert np.array_equal(one.loss, two.loss)
    c = one.compiled
    # Power: T (10) of 15 demand is lost; drainage (no demand): 2 of 2 pumps.
    layer = {name: k for k, name in enumerate(c.layer_names)}
    assert one.loss[:, layer["power"]] == pytest.approx(np.full(6, 10 / 15))
    assert one.loss[:, layer["drainage"]] == pytest.approx(np.ones(6))
    assert one.n_direct.tolist() == [[3, 1]] * 6
    # Equal shares among the 3 nodes and 1 edge that flooded; they add up to the loss.
    total = one.node_share.sum(axis=0) + one.edge_share.sum(axis=0)
    assert total == pytest.approx(one.loss.sum(axis=0))
    s1 = list(c.node_ids).index("S1")
    assert one.node_share[s1] == pytest.approx(one.loss.sum(axis=0) / 4)


def test_a_second_feed_for_the_pump_changes_the_outcome(basin, tmp_path):
    """Feeding PB also from SRC directly (a dual circuit) keeps it running when S2 floods:
    B stays at 0.10 m, S1 stays dry, PA keeps running, A stays at 0.20 m: only S2 floods."""
    system_dir, scen_path = basin
    system = read_system(system_dir)
    scenario = load_scenario(scen_path)
    cand = tmp_path / "cand.csv"
    cand.write_text("id,type,cost,node,supplier,group\n"
                    "dual-PB,feed,10,PB,SRC,\n")
    sampler = ScenarioSampler(scenario, system)
    ev = Evaluator(system, sampler, 3)
    base, _ = ev.losses()
    measure = read_candidates(cand, system)
    after, _ = ev.losses(measure)
    assert np.all(after < base)
    failures = ev._settled(frozenset({"dual-PB"}), ev._systems[frozenset({"dual-PB"})][1])
    assert [sorted(ev.compiled.node_ids[n]) for n, _ in failures] == [["S2"]] * 3


@pytest.mark.parametrize("hazard, message", [
    ('depth = 10.0\nreturn_period = 10', "give exactly one of 'hazard.depth'"),
    ('return_period = 10', "needs the fit of annual-maximum depths"),
    ('depth = -1.0', "key 'hazard.depth': must be >= 0.0"),
    ('depth = 10.0\n[hazard.gumbel]\nlocation = 1.0\nscale = 1.0', "is used with 'hazard.return_period'"),
    ('return_period = 10\n[hazard.gev]\nlocation = 1.0\nscale = 0.0\nshape = 0.1', "'hazard.gev.scale': must be > 0"),
    ('depth = 10.0\nwet = 1', "unknown key 'hazard.wet'"),
])
def test_bad_rainfall_keys_are_one_line(tmp_path, hazard, message):
    catchment_file(tmp_path / "catchments.geojson")
    f = tmp_path / "s.toml"
    f.write_text('[scenario]\nseed = 1\n[hazard]\ntype = "rainfall"\ncatchments = "catchments.geojson"\n'
                 f'duration = 1.0\n{hazard}\n')
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_scenario(f)


@pytest.mark.parametrize("props, message", [
    ({"id": "A", "pumps": []}, "exactly one of the properties 'storage_mm' and 'storage_m3'"),
    ({"id": "A", "storage_mm": -3}, "'storage_mm' must be a number >= 0"),
    ({"id": "A", "storage_mm": 1, "ponding_area_m2": 2e6}, "exceeds the area"),
    ({"id": "A", "storage_mm": 1, "pumps": 5}, "property 'pumps' must be"),
    ({"id": "A", "storage_mm": 1, "colour": "red"}, "unknown property 'colour'"),
    ({"storage_mm": 1}, "property 'id'"),
])
def test_bad_catchment_files(tmp_path, props, message):
    f = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square(0, 0)}, "properties": props}]
    with pytest.raises(InputError, match=message):
        read_catchments(catchment_file(tmp_path / "c.geojson", f))


def test_unknown_pump_and_missing_capacity_name_the_catchment(basin, tmp_path):
    system_dir, scen_path = basin
    system = read_system(system_dir)
    for pumps, message in ((["NOPE"], "pump 'NOPE' is not a node"), (["PB"], "pump 'PB' has no capacity")):
        catchment_file(scen_path.parent / "catchments.geojson", [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square(0, 0)},
             "properties": {"id": "A", "storage_mm": 0, "pumps": pumps}}])
        with pytest.raises(InputError, match=message):
            load_scenario(scen_path).prepare(system)


def test_cli_scenario_with_rainfall_and_bad_file(basin, tmp_path):
    system_dir, scen_path = basin
    r = CliRunner().invoke(cli, ["scenario", str(system_dir), str(scen_path), "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["scenario"]["hazard"]["type"] == "rainfall"
    assert data["scenario"]["hazard"]["design_depth_mm"] == 100.0
    assert data["direct_failures_mean"] == {"nodes": 3.0, "edges": 1.0}
    assert data["loss"]["power"]["mean"] == pytest.approx(10 / 15)
    bad = tmp_path / "bad.toml"
    bad.write_text(scen_path.read_text().replace('catchments = "catchments.geojson"',
                                                 'catchments = "missing.geojson"'))
    p = subprocess.run([CASCADE, "scenario", str(system_dir), str(bad)], capture_output=True, text=True)
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.geojson" in lines[0] and "no such catchment file" in lines[0]
