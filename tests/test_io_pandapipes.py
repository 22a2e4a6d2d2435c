"""pandapipes importer: networks shipped inside pandapipes, checked against its tables and topology."""
from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

ppi = pytest.importorskip("pandapipes")
pn = pytest.importorskip("pandapipes.networks")

from cascade import InputError  # noqa: E402
from cascade.io.imports import import_network  # noqa: E402
from cascade.io.pandapipes import read_pandapipes, to_layer  # noqa: E402

SHIPPED = ["gas_versatility", "schutterwald_gas", "gas_meshed_two_valves", "gas_meshed_pumps",
           "water_district_grid"]


def live(t):
    return t[t["in_service"].astype(bool)] if len(t) and "in_service" in t else t


def expected(net):
    edges = 0
    for name in ("pipe", "press_control", "flow_control", "compressor", "pump"):
        if name in net and len(net[name]):
            edges += len(live(net[name]))
    if "valve" in net and len(net.valve):
        v = live(net.valve)
        v = v[v.opened.astype(bool)]
        edges += len(v[v.et == "ju"]) if "et" in v else len(v)
    sinks = live(net.sink)
    per = (sinks.mdot_kg_per_s * sinks.scaling).groupby(sinks.junction).sum()
    feeds = live(net.source) if "source" in net else pd.DataFrame(columns=["junction"])
    fed = set(feeds.junction[feeds.mdot_kg_per_s * feeds.scaling > 0]) if len(feeds) else set()
    return {"nodes": len(net.junction), "edges": edges,
            "sources": len(set(live(net.ext_grid).junction)), "flow_sources": len(set(live(net.ext_grid).junction) | fed),
            "demand": float(per.clip(lower=0).sum())}


@pytest.mark.parametrize("rule", ["flow", "source"])
@pytest.mark.parametrize("name", SHIPPED)
def test_counts_match_the_pandapipes_model(name, rule, tmp_path):
    net = getattr(pn, name)()
    ppi.to_json(net, str(tmp_path / "net.json"))
    layer = read_pandapipes(tmp_path / "net.json", rule=rule)
    want = expected(net)
    assert len(layer.nodes) == want["nodes"]
    assert len(layer.edges) == want["edges"]
    # v1: the ext_grid junctions; flow: every junction with supply (ext_grid or a feeding source)
    assert int((layer.nodes["kind"] == "source").sum()) == want["sources" if rule == "source" else "flow_sources"]
    assert layer.nodes["demand"].sum() == pytest.approx(want["demand"])
    assert ("supply" in layer.nodes) == ("capacity" in layer.edges) == (rule == "flow")


@pytest.mark.parametrize("name", SHIPPED)
def test_connectivity_matches_pandapipes_topology(name):
    from pandapipes.topology import create_nxgraph

    net = getattr(pn, name)()
    layer = to_layer(net, prefix="")
    mine = nx.Graph()
    mine.add_nodes_from(int(i.split("-")[1]) for i in layer.nodes["id"])
    mine.add_edges_from((int(a.split("-")[1]), int(b.split("-")[1]))
                        for a, b in zip(layer.edges["source"], layer.edges["target"]))
    theirs = create_nxgraph(net, include_out_of_service=False).to_undirected()
    assert sorted(map(sorted, nx.connected_components(mine))) == \
        sorted(map(sorted, nx.connected_components(nx.Graph(theirs))))


def test_gauss_krueger_coordinates_reproject(tmp_path):
    import pyproj

    net = pn.schutterwald_gas()
    ppi.to_json(net, str(tmp_path / "net.json"))
    system, note = import_network("pandapipes", tmp_path / "net.json", "gas", tmp_path / "s", crs="EPSG:31467")
    assert system.crs == "EPSG:31467"  # projected in metres: kept
    assert "already in" in note
    system, note = import_network("pandapipes", tmp_path / "net.json", "gas", tmp_path / "u",
                                  crs="EPSG:31467", prefix="g-")
    (tmp_path / "v").mkdir()
    # into a UTM system: reprojected
    (tmp_path / "v" / "nodes.csv").write_text("id,layer,kind,x,y\nP1,power,source,410000,5360000\n")
    (tmp_path / "v" / "edges.csv").write_text("source,target\n")
    (tmp_path / "v" / "system.toml").write_text('[system]\ncrs = "EPSG:32632"\n')
    system, note = import_network("pandapipes", tmp_path / "net.json", "gas", tmp_path / "v", crs="EPSG:31467")
    j = net.junction.index[0]
    x, y = pyproj.Transformer.from_crs("EPSG:31467", "EPSG:32632", always_xy=True).transform(
        net.junction_geodata.x[j], net.junction_geodata.y[j])
    row = system.nodes.set_index("id").loc[f"gas-junction-{j}"]
    assert (row["x"], row["y"]) == pytest.approx((x, y), abs=0.01)


@pytest.mark.parametrize("text,message", [
    ("[1, 2", "malformed JSON"),
    ('{"_class": "pandapowerNet", "_object": {}}', "not a pandapipes network"),
])
def test_malformed_json_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_pandapipes(path)


def test_two_crs_land_on_the_same_streets(tmp_path):
    """Schutterwald's low-voltage grid (pandapower, WGS 84) and its gas network (pandapipes,
    Gauss-Krüger zone 3) follow the same streets: after reprojection every gas junction lies
    within a street's width of a power bus (wrong CRS handling would put them kilometres apart)."""
    pp = pytest.importorskip("pandapower")
    ppn = pytest.importorskip("pandapower.networks")
    from cascade.couple import couple

    pp.to_json(ppn.lv_schutterwald(), str(tmp_path / "power.json"))
    ppi.to_json(pn.schutterwald_gas(), str(tmp_path / "gas.json"))
    import_network("pandapower", tmp_path / "power.json", "power", tmp_path / "s")
    system, _ = import_network("pandapipes", tmp_path / "gas.json", "gas", tmp_path / "s", crs="EPSG:31467")
    rows, _ = couple(system, "gas", "power", nearest=1)
    assert rows["distance"].median() < 30 and rows["distance"].max() < 300
