"""`cascade import`, `couple`, `export` and `map` as a user runs them (CliRunner and a real process),
and the walk-through: a pandapower grid and an EPANET network shipped inside those packages,
coupled, then ranked by `cascade critical`."""
from __future__ import annotations

import io
import json
import re
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")
wntr = pytest.importorskip("wntr")

from cascade import read_system, simulate  # noqa: E402
from cascade.cli import cli  # noqa: E402

logging.getLogger("pandapower").setLevel(logging.ERROR)
CASCADE = Path(sys.executable).parent / "cascade"
NET3 = os.path.join(wntr.__path__[0], "library", "networks", "Net3.inp")
# Net3's coordinates are a schematic grid; read them as hectometres east/north of a point in
# Oberrhein, so that the water network lies inside the pandapower grid's area.
LOCAL = "+proj=tmerc +lat_0=48.36 +lon_0=7.78 +to_meter=100 +ellps=GRS80 +type=crs"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res):
    assert res.exit_code == 2, res.output
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def grid_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "oberrhein.json"
    pp.to_json(pn.mv_oberrhein(), str(path))
    return path


@pytest.fixture
def town(tmp_path, grid_json):
    """The coupled walk-through system: power from pandapower, water from EPANET, as v1 layers
    (--rule source: these tests are about coupling, export and maps, not flows)."""
    root = tmp_path / "town"
    assert run("import", "pandapower", grid_json, "--layer", "power", "--into", root,
               "--rule", "source").exit_code == 0
    assert run("import", "epanet", NET3, "--layer", "water", "--into", root, "--crs", LOCAL,
               "--rule", "source").exit_code == 0
    return root


def test_import_prints_counts_and_creates_the_system(tmp_path, grid_json):
    res = run("import", "pandapower", grid_json, "--layer", "power", "--into", tmp_path / "s")
    assert res.exit_code == 0, res.output
    net = pn.mv_oberrhein()
    assert f"{len(net.bus)} nodes ({len(net.ext_grid)} sources)" in res.stdout
    system = read_system(tmp_path / "s")
    assert system.crs == "EPSG:32632" and system.layers == ["power"]


def test_second_import_leaves_the_first_layer_alone(tmp_path, grid_json):
    root = tmp_path / "s"
    run("import", "pandapower", grid_json, "--layer", "power", "--into", root)
    before = read_system(root)
    res = run("import", "epanet", NET3, "--layer", "water", "--into", root, "--crs", LOCAL)
    assert res.exit_code == 0, res.output
    after = read_system(root)
    assert after.layers == ["power", "water"]
    old = after.nodes[after.nodes["layer"] == "power"][before.nodes.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, before.nodes.reset_index(drop=True))
    pd.testing.assert_frame_equal(after.edges[after.edges["id"].isin(before.edges["id"])]
                                  [before.edges.columns].reset_index(drop=True), before.edges)


def test_existing_layer_and_id_clash_are_refused(town):
    files = {p.name: p.read_bytes() for p in town.iterdir()}
    res = run("import", "epanet", NET3, "--layer", "water", "--into", town, "--crs", LOCAL)
    assert "layer 'water' already exists" in one_line_error(res)
    res = run("import", "epanet", NET3, "--layer", "water2", "--into", town, "--crs", LOCAL,
              "--prefix", "water-")
    assert "already in the system" in one_line_error(res) and "--prefix" in res.stderr
    assert {p.name: p.read_bytes() for p in town.iterdir()} == files  # nothing touched


@pytest.mark.parametrize("fmt,name,text", [
    ("epanet", "bad.inp", "[JUNCTIONS]\n J1 notanumber 1\n[END]\n"),
    ("epanet", "bad.inp", "just words\n"),
    ("pandapower", "bad.json", "{\"_class\": \"pandapowerNet\", "),
    ("pandapower", "bad.json", "{\"type\": \"FeatureCollection\", \"features\": []}"),
    ("pandapipes", "bad.json", "[]"),
    ("geojson", "bad.json", "{\"type\": \"FeatureCollection\"}"),
    ("graphml", "bad.graphml", "<graphml><graph>"),
])
def test_malformed_source_is_exit_2_and_writes_nothing(tmp_path, fmt, name, text):
    src = tmp_path / name
    src.write_text(text)
    res = run("import", fmt, src, "--layer", "x", "--into", tmp_path / "new")
    assert str(src) in one_line_error(res)
    assert not (tmp_path / "new").exists()


def test_missing_source_and_bad_crs(tmp_path):
    res = run("import", "epanet", tmp_path / "nope.inp", "--layer", "w", "--into", tmp_path / "s")
    assert "no such file" in one_line_error(res)
    res = run("import", "epanet", NET3, "--layer", "w", "--into", tmp_path / "s", "--crs", "EPSG:99999999")
    assert "unknown CRS" in one_line_error(res)
    assert not (tmp_path / "s").exists()


