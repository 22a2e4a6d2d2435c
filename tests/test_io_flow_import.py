"""EPANET and pandapipes importers as ``flow`` layers: capacities and supplies from the models'
own data (diameters, pump curves, flow settings, fluid densities) as the module docstrings state,
checked element by element against wntr's and pandapipes' tables, and the intact layer's maximum
flow (networkx, from the imported CSV files) serving the whole demand."""
from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from cascade import InputError
from cascade.io.imports import import_network



def max_flow(root: Path) -> tuple[float, float]:
    """(maximum flow from every supply to every demand, total demand) from the CSV files."""
    nodes = pd.read_csv(root / "nodes.csv")
    edges = pd.read_csv(root / "edges.csv")
    graph = nx.DiGraph()
    for row in edges.itertuples():
        cap = row.capacity if np.isfinite(row.capacity) else math.inf
        ends = [(row.source, row.target)] if row.directed else [(row.source, row.target), (row.target, row.source)]
        for u, v in ends:
            old = graph[u][v]["capacity"] if graph.has_edge(u, v) else 0.0
            graph.add_edge(u, v, capacity=old + cap)
    for row in nodes.itertuples():
        if row.supply > 0:
            graph.add_edge("SOURCE", row.id, capacity=row.supply)
        if row.demand > 0:
            graph.add_edge(row.id, "SINK", capacity=row.demand)
    return nx.maximum_flow_value(graph, "SOURCE", "SINK"), float(nodes["demand"].sum())


def layer_table(root: Path, layer: str) -> dict:
    with open(root / "system.toml", "rb") as fh:
        return tomllib.load(fh)["layers"][layer]


# ---------------------------------------------------------------------------------------- EPANET
@pytest.mark.parametrize("name", ["Net1.inp", "Net3.inp", "ky4.inp"])
def test_epanet_capacities_from_diameters_and_pump_curves(name, tmp_path):
    wntr = pytest.importorskip("wntr")
    from cascade.io.epanet import VELOCITY

    inp = os.path.join(wntr.__path__[0], "library", "networks", name)
    system, summary = import_network("epanet", inp, "water", tmp_path / "s", prefix="")
    assert layer_table(tmp_path / "s", "water") == {"rule": "flow", "unit": "L/s"}
    wn = wntr.network.WaterNetworkModel(inp)
    edges = pd.read_csv(tmp_path / "s" / "edges.csv").set_index("id")
    nodes = pd.read_csv(tmp_path / "s" / "nodes.csv").set_index("id")
    for pipe_name, pipe in wn.pipes():
        assert edges.loc[f"pipe-{pipe_name}", "capacity"] == pytest.approx(
            VELOCITY * math.pi * pipe.diameter ** 2 / 4 * 1000.0, rel=1e-9)
    for pump_name, pump in wn.pumps():
        if pump.pump_type == "HEAD":
            curve = pump.get_pump_curve().points
            a, b, c = pump.get_head_curve_coefficients()
            q_max = edges.loc[f"pump-{pump_name}:in", "capacity"] / 1000.0
            assert a - b * q_max ** c == pytest.approx(0.0, abs=1e-9 * a)   # zero head at the capacity
            assert q_max >= max(q for q, _ in curve) - 1e-12
        else:
            assert np.isnan(edges.loc[f"pump-{pump_name}:in", "capacity"])
    total = nodes["demand"].sum()
    sources = wn.reservoir_name_list + wn.tank_name_list
    assert np.allclose(nodes.loc[sources, "supply"], total) and (nodes["supply"] > 0).sum() == len(sources)
    assert "note: pipes and valves: capacity = 2 m/s" in summary
    served, demand = max_flow(tmp_path / "s")
    assert served == pytest.approx(demand, rel=1e-9)   # the intact network serves its base demand


def test_epanet_flow_control_valve_capacity_is_its_setting(tmp_path):
    pytest.importorskip("wntr")
    inp = tmp_path / "fcv.inp"
    inp.write_text("""[OPTIONS]
 Units LPS
[JUNCTIONS]
 J1 10 0
 J2 10 5
[RESERVOIRS]
 R1 50
[PIPES]
 P1 R1 J1 100 300 100 0 Open
[VALVES]
 V1 J1 J2 200 FCV 3.5 0
[END]
""")
    system, _ = import_network("epanet", inp, "water", tmp_path / "s", prefix="")
    edges = system.edges.set_index("id")
    assert edges.loc["valve-V1", "capacity"] == pytest.approx(3.5)  # LPS file: the setting in L/s
    served, demand = max_flow(tmp_path / "s")
    assert demand == pytest.approx(5.0) and served == pytest.approx(3.5)


# ------------------------------------------------------------------------------------ pandapipes
@pytest.mark.parametrize("name", ["gas_versatility", "schutterwald_gas", "gas_meshed_pumps",
                                  "water_district_grid"])
