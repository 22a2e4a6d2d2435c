"""Ensembles: equal to a plain loop over the reference engine, identical on threads, a real
Dask scheduler with workers on 127.0.0.1, a local cluster, and after a worker is killed."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade import InfrastructureSystem, InputError, compile_system, layer_service, simulate
from cascade.ensemble import run_ensemble
from cascade.hazards import load_scenario

from test_hazards import grid_town

BIN = Path(sys.executable).parent
QUAKE = ("[scenario]\nname = 'quake'\nseed = 3\n\n[hazard]\ntype = 'earthquake'\n"
         "epicenter = [400.0, 300.0]\nmagnitude = 6.6\n"
         "[hazard.fragility]\nfeeder = 'EP.C.U'\npump = 'EP.S.L.U'\n")


@pytest.fixture
def quake(tmp_path):
    path = tmp_path / "quake.toml"
    path.write_text(QUAKE)
    return load_scenario(path)


def assert_same(a, b):
    assert np.array_equal(a.loss, b.loss)
    assert np.array_equal(a.failed, b.failed)
    assert np.array_equal(a.direct, b.direct)
    assert np.array_equal(a.n_direct, b.n_direct)


def with_dead_node(system):
    """The system plus a power node without a path to the plant: down even when intact."""
    nodes = pd.concat([system.nodes, pd.DataFrame([{"id": "ISOLATED", "layer": "power", "kind": "feeder",
                                                    "demand": 7.0, "x": 1.0, "y": 1.0, "elevation": 5.0}])])
    return InfrastructureSystem.from_tables(nodes, system.edges, system.dependencies)


@pytest.mark.parametrize("dead", [False, True], ids=["intact", "dead-node"])
def test_ensemble_equals_a_plain_loop_on_the_reference_engine(quake, dead):
    system = with_dead_node(grid_town(8)) if dead else grid_town(8)
    c = compile_system(system)
    samples = 12
    system.weights.update({"power": 3.0})   # the overall loss follows the layers' weights
    result = run_ensemble(system, quake, samples, threads=2, compiled=c)
    base = simulate(system, [], engine="reference").working
    failed = np.zeros(c.n_nodes, int)
    direct = np.zeros(c.n_nodes, int)
    for i in range(samples):
        nodes, edges = quake.sample(c, i)
        ids = list(c.node_ids[nodes]) + list(c.edge_ids[edges])
        ref = simulate(system, ids, engine="reference", compiled=c)
        after = ref.layers()
        # Loss per layer and overall (the layers' weighted mean: demands of different layers
        # are never added) against the intact system.
        want = list(layer_service(c, base)["service"] - after["service"])
        weights = np.array([system.layer_weight(name) for name in c.layer_names])
        want.append(float(np.dot(weights, want)) / weights.sum())
        assert result.loss[i] == pytest.approx(want, abs=1e-12)
        failed += base & ~ref.working
        direct[nodes] += base[nodes]
    assert np.array_equal(result.failed, failed)
    assert np.array_equal(result.direct, direct)
    assert result.failed.sum() > result.direct.sum() > 0       # the cascade adds failures
    if dead:
        assert result.failed[c.node_index(["ISOLATED"])[0]] == 0   # never counted as a failure
        assert layer_service(c, base).loc["power", "service"] < 1


def test_summary_and_node_probability(quake):
    system = grid_town(8)
    r = run_ensemble(system, quake, 40, threads=1)
    s = r.summary()
    assert list(s["layer"]) == ["power", "water", "overall"]
    assert np.allclose(s["mean"], r.loss.mean(axis=0))
    assert np.allclose(s["p95"], np.percentile(r.loss, 95, axis=0))
    p = r.node_probability()
    assert list(p.columns) == ["id", "layer", "p_fail", "p_direct", "p_cascade"]
    assert (p["p_cascade"] >= 0).all() and (p["p_fail"] <= 1).all()
    assert np.all(np.diff(p["p_fail"].to_numpy()) <= 0)
    assert np.allclose(p.set_index("id").loc[r.compiled.node_ids, "p_fail"], r.failed / 40)
    d = r.to_dict()
    assert d["samples"] == 40 and set(d["loss"]) == {"power", "water", "overall"}
    assert all(n["p_fail"] > 0 for n in d["nodes"])


def test_threads_batches_and_progress_give_identical_results(quake):
    system = grid_town(10)
    c = compile_system(system)
    one = run_ensemble(system, quake, 60, threads=1, compiled=c)
    assert_same(one, run_ensemble(system, quake, 60, threads=3, compiled=c, batch_size=7))
    assert_same(one, run_ensemble(system, quake, 60, threads=2, compiled=c, progress=True))
    # A prefix of the samples is the same prefix.
    part = run_ensemble(system, quake, 25, threads=2, compiled=c)
    assert np.array_equal(part.loss, one.loss[:25])
    other = run_ensemble(system, quake, 60, seed=99, threads=2, compiled=c)
    assert not np.array_equal(other.loss, one.loss)


def test_a_second_run_reuses_the_preparation_until_the_hazard_or_system_changes(quake, tmp_path):
    """run_ensemble prepares a scenario once per (system, compiled, hazard parameters): the
    kept preparation gives a fresh scenario's results, and a changed hazard, another system
    object or a prepare() for another system in between prepare again."""
    system = grid_town(10)
    c = compile_system(system)
    first = run_ensemble(system, quake, 40, threads=1, compiled=c)
    kept = quake._prepared(c)
    assert_same(first, run_ensemble(system, quake, 40, threads=1, compiled=c))
    assert quake._prepared(c) is kept
    quake.hazard.magnitude = 7.1                 # a changed hazard: prepared again
    stronger = run_ensemble(system, quake, 40, threads=1, compiled=c)
    assert quake._prepared(c) is not kept
    fresh = load_scenario(tmp_path / "quake.toml")
    fresh.hazard.magnitude = 7.1
    assert_same(stronger, run_ensemble(system, fresh, 40, threads=1, compiled=c))
    assert not np.array_equal(stronger.loss, first.loss)
    kept = quake._prepared(c)
    copy = InfrastructureSystem.from_tables(system.nodes, system.edges, system.dependencies)
    run_ensemble(copy, quake, 5, threads=1, compiled=c)      # another system object
    assert quake._prepared(c) is not kept
    kept = quake._prepared(c)
    quake.prepare(system, c)                     # by hand, in between: not taken for the memo's
    assert quake._prepared(c) is not kept
    assert_same(stronger, run_ensemble(system, quake, 40, threads=1, compiled=c))


def test_zero_samples_and_bad_arguments(quake):
    system = grid_town(5)
    r = run_ensemble(system, quake, 0)
    assert r.loss.shape == (0, 3) and r.summary()["mean"].isna().all()
    with pytest.raises(InputError, match="either a scheduler"):
        run_ensemble(system, quake, 5, scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(InputError, match="samples"):
        run_ensemble(system, quake, -1)


def test_missing_dask_is_a_clear_message(quake, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)        # import fails as if not installed
    with pytest.raises(InputError, match=r"pip install 'cascade-lifelines\[dask\]'"):
        run_ensemble(grid_town(4), quake, 5, workers=1)


def test_unreachable_scheduler_is_a_clear_message(quake, monkeypatch):
    import cascade.ensemble as ens

    monkeypatch.setattr(ens, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_ensemble(grid_town(4), quake, 5, scheduler=f"tcp://127.0.0.1:{free_port()}")


# ------------------------------------------------------------------ a real Dask cluster
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dask_cluster(n_workers: int):
    """A `dask scheduler` and `dask worker` processes (no nanny, so a kill is final) on
    127.0.0.1; yields (address, worker processes)."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], **quiet)]
    try:
        workers = [subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1",
                                     "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                     "--name", f"w{i}"], **quiet) for i in range(n_workers)]
        procs += workers
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=60)
        yield address, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def cluster():
    with dask_cluster(2) as (address, _):
        yield address


