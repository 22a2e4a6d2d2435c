"""pandapower importer as a ``dcflow`` layer, checked against pandapower's own DC power flow.

Each case is written with ``pandapower.to_json``, imported with ``cascade import pandapower`` as a
user runs it, and the DC flows are computed here from the imported CSV tables alone by a plain
dense solve (B theta = P per island, one angle fixed per island, flow = base (theta_s - theta_t -
shift) / x, injection = dispatch - demand).  They must equal ``rundcpp``'s ``res_line.p_from_mw``
and ``res_trafo.p_hv_mw`` within 1e-6 of the largest flow.
"""
from __future__ import annotations

import copy
import logging
import math
import subprocess
import sys
import tomllib
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")

from cascade import InputError, read_system  # noqa: E402
from cascade.cli import cli  # noqa: E402
from cascade.io.imports import import_network  # noqa: E402
from cascade.io.pandapower import to_layer  # noqa: E402

logging.getLogger("pandapower").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
CASCADE = Path(sys.executable).with_name("cascade")


@lru_cache(maxsize=None)
def _case(name):
    return getattr(pn, name)()


def rundcpp(net):
    net = copy.deepcopy(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net, numba=False)
    return net


def dc_flows(root: Path) -> pd.Series:
    """DC branch flows (MW, source -> target) from a system directory's CSV files alone."""
    nodes = pd.read_csv(root / "nodes.csv")
    edges = pd.read_csv(root / "edges.csv")
    with open(root / "system.toml", "rb") as fh:
        layer = next(iter(tomllib.load(fh)["layers"].values()))
    base = float(layer["base"])
    index = {v: i for i, v in enumerate(nodes["id"])}
    n = len(nodes)
    s = edges["source"].map(index).to_numpy()
    t = edges["target"].map(index).to_numpy()
    x = edges["reactance"].to_numpy(float)
    shift = np.deg2rad(edges["shift"].fillna(0.0).to_numpy(float))
    b = 1.0 / x
    B = np.zeros((n, n))
    for i, j, bij in zip(s, t, b):
        B[i, i] += bij
        B[j, j] += bij
        B[i, j] -= bij
        B[j, i] -= bij
    injection = (nodes["dispatch"].fillna(0.0).to_numpy(float) - nodes["demand"].to_numpy(float)) / base
    # a phase shift acts as a pair of injections (PYPOWER's Pbusinj)
    np.add.at(injection, s, b * shift)
    np.add.at(injection, t, -b * shift)
    # islands by a plain breadth-first search
    neighbours = [[] for _ in range(n)]
    for i, j in zip(s, t):
        neighbours[i].append(j)
        neighbours[j].append(i)
    island = np.full(n, -1)
    for start in range(n):
        if island[start] >= 0:
            continue
        island[start], queue = start, [start]
        while queue:
            u = queue.pop()
            for v in neighbours[u]:
                if island[v] < 0:
                    island[v] = start
                    queue.append(v)
    theta = np.zeros(n)
    for root_bus in np.unique(island):
        members = np.flatnonzero(island == root_bus)
        if len(members) < 2:
            continue
        assert abs(injection[members].sum()) < 1e-9 * max(1.0, np.abs(injection[members]).sum())
        free = members[1:]
        theta[free] = np.linalg.solve(B[np.ix_(free, free)], injection[free])
    return pd.Series(base * (theta[s] - theta[t] - shift) / x, index=edges["id"].to_numpy())


def import_cli(net, tmp_path, *extra) -> tuple[Path, str]:
    src = tmp_path / "net.json"
    pp.to_json(net, str(src))
    root = tmp_path / "sys"
    res = CliRunner().invoke(cli, ["import", "pandapower", str(src), "--layer", "power",
                                                   "--into", str(root), "--prefix", "", *extra])
    assert res.exit_code == 0, res.output + res.stderr
    return root, res.stdout


@pytest.mark.parametrize("name", ["case30", "case118", "case300", "case1354pegase"])
def test_dc_flows_of_the_imported_csv_equal_rundcpp(name, tmp_path):
    net = _case(name)
    root, out = import_cli(net, tmp_path)
    mine = dc_flows(root)
    ran = rundcpp(net)
    theirs = pd.concat([ran.res_line["p_from_mw"].rename(lambda i: f"line-{i}"),
                        ran.res_trafo["p_hv_mw"].rename(lambda i: f"trafo-{i}")])
    assert theirs.notna().all() and set(theirs.index) == set(mine.index)
    scale = theirs.abs().max()
    assert scale > 0
    gap = (mine.reindex(theirs.index) - theirs).abs().max()
    assert gap <= 1e-6 * scale, f"{name}: flows differ by {gap} MW (largest flow {scale} MW)"
    with open(root / "system.toml", "rb") as fh:
        assert tomllib.load(fh)["layers"]["power"] == {"rule": "dcflow", "unit": "MW", "base": float(net.sn_mva)}
    assert "rule dcflow" in out and " MW;" in out


