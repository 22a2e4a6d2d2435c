"""The demo town with flows (networks/demo_town_flow): built by networks/build_demo_town.py, an
overload cascade checked against the reference engine, a water district only partly served,
the line-loading map and the report, as a user runs them."""
from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade import read_system, simulate
from cascade.cli import cli
from cascade.reference_flow import run_flow_cascade
from cascade.report import draw_map, flow_state

from conftest import write_dir

ROOT = Path(__file__).resolve().parent.parent
FLOW_DEMO = ROOT / "networks" / "demo_town_flow"
DEMO = ROOT / "networks" / "demo_town"
CASCADE = str(Path(sys.executable).parent / "cascade")
LINE = "P-SUB-T06->P-SUB-T07"          # the 110 kV line whose loss starts the demo's overload cascade


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def town():
    return read_system(FLOW_DEMO)


def test_the_builder_writes_both_towns_as_committed(tmp_path):
    """networks/build_demo_town.py makes the v1 town unchanged and the flow town as committed."""
    proc = subprocess.run([sys.executable, str(ROOT / "networks" / "build_demo_town.py"), "--out", str(tmp_path / "v1"),
                           "--flow-out", str(tmp_path / "flow"), "--catchments", str(tmp_path / "c.geojson")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for made, kept in ((tmp_path / "v1", DEMO), (tmp_path / "flow", FLOW_DEMO)):
        # .cascade-cache/ (compiled arrays of earlier runs, git-ignored) is not the builder's
        names = sorted(p.name for p in kept.iterdir() if not p.name.startswith("."))
        assert sorted(p.name for p in made.iterdir()) == names
        match, mismatch, errors = filecmp.cmpfiles(made, kept, names, shallow=False)
        assert mismatch == [] and errors == [], (kept, mismatch)


def test_the_flow_demo_loads_with_the_same_assets(town):
    v1 = read_system(DEMO)
    assert list(town.nodes["id"]) == list(v1.nodes["id"])
    assert list(town.edges["id"]) == list(v1.edges["id"])
    rules = town.layer_rules()
    assert (rules["power"], rules["water"], rules["gas"]) == ("dcflow", "flow", "flow")
    assert {k: town.layer_unit(k) for k in ("power", "water", "gas")} == {"power": "MW", "water": "m3/h",
                                                                          "gas": "m3/h"}
    layer = dict(zip(town.nodes["id"], town.nodes["layer"]))
    power = town.edges["source"].map(layer) == "power"
    assert town.edges.loc[power, "reactance"].notna().all()
    # The intact town serves everything, and some rated lines run near (not above) their limit.
    base = simulate(town)
    assert (base.layers()["service"].fillna(1.0) == 1.0).all()
    cap = town.edges["capacity"].to_numpy(float)
    rated = np.isfinite(base.flows) & np.isfinite(cap) & (cap > 0)
    loading = np.abs(base.flows[rated]) / cap[rated]
    assert loading.max() <= 1.0 and (loading > 0.85).sum() >= 2


WEAK = [("P-SUB-T05->P-SUB-T06", 1, 1), ("P-SUB-T04~P-SUB-T10", 1, 1)]


@pytest.mark.parametrize("fail, named, exact", [
    (LINE, WEAK + [("P-SUB-T02->P-SUB-T03", 1, 3)], False),   # then more, in four steps
    ("P-SUB-T03", WEAK, True),                                # the weak spot's two lines only
])
def test_a_loss_trips_named_lines_as_the_reference_engine_does(town, fail, named, exact):
    is_edge = fail in set(town.edges["id"])
    core = simulate(town, [fail])
    ref = run_flow_cascade(town, failed_edges=[fail]) if is_edge else run_flow_cascade(town, [fail])
    trips = [(t.id, t.round, t.step) for t in core.trips.itertuples(index=False)]
    assert trips == [(t.edge, t.round, t.step) for t in ref.trips]
    np.testing.assert_allclose(core.trips["flow"].to_numpy(), [t.flow for t in ref.trips], rtol=1e-9, atol=1e-9)
    assert (sorted(trips) == sorted(named)) if exact else set(named) <= set(trips)
    if not exact:
        assert max(s for _, _, s in trips) >= 3
    assert {str(n) for n in core.failed()["id"]} == set(ref.failures)
    # Every trip is over its rating at the moment of the trip.
    assert (core.trips["flow"].abs() > core.trips["capacity"]).all()


def test_losing_a_treatment_works_leaves_a_district_partly_served(town):
    core = simulate(town, ["W-TP-2"])
    ref = run_flow_cascade(town, failed_nodes=["W-TP-2"])
    c = core.compiled
    water = np.asarray(c.node_layer) == list(c.layer_names).index("water")
    partial = {str(c.node_ids[v]) for v in np.flatnonzero(water & core.working & (core.served > 0)
                                                          & (core.served < 1 - 1e-9))}
    assert len(partial) > 50 and all(v.startswith("W-C") for v in partial)
    assert partial == {v for v, f in ref.served.items() if v.startswith("W-") and 0 < f < 1 - 1e-9}
    for v in partial:
        assert core.served[c.node_index([v])[0]] == pytest.approx(ref.served[v], rel=1e-9)
    service = core.layers().loc["water", "service"]
    assert 0.0 < service < 1.0


def test_simulate_table_shows_the_cascade_by_step_and_partial_supply():
    res = run("simulate", FLOW_DEMO, "--fail", LINE)
    assert res.exit_code == 0, res.output
    assert "Tripped on overload" in res.output and "round 1, step 3: P-SUB-T02->P-SUB-T03 [power]" in res.output
    assert "Served below demand" in res.output and " MW (" in res.output


def _loading_collection(fig):
    from matplotlib.collections import LineCollection

    found = [c for ax in fig.axes for c in ax.collections
             if isinstance(c, LineCollection) and c.get_array() is not None and c.get_gid() == "dcflow-loading"]
    assert len(found) == 1
    return found[0]


def test_map_colours_the_loading_of_the_intact_and_the_failed_town(town):
    for fail in ([], [LINE]):
        props = flow_state(town, fail)
        fig = draw_map(town, props)
        result = simulate(town, fail)
        cap = town.edges["capacity"].to_numpy(float)
        rated = np.isfinite(result.flows) & np.isfinite(cap) & (cap > 0)
        expected = np.sort(np.minimum(np.abs(result.flows[rated]) / cap[rated], 1.0))
        drawn = np.sort(np.asarray(_loading_collection(fig).get_array(), float))
        np.testing.assert_allclose(drawn, expected, rtol=1e-12)
        labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        n_trips = 0 if result.trips is None else len(result.trips)
        assert any(label == f"tripped on overload ({n_trips})" for label in labels) == bool(n_trips)
        assert any("line loading" in ax.get_ylabel() for ax in fig.axes)   # the colour bar's legend
        import matplotlib.pyplot as plt
        plt.close(fig)


def test_map_command_writes_png_and_svg_for_the_base_state_and_a_failure(tmp_path):
    png = tmp_path / "base.png"
    res = run("map", FLOW_DEMO, "-o", png)
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "fail.svg"
    proc = subprocess.run([CASCADE, "map", str(FLOW_DEMO), "--fail", LINE, "-o", str(svg)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "<svg" in svg.read_text()
    # --fail with --result, or an unknown id: one line, exit 2, nothing written
    sim = tmp_path / "sim.json"
    assert run("simulate", FLOW_DEMO, "--fail", LINE, "--format", "json", "-o", sim).exit_code == 0
    for extra in (["--result", str(sim), "--fail", LINE], ["--fail", "NO-SUCH-LINE"]):
        out = tmp_path / "bad.png"
        proc = subprocess.run([CASCADE, "map", str(FLOW_DEMO), *extra, "-o", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert not out.exists()
    # a simulate result read back marks the same trips as --fail
    from cascade.io.geojson import read_result

    town = read_system(FLOW_DEMO)
    assert read_result(sim, town).edges["tripped"].equals(flow_state(town, [LINE]).edges["tripped"])
    out = tmp_path / "from_result.png"
    assert run("map", FLOW_DEMO, "--result", sim, "-o", out).exit_code == 0 and out.stat().st_size > 0


def test_map_fail_on_the_v1_town_marks_the_cascade_without_loading(tmp_path):
    v1 = read_system(DEMO)
    fig = draw_map(v1, flow_state(v1, ["P-SUB-T03"]))
    failed = len(simulate(v1, ["P-SUB-T03"]).failed())
    assert fig.axes[0].get_title() == f"demo_town — cascade: {failed} of {len(v1.nodes)} nodes failed"
    assert len(fig.axes) == 1                                   # no colour bar: no flow layer
    import matplotlib.pyplot as plt
    plt.close(fig)
    out = tmp_path / "v1.png"
    assert run("map", DEMO, "--fail", "P-SUB-T03", "-o", out).exit_code == 0 and out.stat().st_size > 0


def test_map_of_a_flow_system_draws_odd_text_as_written(tmp_path):
    root = write_dir(tmp_path / "odd", """
        id,layer,kind,demand,supply,x,y
        $g^$,pow$er,source,0,10,0,0
        a_{b},pow$er,,6,,100,0
        <c>,pow$er,,3,,100,100
        """, """
        id,source,target,reactance,capacity
        l$1$,$g^$,a_{b},0.1,5
        l&2,$g^$,<c>,0.1,20
        l3,a_{b},<c>,0.1,
        """, None, '[system]\nname = "a$^$b <town>"\n[layers."pow$er"]\nrule = "dcflow"\nunit = "M$W"')
    out = tmp_path / "odd.png"
    res = run("map", root, "--fail", "l3", "-o", out)
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    system = read_system(root)
    fig = draw_map(system, flow_state(system, ["l3"]))
    ax = fig.axes[0]
    assert ax.get_title().startswith("a$^$b <town> — cascade")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("pow$er (3 nodes") for label in labels)
    assert "tripped on overload (1)" in labels          # l$1$: 6 MW over its 5 MW once l3 is gone
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_report_on_the_flow_demo_has_every_section(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([CASCADE, "report", str(FLOW_DEMO), "--scenario",
                           str(ROOT / "scenarios" / "earthquake_m62_flow.toml"), "--samples", "8",
                           "--elements", "edges", "--layer", "power", "--top", "5", "--threads", "2",
                           "--output", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "left out" not in proc.stderr
    page = (out / "index.html").read_text()
    for section in ('id="summary"', 'id="critical"', 'id="loss"', 'id="recovery"'):
        assert section in page
    assert "Left out" not in page
    assert "Every edge of layer power failed alone (N-1, 1,376 cascades)" in page
    assert "power (MW" in page or "MW" in page
    for png in ("map.png", "critical.png", "loss.png", "probability.png", "recovery.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_names_an_unknown_layer_in_one_line(tmp_path):
    proc = subprocess.run([CASCADE, "report", str(FLOW_DEMO), "--scenario",
                           str(ROOT / "scenarios" / "earthquake_m62_flow.toml"), "--layer", "powr",
                           "--output", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no layer 'powr'" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_the_flow_scenarios_run_on_the_flow_town(tmp_path):
    for name in ("earthquake_m62_flow", "random_failures_flow"):
        res = run("scenario", FLOW_DEMO, ROOT / "scenarios" / f"{name}.toml", "-n", "4", "--format", "json",
                  "--threads", "1")
        assert res.exit_code == 0, res.output
        data = json.loads(res.output)
        assert data["samples"] == 4
