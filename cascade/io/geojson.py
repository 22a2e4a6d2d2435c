"""GeoJSON in and out, and the result files that exports and maps attach to a system.

- :func:`read_geojson` imports Point features as nodes and LineString features as edges
  (RFC 7946, Butler et al. 2016, "The GeoJSON Format").
- :func:`read_result` reads any result of the command line (``cascade simulate --format json``,
  a ``cascade critical`` ranking as CSV or JSON, ``cascade scenario`` failure probabilities as
  CSV or JSON, or any CSV/JSON table with an ``id`` column) as per-node and per-edge properties.
- :func:`to_geojson` writes a system (nodes as Points, edges as LineStrings between the
  coordinates of their ends) with those properties, for QGIS and other GIS.  The system's CRS is
  named in the legacy ``crs`` member, which QGIS and GDAL read; RFC 7946 itself assumes WGS 84.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from ..system import InfrastructureSystem
from .csv_dir import check_header, record_lines, restore_ids
from .imports import ImportedLayer, checked_demand, crs_or_error, read_json, require_file

RESERVED = {"id", "layer", "source", "target", "directed"}


# ---------------------------------------------------------------------- import
def _crs_member(data: dict) -> str | None:
    crs = data.get("crs")
    if isinstance(crs, dict):
        name = (crs.get("properties") or {}).get("name")
        if isinstance(name, str):
            match = re.search(r"EPSG:{1,2}(\d+)", name, re.I)
            if match:
                return f"EPSG:{match.group(1)}"
            if "CRS84" in name.upper():
                return "EPSG:4326"
            return name
    return "EPSG:4326"  # RFC 7946: WGS 84 longitude, latitude


def _flat_lines(geometry: dict) -> list:
    if geometry["type"] == "LineString":
        return geometry["coordinates"]
    return [p for part in geometry["coordinates"] for p in part]  # MultiLineString


def read_geojson(src: str | os.PathLike, layer: str = "layer", prefix: str = "") -> ImportedLayer:
    """Read a GeoJSON FeatureCollection as one layer.

    Point features are nodes (id from the ``id`` property or the feature id; ``kind`` and
    ``demand`` properties are used, ``demand`` a finite number ≥ 0 as in ``nodes.csv``; other
    properties are kept).  LineString and
    MultiLineString features are edges: between the ``source`` and ``target`` properties when
    both are given, else between the Points at their first and last coordinate (an end with no
    Point there becomes a new node ``<prefix>n<k>``).  When the features carry a ``layer``
    property and some equal ``layer`` (a file that :func:`to_geojson` wrote), only those are read.

    Raises
    ------
    InputError
        When the file is not JSON, not a FeatureCollection, or a feature is malformed.
    """
    path = require_file(src)
    data = read_json(path)
    where = str(path)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise InputError("not a GeoJSON FeatureCollection", where)
    features = data["features"]
    layers = {(f.get("properties") or {}).get("layer") for f in features if isinstance(f, dict)}
    if layer in layers:
        features = [f for f in features if (f.get("properties") or {}).get("layer") == layer]
    node_rows, line_feats = [], []
    for k, feat in enumerate(features):
        if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
            raise InputError(f"feature {k} has no geometry", where)
        geom, props = feat["geometry"], dict(feat.get("properties") or {})
        gtype = geom.get("type")
        try:
            if gtype == "Point":
                x, y = (float(v) for v in geom["coordinates"][:2])
                ident = props.get("id", feat.get("id", f"p{k}"))
                demand = props.get("demand", 0.0)
                demand = float(demand) if demand not in (None, "") else 0.0
                row = {c: v for c, v in props.items() if c not in RESERVED and not isinstance(v, (list, dict))}
                row.update({"id": f"{prefix}{ident}", "layer": layer, "kind": str(props.get("kind") or ""),
                            "demand": demand, "x": x, "y": y})
                node_rows.append(row)
            elif gtype in ("LineString", "MultiLineString"):
                coords = [(float(p[0]), float(p[1])) for p in _flat_lines(geom)]
                if len(coords) < 2:
                    raise ValueError("fewer than two positions")
                line_feats.append((k, feat, props, coords))
            else:
                raise ValueError(f"geometry type {gtype!r} (use Point or LineString)")
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InputError(f"feature {k}: {exc}", where) from None
    at = {}
    for row in node_rows:
        at.setdefault((round(row["x"], 9), round(row["y"], 9)), row["id"])
    edge_rows, extra = [], 0
    for k, feat, props, coords in line_feats:
        if props.get("source") not in (None, "") and props.get("target") not in (None, ""):
            ends = [f"{prefix}{props['source']}", f"{prefix}{props['target']}"]
        else:
            ends = []
            for x, y in (coords[0], coords[-1]):
                key = (round(x, 9), round(y, 9))
                if key not in at:
                    at[key] = f"{prefix}n{extra}"
                    extra += 1
                    node_rows.append({"id": at[key], "layer": layer, "kind": "", "demand": 0.0, "x": x, "y": y})
                ends.append(at[key])
        row = {c: v for c, v in props.items() if c not in RESERVED and not isinstance(v, (list, dict))}
        ident = props.get("id", feat.get("id", f"e{k}"))
        directed = str(props.get("directed", "false")).strip().lower() in ("true", "1", "yes")
        length = props.get("length")
        row.update({"id": f"{prefix}{ident}", "source": ends[0], "target": ends[1], "directed": directed,
                    "kind": str(props.get("kind") or ""),
                    "length": float(length) if length not in (None, "") else np.nan})
        edge_rows.append(row)
    nodes = pd.DataFrame(node_rows) if node_rows else pd.DataFrame(
        columns=["id", "layer", "kind", "demand", "x", "y"])
    edges = pd.DataFrame(edge_rows) if edge_rows else pd.DataFrame(
        columns=["id", "source", "target", "directed", "kind", "length"])
    for what, table in (("node", nodes), ("edge", edges)):
        dup = table["id"].duplicated()
        if dup.any():
            raise InputError(f"two {what} features have the id '{table.loc[dup, 'id'].iloc[0]}'", where)
    nodes["demand"], _ = checked_demand(nodes["demand"].to_numpy(float), nodes["id"].to_numpy(), where)
    return ImportedLayer(nodes, edges, _crs_member(data), where)


# ---------------------------------------------------------------------- results
@dataclass
class ResultProperties:
    """A result file as properties of nodes and edges.

    Attributes
    ----------
    kind : str
        ``simulate``, ``ranking`` (a criticality ranking; ``rank`` 1 is the most critical),
        ``probability`` (scenario failure probabilities) or ``table``.
    nodes, edges : pandas.DataFrame
        Indexed by id; one column per property.
    source : str
    """

    kind: str
    nodes: pd.DataFrame
    edges: pd.DataFrame
    source: str = ""
    meta: dict = field(default_factory=dict)


def _records_table(records: list, where: str) -> pd.DataFrame:
    table = pd.DataFrame.from_records(records)
    if "id" not in table.columns:
        raise InputError("result table has no 'id' column", where)
    table["id"] = table["id"].astype(str)
    return table


def _split(table: pd.DataFrame, system: InfrastructureSystem, kind: str, where: str) -> ResultProperties:
    node_ids, edge_ids = set(system.nodes["id"]), set(system.edges["id"])
    known = node_ids | edge_ids | set(system.nodes["layer"])
    table = table.assign(**{c: restore_ids(table[c], known) for c in table.columns  # --csv-safe files
                            if c == "id" or table[c].dtype == object})
    if kind == "ranking" and "rank" not in table.columns:
        table = table.assign(rank=np.arange(1, len(table) + 1))
    unknown = table.loc[~table["id"].isin(node_ids | edge_ids), "id"]
    if len(unknown) == len(table) and len(table):
        raise InputError(f"none of its ids is in the system (first: '{unknown.iloc[0]}'); "
                         "is it a result of another system?", where)
    element = table["element"].astype(str) if "element" in table.columns else None
    is_edge = table["id"].isin(edge_ids) & ~table["id"].isin(node_ids)
    if element is not None:
        is_edge = (element == "edge") | (is_edge & (element != "node"))
    props = table.drop(columns=[c for c in ("layer", "element") if c in table.columns])
    props = props.rename(columns={c: f"result_{c}" for c in props.columns
                                  if c != "id" and (c in system.nodes.columns or c in system.edges.columns)})
    nodes = props[~is_edge & props["id"].isin(node_ids)].drop_duplicates("id").set_index("id")
    edges = props[is_edge & props["id"].isin(edge_ids)].drop_duplicates("id").set_index("id")
    return ResultProperties(kind, nodes, edges, where)


def _simulate(data: dict, system: InfrastructureSystem, where: str) -> ResultProperties:
    failed = _records_table(data["failed"], where) if data["failed"] else \
        pd.DataFrame(columns=["id", "layer", "round", "cause", "via", "group"])
    ids = system.nodes["id"].astype(str)
    unknown = set(failed["id"]) - set(ids)
    init = data.get("initial_failures") or {}
    unknown |= set(map(str, init.get("nodes", []))) - set(ids)
    unknown |= set(map(str, init.get("edges", []))) - set(system.edges["id"])
    if unknown:
        raise InputError(f"id '{sorted(unknown)[0]}' of the result is not in the system; "
                         "is it a result of another system?", where)
    f = failed.set_index("id")
    nodes = pd.DataFrame({"working": ~ids.isin(set(failed["id"])).to_numpy()}, index=pd.Index(ids, name="id"))
    nodes["fail_round"] = f["round"].reindex(ids).to_numpy()
    nodes["cause"] = f["cause"].reindex(ids).to_numpy()
    nodes["via"] = f["via"].reindex(ids).to_numpy() if "via" in f else None
    nodes["initial"] = ids.isin(set(map(str, init.get("nodes", [])))).to_numpy()
    working = dict(zip(nodes.index, nodes["working"]))
    e = system.edges
    edge_initial = e["id"].isin(set(map(str, init.get("edges", []))))
    usable = ~edge_initial & e["source"].map(working) & e["target"].map(working)
    tripped = set(map(str, (t.get("id") for t in data.get("tripped") or [] if isinstance(t, dict))))
    if tripped - set(e["id"]):
        raise InputError(f"id '{sorted(tripped - set(e['id']))[0]}' of the result is not in the system; "
                         "is it a result of another system?", where)
    usable &= ~e["id"].isin(tripped)
    edges = pd.DataFrame({"initial": edge_initial.to_numpy(), "usable": usable.to_numpy(bool)},
                         index=pd.Index(e["id"], name="id"))
    if "tripped" in data or "flows" in data:
        # Flow layers (docs/format.md (v2)): branches tripped on overload are not usable; the
        # final flow of each usable dcflow branch (NaN elsewhere), in its layer's unit.
        edges["tripped"] = e["id"].isin(tripped).to_numpy()
        flows = _numbers(data, "flows", where)
        edges["flow"] = [flows.get(i, np.nan) for i in e["id"]]
    if data.get("routing") is not None or data.get("bottlenecks") is not None:
        # flow layers: one routing of the served amounts (not unique; NaN off usable pipes) and
        # the bottleneck pipes, at capacity in every routing (cascade.routing)
        routing = _numbers(data, "routing", where)
        necks = data.get("bottlenecks") or []
        if not isinstance(necks, list) or not all(isinstance(i, str) for i in necks):
            raise InputError("'bottlenecks' of the result is not a list of edge ids", where)
        necks = set(necks)
        if (set(routing) | necks) - set(e["id"]):
            raise InputError(f"id '{sorted((set(routing) | necks) - set(e['id']))[0]}' of the result is not "
                             "in the system; is it a result of another system?", where)
        edges["routing"] = [routing.get(i, np.nan) for i in e["id"]]
        edges["bottleneck"] = e["id"].isin(necks).to_numpy()
    if data.get("served") is not None:
        # served fraction of the working nodes with demand of flow layers (NaN elsewhere)
        served = _numbers(data, "served", where)
        nodes["served"] = [served.get(i, np.nan) for i in nodes.index]
    return ResultProperties("simulate", nodes, edges, where,
                            {"rounds": data.get("rounds"), "failed": len(failed)})


def _numbers(data: dict, key: str, where: str) -> dict:
    """``data[key]`` of a simulate result: an object of id -> number (null = none), checked."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"'{key}' of the result is not an object of id -> number", where)
    out = {}
    for ident, x in value.items():
        if x is None:
            continue
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise InputError(f"'{key}' of the result: '{ident}' is not a number: {x!r}", where)
        out[str(ident)] = float(x)
    return out