def test_slack_dispatch_is_rundcpps_balance_and_generators_their_setpoints(tmp_path):
    net = _case("case118")
    ran = rundcpp(net)
    nodes = to_layer(net, prefix="").nodes.set_index("id")
    slack_bus = int(net.ext_grid.bus.iloc[0])
    at_slack = net.gen.bus == slack_bus
    assert nodes.loc[f"bus-{slack_bus}", "dispatch"] == pytest.approx(
        ran.res_ext_grid.p_mw.iloc[0] + (net.gen.p_mw[at_slack]).sum())
    per_bus = net.gen.p_mw.groupby(net.gen.bus).sum()
    for bus, p in per_bus.items():
        if bus != slack_bus:
            assert nodes.loc[f"bus-{bus}", "dispatch"] == pytest.approx(p)
    # supplies are the units' max_p_mw (all given in case118)
    limits = net.gen.max_p_mw.groupby(net.gen.bus).sum().add(
        net.ext_grid.set_index("bus").max_p_mw, fill_value=0.0)
    for bus, limit in limits.items():
        assert nodes.loc[f"bus-{bus}", "supply"] == pytest.approx(max(limit, nodes.loc[f"bus-{bus}", "dispatch"]))
    # the layer is balanced: what the sources give is what the buses take
    assert nodes["dispatch"].sum() == pytest.approx(nodes["demand"].sum())
    assert set(nodes.index[nodes["kind"] == "source"]) == set(nodes.index[nodes["supply"] > 0])


def test_hand_made_grid_shunt_sgen_storage_phase_shifter_and_ratings(tmp_path):
    """Every element kind that changes DC flows, on a grid small enough to check by hand."""
    net = pp.create_empty_network(sn_mva=50.0)
    hv = [pp.create_bus(net, 110.0) for _ in range(3)]
    mv = [pp.create_bus(net, 20.0) for _ in range(2)]
    pp.create_ext_grid(net, hv[0])
    pp.create_line_from_parameters(net, hv[0], hv[1], 10.0, 0.1, 0.4, 10.0, 0.5, parallel=2, df=0.8)
    pp.create_line_from_parameters(net, hv[1], hv[2], 20.0, 0.1, 0.4, 10.0, 0.5)
    pp.create_line_from_parameters(net, hv[0], hv[2], 15.0, 0.1, 0.4, 10.0, 0.5)
    # a phase-shifting transformer with an off-nominal tap, in parallel with a plain one
    pp.create_transformer_from_parameters(net, hv[2], mv[0], 40.0, 110.0, 20.0, 0.3, 12.0, 0.0, 0.0,
                                          shift_degree=0.0, tap_side="hv", tap_neutral=0, tap_pos=2,
                                          tap_step_percent=1.5, tap_step_degree=5.0,
                                          tap_changer_type="Ratio", df=0.9, parallel=1)
    pp.create_transformer_from_parameters(net, hv[1], mv[1], 25.0, 110.0, 20.0, 0.3, 10.0, 0.0, 0.0)
    pp.create_line_from_parameters(net, mv[0], mv[1], 3.0, 0.2, 0.3, 100.0, 0.3)
    pp.create_load(net, mv[0], p_mw=12.0, scaling=1.5)
    pp.create_load(net, mv[1], p_mw=9.0)
    pp.create_load(net, hv[2], p_mw=-4.0)                      # a load that feeds in
    pp.create_sgen(net, mv[1], p_mw=3.0)                       # not controllable
    pp.create_sgen(net, hv[1], p_mw=2.0, max_p_mw=5.0, controllable=True)
    pp.create_storage(net, mv[0], p_mw=1.5, max_e_mwh=10.0)    # charging: a load
    pp.create_shunt(net, hv[1], q_mvar=0.0, p_mw=0.5, vn_kv=100.0)
    pp.create_gen(net, hv[2], p_mw=6.0, max_p_mw=10.0)
    root, out = import_cli(net, tmp_path)
    mine = dc_flows(root)
    ran = rundcpp(net)
    theirs = pd.concat([ran.res_line["p_from_mw"].rename(lambda i: f"line-{i}"),
                        ran.res_trafo["p_hv_mw"].rename(lambda i: f"trafo-{i}")])
    assert (mine.reindex(theirs.index) - theirs).abs().max() <= 1e-9 * theirs.abs().max()
    nodes = pd.read_csv(root / "nodes.csv").set_index("id")
    edges = pd.read_csv(root / "edges.csv").set_index("id")
    # demand: loads * scaling, charging storage, the shunt at 1 p.u. of its bus (110/100 kV)^2
    assert nodes.loc[f"bus-{mv[0]}", "demand"] == pytest.approx(12.0 * 1.5 + 1.5)
    assert nodes.loc[f"bus-{hv[1]}", "demand"] == pytest.approx(0.5 * (110.0 / 100.0) ** 2)
    # supply: a negative load and a gen; a controllable sgen up to its max_p_mw, another at its output
    assert nodes.loc[f"bus-{hv[2]}", ["supply", "dispatch"]].tolist() == pytest.approx([14.0, 10.0])
    assert nodes.loc[f"bus-{hv[1]}", ["supply", "dispatch"]].tolist() == pytest.approx([5.0, 2.0])
    assert nodes.loc[f"bus-{mv[1]}", ["supply", "dispatch"]].tolist() == pytest.approx([3.0, 3.0])
    # ratings: max_i_ka * df * parallel * vn_kv * sqrt(3); sn_mva * df * parallel
    assert edges.loc["line-0", "capacity"] == pytest.approx(0.5 * 0.8 * 2 * 110.0 * math.sqrt(3))
    assert edges.loc["trafo-0", "capacity"] == pytest.approx(40.0 * 0.9)
    # the tap's 5 degree steps give the transformer a phase shift, in the column, with pandapower's sign
    assert edges.loc["trafo-0", "shift"] != 0
    assert "ext_grid(s) without max_p_mw" in out


