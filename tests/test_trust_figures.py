"""User text with `$` (layer, system, scenario names, --title, strategy and id labels) is drawn as
written in every figure, and `report` never leaves a partial output directory."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from cascade.cli import cli  # noqa: E402

from conftest import write_dir  # noqa: E402

MATH = "a$^$b"  # matplotlib math text that does not parse: a crash unless drawn literally


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def dollar_town(tmp_path):
    """Layer, system, node ids and scenario name all carry `$...$`."""
    nodes = ["id,layer,kind,demand,x,y"]
    edges = ["source,target"]
    for i in range(4):
        kind = "source" if i == 0 else ""
        nodes.append(f"P$^${i},pow$^$er,{kind},{1 + i},{i * 100},0")
        if i:
            edges.append(f"P$^${i - 1},P$^${i}")
    nodes += ["W0,wa$_$ter,source,0,0,100", "W1,wa$_$ter,,5,100,100", "W2,wa$_$ter,,5,200,100"]
    edges += ["W0,W1", "W1,W2"]
    root = write_dir(tmp_path / "town", "\n".join(nodes), "\n".join(edges), "dependent,supplier\nW0,P$^$1",
                     f'[system]\nname = "{MATH} town"')
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'[scenario]\nname = "{MATH} storm"\nseed = 7\nsamples = 20\n\n'
                        '[hazard]\ntype = "random"\nelements = "all"\nfraction = 0.3\n')
    return root, scenario


def png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_map_with_math_in_names_and_title(dollar_town, tmp_path):
    root, _ = dollar_town
    res = run("map", root, "--title", f"cost {MATH} $\\frac$", "-o", tmp_path / "m.png")
    assert res.exit_code == 0, res.output
    assert png(tmp_path / "m.png")


@pytest.mark.parametrize("kind", ["simulate", "critical", "scenario"])
def test_map_of_each_result_kind_with_math_in_ids(dollar_town, tmp_path, kind):
    root, scenario = dollar_town
    args = {"simulate": ["simulate", root, "--fail", "P$^$1", "--format", "json"],
            "critical": ["critical", root, "--format", "csv"],
            "scenario": ["scenario", root, scenario, "--format", "csv", "-n", "20"]}[kind]
    result = tmp_path / ("r.json" if kind == "simulate" else "r.csv")
    res = run(*args, "-o", result)
    assert res.exit_code == 0, res.output
    res = run("map", root, "--result", result, "-o", tmp_path / "m.png")
    assert res.exit_code == 0, res.output
    assert png(tmp_path / "m.png")


def test_recover_plot_with_math_in_layer_names(dollar_town, tmp_path):
    root, _ = dollar_town
    res = run("recover", root, "--fail", "P$^$0", "--plot", tmp_path / "r.png", "-s", "greedy", "-s", "random")
    assert res.exit_code == 0, res.output
    assert png(tmp_path / "r.png")


def test_report_with_math_everywhere(dollar_town, tmp_path):
    root, scenario = dollar_town
    res = run("report", root, "--scenario", scenario, "-o", tmp_path / "rep", "-n", "20")
    assert res.exit_code == 0, res.output
    names = set(os.listdir(tmp_path / "rep"))
    assert {"index.html", "map.png", "loss.png"} <= names
    assert all(png(tmp_path / "rep" / n) for n in names if n.endswith(".png"))
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "a$^$b town" in page and "a$^$b storm" in page
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rep.")]  # staging removed


def test_report_that_fails_midway_leaves_no_directory(dollar_town, tmp_path, monkeypatch):
    import cascade.report as report

    root, scenario = dollar_town

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report, "_figure_recovery", broken)
    res = run("report", root, "--scenario", scenario, "-o", tmp_path / "new" / "rep", "-n", "20")
    assert res.exit_code != 0 and isinstance(res.exception, RuntimeError)
    assert not (tmp_path / "new").exists() or not list((tmp_path / "new").iterdir())
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    # into an existing directory: the old report stays whole
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "index.html").write_text("old report")
    (tmp_path / "old" / "notes.txt").write_text("mine")
    res = run("report", root, "--scenario", scenario, "-o", tmp_path / "old", "-n", "20")
    assert res.exit_code != 0
    assert sorted(os.listdir(tmp_path / "old")) == ["index.html", "notes.txt"]
    assert (tmp_path / "old" / "index.html").read_text() == "old report"
    monkeypatch.undo()
    assert run("report", root, "--scenario", scenario, "-o", tmp_path / "old", "-n", "20").exit_code == 0
    assert "notes.txt" in os.listdir(tmp_path / "old") and "map.png" in os.listdir(tmp_path / "old")
