"""Odd but possible input, as a user runs the commands: one line and exit 2, never a traceback,
a hang or a partial output (issue 14, "crashes and wrong output on odd but possible input")."""
from __future__ import annotations

import json
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


# ------------------------------------------------------------------ line numbers, repeated columns
def system_with(tmp_path, nodes: str, edges: str = "source,target\n", deps: str | None = None) -> Path:
    root = tmp_path / "lines"
    root.mkdir(parents=True, exist_ok=True)
    (root / "nodes.csv").write_text(nodes)
    (root / "edges.csv").write_text(edges)
    if deps is not None:
        (root / "dependencies.csv").write_text(deps)
    return root


@pytest.mark.parametrize("nodes,line,message", [
    # blank lines before the bad row
    ("id,layer,demand\n\na,power,1\n\n\nb,power,-3\n", 6, "'demand' is negative"),
    # a quoted field that spans two lines before the bad row
    ('id,layer,demand,note\na,power,1,"two\nlines"\nb,power,x,\n', 4, "'demand' is not a number"),
    # the duplicate's both lines
    ("id,layer\n\na,power\n\"long\nname\",power\na,power\n", 6, "duplicate node id 'a' (also on line 3)"),
    # an empty required cell after whitespace-only lines
    ("id,layer\n   \na,power\n,power\n", 4, "empty 'id'"),
])
def test_errors_name_the_real_file_line(tmp_path, nodes, line, message):
    root = system_with(tmp_path, nodes)
    err = one_line_error(run("info", root))
    assert f"nodes.csv, line {line}: " in err and message in err, err


def test_edge_and_dependency_errors_name_the_real_line(tmp_path):
    nodes = "id,layer\na,power\nb,power\n"
    root = system_with(tmp_path, nodes, 'source,target,note\n\na,b,"x\ny"\na,zz,\n')
    assert "edges.csv, line 5: edge 'a->zz' names unknown node 'zz'" in one_line_error(run("info", root))
    root = system_with(tmp_path, nodes, "source,target\na,b\n", 'dependent,supplier,note\n\na,b,"1\n2\n3"\nb,b,\n')
    assert "dependencies.csv, line 6: node 'b' depends on itself" in one_line_error(run("info", root))


def test_candidate_errors_name_the_line_a_multiline_row_starts_on(tmp_path):
    cands = tmp_path / "c.csv"
    cands.write_text('id,type,cost,node,hours,description\n\nb1,backup,10,W-PS-01,12,"a\nlong note"\n'
                     'b2,backup,-5,W-PS-01,12,\n')
    err = one_line_error(run("redundancy", DEMO, "--candidates", cands, "--scenario", RANDOM, "--samples", "3"))
    assert "c.csv, line 5:" in err, err


@pytest.mark.parametrize("header", ["id,layer,id", "id,layer, layer", "id,layer,demand,demand"])
def test_a_repeated_column_is_an_error_naming_both(tmp_path, header):
    width = len(header.split(","))
    root = system_with(tmp_path, header + "\n" + ",".join(["a", "power"] + ["1"] * (width - 2)) + "\n")
    err = one_line_error(run("info", root))
    name = header.split(",")[-1].strip()
    assert f"nodes.csv, line 1: column '{name}' appears twice" in err and f"columns " in err, err


def test_a_repeated_column_in_a_candidate_or_result_file(tmp_path):
    cands = tmp_path / "c.csv"
    cands.write_text("id,type,cost,node,hours,cost\nb1,backup,10,W-PS-01,12,3\n")
    err = one_line_error(run("redundancy", DEMO, "--candidates", cands, "--scenario", RANDOM, "--samples", "3"))
    assert "column 'cost' appears twice" in err and "columns 3 and 6" in err
    result = tmp_path / "r.csv"
    result.write_text("id,p_fail,id\nP-PLANT-1,0.5,x\n")
    err = one_line_error(run("export", DEMO, "--format", "geojson", "--result", result, "-o", tmp_path / "o.geojson"))
    assert "column 'id' appears twice" in err and not (tmp_path / "o.geojson").exists()


