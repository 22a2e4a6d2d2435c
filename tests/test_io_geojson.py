"""GeoJSON: export a system with a result, read it back, and import LineStrings by their ends."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from cascade import InfrastructureSystem, InputError, simulate, write_system
from cascade.io.geojson import read_geojson, read_result, to_geojson
from cascade.io.imports import import_network


def small_system():
    power = nx.Graph()
    power.add_node("plant", kind="source", x=0.0, y=0.0)
    power.add_node("sub", x=100.0, y=0.0, demand=5.0)
    power.add_node("ghost")  # no coordinates
    power.add_edge("plant", "sub", length=100.0)
    power.add_edge("sub", "ghost")
    water = nx.Graph()
    water.add_node("works", kind="source", x=0.0, y=50.0)
    water.add_node("pump", kind="pump", x=100.0, y=50.0)
    water.add_node("tap", x=200.0, y=50.0, demand=3.0)
    water.add_edges_from([("works", "pump"), ("pump", "tap")])
    return InfrastructureSystem.from_networkx({"power": power, "water": water}, [("pump", "sub")],
                                              name="small", crs="EPSG:32650")


def test_export_has_points_lines_and_crs():
    system = small_system()
    data = to_geojson(system)
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN
    points = [f for f in data["features"] if f["geometry"] and f["geometry"]["type"] == "Point"]
    lines = [f for f in data["features"] if f["geometry"] and f["geometry"]["type"] == "LineString"]
    assert len(points) == 5 and len(lines) == 3  # ghost and its edge have no geometry
    assert len(data["features"]) == len(system.nodes) + len(system.edges)
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32650"
    sub = next(f for f in points if f["id"] == "sub")
    assert sub["geometry"]["coordinates"] == [100.0, 0.0] and sub["properties"]["demand"] == 5.0


def test_simulate_result_becomes_properties(tmp_path):
    system = small_system()
    result = simulate(system, ["plant"])
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(result.to_dict()))
    props = read_result(path, system)
    assert props.kind == "simulate"
    data = to_geojson(system, props)
    by_id = {(f["properties"]["feature"], f["id"]): f["properties"] for f in data["features"]}
    failed = set(result.failed()["id"])
    for node in system.nodes["id"]:
        assert by_id[("node", node)]["working"] is (node not in failed)
    assert by_id[("node", "plant")]["initial"] is True
    assert by_id[("node", "tap")]["cause"] == "disconnected"
    assert by_id[("edge", "works->pump")]["usable"] is False


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_ranking_and_probability_tables(tmp_path, suffix):
    system = small_system()
    table = pd.DataFrame({"id": ["sub", "plant->sub", "plant"], "element": ["node", "edge", "node"],
                          "layer": ["power"] * 3, "nodes_lost": [4, 4, 5], "demand_lost": [8.0, 8.0, 8.0]})
    path = tmp_path / f"rank{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        path.write_text(json.dumps({"system": "small", "ranking": table.to_dict("records")}))
    props = read_result(path, system)
    assert props.kind == "ranking"
    assert list(props.nodes.index) == ["sub", "plant"] and list(props.nodes["rank"]) == [1, 3]
    assert list(props.edges.index) == ["plant->sub"] and props.edges["rank"].iloc[0] == 2
    prob = tmp_path / "p.csv"
    pd.DataFrame({"id": ["tap", "pump"], "layer": ["water"] * 2, "p_fail": [0.5, 0.25]}).to_csv(prob, index=False)
    props = read_result(prob, system)
    assert props.kind == "probability"
    assert props.nodes.loc["tap", "p_fail"] == 0.5


def test_result_of_another_system_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,p_fail\nnope,0.5\n")
    with pytest.raises(InputError, match="none of its ids"):
        read_result(path, small_system())
    path.write_text("name,p_fail\nsub,0.5\n")
    with pytest.raises(InputError, match="no 'id' column"):
        read_result(path, small_system())


def test_round_trip_through_import(tmp_path):
    """Export a system, import one of its layers back: same nodes, edges and coordinates."""
    system = small_system()
    path = tmp_path / "small.geojson"
    path.write_text(json.dumps(to_geojson(system)))
    back, _ = import_network("geojson", path, "water", tmp_path / "s", prefix="")
    assert back.crs == "EPSG:32650"
    orig = system.nodes[system.nodes["layer"] == "water"].set_index("id")
    got = back.nodes.set_index("id").loc[orig.index]
    assert np.allclose(got[["x", "y", "demand"]].to_numpy(float), orig[["x", "y", "demand"]].to_numpy(float))
    assert list(got["kind"]) == list(orig["kind"])
    assert sorted(back.edges["id"]) == sorted(system.edges.loc[system.edges["source"].isin(orig.index), "id"])


def test_linestrings_join_at_shared_ends(tmp_path):
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7.80, 48.40]},
         "properties": {"id": "a", "kind": "source"}},
        {"type": "Feature", "geometry": {"type": "LineString",
                                         "coordinates": [[7.80, 48.40], [7.805, 48.401], [7.81, 48.40]]},
         "properties": {"name": "Main St"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[7.81, 48.40], [7.81, 48.41]]},
         "properties": {}},
    ]}
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps(data))
    layer = read_geojson(path, layer="transport", prefix="R-")
    assert list(layer.nodes["id"]) == ["R-a", "R-n0", "R-n1"]
    assert list(zip(layer.edges["source"], layer.edges["target"])) == [("R-a", "R-n0"), ("R-n0", "R-n1")]
    system, _ = import_network("geojson", path, "transport", tmp_path / "s", prefix="R-")
    assert system.crs == "EPSG:32632"  # RFC 7946 degrees -> UTM
    assert system.edges["length"].gt(700).all()  # straight distance in metres, filled in


@pytest.mark.parametrize("text,message", [
    ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", '
     '"coordinates": []}}]}', "Polygon"),
    ('{"type": "FeatureCollection", "features": [', "malformed JSON"),
])
def test_malformed_geojson_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_geojson(path)
