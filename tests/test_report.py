"""`cascade report`: the HTML page and its figures, opened in headless Chromium."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade.cli import cli
from cascade.report import build_report, draw_map

from conftest import write_dir

# CASCADE_CHROMIUM names another binary (or a missing one, to see the skip).
CHROMIUM = (os.environ.get("CASCADE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
            or "/usr/bin/chromium")
NO_CHROMIUM = (f"Chromium is missing ({CHROMIUM} not found), so the HTML report is not rendered in a browser: "
               "install it with `make browser` (Debian's package: `sudo apt-get install chromium`), "
               "or set CASCADE_CHROMIUM to a Chromium binary")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def town(tmp_path):
    """Two lifelines on a small map: a meshed power grid and a water network whose pumps need it."""
    nodes = ["id,layer,kind,demand,x,y"]
    edges = ["source,target"]
    for i in range(5):
        for j in range(5):
            kind = "source" if (i, j) == (0, 0) else ""
            nodes.append(f"P{i}{j},power,{kind},{1 + i},{i * 100},{j * 100}")
            if i:
                edges.append(f"P{i - 1}{j},P{i}{j}")
            if j:
                edges.append(f"P{i}{j - 1},P{i}{j}")
    nodes += ["W0,water,source,0,50,450", "W1,water,pump,0,250,450", "W2,water,,10,450,450",
              "W3,water,,5,450,350"]
    edges += ["W0,W1", "W1,W2", "W2,W3"]
    root = write_dir(tmp_path / "town", "\n".join(nodes), "\n".join(edges),
                     "dependent,supplier\nW1,P24\nW0,P04", '[system]\nname = "town"\ncrs = "EPSG:32650"')
    scenario = tmp_path / "random.toml"
    scenario.write_text('[scenario]\nname = "random faults"\nsystem = "town"\nseed = 7\nsamples = 40\n\n'
                        '[hazard]\ntype = "random"\nelements = "all"\nfraction = 0.08\n')
    return root, scenario


def test_build_report_writes_every_section(town, tmp_path):
    root, scenario = town
    out = build_report(root, scenario, tmp_path / "rep", samples=40)
    assert out["sections"] == ["summary", "critical", "loss", "recovery"] and out["missing"] == []
    page = (tmp_path / "rep" / "index.html").read_text()
    for src in re.findall(r'<img src="([^"]+)"', page):
        data = (tmp_path / "rep" / src).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"map.png", "critical.png", "loss.png", "recovery.png"} <= set(os.listdir(tmp_path / "rep"))
    assert "P00" in page  # the plant is the most critical node of a one-source grid
    assert not [p for p in os.listdir(tmp_path / "rep") if p.startswith(".")]  # no temporary files


def test_page_renders_in_headless_chromium(town, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(NO_CHROMIUM)
    root, scenario = town
    res = run("report", root, "--scenario", scenario, "--output", tmp_path / "rep", "--samples", "30")
    assert res.exit_code == 0, res.output
    index = (tmp_path / "rep" / "index.html").resolve()
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(common + ["--dump-dom", index.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section, heading in (("summary", "The system"), ("critical", "Critical elements"),
                             ("loss", "Loss distribution"), ("recovery", "Recovery curves")):
        assert re.search(rf'<section id="{section}"><h2>{heading}</h2>', dom.stdout), section
    shot = tmp_path / "shot.png"
    proc = subprocess.run(common + ["--window-size=1200,2400", f"--screenshot={shot}", index.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    import matplotlib.image as mpimg

    pixels = (mpimg.imread(shot)[..., :3] * 255).astype(int)
    # the figures were loaded and drawn: the power (orange) and water (blue) lines are on screen
    for colour in ((0xe6, 0x9f, 0x00), (0x00, 0x72, 0xb2)):
        near = (np.abs(pixels - np.array(colour)).max(axis=2) < 40).sum()
        assert near > 200, colour


def test_without_chromium_only_the_browser_test_skips_and_says_why(tmp_path):
    """A machine without Chromium still runs the report tests; the one browser test is skipped
    with a reason that names Chromium and how to install it (pytest -ra prints it)."""
    here = Path(__file__).parent
    env = {**os.environ, "CASCADE_CHROMIUM": str(tmp_path / "no-chromium")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           str(here / "test_report.py"), "-k", "headless_chromium or bad_scenario"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert re.search(r"1 passed, 1 skipped", proc.stdout), proc.stdout[-3000:]
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "Chromium is missing" in skipped[0] and "make browser" in skipped[0]
    assert "apt-get install chromium" in skipped[0]


def test_make_browser_says_what_it_installs_and_survives_a_failed_install(tmp_path):
    """`make browser` names the package and the reason; when apt-get fails it warns and succeeds."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("`make` is not installed, so the Makefile cannot be run")
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "apt-get").write_text("#!/bin/sh\necho apt-get was called >&2\nexit 100\n")
    (stub / "apt-get").chmod(0o755)
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env["PATH"] = f"{stub}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.run([make, "-s", "--no-print-directory", "-C", str(root), "browser", f"CHROMIUM={tmp_path / 'none'}",
                           f"APT_GET={stub / 'apt-get'}"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout.strip().splitlines()
    assert len(said) == 1 and "chromium" in said[0] and "tests/test_report.py" in said[0]
    assert "WARNING: could not install chromium" in proc.stderr and "SKIPPED" in proc.stderr
    # present: nothing is installed and nothing is said
    proc = subprocess.run([make, "-s", "--no-print-directory", "-C", str(root), "browser",
                           f"CHROMIUM={sys.executable}",
                           f"APT_GET={stub / 'apt-get'}"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_bad_scenario_is_exit_2_and_no_output(town, tmp_path):
    root, _ = town
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\n")
    res = run("report", root, "--scenario", bad, "--output", tmp_path / "rep")
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "rep").exists()


def test_map_without_coordinates_is_a_clear_error(tmp_path):
    root = write_dir(tmp_path / "s", "id,layer,kind\na,power,source\nb,power,", "source,target\na,b")
    res = run("map", root, "--output", tmp_path / "m.png")
    assert res.exit_code == 2 and "no node has coordinates" in res.stderr
    assert not (tmp_path / "m.png").exists()


def test_ranking_map_numbers_every_top_element(tmp_path):
    """Co-located elements share one label; every rank of the top appears exactly once."""
    import pandas as pd

    from cascade import read_system
    from cascade.io.geojson import read_result

    root = write_dir(tmp_path / "s", "id,layer,kind,x,y\na,power,source,0,0\nb,power,,0,0\nc,power,,100,0\n"
                     "d,power,,200,50", "source,target\na,b\nb,c\nc,d")
    system = read_system(root)
    ranking = tmp_path / "rank.csv"
    pd.DataFrame({"id": ["a", "a->b", "b", "c", "b->c"], "element": ["node", "edge", "node", "node", "edge"],
                  "demand_lost": [4.0, 3.0, 3.0, 2.0, 2.0]}).to_csv(ranking, index=False)
    fig = draw_map(system, read_result(ranking, system), None, top=4)
    labels = sorted(t.get_text() for t in fig.axes[0].texts)
    assert labels == ["1,2,3", "4"]
    fig = draw_map(system, read_result(ranking, system), None, top=5)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1,2,3", "4", "5"]


def test_scenario_map_says_how_many_nodes_fail_not_how_many_are_listed(tmp_path):
    """A scenario JSON lists its --top 15; the map counts every node that fails."""
    import json

    from cascade import read_system
    from cascade.io.geojson import read_result
    from conftest import DEMO, ROOT

    out = tmp_path / "flood.json"
    res = run("scenario", DEMO, ROOT / "scenarios" / "flood_heavy_rain.toml", "-n", "20",
              "--format", "json", "-o", out)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert len(data["nodes"]) == 15 and data["nodes_failing"] > 1000
    system = read_system(DEMO)
    fig = draw_map(system, read_result(out, system), None)
    text = " ".join([fig.axes[0].get_title()] + [t.get_text() for t in fig.texts])
    assert f"{data['nodes_failing']:,} node(s) fail in some sample" in text
    assert "the file lists the 15 most likely" in text


def test_top_0_means_all_in_map_and_report(tmp_path, monkeypatch):
    """--top 0 lists every element, as in critical and scenario (v1: map marked none,
    report refused 0)."""
    import cascade.report as report

    seen = []
    monkeypatch.setattr(report, "draw_map", lambda system, props, out, top=10, **kw: seen.append(top))
    root = write_dir(tmp_path / "s", "id,layer,kind,x,y\na,power,source,0,0\nb,power,,1,1", "source,target\na,b")
    ranking = tmp_path / "rank.csv"
    ranking.write_text("id,nodes_lost\na,2\nb,1\n")
    res = run("map", root, "--result", ranking, "--top", "0", "--output", tmp_path / "m.png")
    assert res.exit_code == 0, res.output
    assert seen and seen[-1] >= 2
    res = run("report", root, "--scenario", tmp_path / "none.toml", "--top", "0", "-o", tmp_path / "r")
    assert "Invalid value for '--top'" not in res.output