def test_dask_scheduler_gives_the_threads_results(quake, cluster):
    system = grid_town(10)
    c = compile_system(system)
    local = run_ensemble(system, quake, 80, threads=2, compiled=c)
    remote = run_ensemble(system, quake, 80, scheduler=cluster, compiled=c, batch_size=9)
    assert_same(local, remote)
    assert remote.executor.startswith("dask")


def test_local_dask_cluster_gives_the_threads_results(quake):
    system = grid_town(8)
    local = run_ensemble(system, quake, 30, threads=1)
    assert_same(local, run_ensemble(system, quake, 30, workers=1, batch_size=8))


def test_a_worker_killed_mid_run_changes_nothing(quake):
    from distributed import Client

    system = grid_town(16)
    c = compile_system(system)
    samples, batch = 1200, 10
    expected = run_ensemble(system, quake, samples, threads=2, compiled=c)
    with dask_cluster(2) as (address, workers):
        out, errors = {}, []

        def run():
            try:
                out["result"] = run_ensemble(system, quake, samples, scheduler=address, compiled=c,
                                             batch_size=batch)
            except Exception as exc:        # reported below
                errors.append(exc)

        runner = threading.Thread(target=run)
        runner.start()

        def finished(dask_scheduler):
            return sum(ts.state == "memory" and str(ts.key).startswith("run_batch")
                       for ts in dask_scheduler.tasks.values())

        total = samples // batch
        with Client(address, timeout="30s") as monitor:
            deadline = time.time() + 120
            done = 0
            while time.time() < deadline and runner.is_alive():
                done = monitor.run_on_scheduler(finished)
                if done >= 3:
                    break
                time.sleep(0.01)
            assert runner.is_alive() and 3 <= done < total, "the run ended before the kill"
            workers[1].send_signal(signal.SIGKILL)
        runner.join(timeout=300)
        assert not errors, errors
        assert workers[1].wait(timeout=10) == -signal.SIGKILL
    assert_same(expected, out["result"])
