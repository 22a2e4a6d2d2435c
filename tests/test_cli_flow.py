"""`cascade simulate` on a system with flow layers, as a user runs it (CliRunner and a real
process): the README's "Flow layers" example, its table and JSON, and bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli import cli

from conftest import write_dir

CASCADE = Path(sys.executable).parent / "cascade"

# The README's worked example ("Flow layers").
NODES = """id,layer,kind,demand,supply,dispatch,priority
           plant,power,source,0,120,90,
           peaker,power,source,0,40,20,
           north,power,,60,,,
           south,power,,50,,,
           hospital,power,,10,,,2
           works,water,source,0,500,,
           tank,water,source,0,150,,
           pump,water,,0,,,
           east,water,,300,,,
           west,water,,200,,,"""
EDGES = """id,source,target,reactance,capacity
           L1,plant,north,0.1,80
           L2,plant,south,0.2,60
           L3,north,south,0.1,40
           L4,peaker,south,0.1,50
           L5,south,hospital,0.1,
           P1,works,pump,,
           P2,pump,east,,350
           P3,pump,west,,150
           P4,tank,west,,100
           P5,west,east,,50"""
DEPS = """dependent,supplier,threshold
          pump,south,0.8
          works,plant,"""
TOML = """[system]
          name = "flow-town"
          [layers.power]
          rule = "dcflow"
          unit = "MW"
          [layers.water]
          rule = "flow"
          unit = "m3/h\""""


@pytest.fixture
def flow_town(tmp_path):
    return write_dir(tmp_path / "flow-town", NODES, EDGES, DEPS, TOML)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def strict_json(text):
    """json.loads that refuses NaN and Infinity (docs/format.md: plain numbers only)."""
    def refuse(name):
        raise ValueError(f"{name} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_json_has_served_flows_and_tripped(flow_town):
    """Intact: demand 120 above the setpoints 90 + 20, the 10 more go by headroom 30:20, so the
    plant makes 96.  Losing L1, the plant's 96 must take L2 (capacity 60) and north's 60 must
    come over L3 (capacity 40, flow −60 from north to south): both trip in step 1.  north is
    stranded (disconnected); the plant works alone; peaker's 40 serve the hospital (priority 2)
    in full and south at 30/50 = 0.6, below the pump's threshold 0.8: the pump stops in round 2.
    The tank (150) reaches west through P4 (capacity 100) and east only through P5 (50): east
    freezes at 50/300, west takes the other 50 of P4's 100 (0.25)."""
    res = run("simulate", flow_town, "--fail", "L1", "--engine", "reference", "--format", "json")
    assert res.exit_code == 0, res.output
    data = strict_json(res.stdout)
    assert data["rounds"] == 2
    assert data["served"] == pytest.approx({"south": 0.6, "hospital": 1.0, "east": 50 / 300, "west": 0.25})
    assert data["flows"] == pytest.approx({"L4": 40.0, "L5": 10.0})
    assert [{k: t[k] for k in ("id", "layer", "round", "step", "capacity")} for t in data["tripped"]] == [
        {"id": "L2", "layer": "power", "round": 1, "step": 1, "capacity": 60.0},
        {"id": "L3", "layer": "power", "round": 1, "step": 1, "capacity": 40.0}]
    assert [t["flow"] for t in data["tripped"]] == pytest.approx([96.0, -60.0])
    assert [(f["id"], f["round"], f["cause"], f["via"]) for f in data["failed"]] == [
        ("north", 1, "disconnected", None), ("pump", 2, "dependency", "south")]
    assert data["layers"]["power"]["demand_served"] == pytest.approx(40.0)
    assert data["layers"]["water"]["demand_served"] == pytest.approx(100.0)
    assert data["layers"]["water"]["service_before"] == pytest.approx(1.0)


def test_intact_json_has_every_flow_and_no_trip(flow_town):
    data = strict_json(run("simulate", flow_town, "--engine", "reference", "--format", "json").stdout)
    assert data["flows"] == pytest.approx({"L1": 63.0, "L2": 33.0, "L3": 3.0, "L4": 24.0, "L5": 10.0})
    assert data["tripped"] == [] and data["failed"] == []
    assert set(data["served"]) == {"north", "south", "hospital", "east", "west"}


def test_table_shows_units_shortfalls_trips_and_loading(flow_town):
    res = run("simulate", flow_town, "--fail", "L1", "--engine", "reference")
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.stdout.splitlines()]
    assert lines[0] == ("System flow-town: failed 0 node(s) and 1 edge(s); the cascade ran 2 round(s), "
                        "2 node(s) stopped working, 2 branch(es) tripped on overload, 3 node(s) served in "
                        "part; demand no longer served: power 80.0 of 120.0 MW (66.7%), water 400.0 of "
                        "500.0 m3/h (80.0%).")
    assert lines[4].split() == ["power", "4/5", "40.0/120.0", "MW", "100.0%", "33.3%"]
    assert lines[5].split() == ["water", "4/5", "100.0/500.0", "m3/h", "100.0%", "20.0%"]
    assert "  power: south 30.0/50.0 MW (60.0%)" in lines
    assert "  water: east 50.0/300.0 m3/h (16.7%), west 50.0/200.0 m3/h (25.0%)" in lines
    assert "  round 1, step 1: L2 [power] 96.0 MW / 60.0 MW = 160.0%" in lines
    assert "  round 1, step 1: L3 [power] -60.0 MW / 40.0 MW = 150.0%" in lines
    assert "  L4 [power] 40.0 MW / 50.0 MW = 80.0%" in lines
    assert "    dependency [water 1]: pump (via south)" in lines


