"""The benchmark framework itself: ratio extraction, the floor check, saved runs, the report,
and the igraph baseline of ``benchmarks/bench_simulate.py`` (a baseline that computed something
else would make its ratio meaningless)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from cascade import Workspace, compile_system
from cascade.generators import coupled_er

from strategies import systems

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))      # report.py imports check.py
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


check = load("check")
report = load("report")


def entry(name, group, kernel, impl, t, scale=None):
    info = {"kernel": kernel, "impl": impl}
    if scale is not None:
        info["scale"] = scale
    return {"name": name, "group": group, "extra_info": info,
            "stats": {"min": t, "median": t * 1.1, "mean": t * 1.2, "stddev": t / 10, "rounds": 5}}


def fake_run(core_t=0.001, ref_t=0.5, igraph_t=0.02, kernel="simulate", size="er1000"):
    g = f"{kernel}-{size}"
    return {"machine_info": {"node": "box", "cpu": {"brand_raw": "Test CPU", "count": 2},
                             "python_version": "3.11.7"},
            "datetime": "2026-11-21T14:00:00+00:00",
            "benchmarks": [entry(f"test_{kernel}_core[{size}]", g, kernel, "core", core_t),
                           entry(f"test_{kernel}_reference[{size}]", g, kernel, "reference", ref_t),
                           entry(f"test_{kernel}_igraph[{size}]", g, kernel, "igraph", igraph_t)]}


@pytest.fixture
def floors(tmp_path):
    (tmp_path / "bench_simulate.py").write_text("")
    path = tmp_path / "floors.toml"
    path.write_text('[simulate]\nfile = "bench_simulate.py"\nreference = 100\nigraph = 10\n')
    return path


def test_ratios_within_groups_and_scale():
    raw = fake_run(core_t=0.002, ref_t=0.5, igraph_t=0.01)
    raw["benchmarks"].append(entry("test_sweep_core[demo]", "sweep-demo", "sweep", "core", 0.1))
    raw["benchmarks"].append(entry("test_sweep_reference[demo]", "sweep-demo", "sweep",
                                   "reference", 2.0, scale=50))
    rows = {(r["group"], r["baseline"]): r for r in check.ratios(raw)}
    assert set(rows) == {("simulate-er1000", "reference"), ("simulate-er1000", "igraph"),
                         ("sweep-demo", "reference")}
    assert rows[("simulate-er1000", "reference")]["ratio"] == pytest.approx(250)
    assert rows[("simulate-er1000", "igraph")]["ratio"] == pytest.approx(5)
    # A baseline measured on a sample counts as measured time x scale.
    assert rows[("sweep-demo", "reference")]["ratio"] == pytest.approx(2.0 * 50 / 0.1)
    assert rows[("sweep-demo", "reference")]["size"] == "demo"


def test_check_fails_below_floor_naming_kernel_ratio_floor(tmp_path, floors, capsys):
    run = tmp_path / "run.json"
    run.write_text(json.dumps(fake_run(core_t=0.001, ref_t=0.5, igraph_t=0.004)))   # igraph 4x
    status = check.main(["check", "--json", str(run), "--floors", str(floors)])
    err = capsys.readouterr().err
    assert status == 1
    problems = [line.strip() for line in err.splitlines()[1:]]
    assert len(problems) == 1
    assert "kernel 'simulate'" in problems[0]
    assert "4.0x faster than igraph" in problems[0]
    assert "below the floor 10x" in problems[0]


def test_check_passes_above_floor(tmp_path, floors, capsys):
    run = tmp_path / "run.json"
    run.write_text(json.dumps(fake_run(core_t=0.001, ref_t=0.5, igraph_t=0.02)))
    status = check.main(["check", "--json", str(run), "--floors", str(floors)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "passed" in out
    assert "500.0x" in out and "20.0x" in out


def test_check_fails_on_missing_kernel(tmp_path, floors, capsys):
    floors.write_text(floors.read_text() + '\n[sweep]\nreference = 5\n')
    run = tmp_path / "run.json"
    run.write_text(json.dumps(fake_run()))
    assert check.main(["check", "--json", str(run), "--floors", str(floors)]) == 1
    err = capsys.readouterr().err
    assert "kernel 'sweep': no reference/core ratio in this run" in err


def test_check_fails_on_missing_bench_file(tmp_path, floors):
    (tmp_path / "bench_simulate.py").unlink()
    problems = check.check_ratios(check.ratios(fake_run()), check.load_floors(floors))
    assert problems == ["kernel 'simulate': bench_simulate.py is missing"]


def test_floor_applies_to_its_group_only(tmp_path, floors):
    floors.write_text(floors.read_text() + 'group = "simulate-er1000"\n')
    raw = fake_run(core_t=0.001, ref_t=0.5, igraph_t=0.02)
    big = fake_run(core_t=0.1, ref_t=5.0, igraph_t=0.2, size="er100000")     # igraph 2x there
    raw["benchmarks"] += big["benchmarks"]
    spec = check.load_floors(floors)
    assert check.check_ratios(check.ratios(raw), spec) == []
    # Without its group in the run, the floor has nothing to hold: a failure.
    problems = check.check_ratios(check.ratios(big), spec)
    assert len(problems) == 2
    assert all("no " in p and "in group simulate-er1000" in p for p in problems)


def test_check_as_a_subprocess_exit_status(tmp_path, floors):
    run = tmp_path / "run.json"
    run.write_text(json.dumps(fake_run(core_t=0.01, ref_t=0.5)))     # reference only 50x
    proc = subprocess.run([sys.executable, str(BENCH / "check.py"), "check", "--json", str(run),
                           "--floors", str(floors)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "core is 50.0x faster than reference, below the floor 100x" in proc.stderr


def test_quick_run_reports_errors_and_skips(tmp_path):
    """A bench file that errors or skips must fail the check, not vanish from it."""
    (tmp_path / "bench_broken.py").write_text("import no_such_module_here\n")
    (tmp_path / "bench_skipped.py").write_text(
        "import pytest\npytest.skip('not landed', allow_module_level=True)\n")
    (tmp_path / "bench_fine.py").write_text(
        "def test_fine_core(benchmark):\n"
        "    benchmark.group = 'fine-x'\n"
        "    benchmark.extra_info.update(kernel='fine', impl='core')\n"
        "    benchmark(sum, [1, 2])\n")
    raw, problems = check.run_quick(tmp_path, extra_args=["--benchmark-min-rounds=1"])
    text = "\n".join(problems)
    assert "bench_broken" in text and "error" in text
    assert "bench_skipped" in text and "skipped" in text
    assert any("pytest exited with status" in p for p in problems)
    assert [b["name"] for b in raw["benchmarks"]] == ["test_fine_core"]


def test_quick_run_without_bench_files(tmp_path):
    raw, problems = check.run_quick(tmp_path)
    assert raw is None and len(problems) == 1 and "no benchmarks/bench_" in problems[0]


def test_save_writes_dated_commit_file(tmp_path):
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(fake_run()))
    path = check.save(raw, tmp_path / "results")
    run = json.loads(path.read_text())
    assert path.name.startswith("2026-11-21-") and path.name.endswith(".json")
    assert run["machine"]["cpu"] == "Test CPU" and run["machine"]["cores"] == 2
    assert {r["baseline"] for r in run["ratios"]} == {"reference", "igraph"}
    assert len(run["times"]) == 3
    assert run["commit"] and path.name == f"2026-11-21-{run['commit']}.json"
    # The commit pytest-benchmark recorded at the run wins over today's HEAD.
    doc = fake_run()
    doc["commit_info"] = {"id": "0123456789abcdef", "dirty": True}
    raw.write_text(json.dumps(doc))
    run = json.loads(check.save(raw, tmp_path / "results").read_text())
    assert (run["commit"], run["dirty"]) == ("0123456789", True)


def test_report_two_runs_table_and_png(tmp_path, floors):
    results = tmp_path / "results"
    results.mkdir()
    first = check.summarize(fake_run(core_t=0.001, ref_t=0.5, igraph_t=0.02),
                            commit="aaaaaaa", date="2026-11-20T10:00:00+00:00")
    second = check.summarize(fake_run(core_t=0.002, ref_t=0.5, igraph_t=0.02),
                             commit="bbbbbbb", date="2026-11-21T10:00:00+00:00")
    (results / "2026-11-21-bbbbbbb.json").write_text(json.dumps(second))
    (results / "2026-11-20-aaaaaaa.json").write_text(json.dumps(first))
    out = tmp_path / "out"
    assert report.main(["--results", str(results), "--out", str(out), "--floors", str(floors)]) == 0
    md = (out / "ratios.md").read_text().splitlines()
    assert md[0].startswith("| kernel-size | baseline / core | 2026-11-20 aaaaaaa | 2026-11-21 bbbbbbb")
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in md[2:4]}
    # Oldest run first; the slower core of the second run halves its ratios.
    assert rows[("simulate-er1000", "reference")].endswith("| 500.0x | 250.0x | 100x |")
    assert rows[("simulate-er1000", "igraph")].endswith("| 20.0x | 10.0x | 10x |")
    import matplotlib.image as mpimg
    for name in ("simulate-reference.png", "simulate-igraph.png"):
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0          # something is drawn
    assert sorted(p.name for p in out.glob("*.png")) == ["simulate-igraph.png", "simulate-reference.png"]


def test_report_without_runs(tmp_path):
    assert report.main(["--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 1


def test_floors_file_of_the_repository_is_valid():
    floors = check.load_floors(BENCH / "floors.toml")
    assert "simulate" in floors
    for kernel, spec in floors.items():
        assert spec["path"] and spec["path"].exists(), kernel
        assert spec["floors"] and all(v > 0 for v in spec["floors"].values()), kernel


# --------------------------------------------------------------------------- the igraph baseline
simulate_bench = load("bench_simulate")


@settings(max_examples=200, deadline=None)
@given(case=systems())
def test_igraph_baseline_equals_core(case):
    system, nodes, edges = case
    c = compile_system(system)
    ws = Workspace(c)
    ws.run(c.node_index(nodes), c.edge_index(edges))
    working, fail_round = simulate_bench.IgraphCascade(c).run(c.node_index(nodes), c.edge_index(edges))
    assert np.array_equal(working, ws.working.astype(bool))
    assert np.array_equal(fail_round, ws.fail_round)


def test_igraph_baseline_on_a_coupled_er_pair():
    system = coupled_er(2000, 4.0, seed=3)
    c = compile_system(system)
    init = np.flatnonzero(np.random.default_rng(1).random(c.n_nodes) < 0.15)
    ws = Workspace(c)
    ws.run(init.astype(c.index_dtype))
    working, fail_round = simulate_bench.IgraphCascade(c).run(init)
    assert 0 < working.sum() < c.n_nodes
    assert np.array_equal(working, ws.working.astype(bool))
    assert np.array_equal(fail_round, ws.fail_round)


@pytest.mark.slow
def test_a_slowed_core_fails_the_real_check(tmp_path, monkeypatch):
    """End to end: the real quick simulate benchmark, with a core made 20 ms slower per
    cascade by a pytest plugin (250x its normal time, so the ratios fall >= 10x below their
    floors whatever the load), fails the repository's floors with a message naming the
    kernel, the ratio and the floor."""
    import shutil
    for name in ("conftest.py", "bench_simulate.py"):
        shutil.copy(BENCH / name, tmp_path / name)
    (tmp_path / "sabotage.py").write_text(
        "import time\n"
        "from cascade import compiled\n"
        "_run = compiled.Workspace.run\n"
        "def slow(self, *args, **kwargs):\n"
        "    start = time.perf_counter()\n"
        "    out = _run(self, *args, **kwargs)\n"
        "    while time.perf_counter() - start < 0.02:\n"
        "        pass\n"
        "    return out\n"
        "compiled.Workspace.run = slow\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    raw, problems = check.run_quick(tmp_path, extra_args=["-p", "sabotage"])
    assert problems == []                      # the benchmarks themselves ran fine
    floors = check.load_floors(BENCH / "floors.toml")
    slow = check.check_ratios(check.ratios(raw), {"simulate": floors["simulate"]})
    assert len(slow) == 2
    assert all(p.startswith("kernel 'simulate' (simulate-er1000): core is ") for p in slow)
    for baseline, floor in floors["simulate"]["floors"].items():
        assert any(f"faster than {baseline}, below the floor {floor:g}x" in p for p in slow)


def test_report_tables_the_sweep_cost_per_element(tmp_path):
    """`make bench-report` shows the saved scaling runs' sweep cost per element over commits."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "2026-11-20-aaaaaaa.json").write_text(json.dumps(check.summarize(
        fake_run(core_t=0.001, ref_t=0.5, igraph_t=0.02), commit="aaaaaaa",
        date="2026-11-20T10:00:00+00:00")))
    for day, commit, each, method in (("21", "bbbbbbb", 80e-6, None), ("22", "ccccccc", 3e-6, "kernel")):
        rows = [{"kernel": "cascade", "system": "lifelines", "nodes": 10_000, "seconds": 0.001}]
        for n in (10_000, 1_000_000):
            row = {"kernel": "sweep", "system": "lifelines", "nodes": n, "per_element_s": each,
                   "setup_s": n * 1e-6}
            if method:
                row["per_element_method"] = method
            rows.append(row)
        (results / f"scaling-2026-11-{day}-{commit}.json").write_text(json.dumps(
            {"date": f"2026-11-{day}T10:00:00+00:00", "commit": commit, "rows": rows}))
    out = tmp_path / "out"
    assert report.main(["--results", str(results), "--out", str(out)]) == 0
    md = (out / "sweep-per-element.md").read_text().splitlines()
    assert md[0] == "| run | system | 10 000 nodes | 1 000 000 nodes |"
    assert md[2] == "| 2026-11-21 bbbbbbb | lifelines | 80.00 µs † (set-up 0.01 s) | 80.00 µs † (set-up 1 s) |"
    assert md[3] == "| 2026-11-22 ccccccc | lifelines | 3.00 µs (set-up 0.01 s) | 3.00 µs (set-up 1 s) |"
    assert sorted(p.name for p in out.glob("*.md")) == ["ratios.md", "sweep-per-element.md"]
