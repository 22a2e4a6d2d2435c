"""One rule for ``--threads N`` and ``--workers N`` in every command: 1 to 4x the machine's
usable cores; anything else is one line on stderr and exit 2, before any work or output file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cascade.commands as commands
from cascade.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "networks" / "demo_town"
QUAKE = ROOT / "scenarios" / "earthquake_m62.toml"
CASCADE = Path(sys.executable).parent / "cascade"

# Every command with --threads / --workers, with arguments that would otherwise run.
COMMANDS = {
    "critical": ["critical", DEMO, "--no-compare", "--top", "3"],
    "scenario": ["scenario", DEMO, QUAKE, "--samples", "5"],
    "risk": ["risk", DEMO, QUAKE, "--samples", "5"],
    "redundancy": ["redundancy", DEMO, "--candidates", ROOT / "nope.csv", "--scenario", QUAKE],
    "report": ["report", DEMO, "--scenario", QUAKE, "--output", ROOT / "nope-report"],
}
CASES = [(name, opt) for name in COMMANDS for opt in ("--threads", "--workers") if name != "report"
         or opt == "--threads"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("name,option", CASES)
def test_absurd_counts_are_one_line_and_exit_2(name, option, tmp_path):
    limit = commands.PER_CORE * commands.default_threads()
    for value in ("100000", str(limit + 1), "0", "-3"):
        res = invoke(*COMMANDS[name], option, value)
        assert res.exit_code == 2, (value, res.output)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and option in lines[0] and value in lines[0], res.stderr
        if value != "0" and value != "-3":
            assert f"more than {limit}" in lines[0] and "4x the machine's cores" in lines[0]
    assert not (ROOT / "nope-report").exists()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_states_the_rule(name):
    res = invoke(name, "--help")
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    options = 1 if name == "report" else 2
    assert text.count("at most 4x the machine's cores") == options, text


def test_the_limit_follows_the_cores(monkeypatch):
    """4x the usable cores: with 3 cores, 12 runs (the same numbers as 1 thread) and 13 does not."""
    monkeypatch.setattr(commands, "default_threads", lambda: 3)
    base = invoke(*COMMANDS["scenario"], "--threads", "1", "--format", "json")
    wide = invoke(*COMMANDS["scenario"], "--threads", "12", "--format", "json")
    assert base.exit_code == 0 and wide.exit_code == 0, wide.output
    a, b = json.loads(base.stdout), json.loads(wide.stdout)
    assert (a.pop("executor"), b.pop("executor")) == ("threads (1)", "threads (12)")
    assert a == b and a["samples"] == 5
    over = invoke(*COMMANDS["scenario"], "--threads", "13")
    assert over.exit_code == 2 and "13 is more than 12 (at most 4x the machine's cores: 4 x 3 here)" in over.stderr


def test_real_process():
    env = {**os.environ, "CASCADE_CACHE": "0"}
    res = subprocess.run([str(CASCADE), "scenario", str(DEMO), str(QUAKE), "--threads", "100000"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Invalid value for '--threads': 100000 is more than" in res.stderr