# ------------------------------------------------------------------ overflowing sums, strict JSON
def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("rows,message", [
    ("p,power,source,0,1,1\na,power,,1e308,1,1\nb,power,,1e308,1,1\n", "'demand' values of layer 'power' add up"),
    ("p,power,source,0,1,1\na,power,,1,1e308,1\nb,power,,1,1e308,1\n", "'repair_time' values add up"),
    ("p,power,source,0,1,1\na,power,,1,1,1.7e308\nb,power,,1,1,1e308\n", "'repair_cost' values add up"),
])
def test_demands_that_overflow_their_sum_are_refused(tmp_path, rows, message):
    root = system_with(tmp_path, "id,layer,kind,demand,repair_time,repair_cost\n" + rows,
                       "source,target\np,a\np,b\n")
    for command in (["info"], ["simulate", "--fail", "a", "--format", "json"], ["critical", "--format", "json"]):
        err = one_line_error(run(command[0], root, *command[1:]))
        assert message in err and "larger unit" in err


def test_huge_but_summable_numbers_give_strict_json(tmp_path):
    root = system_with(tmp_path, "id,layer,kind,demand,repair_time,repair_cost\n"
                                 "p,power,source,0,1,1\na,power,,1e308,1e308,1\nb,power,,1,1,1\n",
                       "source,target\np,a\np,b\n")
    for command in (["info", "--format", "json"], ["simulate", "--fail", "a", "--format", "json"],
                    ["critical", "--format", "json"], ["recover", "--fail", "p", "--format", "json"]):
        res = run(command[0], root, *command[1:])
        assert res.exit_code == 0, res.output
        strict_json(res.stdout)
    res = run("export", root, "--format", "geojson")
    assert res.exit_code == 0
    strict_json(res.stdout)


def test_to_json_writes_null_for_nan_and_infinities():
    from cascade.commands import to_json

    import numpy as np

    text = to_json({"a": float("inf"), "b": -np.inf, "c": np.float32("nan"), "d": [1.5, np.float64(2)]})
    assert strict_json(text) == {"a": None, "b": None, "c": None, "d": [1.5, 2.0]}


def test_a_huge_crew_count_does_not_allocate_a_slot_per_crew(tmp_path):
    """Crews beyond one per failed element never work; 10**20 of them must not hang."""
    import subprocess
    import sys

    cascade = Path(sys.executable).parent / "cascade"
    for crews in ("99999999999999999999", "power=99999999999999999999"):
        proc = subprocess.run([str(cascade), "recover", str(DEMO), "--fail", "P-PLANT-1", "--crews", crews,
                               "--format", "json"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        one = json.loads(run("recover", DEMO, "--fail", "P-PLANT-1", "--crews", "1", "--format", "json").stdout)
        many = json.loads(proc.stdout)
        assert many["resilience_loss"] <= one["resilience_loss"]


@pytest.mark.parametrize("x", ["1e308", "-1e16"])
def test_coordinates_whose_distances_overflow_are_refused(tmp_path, x):
    root = system_with(tmp_path, f"id,layer,kind,x,y\na,power,source,0,0\nb,power,,{x},0\nw,water,,1,1\n",
                       "source,target\na,b\n")
    for command in (["info"], ["map", "-o", str(tmp_path / "m.png")],
                    ["couple", "--dependent", "water", "--supplier", "power", "--nearest", "1", "--dry-run"]):
        err = one_line_error(run(command[0], root, *command[1:]))
        assert "nodes.csv, line 3: 'x' is out of range" in err, err
    assert not (tmp_path / "m.png").exists()


def test_unknown_ids_in_id_files_name_the_line(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# the plants\nP-PLANT-1\n\nGHOST\n")
    assert "ids.txt, line 4: unknown node or edge id 'GHOST'" in one_line_error(run("simulate", DEMO, "--fail-file", ids))
    assert "ids.txt, line 4: unknown node or edge id 'GHOST'" in one_line_error(run("recover", DEMO, "--fail-file", ids))
    sets = tmp_path / "sets.txt"
    sets.write_text("P-PLANT-1\n\n# two at once\nP-PLANT-1, GHOST\n")
    err = one_line_error(run("redundancy", DEMO, "--failure-sets", sets, "--suggest", "2"))
    assert "sets.txt, line 4: unknown node or edge id 'GHOST'" in err
