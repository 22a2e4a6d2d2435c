"""--scheduler on odd addresses and a cluster that loses every worker: one line, exit 2, no hang,
no traceback (a real Dask scheduler and worker on 127.0.0.1, and a plain TCP socket)."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")

from cascade import InputError, compile_system  # noqa: E402
from cascade.cli import cli  # noqa: E402
from cascade.ensemble import run_ensemble  # noqa: E402

from test_ensemble import QUAKE, dask_cluster  # noqa: E402
from test_hazards import grid_town  # noqa: E402
from cascade.hazards import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASCADE = Path(sys.executable).parent / "cascade"
DEMO = ROOT / "networks" / "demo_town"
SCENARIO = ROOT / "scenarios" / "random_failures.toml"


def test_a_port_that_is_not_dask_is_one_line_not_a_hang(tmp_path):
    with socket.socket() as server:  # accepts connections (backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        port = server.getsockname()[1]
        proc = subprocess.run([str(CASCADE), "scenario", str(DEMO), str(SCENARIO), "-n", "5",
                               "--scheduler", f"tcp://127.0.0.1:{port}", "-o", str(tmp_path / "out.txt")],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no answer within 10 s" in lines[0], proc.stderr
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("address,message", [
    ("tcp://127.0.0.1:notaport", "invalid literal"), ("nonsense", "missing port"),
    ("udp://1.2.3.4:1", "unknown address scheme"), ("", "address is empty"), ("tcp://[::1", "invalid address"),
])
def test_malformed_address_is_one_line_without_traceback(address, message):
    res = CliRunner().invoke(cli, ["scenario", str(DEMO), str(SCENARIO), "-n", "5", "--scheduler", address])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: --scheduler"), res.stderr


def test_malformed_address_in_a_real_process_prints_no_traceback():
    proc = subprocess.run([str(CASCADE), "scenario", str(DEMO), str(SCENARIO), "-n", "5",
                           "--scheduler", "tcp://127.0.0.1:notaport"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1, proc.stderr


def test_losing_every_worker_mid_run_is_one_line(tmp_path, monkeypatch):
    import cascade.ensemble as ens

    monkeypatch.setattr(ens, "NO_WORKERS_GRACE", 3.0)
    (tmp_path / "q.toml").write_text(QUAKE)
    quake = load_scenario(tmp_path / "q.toml")
    system = grid_town(16)
    c = compile_system(system)
    from distributed import Client

    with dask_cluster(1) as (address, workers):
        errors = []

        def run():
            try:
                run_ensemble(system, quake, 3000, scheduler=address, compiled=c, batch_size=10)
            except Exception as exc:  # checked below
                errors.append(exc)

        runner = threading.Thread(target=run)
        runner.start()

        def finished(dask_scheduler):
            return sum(ts.state == "memory" and str(ts.key).startswith("run_batch")
                       for ts in dask_scheduler.tasks.values())

        with Client(address, timeout="30s") as monitor:
            deadline = time.time() + 120
            while time.time() < deadline and runner.is_alive() and monitor.run_on_scheduler(finished) < 3:
                time.sleep(0.01)
            assert runner.is_alive(), "the run ended before the kill"
            workers[0].send_signal(signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], InputError), errors
    # Dask cancels the batches when the data scattered to the workers is lost with them (its
    # reason reads "lost dependencies", or "unknown" depending on timing), or the run waits
    # NO_WORKERS_GRACE for a worker to come back: either way one line, nothing written.
    message = str(errors[0])
    assert ("lost dependencies" in message or "no workers for 3 s" in message
            or "cancelled" in message), message
    assert "nothing written" in message and "\n" not in message