def simulate_properties(data: dict, system: InfrastructureSystem, where: str = "") -> ResultProperties:
    """The properties of a ``cascade simulate --format json`` result held in memory
    (:meth:`cascade.simulation.CascadeResult.to_dict`), as :func:`read_result` reads its file."""
    return _simulate(data, system, where)


def read_result(path: str | os.PathLike, system: InfrastructureSystem) -> ResultProperties:
    """Read a result file of the command line as properties of the system's nodes and edges.

    Parameters
    ----------
    path : path
        ``cascade simulate --format json`` output; a ``cascade critical`` ranking (CSV or JSON);
        ``cascade scenario`` output (JSON, or its CSV of failure probabilities); or any CSV or
        JSON table (a list of records, or an object holding one) with an ``id`` column.
    system : InfrastructureSystem
        The system the result belongs to; ids are checked against it.

    Returns
    -------
    ResultProperties

    Raises
    ------
    InputError
        When the file is unreadable, has no ``id`` column, or names none of the system's ids.
    """
    path = require_file(path)
    where = str(path)
    text_head = path.read_bytes()[:1].decode("utf-8", "ignore")
    data = None
    if path.suffix.lower() == ".json" or text_head in ("{", "["):
        data = read_json(path)
        if isinstance(data, dict) and "failed" in data and "initial_failures" in data:
            return _simulate(data, system, where)
        records = None
        if isinstance(data, list):
            records = data
        elif isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, list) and value and all(isinstance(r, dict) and "id" in r for r in value):
                    records = value
                    break
            if records is None and any(isinstance(v, list) for v in data.values()):
                records = []  # an empty ranking or an ensemble in which nothing failed
        if records is None or not all(isinstance(r, dict) for r in records):
            raise InputError("not a result this command knows (simulate JSON, or a table with an "
                             "'id' column)", where)
        table = _records_table(records, where) if records else pd.DataFrame(columns=["id"])
    else:
        try:
            # ids as written: 'NA', 'null' or 'nan' are ids, not missing values
            table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            for col in table.columns.drop("id", errors="ignore"):
                values = pd.to_numeric(table[col].where(table[col] != ""), errors="coerce")
                if not (values.isna() & (table[col] != "")).any():
                    table[col] = values
            header, header_line, _ = record_lines(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"malformed CSV: {' '.join(str(exc).split())}", where) from None
        check_header(header, header_line, where)
        if "id" not in table.columns:
            raise InputError("result table has no 'id' column", where)
    columns = set(table.columns)
    if "p_fail" in columns:
        kind = "probability"
    elif "demand_lost" in columns or "nodes_lost" in columns:
        kind = "ranking"
    else:
        kind = "table"
    out = _split(table, system, kind, where)
    if kind == "probability" and isinstance(data, dict) and isinstance(data.get("nodes_failing"), int):
        out.meta["failing"] = data["nodes_failing"]   # a scenario JSON lists only its top
    return out


