"""``--workers``: the local Dask cluster of cascade.ensemble._local_cluster, on real workers.

* the workers run without distributed's ``MALLOC_TRIM_THRESHOLD_`` (the allocator penalty);
* the nanny's variables do not leak into this process's environment;
* results are identical to threads (the ranges sized on the run change nothing;
  tests/test_cluster_store.py tests the ranges themselves);
* ``cascade risk --workers`` goes through the same helper.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cascade import compile_system, read_system
from cascade import ensemble
from cascade.ensemble import run_ensemble
from cascade.hazards import load_scenario

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
QUAKE = ROOT / "scenarios" / "earthquake_m62.toml"
WATCHED = ("MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


def _environ():
    return {k: os.environ.get(k) for k in WATCHED}


def test_local_cluster_workers_without_trim_threshold_and_no_leak():
    before = _environ()
    cluster = ensemble._local_cluster(distributed, 2)
    try:
        assert _environ() == before, "the nanny's variables leaked into this process"
        with distributed.Client(cluster, set_as_default=False) as client:
            seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert len(seen) == 2
        expected = before["MALLOC_TRIM_THRESHOLD_"]       # None unless this process set one
        assert set(seen.values()) == {expected}, seen
    finally:
        ensemble.close_local_cluster(cluster)
    assert _environ() == before


def _loop_settings(dask_worker=None, dask_scheduler=None):
    import dask

    server = dask_worker if dask_worker is not None else dask_scheduler
    return ({k: v.callback_time for k, v in server.periodic_callbacks.items()},
            dask.config.get("distributed.worker.profile.enabled"))


def test_local_cluster_is_quiet():
    """The local cluster's scheduler, nannies and workers run with QUIET_CONFIG (no profiler,
    ticks every second, the system and memory monitors less often), and this process's own
    Dask config is left as it was; the oracle: distributed's defaults differ on each."""
    import dask

    defaults = {k: dask.config.get(k) for k in ensemble.QUIET_CONFIG}
    assert all(defaults[k] != v for k, v in ensemble.QUIET_CONFIG.items()), defaults
    tick = dask.utils.parse_timedelta(ensemble.QUIET_CONFIG["distributed.admin.tick.interval"]) * 1000
    monitor = dask.utils.parse_timedelta(
        ensemble.QUIET_CONFIG["distributed.admin.system-monitor.interval"]) * 1000
    memory = dask.utils.parse_timedelta(
        ensemble.QUIET_CONFIG["distributed.worker.memory.monitor-interval"]) * 1000
    cluster = ensemble._local_cluster(distributed, 2)
    try:
        assert {k: dask.config.get(k) for k in ensemble.QUIET_CONFIG} == defaults
        with distributed.Client(cluster, set_as_default=False) as client:
            workers = client.run(_loop_settings)
            scheduler, _ = client.run_on_scheduler(_loop_settings)
        nannies = [n.periodic_callbacks for n in cluster.workers.values()]
    finally:
        ensemble.close_local_cluster(cluster)
    assert len(workers) == 2
    for callbacks, profiling in workers.values():
        assert profiling is False
        assert (callbacks["tick"], callbacks["monitor"], callbacks["memory_monitor"]) == (tick, monitor, memory)
    assert (scheduler["tick"], scheduler["monitor"]) == (tick, monitor)
    assert [n["memory_monitor"].callback_time for n in nannies] == [memory, memory]


def test_plain_local_cluster_would_leak(monkeypatch):
    """The oracle of the test above: distributed's own LocalCluster does set the variables
    (else the no-leak assertion would prove nothing)."""
    for key in WATCHED:
        monkeypatch.delenv(key, raising=False)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=40)
    try:
        assert os.environ.get("MALLOC_TRIM_THRESHOLD_") is not None or \
            os.environ.get("PYTHONHASHSEED") is not None
        with distributed.Client(cluster, set_as_default=False) as client:
            assert set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()) == {"65536"}
    finally:
        cluster.close()