DEMO_FLOW = Path(__file__).resolve().parents[1] / "networks" / "demo_town_flow"


def test_summary_says_what_partial_service_lost():
    """A water main lost on the demo town with flows: no node stops, 86 consumers get part of
    their demand.  The summary says so, with the water no longer served in m3/h; the oracle is
    the JSON's served fractions times the demand of nodes.csv."""
    import pandas as pd

    res = run("simulate", DEMO_FLOW, "--fail", "W-TP-2->W-PS-05")
    data = strict_json(run("simulate", DEMO_FLOW, "--fail", "W-TP-2->W-PS-05", "--format", "json").stdout)
    assert res.exit_code == 0 and data["failed"] == [], res.output
    nodes = pd.read_csv(DEMO_FLOW / "nodes.csv", keep_default_na=False)
    water = nodes[(nodes.layer == "water") & (pd.to_numeric(nodes.demand, errors="coerce") > 0)]
    demand = dict(zip(water.id, water.demand.astype(float)))
    partial = [k for k in demand if data["served"][k] < 1 - 1e-9]
    lost = sum(d * (1 - data["served"][k]) for k, d in demand.items())
    total = sum(demand.values())
    assert len(partial) == 86 and 400 < lost < total
    first = res.stdout.splitlines()[0]
    assert first == ("System demo_town_flow: failed 0 node(s) and 1 edge(s); the cascade ran 0 round(s), "
                     f"0 node(s) stopped working, {len(partial)} node(s) served in part; demand no longer "
                     f"served: water {lost:,.1f} of {total:,.1f} m3/h ({100 * lost / total:.1f}%).")
    # intact: nothing lost, nothing to list
    intact = run("simulate", DEMO_FLOW).stdout.splitlines()[0]
    assert intact.endswith("0 node(s) stopped working, 0 node(s) served in part.")


FLOW_CSV_HEADER = ("id,element,layer,status,round,step,cause,via,group,served_fraction,"
                   "served (MW),demand (MW),served (m3/h),demand (m3/h),flow (MW),capacity (MW),loading")


