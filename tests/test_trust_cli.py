"""Odd but possible input, as a user runs the commands: one line and exit 2, never a traceback,
a hang or a partial output (issue 14, "crashes and wrong output on odd but possible input")."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
SCENARIOS = ROOT / "scenarios"
RANDOM = SCENARIOS / "random_failures.toml"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


# ------------------------------------------------------------------ --seed and --samples
@pytest.mark.parametrize("command", [
    ["recover", DEMO, "--fail", "P-PLANT-1", "--strategy", "random"],
    ["redundancy", DEMO, "--scenario", RANDOM, "--suggest", "2", "--samples", "3"],
    ["scenario", DEMO, RANDOM, "-n", "3"],
])
def test_negative_seed_is_a_usage_error_in_every_command(command, tmp_path):
    res = run(*command, "--seed", "-1")
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "Invalid value for '--seed'" in res.stderr
    # and the largest accepted seed runs
    assert run(*command, "--seed", str(2**63 - 1)).exit_code == 0


@pytest.mark.parametrize("command", [
    ["scenario", DEMO, RANDOM],
    ["redundancy", DEMO, "--scenario", RANDOM, "--suggest", "2"],
    ["report", DEMO, "--scenario", RANDOM, "--output", "{tmp}/rep"],
])
def test_huge_samples_is_refused_before_any_work(command, tmp_path):
    command = [str(c).replace("{tmp}", str(tmp_path)) for c in command]
    line = one_line_error(run(*command, "--samples", str(10**12)))
    assert "--samples" in line and "memory" in line and "TiB" in line
    assert not (tmp_path / "rep").exists()


# ------------------------------------------------------------------ kinds and rule fall-back
def small(tmp_path, nodes: str, toml: str | None = None) -> Path:
    root = tmp_path / "sys"
    root.mkdir(parents=True, exist_ok=True)
    (root / "nodes.csv").write_text(nodes)
    (root / "edges.csv").write_text("source,target\np,a\nw,b\n")
    if toml:
        (root / "system.toml").write_text(toml)
    return root


@pytest.mark.parametrize("kind", ["Source", "SOURCE", " source "])
def test_kind_source_in_any_case_keeps_the_source_rule(tmp_path, kind):
    root = small(tmp_path, f"id,layer,kind,demand\np,power,{kind},0\na,power,,5\nw,water,source,0\nb,water,,3\n")
    res = run("info", root, "--format", "json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["layers"]["power"]["rule"] == "source" and info["layers"]["power"]["sources"] == 1
    # the plant failing now takes its substation down (under 'giant' the substation would stay up)
    res = run("simulate", root, "--fail", "p", "--format", "json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["layers"]["power"]["functioning"] == 0


def test_info_warns_about_a_supply_layer_that_fell_back_to_giant(tmp_path):
    root = small(tmp_path, "id,layer,kind,demand\np,power,plant,0\na,power,,5\nw,roads,,0\nb,roads,,3\n")
    res = run("info", root)
    assert res.exit_code == 0
    warning = [line for line in res.stdout.splitlines() if "fell back to 'giant'" in line]
    assert len(warning) == 1 and "layer 'power'" in warning[0] and "'plant'" in warning[0]
    # an explicit rule silences it; a layer that is not a supply lifeline never had it
    (root / "system.toml").write_text('[layers.power]\nrule = "giant"\n')
    assert "fell back" not in run("info", root).stdout
    root2 = small(tmp_path / "b", "id,layer,kind,demand\np,water,,0\na,water,,5\nw,roads,,0\nb,roads,,3\n")
    out = run("info", root2).stdout
    assert "layer 'water' has no node of kind 'source'" in out and "supply lifeline" in out
    assert "layer 'roads'" not in out