def test_workers_identical_to_threads_and_no_leak():
    system = read_system(DEMO)
    compiled = compile_system(system)
    scenario = load_scenario(QUAKE)
    before = _environ()
    threads = run_ensemble(system, scenario, 300, threads=1, compiled=compiled)
    dask = run_ensemble(system, scenario, 300, workers=2, compiled=compiled)
    assert _environ() == before
    assert dask.executor.startswith("dask (local cluster, 2 workers)")
    np.testing.assert_array_equal(dask.loss, threads.loss)
    np.testing.assert_array_equal(dask.failed, threads.failed)
    np.testing.assert_array_equal(dask.direct, threads.direct)
    np.testing.assert_array_equal(dask.n_direct, threads.n_direct)


def test_risk_workers_use_the_shared_helper(monkeypatch, tmp_path):
    from cascade.risk import annual_risk

    made = []
    real = ensemble._local_cluster

    def spy(dist, workers):
        made.append(workers)
        return real(dist, workers)

    monkeypatch.setattr(ensemble, "_local_cluster", spy)
    system = read_system(DEMO)
    text = QUAKE.read_text().replace('system = "../networks/demo_town"', "") \
        .replace("samples = 1000", "samples = 40\nannual_rate = 0.01")
    (tmp_path / "q.toml").write_text(text)
    scenario = load_scenario(tmp_path / "q.toml")
    before = _environ()
    local = annual_risk(system, [scenario], samples=40, threads=1)
    dask = annual_risk(system, [scenario], samples=40, workers=1)
    assert made == [1]
    assert _environ() == before
    assert dask.eal.tolist() == pytest.approx(local.eal.tolist(), rel=1e-12)


def test_local_cluster_workers_start_as_forks_on_linux(monkeypatch):
    """The workers of --workers begin as copies of this process (fork, on Linux): a value set
    here before the start is there in them; the oracle: Dask's spawn starts fresh ones."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("fork is the start method on Linux only")
    assert ensemble.LOCAL_START_METHOD == "fork"
    seen = {}
    for method in ("fork", "spawn"):
        monkeypatch.setattr(ensemble, "LOCAL_START_METHOD", method)
        monkeypatch.setattr(ensemble, "_FORK_PROBE", method, raising=False)
        cluster = ensemble._local_cluster(distributed, 1)
        try:
            with distributed.Client(cluster, set_as_default=False) as client:
                seen[method] = set(client.run(_fork_probe).values())
        finally:
            ensemble.close_local_cluster(cluster)
    assert seen == {"fork": {"fork"}, "spawn": {None}}


def _fork_probe():
    from cascade import ensemble as ens

    return getattr(ens, "_FORK_PROBE", None)


def test_workers_start_with_the_system_and_scenario_in_their_stores(monkeypatch):
    """--workers on Linux: the forked workers hold the compiled system and the prepared
    scenario from the start, so nothing is sent; the oracle: spawned workers are sent both."""
    import sys

    from cascade import cluster as cl

    if not sys.platform.startswith("linux"):
        pytest.skip("fork is the start method on Linux only")
    system = read_system(DEMO)
    compiled = compile_system(system)
    scenario = load_scenario(QUAKE)
    want = run_ensemble(system, scenario, 100, threads=1, compiled=compiled)
    real = cl.SweepCluster._send
    missing = []

    def send(self, tokens):
        have = self.client.run(cl._store_has, list(tokens))
        missing.append(sorted({t for t in tokens for held in have.values() if t not in held}))
        return real(self, tokens)

    monkeypatch.setattr(cl.SweepCluster, "_send", send)
    seen = {}
    for method in ("fork", "spawn"):
        monkeypatch.setattr(ensemble, "LOCAL_START_METHOD", method)
        missing.clear()
        got = run_ensemble(system, scenario, 100, workers=2, compiled=compiled)
        for name in ("loss", "failed", "direct", "n_direct"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        seen[method] = list(missing)
    assert seen["fork"] == [[]]
    assert len(seen["spawn"]) == 1 and len(seen["spawn"][0]) == 2
    assert cl._STORE == {} or all(not t.startswith(("CompiledSystem", "tuple")) for t in cl._STORE)