def test_csv_of_flow_layers_has_partial_service_and_trips(flow_town):
    """Flow layers: stopped nodes, nodes served in part with their amounts (one column per
    unit, named with it), the failed edge and the tripped branches with their loading."""
    res = run("simulate", flow_town, "--fail", "L1", "--engine", "reference", "--format", "csv")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == FLOW_CSV_HEADER
    assert lines[1:6] == [
        "north,node,power,stopped,1,,disconnected,,,0.0,0.0,60.0,,,,,",
        "pump,node,water,stopped,2,,dependency,south,,0.0,,,0.0,0.0,,,",
        "south,node,power,partial,,,,,,0.6,30.0,50.0,,,,,",
        "east,node,water,partial,,,,,,0.1666666667,,,50.0,300.0,,,",
        "west,node,water,partial,,,,,,0.25,,,50.0,200.0,,,"]
    assert lines[6] == "L1,edge,power,failed,0,,initial,,,,,,,,,,"
    assert lines[7:] == ["L2,edge,power,tripped,1,1,,,,,,,,,96.0,60.0,1.6",
                         "L3,edge,power,tripped,1,1,,,,,,,,,-60.0,40.0,1.5"]


def test_flow_csv_agrees_with_the_json(flow_town, tmp_path):
    """Every number of the CSV is the JSON's (a separate path: CascadeResult.to_dict)."""
    import pandas as pd

    data = strict_json(run("simulate", flow_town, "--fail", "L1", "--format", "json").stdout)
    out = tmp_path / "r.csv"
    res = subprocess.run([str(CASCADE), "simulate", str(flow_town), "--fail", "L1", "--format", "csv",
                          "--output", str(out)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == "" and res.stderr.strip() == f"wrote {out}"
    frame = pd.read_csv(out, keep_default_na=False, na_values=[""])
    stopped = frame[frame.status == "stopped"]
    assert list(stopped.id) == [f["id"] for f in data["failed"]]
    assert (stopped.served_fraction == 0).all()
    partial = frame[frame.status == "partial"].set_index("id")
    expected = {k: v for k, v in data["served"].items() if v < 1 - 1e-9}
    assert sorted(partial.index) == sorted(expected)
    demand = {"south": 50.0, "east": 300.0, "west": 200.0}
    for node, fraction in expected.items():
        unit = "MW" if partial.loc[node, "layer"] == "power" else "m3/h"
        assert partial.loc[node, "served_fraction"] == pytest.approx(fraction)
        assert partial.loc[node, f"served ({unit})"] == pytest.approx(fraction * demand[node])
        assert partial.loc[node, f"demand ({unit})"] == demand[node]
    trips = frame[frame.status == "tripped"]
    assert len(trips) == len(data["tripped"])
    for (_, row), t in zip(trips.iterrows(), data["tripped"]):
        assert (row.id, int(row["round"]), int(row.step)) == (t["id"], t["round"], t["step"])
        assert row["flow (MW)"] == pytest.approx(t["flow"]) and row["capacity (MW)"] == t["capacity"]
        assert row.loading == pytest.approx(abs(t["flow"]) / t["capacity"]) and row.loading > 1


def test_csv_of_v1_systems_is_unchanged(town):
    """No flow layer: the CSV is the failed list as before, columns id,layer,round,cause,via,group."""
    res = run("simulate", town, "--fail", "sub1", "--format", "csv")
    data = strict_json(run("simulate", town, "--fail", "sub1", "--format", "json").stdout)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "id,layer,round,cause,via,group"
    assert [line.split(",")[:4] for line in lines[1:]] == [
        [f["id"], f["layer"], str(f["round"]), f["cause"]] for f in data["failed"]]
    assert len(lines) > 2


def test_default_core_engine_prints_what_the_reference_prints(flow_town, tmp_path):
    """The default engine (core) runs flow layers: same JSON numbers, same table, same CSV."""
    for fmt in ("json", "table", "csv"):
        core = run("simulate", flow_town, "--fail", "L1", "--format", fmt)
        ref = run("simulate", flow_town, "--fail", "L1", "--engine", "reference", "--format", fmt)
        assert core.exit_code == 0 and ref.exit_code == 0, core.output
        if fmt == "json":
            a, b = strict_json(core.stdout), strict_json(ref.stdout)
            assert a.pop("engine") == "core" and b.pop("engine") == "reference"
            assert a["served"] == pytest.approx(b["served"], rel=1e-9) and a["flows"] == pytest.approx(b["flows"])
            assert a["tripped"] == [dict(t, flow=pytest.approx(t["flow"])) for t in b["tripped"]]
            assert a["failed"] == b["failed"] and a["rounds"] == b["rounds"] == 2
        else:
            assert core.stdout == ref.stdout


def test_real_process(flow_town, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([str(CASCADE), "simulate", str(flow_town), "--fail", "L1", "--engine", "reference",
                           "--format", "json", "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert strict_json(out.read_text())["served"]["south"] == pytest.approx(0.6)
    table = subprocess.run([str(CASCADE), "simulate", str(flow_town), "--fail", "L1", "--engine", "reference"],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "Tripped on overload" in table.stdout


@pytest.mark.parametrize("file, old, new, words", [
    ("edges.csv", "L2,plant,south,0.2,60", "L2,plant,south,,60", "edges.csv, line 3: edge 'L2' of dcflow layer"),
    ("nodes.csv", "tank,water,source,0,150,,", "tank,water,source,0,-150,,", "nodes.csv, line 8: 'supply' is negative"),
    ("dependencies.csv", "pump,south,0.8", "pump,south,1.2", "dependencies.csv, line 2: 'threshold' must be in (0, 1]"),
    ("nodes.csv", "peaker,power,source,0,40,20,", "peaker,power,source,0,40,,",
     "nodes.csv, line 3: node 'peaker' has no dispatch"),
    ("nodes.csv", "plant,power,source,0,120,90,", "plant,power,source,0,120,190,",
     "nodes.csv, line 2: node 'plant': dispatch 190 is above its supply 120"),
    ("nodes.csv", "works,water,source,0,500,,", "works,water,source,0,,,",
     "nodes.csv, line 7: node 'works' has kind = source but no supply"),
])
def test_bad_input_exits_2_with_one_line(flow_town, tmp_path, file, old, new, words):
    path = flow_town / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    out = tmp_path / "never.json"
    proc = subprocess.run([str(CASCADE), "simulate", str(flow_town), "--engine", "reference", "--format", "json",
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and not out.exists()
    assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(after: str) -> str:
    """The first fenced block after the line ``after`` in README.md."""
    text = README.read_text(encoding="utf-8")
    start = text.index("```", text.index(after))
    body = text.index("\n", start) + 1
    return text[body:text.index("```", body)]


def test_readme_example_is_this_system_and_prints_what_it_shows(tmp_path, monkeypatch):
    """The README's files are the ones above and the bundled networks/flow_town, and its printed
    table is what the CLI prints."""
    clean = lambda text: [line.strip() for line in text.strip().splitlines()]
    bundled = README.parent / "networks" / "flow_town"
    assert clean(readme_block("`networks/flow_town/nodes.csv`:")) == clean(NODES) \
        == clean((bundled / "nodes.csv").read_text())
    assert clean(readme_block("`networks/flow_town/edges.csv`:")) == clean(EDGES) \
        == clean((bundled / "edges.csv").read_text())
    assert clean((bundled / "dependencies.csv").read_text()) == clean(DEPS)
    text = README.read_text(encoding="utf-8")
    start = text.index("$ cascade simulate networks/flow_town --fail L1\n")
    expected = text[text.index("\n", start) + 1:text.index("```", start)]
    monkeypatch.chdir(README.parent)
    res = run("simulate", "networks/flow_town", "--fail", "L1")
    assert res.exit_code == 0 and res.stdout.rstrip("\n") == expected.rstrip("\n")
