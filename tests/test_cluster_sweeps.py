"""`critical` and `redundancy` on Dask (--scheduler on a real scheduler and workers on
127.0.0.1, --workers as a local cluster): the same answers as threads, bad options one line."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade import compile_system, write_system
from cascade.cli import cli
from cascade.cluster import SweepCluster
from cascade.criticality import core_sweep, element_indices, synthetic_lifelines

from conftest import DEMO, ROOT
from test_ensemble import dask_cluster

CASCADE = Path(sys.executable).parent / "cascade"
QUAKE = ROOT / "scenarios" / "earthquake_m62.toml"
CANDIDATES = ROOT / "networks" / "demo_town_candidates.csv"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def scheduler():
    with dask_cluster(2) as (address, _):
        yield address


@pytest.fixture(scope="module")
def lifelines(tmp_path_factory):
    """Five lifelines with `giant` transport and dependency groups, on disk."""
    path = tmp_path_factory.mktemp("life") / "life"
    write_system(synthetic_lifelines(1200, seed=4), path)
    return path


def test_core_sweep_on_a_scheduler_equals_threads(scheduler):
    """Every kernel mode, nodes and edges, with pre-failures (certified or recomputed answers
    in `giant` layers), small chunks that finish in any order."""
    c = compile_system(synthetic_lifelines(1500, seed=6))
    el_node, el_edge = element_indices(c, "all")
    pre = (np.array([3, 700], c.index_dtype), np.array([5], c.index_dtype))
    with SweepCluster(scheduler=scheduler) as cluster:
        assert cluster.n_workers == 2
        for method in ("full", "incremental", "local"):
            for pre_nodes, pre_edges in (((), ()), pre):
                local = core_sweep(c, el_node, el_edge, pre_nodes, pre_edges, threads=2, method=method)
                remote = core_sweep(c, el_node, el_edge, pre_nodes, pre_edges, method=method,
                                    chunk=97, cluster=cluster)
                for a, b in zip(local, remote):
                    assert np.array_equal(a, b)
                assert local[0].max() > 50   # not vacuous: elements that take a lot down


@pytest.mark.parametrize("args", [
    ["--elements", "all", "--format", "csv", "--top", "0"],
    ["--format", "json", "-k", "3"],
    ["--top", "5", "--layer", "power"],
])
def test_critical_cli_on_a_scheduler_equals_threads(lifelines, scheduler, args):
    local = run("critical", lifelines, *args, "--threads", "2")
    remote = run("critical", lifelines, *args, "--scheduler", scheduler)
    assert local.exit_code == 0 and remote.exit_code == 0, remote.stderr
    if args[-1] in ("power",):   # the table: only the timing and the executor differ
        strip = lambda text: [line for line in text.splitlines()[1:]]  # noqa: E731
        assert strip(local.stdout) == strip(remote.stdout)
        assert f"dask ({scheduler})" in remote.stdout.splitlines()[0]
        assert "Interdependency blind spots" in remote.stdout
    else:
        assert local.stdout == remote.stdout
        assert len(local.stdout) > 1000


def test_redundancy_cli_on_a_scheduler_equals_threads(scheduler):
    args = ["redundancy", DEMO, "--candidates", CANDIDATES, "--scenario", QUAKE, "--samples", "60",
            "--budget", "1500", "--exhaustive-limit", "0", "--format", "json"]
    local = run(*args, "--threads", "2")
    remote = run(*args, "--scheduler", scheduler)
    assert local.exit_code == 0 and remote.exit_code == 0, remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert a == b
    assert any(r["benefit"] > 0 for r in a["ranking"])


def test_critical_with_local_workers_in_a_real_process(lifelines, tmp_path):
    out_threads, out_dask = tmp_path / "threads.csv", tmp_path / "dask.csv"
    for extra, out in ((["--threads", "1"], out_threads), (["--workers", "2"], out_dask)):
        proc = subprocess.run([str(CASCADE), "critical", str(lifelines), "--elements", "all",
                               "--format", "csv", "--top", "0", "-o", str(out), *extra],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    assert out_threads.read_text() == out_dask.read_text()
    assert len(out_dask.read_text().splitlines()) > 2000


@pytest.mark.parametrize("args, words", [
    (["critical", "SYS", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
     "give either --workers or --scheduler, not both"),
    (["critical", "SYS", "--workers", "2", "--threads", "2"], "--threads runs locally"),
    (["critical", "SYS", "--workers", "2", "--engine", "reference"], "core engine only"),
    (["critical", "SYS", "--scheduler", "tcp://127.0.0.1:notaport"], "cannot reach the Dask scheduler"),
    (["redundancy", "SYS", "--candidates", "CANDS", "--scenario", "QUAKE", "--workers", "2",
      "--metric", "resilience"], "served metric only"),
    (["redundancy", "SYS", "--candidates", "CANDS", "--scenario", "QUAKE", "--workers", "2",
      "--scheduler", "tcp://127.0.0.1:1"], "give either --workers or --scheduler, not both"),
])
def test_bad_dask_options_are_one_line(args, words, tmp_path):
    swap = {"SYS": DEMO, "CANDS": CANDIDATES, "QUAKE": QUAKE}
    out = tmp_path / "never.txt"
    res = run(*[swap.get(a, a) for a in args], "-o", out)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr
    assert not out.exists()


def test_redundancy_sends_each_system_and_the_failed_sets_once(scheduler, monkeypatch):
    """Measures that leave the hazard alone share one object of failed sets in the workers'
    stores (sent once, not per measure); each distinct system goes once; the numbers are the
    ones of threads."""
    from cascade import cluster as cl
    from cascade import read_system
    from cascade.hazards import load_scenario
    from cascade.redundancy import Evaluator, ScenarioSampler, read_candidates

    system = read_system(DEMO)
    compiled = compile_system(system)
    sampler = ScenarioSampler(load_scenario(QUAKE), system, compiled)
    measures = [m for m in read_candidates(CANDIDATES, system) if m.type != "harden"]
    assert len(measures) >= 3
    sets = [[], measures[:1], measures[1:2], measures[:2], measures[1:3]]
    local = Evaluator(system, sampler, 40, compiled=compiled, threads=2)
    with SweepCluster(scheduler=scheduler) as cluster:
        sent = []
        real = cluster.client.run

        def spy(fn, *args, workers=None, **kw):
            if fn is cl._store_put:
                sent.append(args[0])
            return real(fn, *args, workers=workers, **kw)
        monkeypatch.setattr(cluster.client, "run", spy)
        remote = Evaluator(system, sampler, 40, compiled=compiled, cluster=cluster)
        for chosen in sets + sets:   # the second round: everything from the caches
            for a, b in zip(local.losses(chosen), remote.losses(chosen)):
                np.testing.assert_array_equal(a, b)
    sets_tokens = [t for t in sent if t.startswith("list-")]
    system_tokens = [t for t in sent if t.startswith("CompiledSystem-")]
    assert len(set(sets_tokens)) == 1 and len(sets_tokens) == 1   # once for every measure
    assert len(system_tokens) == len(set(system_tokens)) <= len(sets)
    assert len(set(system_tokens)) >= len(sets) - 1   # the base system may be there already
    assert any(local.losses(s)[0].mean() != local.losses([])[0].mean() for s in sets[1:])


@pytest.fixture(scope="module")
def local_cluster():
    with SweepCluster(workers=2) as cluster:
        yield cluster


def test_core_sweep_on_local_workers_reads_shared_memory_and_equals_threads(local_cluster,
                                                                            monkeypatch):
    """--workers: the workers read the plan this process built (the renumbered layout too)
    from shared memory and write their rows there; nothing goes through Dask's store, the
    files are gone afterwards, and the answers are those of threads in every kernel mode,
    nodes and edges, with pre-failures (certified or recomputed answers in `giant` layers)."""
    import glob

    import cascade.criticality as cr
    from cascade.shared import _directory

    monkeypatch.setattr(cr, "RENUMBER_MIN_NODES", 0)
    monkeypatch.setattr(cr, "RENUMBER_MIN_SHARE", 0.0)
    jobs, renumbered = [], []
    real_job, real_renumbered = cr._SharedSweep.__init__, cr._Renumbered.__init__
    monkeypatch.setattr(cr._SharedSweep, "__init__",
                        lambda self, c, *a: (jobs.append(type(c).__name__), real_job(self, c, *a))[1])
    monkeypatch.setattr(cr._Renumbered, "__init__",
                        lambda self, *a: (renumbered.append(1), real_renumbered(self, *a))[1])

    def no_share(*a, **k):
        raise AssertionError("a local sweep sent something through the workers' store")

    monkeypatch.setattr(SweepCluster, "share", no_share)
    before = set(glob.glob(f"{_directory(0)}/cascade-*"))
    c = compile_system(synthetic_lifelines(1500, seed=6))
    el_node, el_edge = element_indices(c, "all")
    pre = (np.array([3, 700], c.index_dtype), np.array([5], c.index_dtype))
    assert local_cluster.local
    for method in ("full", "incremental", "local"):
        for pre_nodes, pre_edges in (((), ()), pre):
            for chunk in (None, 97):
                local = core_sweep(c, el_node, el_edge, pre_nodes, pre_edges, threads=2,
                                   method=method)
                shared = core_sweep(c, el_node, el_edge, pre_nodes, pre_edges, method=method,
                                    chunk=chunk, cluster=local_cluster)
                for a, b in zip(local, shared):
                    assert np.array_equal(a, b)
                assert local[0].max() > 50   # not vacuous: elements that take a lot down
    assert "_Renumbered" in jobs and "CompiledSystem" in jobs   # the renumbered copy was used
    assert renumbered
    assert set(glob.glob(f"{_directory(0)}/cascade-*")) == before


def test_shared_arrays_pickle_as_their_layout_and_map_the_same_values(tmp_path):
    import pickle

    from cascade.shared import SharedArrays

    a = {"x": np.arange(10**5, dtype=np.int32), "e": np.zeros((0, 3)), "y": np.linspace(0, 1, 7)}
    shared = SharedArrays(a)
    out = SharedArrays({"rows": np.zeros((5, 2), np.int64)}, copy=False, writable=True)
    try:
        blob = pickle.dumps(shared)
        assert len(blob) < 1000
        there = pickle.loads(blob).attach()
        for name in a:
            assert np.array_equal(there[name], a[name]) and there[name].dtype == a[name].dtype
        assert not there["x"].flags.writeable
        rows = pickle.loads(pickle.dumps(out)).attach()["rows"]
        rows[3] = [7, 8]
        assert out.arrays["rows"].tolist() == [[0, 0]] * 3 + [[7, 8], [0, 0]]
    finally:
        shared.close()
        out.close()
    assert not Path(shared.path).exists() and not Path(out.path).exists()
    assert out.arrays["rows"][3].tolist() == [7, 8]   # still mapped here after close


def test_chunks_a_lost_worker_claimed_are_swept_here(monkeypatch):
    """A chunk claimed by a worker that is lost before it marks it done (simulated: the tasks
    garble its rows and clear its flag) is swept again by this process: the answer is still
    the one of threads."""
    import cascade.criticality as cr
    from cascade.cluster import built

    real = cr._shared_task

    def lossy(job):
        swept = real(job)
        _, _, _, _, rows, outs = built(job.token, job.attach)
        at = slice(0, job.size) if rows is None else rows[:job.size]
        for out in outs:
            out[at] = 7
        job.control.arrays["done"][0] = 0
        return swept

    lossy.__qualname__ = lossy.__name__ = "_shared_task"
    lossy.__module__ = real.__module__
    monkeypatch.setattr(cr, "_shared_task", lossy)   # before the fork: the workers run it
    c = compile_system(synthetic_lifelines(1500, seed=6))
    el_node, el_edge = element_indices(c, "all")
    want = core_sweep(c, el_node, el_edge, threads=2)
    with SweepCluster(workers=2) as cluster:
        got = core_sweep(c, el_node, el_edge, chunk=50, cluster=cluster)
    for a, b in zip(want, got):
        assert np.array_equal(a, b)


def test_shared_arrays_leave_a_full_dev_shm_for_the_temporary_directory(monkeypatch, tmp_path):
    """A container's /dev/shm is often 64 MB: with too little room there the file goes to the
    temporary directory (writing past a full tmpfs would end the process with SIGBUS)."""
    import tempfile

    import cascade.shared as sh

    monkeypatch.setattr(sh, "_free", lambda d: 0 if d == "/dev/shm" else 1 << 40)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    a = {"x": np.arange(1000, dtype=np.int64)}
    shared = sh.SharedArrays(a)
    try:
        assert Path(shared.path).parent == tmp_path
        there = pickle_round_trip(shared).attach()
        assert np.array_equal(there["x"], a["x"])
    finally:
        shared.close()
    assert not Path(shared.path).exists()


def pickle_round_trip(obj):
    import pickle

    return pickle.loads(pickle.dumps(obj))
