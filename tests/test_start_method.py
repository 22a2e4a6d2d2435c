"""``CASCADE_START_METHOD``: how --workers starts its local Dask workers (fork, spawn or
forkserver), read where the cluster starts; a bad value is one line and exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade import compile_system, ensemble, read_system
from cascade.cli import cli
from cascade.ensemble import local_start_method, run_ensemble
from cascade.errors import InputError
from cascade.hazards import load_scenario

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
QUAKE = ROOT / "scenarios" / "earthquake_m62.toml"
CASCADE = Path(sys.executable).parent / "cascade"


def test_the_variable_chooses_the_method(monkeypatch):
    monkeypatch.delenv("CASCADE_START_METHOD", raising=False)
    assert local_start_method() == ensemble.LOCAL_START_METHOD
    for method in ("fork", "spawn", "forkserver"):
        monkeypatch.setenv("CASCADE_START_METHOD", method)
        assert local_start_method() == method
    monkeypatch.setenv("CASCADE_START_METHOD", "")
    assert local_start_method() == ensemble.LOCAL_START_METHOD
    monkeypatch.setenv("CASCADE_START_METHOD", "threads")
    with pytest.raises(InputError, match="CASCADE_START_METHOD: must be fork, spawn or forkserver, not 'threads'"):
        local_start_method()


def _probe():
    from cascade import ensemble as ens

    return getattr(ens, "_START_PROBE", None)


def test_spawned_workers_are_fresh_processes(monkeypatch):
    """With CASCADE_START_METHOD=spawn the workers do not begin as copies of this process: a
    value set here before the start is not in them (with fork it is: the oracle)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the default is fork on Linux only")
    monkeypatch.setattr(ensemble, "_START_PROBE", "here", raising=False)
    seen = {}
    for method in ("spawn", "fork"):
        monkeypatch.setenv("CASCADE_START_METHOD", method)
        cluster = ensemble._local_cluster(distributed, 1)
        try:
            with distributed.Client(cluster, set_as_default=False) as client:
                seen[method] = set(client.run(_probe).values())
        finally:
            ensemble.close_local_cluster(cluster)
    assert seen == {"spawn": {None}, "fork": {"here"}}


def test_spawned_workers_give_the_numbers_of_threads(monkeypatch):
    """The ensemble on 2 spawned workers (nothing carried over by a fork: the system and the
    scenario are sent) is the one on one thread, to the bit."""
    monkeypatch.setenv("CASCADE_START_METHOD", "spawn")
    system = read_system(DEMO)
    compiled = compile_system(system)
    scenario = load_scenario(QUAKE)
    want = run_ensemble(system, scenario, 120, threads=1, compiled=compiled)
    got = run_ensemble(system, scenario, 120, workers=2, compiled=compiled)
    assert got.executor.startswith("dask (local cluster, 2 workers)")
    for name in ("loss", "failed", "direct", "n_direct"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


def test_cli_spawn_matches_threads_and_a_bad_value_is_one_line():
    env = {**os.environ, "CASCADE_CACHE": "0", "CASCADE_START_METHOD": "spawn"}
    args = [str(CASCADE), "scenario", str(DEMO), str(QUAKE), "--samples", "60", "--format", "json"]
    spawn = subprocess.run(args + ["--workers", "2"], capture_output=True, text=True, env=env, timeout=600)
    local = subprocess.run(args + ["--threads", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert spawn.returncode == 0 and local.returncode == 0, spawn.stderr
    a, b = json.loads(spawn.stdout), json.loads(local.stdout)
    assert a.pop("executor").startswith("dask (local cluster, 2 workers)") and b.pop("executor") == "threads (1)"
    assert a == b
    bad = subprocess.run(args + ["--workers", "2"], capture_output=True, text=True, timeout=600,
                         env={**env, "CASCADE_START_METHOD": "vfork"})
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "error: CASCADE_START_METHOD: must be fork, spawn or forkserver, not 'vfork'\n"


@pytest.mark.parametrize("command", [
    ["scenario", DEMO, QUAKE, "--samples", "5", "--workers", "1"],
    ["critical", DEMO, "--no-compare", "--workers", "1"],
    ["risk", DEMO, ROOT / "scenarios" / "rainfall_100yr.toml", "--samples", "5", "--workers", "1"],
])
def test_bad_value_in_every_command_with_workers(command, tmp_path):
    out = tmp_path / "never.json"
    res = CliRunner(env={"CASCADE_START_METHOD": "Spawn"}).invoke(
        cli, [str(a) for a in command] + ["--output", str(out)])
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [
        "error: CASCADE_START_METHOD: must be fork, spawn or forkserver, not 'Spawn'"]
    assert not out.exists()