# ---------------------------------------------------------------------- export
def _value(v):
    if v is None:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) or math.isinf(v) else float(v)
    return v if isinstance(v, (int, str)) else str(v)


def _records(table: pd.DataFrame) -> list[dict]:
    columns = list(table.columns)
    return [{c: _value(v) for c, v in zip(columns, row)} for row in table.itertuples(index=False, name=None)]


def to_geojson(system: InfrastructureSystem, result: ResultProperties | None = None) -> dict:
    """A GeoJSON FeatureCollection of a system: nodes as Points, edges as LineStrings.

    Every column of ``nodes.csv`` / ``edges.csv`` is a property, and so is every column of the
    result.  Nodes without coordinates, and edges with an end without coordinates, have a
    ``null`` geometry (GeoJSON allows it; QGIS lists them in the attribute table).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "name": ..., "crs": ..., "features": [...]}``.
    """
    nodes = system.nodes.copy()
    edges = system.edges.copy()
    if result is not None:
        for table, props in ((nodes, result.nodes), (edges, result.edges)):
            for col in props.columns:
                table[col] = props[col].reindex(table["id"]).to_numpy()
    nodes.insert(1, "feature", "node")
    edges.insert(1, "feature", "edge")
    if "layer" not in edges.columns:  # so that QGIS can filter edges by lifeline too
        edges.insert(2, "layer", edges["source"].map(dict(zip(system.nodes["id"], system.nodes["layer"]))))
    pos = system.nodes.set_index("id")[["x", "y"]]
    features = []
    for row, (x, y) in zip(_records(nodes), nodes[["x", "y"]].to_numpy(float)):
        geometry = {"type": "Point", "coordinates": [float(x), float(y)]} \
            if np.isfinite(x) and np.isfinite(y) else None
        features.append({"type": "Feature", "id": row["id"], "geometry": geometry, "properties": row})
    a = pos.reindex(edges["source"]).to_numpy(float)
    b = pos.reindex(edges["target"]).to_numpy(float)
    for row, pa, pb in zip(_records(edges), a, b):
        ok = np.isfinite(pa).all() and np.isfinite(pb).all()
        geometry = {"type": "LineString", "coordinates": [[float(pa[0]), float(pa[1])],
                                                         [float(pb[0]), float(pb[1])]]} if ok else None
        features.append({"type": "Feature", "id": row["id"], "geometry": geometry, "properties": row})
    out = {"type": "FeatureCollection", "name": system.name}
    if system.crs:
        crs = crs_or_error(system.crs, "system.toml")
        epsg = crs.to_epsg()
        out["crs"] = {"type": "name", "properties": {
            "name": f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else system.crs}}
    out["features"] = features
    return out
