"""An overload cascade on the imported IEEE 118-bus grid, checked step by step against pandapower.

The grid is written with ``pandapower.to_json``, imported with ``cascade import pandapower`` and
rated N-1 secure by ``networks/rate_n1_secure.py`` (case118 has no ratings), all as a user runs
them.  The oracles: pandapower's ``rundcpp`` for the ratings (no single outage overloads a
branch) and for every step of the cascade (the branches above their rating after the outages so
far are exactly the next step's trips, at pandapower's flows), while no generator or load is
cut off from the slack;
and the plain reference engine (dense solves) for the whole cascade, islands included.
"""
from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")
import pandapower.topology as top  # noqa: E402
import networkx as nx  # noqa: E402

logging.getLogger("pandapower").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FAIL = ["power-line-46", "power-line-47"]        # the README's double outage


def run(*args, cwd):
    res = subprocess.run([*args], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ieee118")
    pp.to_json(pn.case118(), str(tmp / "case118.json"))
    run(str(BIN / "cascade"), "import", "pandapower", "case118.json", "--layer", "power", "--into", "grid", cwd=tmp)
    out = run(sys.executable, str(ROOT / "networks" / "rate_n1_secure.py"), "grid", cwd=tmp)
    assert out.startswith("grid: rated 186 branches of 'power' N-1 secure")
    edges = pd.read_csv(tmp / "grid" / "edges.csv")
    return tmp, dict(zip(edges["id"], edges["capacity"]))


def dc(net, out: set[str]) -> tuple[pd.Series, bool]:
    """rundcpp with the branches ``out`` open: flows by cascade edge id, and whether both models
    still agree: no generator or load is cut off from the slack.  (pandapower drops an island
    without the slack and its slack takes up the difference; the v2 format serves such an
    island from its own generators and scales the others' dispatch in proportion.)"""
    net = copy.deepcopy(net)
    for name in out:
        kind, index = name.split("-")[1:]
        getattr(net, kind).loc[int(index), "in_service"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net, numba=False)
    flows = pd.concat([net.res_line["p_from_mw"].rename(lambda i: f"power-line-{i}"),
                       net.res_trafo["p_hv_mw"].rename(lambda i: f"power-trafo-{i}")])
    slack = set(net.ext_grid["bus"])
    injections = set(net.gen["bus"]) | set(net.sgen["bus"]) | set(net.load["bus"])
    same = all(island & slack or not island & injections
               for island in nx.connected_components(top.create_nxgraph(net, respect_switches=True)))
    return flows, same


def test_ratings_are_n1_secure_in_pandapowers_own_dc_flow(rated):
    _, rating = rated
    net = pn.case118()
    worst = dc(net, set())[0].abs()
    checked = 0
    for branch in rating:
        flows, same = dc(net, {branch})
        if same:                         # outages that strand generators: pandapower drops them
            worst = np.fmax(worst, flows.abs().drop(branch))
            checked += 1
    assert checked > 150
    assert (worst <= pd.Series(rating)[worst.index] + 1e-6).all()
    # rounded up to the next 10 MW: no rating more than one step above what it must carry
    assert (pd.Series(rating)[worst.index] - worst <= 10 + 1e-6).sum() > 0.9 * len(worst)


def test_double_outage_cascade_matches_a_rundcpp_trip_loop(rated):
    tmp, rating = rated
    res = json.loads(run(str(BIN / "cascade"), "simulate", "grid", *sum((["-f", f] for f in FAIL), []),
                         "--format", "json", cwd=tmp))
    trips = pd.DataFrame(res["tripped"])
    assert len(trips) >= 3 and trips["step"].max() >= 3          # a real multi-step cascade
    net, out, compared = pn.case118(), set(FAIL), 0
    for step in range(1, trips["step"].max() + 1):
        flows, same = dc(net, out)
        if not same:
            break
        over = {b for b, f in flows.dropna().items() if b not in out and abs(f) > rating[b]}
        now = trips[trips["step"] == step]
        assert over == set(now["id"]), f"step {step}"
        largest = flows.abs().max()
        for row in now.itertuples():
            assert abs(row.flow - flows[row.id]) <= 1e-6 * largest
        out |= over
        compared += 1
    assert compared == trips["step"].max()                      # every step checked


def test_core_and_reference_engine_agree_on_the_whole_cascade(rated):
    tmp, _ = rated
    args = [str(BIN / "cascade"), "simulate", "grid", *sum((["-f", f] for f in FAIL), []), "--format", "json"]
    core = json.loads(run(*args, cwd=tmp))
    ref = json.loads(run(*args, "--engine", "reference", cwd=tmp))
    key = lambda t: (t["step"], t["id"])                                   # noqa: E731
    assert [(t["id"], t["round"], t["step"]) for t in sorted(core["tripped"], key=key)] == \
           [(t["id"], t["round"], t["step"]) for t in sorted(ref["tripped"], key=key)]
    assert core["served"].keys() == ref["served"].keys()
    assert all(abs(core["served"][k] - ref["served"][k]) <= 1e-9 for k in core["served"])
    assert min(core["served"].values()) < 1                                # partial supply
    largest = max(abs(v) for v in core["flows"].values())
    assert core["flows"].keys() == ref["flows"].keys()
    assert all(abs(core["flows"][k] - ref["flows"][k]) <= 1e-9 * largest for k in core["flows"])
