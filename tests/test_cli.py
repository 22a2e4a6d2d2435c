"""`cascade info` and `cascade simulate` as a user runs them (CliRunner and a real process)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli import cli

from conftest import DEMO, write_dir

CASCADE = Path(sys.executable).parent / "cascade"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_simulate_json_has_the_documented_shape(town):
    res = run("simulate", town, "--fail", "sub1", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {"system", "rounds", "initial_failures", "layers", "failed"} <= set(data)
    assert data["system"] == "town"
    assert data["initial_failures"] == {"nodes": ["sub1"], "edges": []}
    assert data["rounds"] == 1
    assert data["layers"]["water"] == {"nodes": 3, "functioning": 0, "demand": 100.0,
                                       "demand_served": 0.0, "service": 0.0, "service_before": 1.0,
                                       "unit": ""}
    assert data["layers"]["power"]["service"] == pytest.approx(50 / 150)
    assert data["failed"] == [
        {"id": "sub1", "layer": "power", "round": 0, "cause": "initial", "via": None, "group": None},
        {"id": "pump", "layer": "water", "round": 1, "cause": "dependency", "via": "sub1", "group": None},
        {"id": "tap1", "layer": "water", "round": 1, "cause": "disconnected", "via": None, "group": None},
        {"id": "tap2", "layer": "water", "round": 1, "cause": "disconnected", "via": None, "group": None},
    ]


def test_simulate_table_shows_service_and_chain(town):
    res = run("simulate", town, "--fail", "sub1")
    assert res.exit_code == 0
    out = res.stdout
    assert "water" in out and "100.0%" in out and "0.0%" in out
    assert "round 1: 3 node(s)" in out and "pump (via sub1)" in out


def test_simulate_csv_and_fail_file_and_output(town, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# substation outage\nsub1\n\nplant->sub2\n")
    out = tmp_path / "result.csv"
    res = run("simulate", town, "--fail-file", ids, "--format", "csv", "--output", out)
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0] == "id,layer,round,cause,via,group"
    assert {l.split(",")[0] for l in lines[1:]} == {"sub1", "sub2", "pump", "tap1", "tap2"}


def test_reference_engine_gives_the_same_answer(town):
    core = json.loads(run("simulate", town, "--fail", "plant", "--format", "json").stdout)
    ref = json.loads(run("simulate", town, "--fail", "plant", "--format", "json", "--engine", "reference").stdout)
    core.pop("engine"), ref.pop("engine")
    assert core == ref


@pytest.mark.parametrize("args, words", [
    (["--fail", "nope"], "unknown node or edge id 'nope'"),
    (["--fail-file", "missing.txt"], "missing.txt: no such file"),
])
def test_bad_ids_exit_2_with_one_line(town, tmp_path, args, words):
    out = tmp_path / "never.json"
    res = run("simulate", town, *args, "--format", "json", "--output", out)
    assert res.exit_code == 2
    assert words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_unknown_id_in_fail_file_names_the_file(town, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("sub1\nghost\n")
    res = run("simulate", town, "--fail-file", ids)
    assert res.exit_code == 2 and "ids.txt, line 2: unknown node or edge id 'ghost'" in res.stderr


def test_output_into_missing_directory_is_a_clear_error(town, tmp_path):
    res = run("simulate", town, "--output", tmp_path / "no" / "such" / "out.txt")
    assert res.exit_code == 2 and "directory does not exist" in res.stderr


def test_info_reports_layers_and_warnings(tmp_path):
    d = write_dir(tmp_path / "s", """id,layer,kind,demand
                                     plant,power,source,0
                                     sub,power,,5
                                     lonely,power,,1
                                     pump,water,,3""",
                  "source,target\nplant,sub", "dependent,supplier\npump,sub",
                  '[layers.water]\nrule = "source"\n[layers.gas]\nrule = "none"')
    res = run("info", d, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["layers"]["power"] == {"nodes": 3, "edges": 1, "sources": 1, "rule": "source",
                                       "demand": 6.0, "never_work": 1, "unit": "", "weight": 1.0}
    assert data["couplings"] == {"water <- power": 1}
    text = "\n".join(data["warnings"])
    assert "lonely" in text
    assert "layer 'water' has rule 'source' but no node of kind 'source'" in text
    assert "layer 'gas' is named in system.toml but has no nodes" in text
    table = run("info", d).stdout
    assert "Warnings:" in table and "never work" in table


def test_bad_system_exits_2_without_traceback(tmp_path):
    d = write_dir(tmp_path / "s", "id,layer\na,power\na,power", "source,target")
    for command in ("info", "simulate"):
        res = run(command, d)
        assert res.exit_code == 2
        assert res.stderr.strip() == f"error: {d / 'nodes.csv'}, line 3: duplicate node id 'a' (also on line 2)"


def test_real_process_on_the_demo_system(tmp_path):
    """The installed console script, as a user runs it."""
    out = tmp_path / "demo.json"
    proc = subprocess.run([str(CASCADE), "simulate", str(DEMO), "--fail", "P-SUB-T03", "--format", "json",
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["system"] == "demo_town"
    causes = {f["cause"] for f in data["failed"]}
    assert causes == {"initial", "disconnected", "dependency"}
    # The outage crosses lifelines: some failure is outside power.
    assert {f["layer"] for f in data["failed"]} - {"power"}
    bad = subprocess.run([str(CASCADE), "simulate", str(DEMO), "--fail", "NOT-A-NODE"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --fail: unknown node or edge id 'NOT-A-NODE'"
    assert "Traceback" not in bad.stderr


def test_help_texts():
    res = run("--help")
    assert res.exit_code == 0 and "simulate" in res.stdout and "info" in res.stdout
    res = run("simulate", "--help")
    assert "--fail-file" in res.stdout and "--engine" in res.stdout


def test_a_mistyped_id_gets_did_you_mean_everywhere_ids_are_given(town, tmp_path):
    """--fail, fail files, failure sets and candidate files all suggest the closest ids."""
    res = CliRunner().invoke(cli, ["simulate", str(town), "--fail", "sbu1"])
    assert res.exit_code == 2
    assert "unknown node or edge id 'sbu1' (did you mean 'sub1'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    ids = tmp_path / "ids.txt"
    ids.write_text("sub1\npmup\n")
    res = CliRunner().invoke(cli, ["recover", str(town), "--fail-file", str(ids)])
    assert res.exit_code == 2 and "'pmup' (did you mean 'pump'?)" in res.stderr
    res = CliRunner().invoke(cli, ["redundancy", str(town), "--suggest", "1", "--failure-sets", str(ids)])
    assert res.exit_code == 2 and "'pmup' (did you mean 'pump'?)" in res.stderr
    cands = tmp_path / "c.csv"
    cands.write_text("id,type,cost,element\nh,harden,1,plnat\n")
    sets = tmp_path / "sets.txt"
    sets.write_text("sub1\n")
    res = CliRunner().invoke(cli, ["redundancy", str(town), "--candidates", str(cands),
                                   "--failure-sets", str(sets)])
    assert res.exit_code == 2 and "(did you mean 'plant'?)" in res.stderr
    # nothing close: no suggestion
    res = CliRunner().invoke(cli, ["simulate", str(town), "--fail", "zzzzzz"])
    assert res.exit_code == 2 and "did you mean" not in res.stderr


def test_units_label_simulate_and_info(town):
    toml = town / "system.toml"
    toml.write_text(toml.read_text() + '\n[layers.power]\nunit = "MW"\nweight = 2\n')
    out = run("simulate", town, "--fail", "sub1").stdout
    assert "50/150 MW" in out and "0/100 (no unit)" in out
    data = json.loads(run("simulate", town, "--fail", "sub1", "--format", "json").stdout)
    assert data["layers"]["power"]["unit"] == "MW"
    out = run("info", town).stdout
    assert " MW " in out and "(no unit)" in out and "nodes that never work" in out
    data = json.loads(run("info", town, "--format", "json").stdout)
    assert data["layers"]["power"]["unit"] == "MW" and data["layers"]["power"]["weight"] == 2.0
    assert data["currency"] is None
