"""The commands as a user runs them with odd input: ids with $, quotes, commas, spaces,
unicode and formula starts; usage mistakes; absurd sizes.  Every mistake ends with exit 2 and
one line on stderr, no traceback."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli import cli

ROOT = Path(__file__).resolve().parents[1]
FLOW = ROOT / "networks" / "flow_town"
SCENARIO = ROOT / "scenarios" / "flow_town_faults.toml"
RENAME = {"plant": "pl$ant", "north": 'north "N"', "south": "Süd station", "hospital": "=HYPERLINK(1)",
          "L1": "L$1", "L2": "L 2 ü", "pump": "pump,1", "east": "東"}


@pytest.fixture
def odd_town(tmp_path):
    """networks/flow_town with odd ids, in a directory whose name has a space and an umlaut."""
    out = tmp_path / "my town ü"
    out.mkdir()
    for name in ("nodes.csv", "edges.csv", "dependencies.csv"):
        rows = list(csv.reader(open(FLOW / name, encoding="utf-8")))
        rows = [rows[0]] + [[RENAME.get(c, c) for c in r] for r in rows[1:]]
        with open(out / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    (out / "system.toml").write_text((FLOW / "system.toml").read_text())
    return out


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="cascade")


def one_line_error(res) -> str:
    assert res.exit_code == 2, (res.output, res.exception)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (["simulate", FLOW, "--fial", "x"], "No such option '--fial'. Did you mean '--fail'? (see 'cascade simulate --help')"),
    (["simulate", FLOW, "--format", "xml"], "Invalid value for '--format'"),
    (["simulte", FLOW], "No such command 'simulte'"),
    (["--bogus"], "No such option '--bogus'. (see 'cascade --help')"),
    (["simulate"], "Missing argument 'SYSTEM'"),
    (["scenario", FLOW, SCENARIO, "--samples", "0"], "Invalid value for '--samples'"),
    (["critical", FLOW, "--top", "-1"], "Invalid value for '--top'"),
])
def test_usage_mistakes_are_one_line(args, message):
    assert message in one_line_error(run(*args))


def test_usage_mistake_in_a_real_process():
    res = subprocess.run([str(Path(sys.executable).parent / "cascade"), "simulate", str(FLOW), "--fial", "x"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == ["error: No such option '--fial'. Did you mean '--fail'? "
                                       "(see 'cascade simulate --help')"]


def test_plain_cascade_still_prints_its_help():
    res = run()
    assert "Usage: cascade" in res.output and "simulate" in res.output


def test_odd_ids_through_simulate(odd_town):
    res = run("simulate", odd_town, "--fail", "L$1")
    assert res.exit_code == 0, res.output
    assert "round 1, step 1: L 2 ü [power] 96.0 MW / 60.0 MW = 160.0%" in res.stdout
    assert "dependency [water 1]: pump,1 (via Süd station)" in res.stdout
    assert "  water: 東 50.0/300.0 m3/h (16.7%)" in res.stdout
    # the CSV quotes what needs quoting and reads back to the same ids
    res = run("simulate", odd_town, "--fail", "L$1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["id"] for r in rows if r["status"] == "stopped"] == ['north "N"', "pump,1"]
    assert [r["via"] for r in rows if r["status"] == "stopped"] == ["", "Süd station"]
    assert {r["id"] for r in rows if r["element"] == "edge"} == {"L$1", "L 2 ü", "L3"}


def test_csv_safe_keeps_numbers_numbers(odd_town):
    """--csv-safe quotes the formula-like id, and round and step stay whole numbers (1, not 1.0)."""
    res = run("simulate", odd_town, "--fail", "=HYPERLINK(1)", "--fail", "L$1", "--format", "csv", "--csv-safe")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    hyper = next(r for r in rows if r["id"] == "'=HYPERLINK(1)")
    assert hyper["round"] == "0" and hyper["cause"] == "initial"
    trips = [r for r in rows if r["status"] == "tripped"]
    assert trips and all(r["round"] == "1" and r["step"] == "1" for r in trips)
    flows = [r["flow (MW)"] for r in trips]
    assert [float(f) for f in flows] and "-60.0" in flows     # a negative number is no formula


def test_fail_file_with_bom_crlf_and_odd_ids(odd_town, tmp_path):
    ids = tmp_path / "fail list.txt"
    ids.write_bytes('\ufeffL$1\r\n# a comment\r\n\r\nnorth "N"\r\n'.encode("utf-8"))
    res = run("simulate", odd_town, "--fail-file", ids, "--format", "json")
    assert res.exit_code == 0, res.output
    assert '"L$1"' in res.stdout and '"north \\"N\\""' in res.stdout


@pytest.mark.parametrize("what,message", [
    ("annual_rate = 1e308", "key 'scenario.annual_rate': must be <= 1000000.0"),
    ("return_period = 1e-300", "key 'scenario.return_period': must be >= 1e-06"),
    ("annual_rate = 0", "key 'scenario.annual_rate': must be > 0.0"),
])
def test_absurd_rates_are_refused(tmp_path, what, message):
    text = SCENARIO.read_text().replace("annual_rate = 0.2", what).replace('system = "../networks/flow_town"', "")
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert message in one_line_error(run("risk", FLOW, path, "--samples", "5"))


def test_empty_files_are_one_line_errors(odd_town):
    (odd_town / "edges.csv").write_text("")
    assert "edges.csv: empty file" in one_line_error(run("simulate", odd_town))


def test_flow_csv_layers_without_unit_never_share_a_column(odd_town):
    (odd_town / "system.toml").write_text('[system]\nname = "nu"\n[layers.power]\nrule = "dcflow"\n'
                                          '[layers.water]\nrule = "flow"\n')
    res = run("simulate", odd_town, "--fail", "L$1", "--format", "csv")
    assert res.exit_code == 0, res.output
    header = res.stdout.splitlines()[0].split(",")
    assert header[10:] == ["served (power: no unit)", "demand (power: no unit)", "served (water: no unit)",
                           "demand (water: no unit)", "flow (power: no unit)", "capacity (power: no unit)",
                           "loading"]