def test_three_winding_transformer_impedance_and_switches_follow_rundcpp(tmp_path):
    """example_multivoltage: a trafo3w (three branches through a star node), an impedance, and
    closed bus-bus switches (fused buses in pandapower, tiny reactances here)."""
    net = pn.example_multivoltage()
    root, out = import_cli(net, tmp_path)
    mine = dc_flows(root)
    ran = rundcpp(net)
    theirs = pd.concat([
        ran.res_line["p_from_mw"].rename(lambda i: f"line-{i}"),
        ran.res_trafo["p_hv_mw"].rename(lambda i: f"trafo-{i}"),
        ran.res_trafo3w["p_hv_mw"].rename(lambda i: f"trafo3w-{i}-hv"),
        (-ran.res_trafo3w["p_mv_mw"]).rename(lambda i: f"trafo3w-{i}-mv"),
        (-ran.res_trafo3w["p_lv_mw"]).rename(lambda i: f"trafo3w-{i}-lv"),
        ran.res_impedance["p_from_mw"].rename(lambda i: f"impedance-{i}")]).dropna()
    both = theirs.index.intersection(mine.index)
    # a line behind an open line switch is not an edge; pandapower finds it carries nothing
    left_out = theirs.drop(both)
    assert len(left_out) == 1 and left_out.abs().max() < 1e-9
    assert set(left_out.index) == {f"line-{i}" for i in net.switch.element[(net.switch.et == "l") & ~net.switch.closed]}
    # switches of 1e-6 times the smallest reactance: flows equal up to about that, relative
    assert (mine[both] - theirs[both]).abs().max() <= 1e-5 * theirs.abs().max()
    assert "three-winding" in out and "switch(es) without impedance" in out
    nodes = pd.read_csv(root / "nodes.csv")
    assert (nodes["kind"] == "star").sum() == len(net.trafo3w)


def test_rule_source_keeps_the_v1_layer(tmp_path):
    net = _case("case30")
    root, _ = import_cli(net, tmp_path, "--rule", "source")
    nodes = pd.read_csv(root / "nodes.csv")
    edges = pd.read_csv(root / "edges.csv")
    assert "supply" not in nodes and "reactance" not in edges and "capacity" not in edges
    assert not (root / "system.toml").read_text().count("[layers")
    sources = set(net.gen.bus) | set(net.ext_grid.bus)
    assert set(nodes.loc[nodes["kind"] == "source", "id"]) == {f"bus-{b}" for b in sources}


def test_import_into_an_existing_system_appends_the_layer_table(tmp_path):
    """The second import adds [layers.water] to system.toml and keeps the first layer's table."""
    net = _case("case9")
    src = tmp_path / "net.json"
    pp.to_json(net, str(src))
    root = tmp_path / "sys"
    import_network("pandapower", src, "power", root)
    wntr = pytest.importorskip("wntr")
    inp = Path(wntr.__path__[0]) / "library" / "networks" / "Net1.inp"
    import_network("epanet", inp, "water", root, crs="EPSG:32632")
    text = (root / "system.toml").read_text()
    assert text.count("[layers.") == 2
    system = read_system(root)
    assert system.layer_rules()["power"] == "dcflow" and system.layer_rules()["water"] == "flow"
    assert system.layer_unit("power") == "MW" and system.layer_unit("water") == "L/s"
    assert system.layer_base("power") == 100.0 and system.layer_weight("water") == 1.0


