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