def test_pandapipes_capacities_from_diameter_velocity_and_density(name, tmp_path):
    ppi = pytest.importorskip("pandapipes")
    pn = pytest.importorskip("pandapipes.networks")
    from cascade.io.pandapipes import GAS_VELOCITY, LIQUID_VELOCITY, P_NORMAL

    net = getattr(pn, name)()
    src = tmp_path / "net.json"
    ppi.to_json(net, str(src))
    system, summary = import_network("pandapipes", src, "gas", tmp_path / "s", prefix="",
                                     crs="EPSG:31467")
    assert layer_table(tmp_path / "s", "gas") == {"rule": "flow", "unit": "kg/s"}
    edges = pd.read_csv(tmp_path / "s" / "edges.csv").set_index("id")
    gas = net.fluid.is_gas
    velocity = GAS_VELOCITY if gas else LIQUID_VELOCITY
    for i, pipe in net.pipe[net.pipe.in_service.astype(bool)].iterrows():
        a, b = net.junction.loc[pipe.from_junction], net.junction.loc[pipe.to_junction]
        rho = float(net.fluid.get_density((a.tfluid_k + b.tfluid_k) / 2))
        if gas:
            rho *= ((a.pn_bar + b.pn_bar) / 2 + P_NORMAL) / P_NORMAL
        area = math.pi * (pipe.inner_diameter_mm / 1000.0) ** 2 / 4
        assert edges.loc[f"pipe-{i}", "capacity"] == pytest.approx(velocity * area * rho, rel=1e-9)
    nodes = pd.read_csv(tmp_path / "s" / "nodes.csv").set_index("id")
    grids = {f"junction-{j}" for j in net.ext_grid.junction}
    assert (nodes.loc[sorted(grids), "supply"] >= nodes["demand"].sum() - 1e-12).all()
    if len(net.source):
        for _, feed in net.source.iterrows():
            if f"junction-{feed.junction}" not in grids:
                assert nodes.loc[f"junction-{feed.junction}", "supply"] == pytest.approx(
                    feed.mdot_kg_per_s * feed.scaling)
    served, demand = max_flow(tmp_path / "s")
    assert served == pytest.approx(demand, rel=1e-9)
    assert "note: pipes and valves: capacity" in summary


def test_bad_rule_for_a_format_is_one_clear_error(tmp_path):
    path = tmp_path / "g.graphml"
    path.write_text('<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected">'
                    '<node id="a"/></graph></graphml>')
    with pytest.raises(InputError, match="no --rule"):
        import_network("graphml", path, "x", tmp_path / "s", rule="flow")
    pytest.importorskip("wntr")
    inp = Path(__import__("wntr").__path__[0]) / "library" / "networks" / "Net1.inp"
    with pytest.raises(InputError, match="--rule dcflow: a epanet network imports as flow or source"):
        import_network("epanet", inp, "x", tmp_path / "s", rule="dcflow")
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ system.toml unit/weight/base
def _tiny(root: Path, layer_table: str) -> Path:
    root.mkdir()
    (root / "nodes.csv").write_text("id,layer,kind,demand,supply\na,power,source,0,5\nb,power,,3,\n")
    (root / "edges.csv").write_text("source,target,reactance\na,b,0.1\n")
    (root / "system.toml").write_text('[system]\nname = "t"\n\n[layers.power]\n' + layer_table)
    return root


def test_layer_settings_are_read_and_written_back(tmp_path):
    from cascade import read_system
    from cascade.io import write_system

    system = read_system(_tiny(tmp_path / "a", 'rule = "dcflow"\nunit = "MW"\nweight = 2\nbase = 50\n'))
    assert system.layer_rules() == {"power": "dcflow"}
    assert (system.layer_unit("power"), system.layer_weight("power"), system.layer_base("power")) == ("MW", 2.0, 50.0)
    write_system(system, tmp_path / "b")
    again = read_system(tmp_path / "b")
    assert (again.units, again.weights, again.bases, again.rules) == (system.units, system.weights,
                                                                      system.bases, system.rules)
    plain = read_system(_tiny(tmp_path / "c", ""))
    assert (plain.layer_unit("power"), plain.layer_weight("power"), plain.layer_base("power")) == ("", 1.0, 100.0)


@pytest.mark.parametrize("table,message", [
    ("base = 0\n", "base must be > 0"),
    ("weight = -1\n", "weight must be >= 0"),
    ('base = "x"\n', "base must be a number"),
    ("unit = 3\n", "unit must be a string"),
    ("colour = 1\n", "unknown key 'colour'"),
])
def test_bad_layer_settings_are_one_line_naming_system_toml(tmp_path, table, message):
    import subprocess
    import sys

    root = _tiny(tmp_path / "s", table)
    proc = subprocess.run([str(Path(sys.executable).with_name("cascade")), "info", str(root)],
                          capture_output=True, text=True, timeout=600)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert message in lines[0] and "system.toml" in lines[0]