def test_cli_refuses_a_rule_the_format_has_not_in_one_line(tmp_path):
    net = _case("case9")
    src = tmp_path / "net.json"
    pp.to_json(net, str(src))
    proc = subprocess.run([str(CASCADE), "import", "pandapower", str(src), "--layer", "p", "--into",
                           str(tmp_path / "s"), "--rule", "flow"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--rule flow" in lines[0] and "dcflow or source" in lines[0]
    assert not (tmp_path / "s").exists()


def test_a_grid_rundcpp_cannot_solve_is_one_line_naming_the_file(tmp_path):
    net = pp.create_empty_network()
    a, b = pp.create_bus(net, 10.0), pp.create_bus(net, 10.0)
    pp.create_line(net, a, b, 1.0, "NAYY 4x50 SE")
    pp.create_load(net, b, p_mw=0.1)               # no ext_grid, no slack: no reference bus
    src = tmp_path / "net.json"
    pp.to_json(net, str(src))
    with pytest.raises(InputError, match="rundcpp") as err:
        import_network("pandapower", src, "power", tmp_path / "s")
    assert str(src) in str(err.value) and "--rule source" in str(err.value)
    assert not (tmp_path / "s").exists()


def test_real_process_prints_the_notes(tmp_path):
    net = pn.example_simple()
    src = tmp_path / "net.json"
    pp.to_json(net, str(src))
    proc = subprocess.run([str(CASCADE), "import", "pandapower", str(src), "--layer", "power", "--into",
                           str(tmp_path / "s")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
    assert any("gen(s) without max_p_mw" in line for line in notes)
    assert any("ext_grid(s) without max_p_mw" in line for line in notes)


def test_notes_name_what_is_not_carried_and_islands_without_slack():
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 20.0) for _ in range(5)]
    pp.create_ext_grid(net, b[0])
    pp.create_line(net, b[0], b[1], 1.0, "NA2XS2Y 1x95 RM/25 12/20 kV")
    pp.create_line(net, b[1], b[2], 1.0, "NA2XS2Y 1x95 RM/25 12/20 kV")
    pp.create_motor(net, b[1], pn_mech_mw=0.5, cos_phi=0.9)
    pp.create_load(net, b[2], p_mw=1.0)
    # an island with its own generator but no ext_grid or slack, and a bus out of service
    pp.create_line(net, b[3], b[4], 1.0, "NA2XS2Y 1x95 RM/25 12/20 kV")
    pp.create_gen(net, b[3], p_mw=0.4, max_p_mw=1.0)
    pp.create_load(net, b[4], p_mw=0.3)
    off = pp.create_bus(net, 20.0, in_service=False)
    pp.create_line(net, b[2], off, 1.0, "NA2XS2Y 1x95 RM/25 12/20 kV")
    pp.create_load(net, off, p_mw=5.0)
    layer = to_layer(net, prefix="")
    notes = " | ".join(layer.notes)
    assert "not carried (no column for them): motor" in notes
    assert "bus injections differ from rundcpp's at 1 bus(es), by up to 0.5 MW" in notes  # the motor's
    assert "1 bus(es) with generation lie in islands without an ext_grid or slack gen" in notes
    nodes = layer.nodes.set_index("id")
    assert nodes.loc[f"bus-{off}", "demand"] == 0.0            # pandapower ignores it too
    assert "line-3" not in set(layer.edges["id"])             # the line to the dead bus
    assert nodes.loc["bus-3", ["supply", "dispatch"]].tolist() == [1.0, 0.4]


def test_simulate_on_ieee300_with_its_series_capacitor_equals_rundcpp(tmp_path):
    """IEEE 300 has a branch of negative reactance (a series capacitor): the core's DC kernel
    factorizes the indefinite matrix (nonzero pivots) and its flows are rundcpp's."""
    net = _case("case300")
    root, _ = import_cli(net, tmp_path)
    assert (pd.read_csv(root / "edges.csv")["reactance"] < 0).any()
    proc = subprocess.run([str(CASCADE), "simulate", str(root), "--format", "json"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json
    flows = pd.Series(json.loads(proc.stdout)["flows"], dtype=float)
    ran = rundcpp(net)
    theirs = pd.concat([ran.res_line["p_from_mw"].rename(lambda i: f"line-{i}"),
                        ran.res_trafo["p_hv_mw"].rename(lambda i: f"trafo-{i}")])
    assert set(flows.index) == set(theirs.index)
    assert (flows.reindex(theirs.index) - theirs).abs().max() <= 1e-6 * theirs.abs().max()
    # and a branch loss runs its cascade without an error
    victim = theirs.abs().idxmax()
    proc = subprocess.run([str(CASCADE), "simulate", str(root), "--fail", victim], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
