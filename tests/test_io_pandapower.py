"""pandapower importer as the v1 connectivity layer (``--rule source``): networks shipped inside
pandapower, checked against pandapower's own tables and its topology module (connected components,
unsupplied buses).  The default ``dcflow`` layer is checked in test_io_pandapower_dc.py."""
from __future__ import annotations

import json
import logging
from functools import lru_cache

import networkx as nx
import numpy as np
import pandas as pd
import pytest

pp = pytest.importorskip("pandapower")
pn = pytest.importorskip("pandapower.networks")
top = pytest.importorskip("pandapower.topology")

from cascade import InputError, read_system, simulate  # noqa: E402
from cascade.io.imports import import_network  # noqa: E402
from cascade.io.pandapower import read_pandapower, to_layer  # noqa: E402

logging.getLogger("pandapower").setLevel(logging.ERROR)
# pandapower's own sample networks trip its deprecation of spline tap characteristics.
pytestmark = pytest.mark.filterwarnings("ignore:tap_dependency_table:DeprecationWarning")

NETWORKS = ["mv_oberrhein", "example_simple", "example_multivoltage", "case9", "create_cigre_network_mv"]


@lru_cache(maxsize=None)
def _net(name):  # the tests below only read it
    return getattr(pn, name)()


def expected(net):
    """Counts straight from the pandapower tables (the mapping the module docstring states)."""
    def live(t):
        return t[t["in_service"].astype(bool)] if len(t) and "in_service" in t else t

    sw = net.switch
    open_l = set(sw.loc[(sw.et == "l") & ~sw.closed.astype(bool), "element"]) if len(sw) else set()
    open_t = set(sw.loc[(sw.et == "t") & ~sw.closed.astype(bool), "element"]) if len(sw) else set()
    lines = live(net.line)
    trafos = live(net.trafo)
    edges = (len(lines[~lines.index.isin(open_l)]) + len(trafos[~trafos.index.isin(open_t)])
             + 2 * len(live(net.trafo3w)) + (int(((sw.et == "b") & sw.closed.astype(bool)).sum()) if len(sw) else 0))
    sources = set(live(net.ext_grid)["bus"]) | set(live(net.gen)["bus"])
    loads = live(net.load)
    per_bus = (loads.p_mw * loads.scaling).groupby(loads.bus).sum()
    return {"nodes": len(net.bus), "edges": edges, "sources": len(sources),
            "demand": float(per_bus.clip(lower=0).sum())}


@pytest.mark.parametrize("name", NETWORKS)
def test_counts_match_the_pandapower_model(name, tmp_path):
    net = _net(name)
    pp.to_json(net, tmp_path / "net.json")
    layer = read_pandapower(tmp_path / "net.json", layer="power", prefix="p-", rule="source")
    want = expected(net)
    assert len(layer.nodes) == want["nodes"]
    assert len(layer.edges) == want["edges"]
    assert int((layer.nodes["kind"] == "source").sum()) == want["sources"]
    assert layer.nodes["demand"].sum() == pytest.approx(want["demand"])
    assert layer.nodes["id"].is_unique and layer.edges["id"].is_unique


@pytest.mark.parametrize("name", NETWORKS)
def test_connectivity_matches_pandapower_topology(name):
    """Same connected components as pandapower's graph (switches respected, out of service left out)."""
    net = _net(name)
    layer = to_layer(net, prefix="", rule="source")
    mine = nx.Graph()
    mine.add_nodes_from(layer.nodes["id"])
    mine.add_edges_from(zip(layer.edges["source"], layer.edges["target"]))
    theirs = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False,
                                include_impedances=False)
    as_sets = lambda comps, key: sorted(sorted(map(key, c)) for c in comps)  # noqa: E731
    in_service = set(net.bus.index[net.bus.in_service.astype(bool)])
    mine_c = [{int(v.split("-")[1]) for v in c} & in_service for c in nx.connected_components(mine)]
    theirs_c = [set(c) & in_service for c in nx.connected_components(theirs)]
    assert as_sets([c for c in mine_c if c], int) == as_sets([c for c in theirs_c if c], int)


def test_cascade_of_the_intact_grid_matches_unsupplied_buses(tmp_path):
    """A bus never works in the static cascade exactly when pandapower finds it unsupplied."""
    net = pn.mv_oberrhein()
    pp.to_json(net, tmp_path / "net.json")
    system, _ = import_network("pandapower", tmp_path / "net.json", "power", tmp_path / "sys", rule="source")
    result = simulate(system)
    dead = {int(i.rsplit("-", 1)[1]) for i in system.nodes["id"][~result.working]}
    assert dead == set(top.unsupplied_buses(net))
    # and losing one external grid leaves unsupplied exactly what pandapower says
    grid_bus = int(net.ext_grid.bus.iloc[0])
    result = simulate(system, [f"power-bus-{grid_bus}"])
    net.ext_grid.loc[net.ext_grid.index[0], "in_service"] = False
    net.bus.loc[grid_bus, "in_service"] = False
    dead = {int(i.rsplit("-", 1)[1]) for i in system.nodes["id"][~result.working]}
    assert dead == set(top.unsupplied_buses(net)) | {grid_bus}


def test_coordinates_are_reprojected_to_utm(tmp_path):
    net = pn.mv_oberrhein()
    pp.to_json(net, tmp_path / "net.json")
    system, note = import_network("pandapower", tmp_path / "net.json", "power", tmp_path / "sys")
    assert system.crs == "EPSG:32632"  # UTM 32N holds Oberrhein (7.8 E)
    import pyproj

    lon, lat = json.loads(net.bus.geo.iloc[0])["coordinates"]
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True).transform(lon, lat)
    row = read_system(tmp_path / "sys").nodes.set_index("id").loc[f"power-bus-{net.bus.index[0]}"]
    assert row["x"] == pytest.approx(x, abs=0.01) and row["y"] == pytest.approx(y, abs=0.01)
    # line lengths come from the model (km -> m)
    edges = system.edges.set_index("id")
    i = net.line.index[0]
    assert edges.loc[f"power-line-{i}", "length"] == pytest.approx(net.line.length_km[i] * 1000)


@pytest.mark.parametrize("text,message", [
    ("{not json", "malformed JSON"),
    ('{"a": 1}', "not a pandapower network"),
    ('{"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": {"bus": 3}}',
     "without a bus table"),
])
def test_malformed_json_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_pandapower(path)
    assert str(path) in str(err.value)


def test_open_bus_switch_and_out_of_service_line_are_not_edges():
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 10.0) for _ in range(4)]
    pp.create_ext_grid(net, b[0])
    pp.create_line(net, b[0], b[1], 1.0, "NAYY 4x50 SE")
    pp.create_line(net, b[1], b[2], 1.0, "NAYY 4x50 SE", in_service=False)
    pp.create_switch(net, b[2], b[3], et="b", closed=False)
    pp.create_switch(net, b[1], b[3], et="b", closed=True)
    pp.create_load(net, b[3], p_mw=0.5, scaling=0.5)
    pp.create_load(net, b[3], p_mw=0.3, in_service=False)
    layer = to_layer(net, prefix="", rule="source")
    assert sorted(layer.edges["kind"]) == ["line", "switch"]
    assert layer.nodes.set_index("id").loc["bus-3", "demand"] == pytest.approx(0.25)
    assert list(layer.nodes.loc[layer.nodes["kind"] == "source", "id"]) == ["bus-0"]
