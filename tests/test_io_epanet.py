"""EPANET importer: the INP files shipped inside wntr, checked against wntr's own model."""
from __future__ import annotations

import os

import networkx as nx
import numpy as np
import pytest

wntr = pytest.importorskip("wntr")

from cascade import InputError, simulate  # noqa: E402
from cascade.io.epanet import read_epanet, to_layer  # noqa: E402
from cascade.io.imports import import_network  # noqa: E402

LIBRARY = os.path.join(wntr.__path__[0], "library", "networks")
SHIPPED = ["Net1.inp", "Net3.inp", "ky4.inp", "Net6.inp"]
LOCAL = "+proj=tmerc +lat_0=48.36 +lon_0=7.78 +to_meter=100 +ellps=GRS80 +type=crs"


def model(name):
    return wntr.network.WaterNetworkModel(os.path.join(LIBRARY, name))


@pytest.mark.parametrize("name", SHIPPED)
def test_counts_match_the_wntr_model(name):
    wn = model(name)
    layer = read_epanet(os.path.join(LIBRARY, name))
    assert len(layer.nodes) == wn.num_junctions + wn.num_tanks + wn.num_reservoirs + wn.num_pumps
    assert len(layer.edges) == wn.num_pipes + wn.num_valves + 2 * wn.num_pumps
    assert int((layer.nodes["kind"] == "source").sum()) == wn.num_tanks + wn.num_reservoirs
    assert int((layer.nodes["kind"] == "pump").sum()) == wn.num_pumps
    base = sum(d.base_value for _, j in wn.junctions() for d in j.demand_timeseries_list)
    assert layer.nodes["demand"].sum() == pytest.approx(1000 * base)  # m3/s -> L/s
    assert layer.nodes["id"].is_unique and layer.edges["id"].is_unique


@pytest.mark.parametrize("name", SHIPPED)
def test_connectivity_matches_the_wntr_graph(name):
    """Contracting each pump node back into a link gives wntr's own graph (as undirected)."""
    wn = model(name)
    layer = to_layer(wn, prefix="")
    mine = nx.MultiGraph()
    mine.add_nodes_from(layer.nodes["id"])
    mine.add_edges_from(zip(layer.edges["source"], layer.edges["target"]))
    for pump in layer.nodes.loc[layer.nodes["kind"] == "pump", "id"]:
        mine = nx.contracted_nodes(mine, next(iter(set(mine.neighbors(pump)))), pump, self_loops=False)
    theirs = nx.MultiGraph(wn.to_graph().to_undirected())
    assert sorted(map(sorted, nx.connected_components(mine))) == \
        sorted(map(sorted, nx.connected_components(theirs)))
    assert mine.number_of_edges() == theirs.number_of_edges() - sum(
        1 for u, v in theirs.edges() if u == v)


def test_pumps_are_nodes_that_feed_downstream():
    wn = model("Net3.inp")
    layer = to_layer(wn, prefix="w-")
    edges = layer.edges.set_index("id")
    for name, pump in wn.pumps():
        assert edges.loc[f"w-pump-{name}:in", "source"] == f"w-{pump.start_node_name}"
        assert edges.loc[f"w-pump-{name}:out", "target"] == f"w-{pump.end_node_name}"
        assert edges.loc[f"w-pump-{name}:in", "directed"] and edges.loc[f"w-pump-{name}:out", "directed"]


def test_failing_a_pump_cuts_what_only_it_feeds(tmp_path):
    """Net1: one reservoir feeds the town through pump 9; failing the pump leaves what the tank reaches."""
    system, _ = import_network("epanet", os.path.join(LIBRARY, "Net1.inp"), "water", tmp_path / "s",
                               crs=LOCAL, rule="source")
    assert simulate(system).working.all()
    result = simulate(system, ["water-pump-9"])
    # the tank (a source) still feeds every junction it reaches over undirected pipes
    wn = model("Net1.inp")
    g = wn.to_graph().to_undirected()
    g.remove_edge(*next((u, v) for u, v, k in g.edges(keys=True) if k == "9"))
    fed = nx.node_connected_component(g, wn.tank_name_list[0])
    working = set(system.nodes["id"][result.working])
    # the reservoir is a source of its own and keeps working, cut off behind the failed pump
    assert working == {f"water-{n}" for n in fed} | {f"water-{r}" for r in wn.reservoir_name_list}
    assert "water-pump-9" not in working


def test_reprojection_places_the_local_grid(tmp_path):
    import pyproj

    system, _ = import_network("epanet", os.path.join(LIBRARY, "Net3.inp"), "water", tmp_path / "s", crs=LOCAL)
    wn = model("Net3.inp")
    x0, y0 = wn.get_node("10").coordinates
    x, y = pyproj.Transformer.from_crs(LOCAL, system.crs, always_xy=True).transform(x0, y0)
    row = system.nodes.set_index("id").loc["water-10"]
    assert (row["x"], row["y"]) == pytest.approx((x, y), abs=0.01)
    assert system.crs == "EPSG:32632"


def test_needs_a_crs_to_join_a_system_with_one(tmp_path):
    import_network("epanet", os.path.join(LIBRARY, "Net1.inp"), "water", tmp_path / "s", crs=LOCAL)
    with pytest.raises(InputError, match="give --crs"):
        import_network("epanet", os.path.join(LIBRARY, "Net3.inp"), "water2", tmp_path / "s")


@pytest.mark.parametrize("text,message", [
    ("[JUNCTIONS]\n J1 abc 1\n[END]\n", "malformed EPANET INP file"),
    ("hello world\n", "not an EPANET INP file"),
    ("[PIPES]\n P1 A B 100 10 100\n[END]\n", "not an EPANET INP file"),
    ("[JUNCTIONS]\n J1 1 1\n[PIPES]\n P1 J1 X 100 10 100\n[END]\n", "malformed EPANET INP file"),
])
def test_malformed_inp_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.inp"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_epanet(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_shipped_bad_syntax_file_is_a_clear_error():
    path = os.path.join(wntr.__path__[0], "tests", "networks_for_testing", "bad_syntax.inp")
    if not os.path.exists(path):
        pytest.skip("wntr ships no bad_syntax.inp in this version")
    with pytest.raises(InputError, match="malformed EPANET INP file"):
        read_epanet(path)
