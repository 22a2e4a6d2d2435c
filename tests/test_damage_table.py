"""``type = "table"``: per-asset probabilities, pyincore damage output and per-asset fragility;
their frequencies against the table, common random numbers, and one-line errors with lines."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.special import ndtr

from cascade import InfrastructureSystem, InputError, compile_system, load_scenario
from cascade.cli import cli
from cascade.hazards import bjf97_ln

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
CASCADE = str(Path(sys.executable).parent / "cascade")


def tol(p, n):
    return 4 * math.sqrt(p * (1 - p) / n) + 1e-9


def chain(n=6):
    nodes = [{"id": "src", "layer": "power", "kind": "source", "x": 0.0, "y": 0.0}]
    edges = []
    for i in range(n):
        nodes.append({"id": f"n{i}", "layer": "power", "kind": "sub", "demand": 1.0,
                      "x": 1000.0 * (i + 1), "y": 0.0})
        edges.append({"id": f"e{i}", "source": "src" if i == 0 else f"n{i - 1}", "target": f"n{i}"})
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes), pd.DataFrame(edges))


def write(tmp_path, csv_text, hazard_extra="", name="t.csv"):
    (tmp_path / name).write_text(csv_text)
    path = tmp_path / "s.toml"
    path.write_text(f"[scenario]\nseed = 4\n[hazard]\ntype = 'table'\nfile = '{name}'\n{hazard_extra}")
    return path


def frequencies(sc, c, samples):
    nodes, edges = np.zeros(c.n_nodes), np.zeros(c.n_edges)
    for i in range(samples):
        n, e = sc.sample(c, i)
        nodes[n] += 1
        edges[e] += 1
    return nodes / samples, edges / samples


def test_probability_table_fails_each_asset_with_its_probability(tmp_path):
    system = chain()
    c = compile_system(system)
    sc = load_scenario(write(tmp_path, "id,probability\nn0,0.3\nn3,0.8\ne2,0.5\nn5,0\nn4,1\n"))
    sc.prepare(system, c)
    n = 2000
    pn, pe = frequencies(sc, c, n)
    idx = {str(k): i for i, k in enumerate(c.node_ids)}
    for name, p in (("n0", 0.3), ("n3", 0.8), ("n5", 0.0), ("n4", 1.0), ("n1", 0.0), ("src", 0.0)):
        assert abs(pn[idx[name]] - p) <= tol(p, n)
    assert abs(pe[list(c.edge_ids).index("e2")] - 0.5) <= tol(0.5, n)
    assert pe.sum() == pytest.approx(pe[list(c.edge_ids).index("e2")])
    # Independent: the joint frequency of n0 and n3 is the product.
    both = sum(1 for i in range(n) if {idx["n0"], idx["n3"]} <= set(sc.sample(c, i)[0].tolist()))
    assert abs(both / n - 0.24) <= tol(0.24, n)


def test_pyincore_damage_output_uses_the_damage_state_and_worse(tmp_path):
    system = chain()
    c = compile_system(system)
    text = ("guid,LS_0,LS_1,LS_2,DS_0,DS_1,DS_2,DS_3,haz_expose\n"
            "n0,0.9,0.6,0.2,0.1,0.3,0.4,0.2,yes\n"
            "n1,0.5,0.1,0.0,0.5,0.4,0.1,0.0,yes\n")
    sc = load_scenario(write(tmp_path, text, "damage_state = 'DS_2'\n"))
    sc.prepare(system, c)
    n = 2000
    pn, _ = frequencies(sc, c, n)
    idx = {str(k): i for i, k in enumerate(c.node_ids)}
    assert abs(pn[idx["n0"]] - 0.6) <= tol(0.6, n)          # DS_2 + DS_3
    assert abs(pn[idx["n1"]] - 0.1) <= tol(0.1, n)
    # Limit-state columns alone: DS_2 and worse = LS_1.
    sc = load_scenario(write(tmp_path, "guid,LS_0,LS_1,LS_2\nn0,0.9,0.6,0.2\n", "damage_state = 'DS_2'\n",
                             name="ls.csv"))
    sc.prepare(system, c)
    pn, _ = frequencies(sc, c, n)
    assert abs(pn[idx["n0"]] - 0.6) <= tol(0.6, n)


def test_fragility_table_on_the_point_source(tmp_path):
    """variability = false: P = Φ(ln(IM / median) / β), IM at the node (PGA) or the edge
    midpoint (PGV from SA(1 s) as Hazus converts it)."""
    system = chain()
    c = compile_system(system)
    text = "id,median,beta,measure\nn1,0.2,0.5,PGA\nn4,0.3,0.7,pga\ne3,20,0.6,PGV\n"
    sc = load_scenario(write(tmp_path, text, "epicenter = [0.0, 0.0]\nmagnitude = 6.5\nvariability = false\n"))
    sc.prepare(system, c)
    n = 2000
    pn, pe = frequencies(sc, c, n)
    idx = {str(k): i for i, k in enumerate(c.node_ids)}
    for name, d_km, median, beta in (("n1", 2.0, 0.2, 0.5), ("n4", 5.0, 0.3, 0.7)):
        p = float(ndtr(math.log(math.exp(bjf97_ln("pga", 6.5, d_km)) / median) / beta))
        assert abs(pn[idx[name]] - p) <= tol(p, n)
    pgv = 386.4 / (2 * math.pi) / 1.65 * 2.54 * math.exp(bjf97_ln("sa1", 6.5, 3.5))
    p = float(ndtr(math.log(pgv / 20) / 0.6))
    assert abs(pe[list(c.edge_ids).index("e3")] - p) <= tol(p, n)
    assert pn[idx["n0"]] == 0 and pn[idx["src"]] == 0


def test_fragility_table_block_draws_equal_one_by_one(tmp_path):
    system = chain()
    c = compile_system(system)
    sc = load_scenario(write(tmp_path, "id,median,beta,measure\nn1,0.2,0.5,PGA\nn4,0.3,0.7,PGA\ne3,20,0.6,PGV\n",
                             "epicenter = [0.0, 0.0]\nmagnitude = 6.5\n"))
    sc.prepare(system, c)
    block = sc.sample_block(c, 0, 50)
    for i in range(50):
        n, e = sc.sample(c, i)
        assert np.array_equal(block[i][0], n) and np.array_equal(block[i][1], e)


def test_table_draws_are_keyed_by_id(tmp_path):
    """Common random numbers: the same asset fails in the same samples on a system with an
    extra node listed first."""
    base = chain()
    extra = InfrastructureSystem.from_tables(
        pd.concat([pd.DataFrame([{"id": "zz", "layer": "power", "kind": "sub", "x": 5.0, "y": 5.0}]),
                   base.nodes]), base.edges)
    sc = load_scenario(write(tmp_path, "id,probability\nn0,0.3\nn3,0.5\n"))
    cb, ce = compile_system(base), compile_system(extra)
    sc.prepare(base, cb)
    sc.prepare(extra, ce)
    for i in range(30):
        a = {str(cb.node_ids[j]) for j in sc.sample(cb, i)[0]}
        b = {str(ce.node_ids[j]) for j in sc.sample(ce, i)[0]}
        assert a == b


@pytest.mark.parametrize("text, extra, message", [
    ("id,probability\nn0,0.3\nnope,0.1\n", "", r"t\.csv, line 3: unknown id 'nope'"),
    ("id,probability\nn0,0.3\nn1,1.5\n", "", r"t\.csv, line 3: probability must be in \[0, 1\], not 1.5"),
    ("id,probability\nn0,0.3\nn1,-0.1\n", "", r"line 3: probability must be in \[0, 1\]"),
    ("id,probability\nn0,0.3\nn0,0.2\n", "", r"line 3: duplicate row for 'n0' \(first on line 2\)"),
    ("id,probability\nn0,abc\n", "", r"line 2: probability must be a number"),
    ("name,p\nn0,0.3\n", "", r"line 1: unrecognised header"),
    ("guid,LS_0,LS_1,LS_2,DS_0,DS_1,DS_2,DS_3\nn0,0.9,0.6,0.2,0.1,0.3,0.4,0.2\n", "",
     "needs 'hazard.damage_state'"),
    ("guid,LS_0,LS_1,LS_2,DS_0,DS_1,DS_2,DS_3\nn0,0.9,0.6,0.2,0.1,0.3,0.4,0.2\nn0,0.9,0.6,0.2,0.1,0.3,0.4,0.2\n",
     "damage_state = 'DS_2'\n", r"line 3: duplicate row"),
    ("guid,DS_0,DS_1,DS_2,DS_3\nn0,0.1,0.3,0.4,0.9\n", "damage_state = 'DS_2'\n", r"line 2: DS_2 \+ DS_3 = 1.3 exceeds 1"),
    ("id,median,beta,measure\nn0,0.3,0.5,MMI\n", "epicenter = [0.0, 0.0]\nmagnitude = 6.0\n", "line 2: unknown measure 'MMI'"),
    ("id,median,beta,measure\nn0,-1,0.5,PGA\n", "epicenter = [0.0, 0.0]\nmagnitude = 6.0\n", "line 2: median and beta must be > 0"),
    ("id,median,beta,measure\nn0,0.3,0.5,SA03\n", "epicenter = [0.0, 0.0]\nmagnitude = 6.0\n", "use a ShakeMap"),
])
def test_bad_tables_are_one_line_errors_with_file_and_line(tmp_path, text, extra, message):
    system = chain()
    c = compile_system(system)
    with pytest.raises(InputError, match=message) as info:
        sc = load_scenario(write(tmp_path, text, extra))
        sc.prepare(system, c)
    assert "\n" not in str(info.value)


def test_bundled_pyincore_table_runs_through_the_cli(tmp_path):
    out = tmp_path / "r.json"
    p = subprocess.run([CASCADE, "scenario", str(DEMO), str(ROOT / "scenarios" / "table_pyincore.toml"),
                        "-n", "50", "--threads", "1", "--format", "json", "-o", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    import json

    data = json.loads(out.read_text())
    assert data["scenario"]["hazard"]["type"] == "table"
    assert data["direct_failures_mean"]["nodes"] > 0


def test_unknown_id_through_the_cli_is_exit_2_one_line_no_output(tmp_path):
    (tmp_path / "t.csv").write_text("id,probability\nP-PLANT-1,0.5\nNOT-THERE,0.2\n")
    (tmp_path / "s.toml").write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'table'\nfile = 't.csv'\n")
    out = tmp_path / "out.json"
    r = CliRunner().invoke(cli, ["scenario", str(DEMO), str(tmp_path / "s.toml"), "-n", "5", "-o", str(out)])
    assert r.exit_code == 2
    lines = [line for line in r.output.strip().splitlines() if line]
    assert len(lines) == 1 and "t.csv, line 3: unknown id 'NOT-THERE'" in lines[0]
    assert not out.exists()


def test_fragility_table_on_a_shakemap(tmp_path):
    """PGV from the grid at a node, variability off: P = Φ(ln(PGV / median) / β)."""
    from test_shakemap import grid_xml, utm_system

    (tmp_path / "grid.xml").write_text(grid_xml())
    system = utm_system([(113.02, 22.01)] * 30)
    c = compile_system(system)
    rows = "".join(f"n{k},15,0.5,PGV\n" for k in range(30))
    sc = load_scenario(write(tmp_path, "id,median,beta,measure\n" + rows,
                             "shakemap = 'grid.xml'\nvariability = false\n"))
    sc.prepare(system, c)
    n = 60
    pn, _ = frequencies(sc, c, n)
    pgv = 10.0 + 50.0 * 0.02                      # the grid's PGV (cm/s), linear in longitude
    p = float(ndtr(math.log(pgv / 15) / 0.5))
    assert abs(pn[:30].mean() - p) <= tol(p, 30 * n)
