"""Importers hold demands to the rule of nodes.csv: NaN or infinite is an error naming the
element; a negative value is an error where the file states a demand (GraphML, GeoJSON) and
counts as 0 with a note where the model means generation or inflow (pandapower loads,
pandapipes sinks, EPANET base demands)."""
from __future__ import annotations

import json
import math

import networkx as nx
import pandas as pd
import pytest
from click.testing import CliRunner

from cascade import InputError
from cascade.cli import cli
from cascade.io.imports import checked_demand, import_network


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res) -> str:
    assert res.exit_code == 2, (res.output, res.exception)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_checked_demand_refuses_non_finite(value):
    with pytest.raises(InputError, match="b: demand is"):
        checked_demand([1.0, value], ["a", "b"], "f")


def test_checked_demand_negative_rules():
    with pytest.raises(InputError, match="a: demand is negative"):
        checked_demand([-1.0, 2.0], ["a", "b"], "f")
    values, note = checked_demand([-1.0, 2.0], ["a", "b"], "f", negative="zero", meaning=" (x)")
    assert list(values) == [0.0, 2.0] and note.startswith("1 node(s) with a negative net demand (x)")
    assert checked_demand([0.0, 2.0], ["a", "b"], "f")[1] is None


# ------------------------------------------------------------------ GraphML and GeoJSON
def graph(demand):
    g = nx.Graph()
    g.add_node("a", kind="source", x=0.0, y=0.0)
    g.add_node("b", x=1.0, y=0.0, demand=demand)
    g.add_edge("a", "b")
    return g


@pytest.mark.parametrize("demand,message", [
    ("nan", "demand is nan"), ("inf", "demand is inf"), (-5.0, "demand is negative"), ("abc", "is not a number"),
])
def test_graphml_bad_demand_is_refused(tmp_path, demand, message):
    nx.write_graphml(graph(demand), tmp_path / "g.graphml")
    err = one_line_error(run("import", "graphml", tmp_path / "g.graphml", "--layer", "t", "--into", tmp_path / "s"))
    assert message in err and "b" in err and not (tmp_path / "s").exists()


def test_graphml_good_and_missing_demand(tmp_path):
    g = graph(4.0)
    g.add_node("c", x=2.0, y=0.0)  # no demand attribute: 0
    g.add_edge("b", "c")
    nx.write_graphml(g, tmp_path / "g.graphml")
    system, _ = import_network("graphml", tmp_path / "g.graphml", "t", tmp_path / "s")
    assert dict(zip(system.nodes["id"], system.nodes["demand"])) == {"t-a": 0.0, "t-b": 4.0, "t-c": 0.0}


def geojson(demand) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": {"id": "a", "kind": "source"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0.001]}, "properties": {"id": "b", "demand": demand}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [0, 0.001]]},
         "properties": {"source": "a", "target": "b"}}]}


@pytest.mark.parametrize("demand,message", [
    (float("nan"), "demand is nan"), (float("inf"), "demand is inf"), (-2, "demand is negative")])
def test_geojson_bad_demand_is_refused(tmp_path, demand, message):
    (tmp_path / "g.geojson").write_text(json.dumps(geojson(demand)))  # NaN/Infinity as Python writes them
    err = one_line_error(run("import", "geojson", tmp_path / "g.geojson", "--layer", "t", "--into", tmp_path / "s"))
    assert message in err and "b" in err and not (tmp_path / "s").exists()


# ------------------------------------------------------------------ pandapower, pandapipes, EPANET
def test_pandapower_nan_load_is_refused_and_negative_bus_is_a_note(tmp_path):
    pp = pytest.importorskip("pandapower")
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 10.0) for _ in range(3)]
    pp.create_ext_grid(net, b[0])
    pp.create_line(net, b[0], b[1], 1.0, "NAYY 4x50 SE")
    pp.create_line(net, b[1], b[2], 1.0, "NAYY 4x50 SE")
    pp.create_load(net, b[1], p_mw=0.5)
    pp.create_load(net, b[2], p_mw=-0.3)  # a generator written as a negative load
    pp.to_json(net, str(tmp_path / "ok.json"))
    res = run("import", "pandapower", tmp_path / "ok.json", "--layer", "power", "--into", tmp_path / "s",
              "--rule", "source")
    assert res.exit_code == 0, res.output
    assert "note: 1 node(s) with a negative net demand (loads used as generators) counted as 0: power-bus-2" in res.output
    # As a dcflow layer the negative load is what it means: a source giving 0.3 MW.
    res = run("import", "pandapower", tmp_path / "ok.json", "--layer", "power", "--into", tmp_path / "dc")
    assert res.exit_code == 0, res.output
    nodes = pd.read_csv(tmp_path / "dc" / "nodes.csv").set_index("id")
    assert nodes.loc["power-bus-2", "supply"] == pytest.approx(0.3) and nodes.loc["power-bus-2", "demand"] == 0
    net.load.loc[0, "p_mw"] = math.nan
    pp.to_json(net, str(tmp_path / "nan.json"))
    for k, rule in enumerate(("source", "dcflow")):
        err = one_line_error(run("import", "pandapower", tmp_path / "nan.json", "--layer", "power",
                                 "--into", tmp_path / f"s2{k}", "--rule", rule))
        assert ("demand is nan" in err or "p_mw is nan" in err) and not (tmp_path / f"s2{k}").exists()
    net.load.loc[0, "p_mw"] = math.inf
    pp.to_json(net, str(tmp_path / "inf.json"))
    err = one_line_error(run("import", "pandapower", tmp_path / "inf.json", "--layer", "power",
                             "--into", tmp_path / "s3", "--rule", "source"))
    assert "load 0: demand is" in err  # pandas writes inf as null: read back as nan


def test_pandapipes_nan_sink_is_refused(tmp_path):
    ppi = pytest.importorskip("pandapipes")
    net = ppi.create_empty_network(fluid="lgas")
    j = [ppi.create_junction(net, pn_bar=1.0, tfluid_k=283.15) for _ in range(2)]
    ppi.create_ext_grid(net, j[0], p_bar=1.0, t_k=283.15)
    ppi.create_pipe_from_parameters(net, j[0], j[1], length_km=1.0, diameter_m=0.1)
    ppi.create_sink(net, j[1], mdot_kg_per_s=0.1)
    net.sink.loc[0, "mdot_kg_per_s"] = math.nan
    ppi.to_json(net, str(tmp_path / "g.json"))
    err = one_line_error(run("import", "pandapipes", tmp_path / "g.json", "--layer", "gas", "--into", tmp_path / "s"))
    assert "sink 0: demand is nan" in err


INP = """[JUNCTIONS]
 J1 10 {d1}
 J2 10 {d2}
[RESERVOIRS]
 R1 50
[PIPES]
 P1 R1 J1 100 200 100
 P2 J1 J2 100 200 100
[OPTIONS]
 UNITS LPS
[END]
"""


def test_epanet_negative_demand_is_a_note_and_nan_is_refused(tmp_path):
    pytest.importorskip("wntr")
    (tmp_path / "n.inp").write_text(INP.format(d1="2", d2="-1"))
    res = run("import", "epanet", tmp_path / "n.inp", "--layer", "water", "--into", tmp_path / "s")
    assert res.exit_code == 0, res.output
    assert "note: 1 node(s) with a negative net demand (inflow into the network) counted as 0: water-J2" in res.output
    (tmp_path / "bad.inp").write_text(INP.format(d1="nan", d2="1"))
    err = one_line_error(run("import", "epanet", tmp_path / "bad.inp", "--layer", "water", "--into", tmp_path / "s2"))
    assert "water-J1: demand is nan" in err
