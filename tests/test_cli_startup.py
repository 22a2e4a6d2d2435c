"""Start-up of the command line: heavy libraries are imported only on the path that needs
them (igraph and scipy.stats for the table's comparison of `critical`, matplotlib for maps,
Dask for --workers/--scheduler, pandapower for imports), `cascade --help` imports no science
stack at all, and `python -m cascade` runs the same command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade.cli import COMMANDS, SUMMARIES, cli
from cascade.light import spearman, t95

ROOT = Path(__file__).resolve().parents[1]
DEMO, FLOW = ROOT / "networks" / "demo_town", ROOT / "networks" / "flow_town"
HEAVY = ["igraph", "matplotlib", "dask", "distributed", "pandapower", "scipy.stats", "networkx"]

# Runs the console entry point in a fresh interpreter and reports the heavy modules loaded.
PROBE = """
import json, sys
sys.argv = ["cascade", *json.loads(sys.argv[1])]
from cascade.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "loaded": sorted(m for m in %r if m in sys.modules),
                  "pandas": "pandas" in sys.modules, "sparse": "scipy.sparse" in sys.modules,
                  "flowcore": "cascade.flowcore" in sys.modules}), file=sys.stderr)
""" % (HEAVY,)


def probe(*args) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CASCADE_CACHE": "0"}
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps([str(a) for a in args])],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    report = json.loads(res.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), res.stderr
    return report, res.stdout


@pytest.mark.parametrize("args", [
    ["simulate", DEMO, "--fail", "P-SUB-T03"],
    ["simulate", FLOW, "--fail", "plant"],
    ["simulate", FLOW, "--fail", "plant", "--format", "csv"],
    ["info", FLOW],
    ["critical", FLOW, "--no-compare"],
    ["critical", FLOW, "--format", "csv"],
    ["critical", DEMO, "--no-compare", "--top", "3"],
    ["scenario", DEMO, ROOT / "scenarios" / "flood_heavy_rain.toml", "--samples", "50"],
])
def test_plain_commands_import_no_heavy_library(args):
    report, out = probe(*args)
    assert out.strip()                       # the command did its work
    assert report["loaded"] == [], report


def test_critical_comparison_imports_igraph_but_not_matplotlib():
    """The default table of `critical` compares with degree and betweenness (igraph): igraph
    comes without its matplotlib drawing, and Spearman's rho without scipy.stats."""
    report, out = probe("critical", FLOW)
    assert "Single-layer structural rankings" in out and "Spearman" in out
    assert report["loaded"] == ["igraph"], report


def test_help_imports_no_science_stack():
    report, out = probe("--help")
    assert report["loaded"] == [] and not report["pandas"], report
    for name in COMMANDS:
        assert f"  {name} " in out


def test_every_command_has_a_summary_in_help():
    assert set(SUMMARIES) == set(COMMANDS)
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    listed = res.output.split("Commands:")[1]
    for name, text in SUMMARIES.items():
        assert name in listed and text.split()[0] in listed
    # each command's own --help still has its full docstring
    res = CliRunner().invoke(cli, ["simulate", "--help"])
    assert res.exit_code == 0 and "--fail" in res.output


def test_python_dash_m_cascade_runs_the_cli():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CASCADE_CACHE": "0"}
    res = subprocess.run([sys.executable, "-m", "cascade", "simulate", str(FLOW), "--fail", "plant"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("System flow-town: failed 1 node(s)")
    bad = subprocess.run([sys.executable, "-m", "cascade", "simulate", str(FLOW), "--fail", "nope"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown node or edge id 'nope'" in bad.stderr


def test_import_cascade_is_lazy_and_complete():
    code = ("import sys, cascade; assert 'pandas' not in sys.modules; "
            "names = [getattr(cascade, n) for n in cascade.__all__]; "
            "from cascade import simulate, InputError; "
            "assert set(cascade.__all__) <= set(dir(cascade)); "
            "assert callable(cascade.risk.annual_risk) and callable(cascade.criticality.sweep); "
            "print(len(names))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) == len(__import__("cascade").__all__)
    with pytest.raises(AttributeError):
        __import__("cascade").no_such_name


@pytest.mark.parametrize("seed", range(6))
def test_spearman_matches_scipy(seed):
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    x = rng.integers(0, 5, n).astype(float)          # many ties
    y = x * rng.choice([-1.0, 1.0]) + rng.normal(0, 2, n).round(0)
    expected = spearmanr(x, y)[0]
    got = spearman(x, y)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 20, 100, 6001, 200_000])
def test_t95_matches_scipy_stats(n):
    from scipy.stats import t

    assert t95(n) == float(t.ppf(0.975, n - 1))


def test_t95_below_two_samples_is_nan():
    assert np.isnan(t95(1)) and np.isnan(t95(0))


def test_spearman_edge_cases():
    assert np.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))     # constant
    assert np.isnan(spearman([1.0], [2.0]))
    assert np.isnan(spearman([1.0, np.nan, 2.0], [1.0, 2.0, 3.0]))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


@pytest.mark.parametrize("args", [
    ["simulate", DEMO, "--fail", "P-SUB-T03"],
    ["simulate", DEMO, "--fail", "P-SUB-T03", "--format", "csv"],
    ["critical", DEMO, "--no-compare", "--top", "3"],
])
def test_v1_commands_do_not_import_scipy_sparse_or_the_flow_core(args):
    """Commands on a v1 system pay neither for the flow core nor for scipy.sparse (which
    cascade/flowcore.py imports only where a v1 rule inside a flow system needs it)."""
    report, out = probe(*args)
    assert out.strip()                       # the command did its work
    assert not report["sparse"] and not report["flowcore"], report


def test_flowcore_imports_scipy_sparse_lazily():
    """No module-level import of scipy in cascade/flowcore.py: importing it for a system with
    only flow/dcflow layers loads no more of scipy than the kernels need."""
    import ast

    tree = ast.parse((ROOT / "cascade" / "flowcore.py").read_text())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names] \
        + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert names and not [n for n in names if n.split(".")[0] == "scipy"], names
    # and the lazy helpers still do the graph work
    from cascade.flowcore import _bfs, _components, _csr

    g = _csr(np.array([0, 1]), np.array([1, 2]), 4)
    assert _components(g, directed=False)[0] == 2
    assert sorted(_bfs(g, 0, directed=True, return_predecessors=False)) == [0, 1, 2]
