"""Ctrl-C during `cascade scenario` stops promptly with one line and exit status 130, on threads
and with --workers (a real process group sent SIGINT, as a terminal does)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASCADE = Path(sys.executable).parent / "cascade"
DEMO = ROOT / "networks" / "demo_town"
SCENARIO = ROOT / "scenarios" / "random_failures.toml"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def group(pgid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) == pgid:
                    out.append(int(name))
            except OSError:
                pass
    return out


def ignores_sigint(pid: int) -> bool:
    """True while the process ignores SIGINT (cascade does while its local cluster starts)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return bool(mask & (1 << (signal.SIGINT - 1)))


def interrupt(tmp_path, *extra, busy: float = 3.0):
    """Start a scenario far too long to finish, wait until it computes, send SIGINT to its group."""
    proc = subprocess.Popen([str(CASCADE), "scenario", str(DEMO), str(SCENARIO), "-n", "400000",
                             "-o", str(tmp_path / "out.txt"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,  # its own process group, like a terminal job
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            others = [p for p in group(proc.pid) if p != proc.pid]
            spent = sum(cpu_seconds(p) for p in others) if "--workers" in extra else cpu_seconds(proc.pid)
            if spent >= busy and ("--workers" not in extra or len(others) >= 2) and not ignores_sigint(proc.pid):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # a guard: without the fix it computes for minutes
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    until = time.time() + 30  # worker processes see their parent go and exit on their own
    while group(proc.pid) and time.time() < until:
        time.sleep(0.2)
    assert group(proc.pid) == [], "processes of the run are left over"
    return proc.returncode, err


def test_ctrl_c_on_threads_stops_with_one_line(tmp_path):
    code, err = interrupt(tmp_path, "--threads", "2", busy=4.0)
    assert code == 130, err
    assert err.strip().splitlines() == ["interrupted: stopped, nothing written"], err
    assert not (tmp_path / "out.txt").exists()


def test_ctrl_c_with_workers_prints_no_worker_tracebacks(tmp_path):
    pytest.importorskip("distributed")
    code, err = interrupt(tmp_path, "--workers", "2", busy=2.0)
    assert code == 130, err
    assert err.strip().splitlines() == ["interrupted: stopped, nothing written"], err
    assert not (tmp_path / "out.txt").exists()
