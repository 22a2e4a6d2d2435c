"""Progress of long runs: library callbacks, and bars only where stderr is a terminal."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading

import pytest
from click.testing import CliRunner

import cascade.progress
from cascade import read_system
from cascade.cli import cli
from cascade.criticality import greedy_worst_set, sweep
from cascade.progress import Tracker, tracker

from conftest import DEMO, ROOT

SCENARIO = ROOT / "scenarios" / "random_failures.toml"


class Calls:
    """A progress callback that records its calls."""

    def __init__(self):
        self.calls: list[tuple[int, int, str]] = []
        self.lock = threading.Lock()

    def __call__(self, done, total, label):
        with self.lock:
            self.calls.append((done, total, label))

    def labels(self) -> set[str]:
        return {label for _, _, label in self.calls}

    def last(self, label: str) -> tuple[int, int]:
        done, total, _ = [c for c in self.calls if c[2] == label][-1]
        return done, total

    def increasing(self, label: str) -> bool:
        done = [d for d, _, lab in self.calls if lab == label]
        return all(a < b for a, b in zip(done, done[1:]))


@pytest.fixture(scope="module")
def demo():
    return read_system(DEMO)


# ------------------------------------------------------------------ the tracker itself
def test_tracker_counts_grows_and_stays_silent_without_progress():
    calls = Calls()
    with tracker(calls, 3, "job") as bar:
        bar.update()
        bar.update(2)
        bar.grow(2)
        bar.update(0)  # nothing to report
        bar.update(2)
    assert calls.calls == [(1, 3, "job"), (3, 3, "job"), (5, 5, "job")]
    for quiet in (None, False):
        t = Tracker(quiet, 10, "job")
        t.update(5)
        assert not t.active and t.done == 0
    with pytest.raises(TypeError):
        Tracker("yes", 1, "job")


def test_part_forwards_a_sub_task_as_increments():
    calls = Calls()
    outer = tracker(calls, 10, "all")
    part = outer.part()
    part(3, 4, "inner")
    part(4, 4, "inner")
    outer.update()
    assert calls.calls == [(3, 10, "all"), (4, 10, "all"), (5, 10, "all")]
    assert tracker(None, 1, "x").part() is None


def test_a_true_progress_draws_a_tqdm_bar_on_stderr(capsys, monkeypatch):
    monkeypatch.setattr(cascade.progress, "DELAY", 0.0)
    with tracker(True, 4, "drawing", "step") as bar:
        bar.update(4)
    err = capsys.readouterr().err
    assert "drawing:" in err and "%|" in err and "/4 [" in err


# ------------------------------------------------------------------ the library calls back
def test_sweep_reports_every_element_core_and_reference(town):
    system = read_system(town)
    for engine in ("core", "reference"):
        calls = Calls()
        table = sweep(system, elements="all", engine=engine, progress=calls)
        label = "N-1 sweep" if engine == "core" else "N-1 sweep (reference engine)"
        assert calls.labels() == {label}
        assert calls.last(label) == (len(table), len(table)) and calls.increasing(label)


def test_sweep_of_the_demo_town_counts_chunks_from_threads(demo):
    calls = Calls()
    table = sweep(demo, elements="all", threads=2, progress=calls)
    assert calls.last("N-1 sweep") == (len(table), len(table)) and len(calls.calls) > 1
    assert calls.increasing("N-1 sweep")


def test_worst_set_counts_its_steps(demo):
    calls = Calls()
    worst = greedy_worst_set(demo, 2, progress=calls)
    assert len(worst) == 2 and calls.calls == [(1, 2, "worst set"), (2, 2, "worst set")]


def test_ensemble_counts_samples(demo):
    from cascade.ensemble import run_ensemble
    from cascade.hazards import load_scenario

    calls = Calls()
    result = run_ensemble(demo, load_scenario(SCENARIO), 70, threads=2, batch_size=16, progress=calls)
    label = str(load_scenario(SCENARIO).name)
    assert result.samples == 70 and calls.last(label) == (70, 70) and len(calls.calls) >= 5


def test_recovery_counts_repairs(demo):
    from cascade.recovery import recover, recover_many

    ids = ["P-SUB-T03", "W-PS-01", "C-AGG-01", "P-SUB-D020", "W-PS-03"]
    calls = Calls()
    recover(demo, ids, strategy="greedy", crews=1, progress=calls)
    assert calls.calls == [(i, 5, "recovery (greedy)") for i in range(1, 6)]
    calls = Calls()
    recover_many(demo, ids, ["greedy", "critical", "random"], crews=2, progress=calls)
    assert calls.last("recovery") == (15, 15) and calls.increasing("recovery")


def test_redundancy_counts_evaluations(demo):
    from cascade.redundancy import FixedSampler, analyse, read_candidates

    cands = [c for c in read_candidates(ROOT / "networks" / "demo_town_candidates.csv", demo)
             if not (c.type == "harden" and c.factor is not None)][:4]
    calls = Calls()
    result = analyse(demo, cands, FixedSampler([["P-SUB-D031"], ["W-TP-2", "C-AGG-04"]]), samples=2,
                     budget=1000, progress=calls)
    assert calls.last("ranking measures") == (len(cands) + 1, len(cands) + 1)
    done, total = calls.last("budget plan")
    assert done == total and total >= len(cands) + result.plan.searched
    assert calls.increasing("ranking measures") and calls.increasing("budget plan")


def test_report_counts_all_its_work_in_one_bar(town, tmp_path):
    from cascade.report import build_report

    scenario = tmp_path / "random.toml"
    scenario.write_text('[scenario]\nseed = 3\n[hazard]\ntype = "random"\nelements = "all"\nfraction = 0.3\n')
    calls = Calls()
    out = build_report(town, scenario, tmp_path / "rep", samples=20, progress=calls)
    assert calls.labels() == {"report"}
    done, total = calls.last("report")
    assert done == total and calls.increasing("report")
    n_elements = 6 + 4  # nodes and edges of the town
    assert total >= 1 + n_elements + 20 + len(out["figures"])


# ------------------------------------------------------------------ the command line decides
def cli_run(*args, **env):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env or None)


@pytest.mark.parametrize("command", [
    ["critical", "{town}", "--k", "2"],
    ["critical", "{town}", "--engine", "reference"],
    ["recover", "{town}", "--fail", "sub1", "--fail", "tap1", "-s", "greedy", "-s", "random"],
    ["scenario", "{town}", "{scenario}", "--samples", "30"],
])
def test_cli_shows_a_bar_only_when_asked_or_on_a_terminal(command, town, tmp_path, monkeypatch):
    monkeypatch.setattr(cascade.progress, "DELAY", 0.0)
    scenario = tmp_path / "s.toml"
    scenario.write_text('[scenario]\nseed = 1\n[hazard]\ntype = "random"\nfraction = 0.2\n')
    args = [a.format(town=town, scenario=scenario) for a in command]
    quiet = cli_run(*args)                      # CliRunner's stderr is not a terminal
    assert quiet.exit_code == 0, quiet.output
    assert "\r" not in quiet.stderr and "it/s" not in quiet.stderr and "/s]" not in quiet.stderr
    shown = cli_run("--progress", *args)
    assert shown.exit_code == 0, shown.output
    assert "\r" in shown.stderr and "%|" in shown.stderr
    untimed = lambda text: re.sub(r"[\d.]+ s\b", "T s", text)  # noqa: E731  (run times differ)
    assert untimed(shown.stdout) == untimed(quiet.stdout)   # the answer does not change
    assert cli_run("--no-progress", *args).stderr == quiet.stderr


def _cascade(args, stderr_tty: bool, env: dict) -> tuple[int, str, str]:
    """Run `cascade ARGS` in a real process; stderr on a pseudo-terminal or a pipe."""
    cmd = [sys.executable, "-c", "from cascade.cli import main; main()", *args]
    if not stderr_tty:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100 characters
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode()
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


def test_a_real_process_draws_on_a_terminal_and_not_into_a_pipe(town):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "CASCADE_PROGRESS_DELAY": "0"}
    args = ["critical", str(town), "--engine", "reference"]
    code, out_pipe, err_pipe = _cascade(args, False, env)
    assert code == 0 and err_pipe == ""
    code, out_tty, err_tty = _cascade(args, True, env)
    assert code == 0 and "N-1 sweep (reference engine)" in err_tty and "%|" in err_tty
    assert re.sub(r"[\d.]+ s\b", "", out_tty) == re.sub(r"[\d.]+ s\b", "", out_pipe)
    code, _, err_off = _cascade(["--no-progress", *args], True, env)
    assert code == 0 and "N-1 sweep" not in err_off
