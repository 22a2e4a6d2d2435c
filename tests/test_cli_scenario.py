"""``cascade scenario`` as a user runs it: CliRunner and real subprocesses, good and bad input."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cascade import read_system
from cascade.cli import cli
from cascade.ensemble import run_ensemble
from cascade.hazards import load_scenario

from test_ensemble import dask_cluster

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
FLOOD = ROOT / "scenarios" / "flood_heavy_rain.toml"
CASCADE = str(Path(sys.executable).parent / "cascade")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_table_shows_the_loss_distribution_and_likely_failures():
    r = run("scenario", DEMO, FLOOD, "--samples", 40, "--threads", 2)
    assert r.exit_code == 0, r.output
    out = r.output
    assert "Scenario heavy-rain flood (flood) on demo_town: 40 samples, seed 2024" in out
    for layer in ("communication", "gas", "power", "transport", "water", "overall"):
        assert f"\n{layer} " in out
    assert "Most likely failures" in out and "P-SUB-T04" in out    # the substation in the valley
    # units and weights per layer, the overall loss explained, columns named for what they are
    assert "\npower (people, weight 1) " in out and "\ntransport (no unit, weight 1) " in out
    assert "never demands added across layers" in out
    assert "95% interval of the mean" in out and "p(failed by the cascade)" in out
    failing = int(re.search(r"of the (\d+) nodes that fail in some sample", out).group(1))
    assert failing > 15


def test_scenario_system_key_is_checked(tmp_path):
    """flood_heavy_rain.toml names ../networks/demo_town: another system is refused in one line."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "nodes.csv").write_text("id,layer,kind,x,y\na,power,source,0,0\nb,power,,1,1\n")
    (other / "edges.csv").write_text("source,target\na,b\n")
    (other / "system.toml").write_text('[system]\nname = "other"\n')
    out = tmp_path / "x.json"
    for args in (["scenario", other, FLOOD, "-n", 5, "-o", out],
                 ["report", other, "--scenario", FLOOD, "-n", 5, "-o", tmp_path / "rep"]):
        r = run(*args)
        assert r.exit_code == 2
        assert r.stderr.strip().splitlines() == [r.stderr.strip()]
        assert "[scenario] system names 'demo_town'" in r.stderr and "'other'" in r.stderr
    assert not out.exists() and not (tmp_path / "rep").exists()
    # a copy of the demo town (same name) is the same system
    import shutil
    shutil.copytree(DEMO, tmp_path / "copy")
    assert run("scenario", tmp_path / "copy", FLOOD, "-n", 5).exit_code == 0


def test_json_and_csv_match_the_api():
    system = read_system(DEMO)
    expected = run_ensemble(system, load_scenario(FLOOD), 30, seed=5)
    r = run("scenario", DEMO, FLOOD, "-n", 30, "--seed", 5, "--format", "json", "--top", 0)
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["samples"] == 30 and data["seed"] == 5
    summary = expected.summary().set_index("layer")
    for layer, row in data["loss"].items():
        assert row["mean"] == pytest.approx(summary.loc[layer, "mean"])
        assert row["p95"] == pytest.approx(summary.loc[layer, "p95"])
    probs = expected.node_probability()
    assert len(data["nodes"]) == int((probs["p_fail"] > 0).sum())
    r = run("scenario", DEMO, FLOOD, "-n", 30, "--seed", 5, "--format", "csv")
    assert r.exit_code == 0
    table = pd.read_csv(io.StringIO(r.output))
    assert list(table.columns) == ["id", "layer", "p_fail", "p_direct", "p_cascade"]
    assert np.allclose(table["p_fail"], probs["p_fail"]) and list(table["id"]) == list(probs["id"])


def test_output_file(tmp_path):
    out = tmp_path / "flood.json"
    r = run("scenario", DEMO, FLOOD, "-n", 10, "--format", "json", "--output", out)
    assert r.exit_code == 0
    assert json.loads(out.read_text())["samples"] == 10


@pytest.mark.parametrize("text,message", [
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'flood'\nlevel = 9\nlevel_sd = -1\n[hazard.threshold]\npump = 0.2\n",
     "key 'hazard.level_sd': must be >= 0.0"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'flood'\nlevel = 9\n[hazard.threshold]\npumps = 0.2\n",
     "key 'hazard.threshold.pumps': no layer or kind 'pumps' in the system"),
    ("[scenario]\nseed = 1\nsampels = 3\n[hazard]\ntype = 'random'\nfraction = 0.1\n", "unknown key 'scenario.sampels'"),
])
def test_bad_scenario_file_is_one_line_and_exit_2(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    out = tmp_path / "out.json"
    r = CliRunner().invoke(cli, ["scenario", str(DEMO), str(bad), "-n", "5", "-o", str(out)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: ")
    assert not out.exists()


def test_conflicting_executors_are_exit_2():
    r = run("scenario", DEMO, FLOOD, "--workers", 2, "--scheduler", "tcp://127.0.0.1:1")
    assert r.exit_code == 2 and "either --workers or --scheduler" in r.output
    r = run("scenario", DEMO, FLOOD, "--threads", 2, "--workers", 2)
    assert r.exit_code == 2 and "--threads" in r.output


def test_subprocess_json_and_bad_file(tmp_path):
    p = subprocess.run([CASCADE, "scenario", str(DEMO), str(ROOT / "scenarios" / "random_failures.toml"),
                        "-n", "25", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""                       # piped: no progress bar
    data = json.loads(p.stdout)
    expected = run_ensemble(read_system(DEMO), load_scenario(ROOT / "scenarios" / "random_failures.toml"), 25)
    assert data["loss"]["overall"]["mean"] == pytest.approx(expected.summary()["mean"].iloc[-1])
    missing = tmp_path / "nope.toml"
    p = subprocess.run([CASCADE, "scenario", str(DEMO), str(missing)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == f"error: {missing}: no such scenario file"


def test_subprocess_through_a_dask_scheduler_gives_the_local_numbers():
    """The issue's "done when": the flood locally and through a Dask scheduler, same numbers."""
    args = [CASCADE, "scenario", str(DEMO), str(FLOOD), "-n", "60", "--format", "json"]
    local = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr
    with dask_cluster(2) as (address, _):
        remote = subprocess.run(args + ["--scheduler", address], capture_output=True, text=True, timeout=300)
    assert remote.returncode == 0, remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert b["executor"].startswith("dask (tcp://127.0.0.1:")
    for key in ("loss", "nodes", "direct_failures_mean", "samples", "seed"):
        assert a[key] == b[key]