def test_couple_appends_rows_and_the_cascade_uses_them(town):
    res = run("couple", town, "--dependent", "water:pump", "--supplier", "power", "--nearest", "1")
    assert res.exit_code == 0, res.output
    assert "added 2 dependency rows" in res.stdout
    system = read_system(town)
    # distances carry their unit: the town is in UTM (EPSG:32632), metres
    assert system.crs == "EPSG:32632"
    assert re.search(r"farthest [\d,]+ m$", res.stdout.strip())
    assert len(system.dependencies) == 2
    bus = system.dependencies["supplier"].iloc[0]
    pump = system.dependencies["dependent"].iloc[0]
    assert pump in set(simulate(system, [bus]).failed()["id"])
    res = run("couple", town, "--dependent", "water:pump", "--supplier", "power", "--nearest", "1",
              "--radius", "10")
    assert "exactly one" in one_line_error(res)
    res = run("couple", town, "--dependent", "gas", "--supplier", "power", "--nearest", "1")
    assert "no layer 'gas'" in one_line_error(res)
    res = run("couple", town, "--dependent", "water:source", "--supplier", "power", "--nearest", "2",
              "--group", "--delay", "6", "--dry-run")
    assert res.exit_code == 0 and res.stdout.startswith("dependent,supplier,group,delay,distance")
    assert len(read_system(town).dependencies) == 2  # dry run wrote nothing


def test_export_with_a_critical_ranking(town, tmp_path):
    ranking = tmp_path / "rank.csv"
    assert run("critical", town, "--elements", "all", "--format", "csv", "-o", ranking).exit_code == 0
    out = tmp_path / "town.geojson"
    res = run("export", town, "--result", ranking, "-o", out)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    system = read_system(town)
    assert len(data["features"]) == len(system.nodes) + len(system.edges)
    table = pd.read_csv(ranking).set_index("id")
    for f in data["features"][:50]:
        assert f["properties"]["rank"] == table.loc[f["id"], "rank"]
        assert f["properties"]["score"] == pytest.approx(table.loc[f["id"], "score"])
    bad = tmp_path / "bad.json"
    bad.write_text("{\"nothing\": 1}")
    res = run("export", town, "--result", bad, "-o", tmp_path / "x.geojson")
    assert "not a result" in one_line_error(res)
    assert not (tmp_path / "x.geojson").exists()


def test_map_png(town, tmp_path):
    sim = tmp_path / "sim.json"
    system = read_system(town)
    grid_bus = system.nodes.loc[system.nodes["kind"] == "source", "id"].iloc[0]
    assert run("simulate", town, "--fail", grid_bus, "--format", "json", "-o", sim).exit_code == 0
    out = tmp_path / "map.png"
    res = run("map", town, "--result", sim, "--output", out)
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    res = run("map", town, "--output", tmp_path / "no" / "map.png")
    assert "does not exist" in one_line_error(res)
    res = run("map", town, "--output", tmp_path / "map.txt")
    assert ".png" in one_line_error(res)


def test_walk_through_in_real_processes(tmp_path, grid_json):
    """The README walk-through, run as a user runs it."""
    town = tmp_path / "town"

    def cascade(*args):
        proc = subprocess.run([str(CASCADE), *map(str, args)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc

    cascade("import", "pandapower", grid_json, "--layer", "power", "--into", town, "--rule", "source")
    cascade("import", "epanet", NET3, "--layer", "water", "--into", town, "--crs", LOCAL, "--rule", "source")
    cascade("couple", town, "--dependent", "water:pump", "--supplier", "power", "--nearest", "1")
    cascade("couple", town, "--dependent", "water:source", "--supplier", "power", "--nearest", "2",
            "--group", "--delay", "6")
    proc = cascade("critical", town, "--elements", "all", "--format", "csv")
    ranking = pd.read_csv(io.StringIO(proc.stdout))
    system = read_system(town)
    assert len(ranking) == len(system.nodes) + len(system.edges)
    # the power elements whose failure reaches into the water network, checked one by one
    cross = ranking[(ranking["layer"] == "power") & (ranking["cross_layer_lost"] > 0)]
    assert len(cross) > 0
    for row in cross.head(3).itertuples():
        lost = simulate(system, [row.id], engine="reference").failed()
        assert len(lost) == row.nodes_lost
        assert (lost["layer"] == "water").sum() == row.cross_layer_lost
    bad = subprocess.run([str(CASCADE), "import", "epanet", grid_json, "--layer", "w", "--into",
                          tmp_path / "other"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "not an EPANET INP file" in bad.stderr
    assert not (tmp_path / "other").exists()
