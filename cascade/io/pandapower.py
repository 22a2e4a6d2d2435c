"""Import a pandapower grid (its ``to_json`` file) as one power layer.

By default the layer is a ``dcflow`` layer (the v2 format of docs/format.md) built by :mod:`cascade.io.pandapower_dc`:
supplies, dispatch, reactances and ratings whose DC flows are pandapower's ``rundcpp`` flows.
With ``rule="source"`` (``cascade import --rule source``) it is the v1 connectivity layer below.

v1 mapping (pandapower 2.13+ and 3.x tables; Thurner et al. 2018, "pandapower — an open-source
Python tool for convenient modeling, analysis, and optimization of electric power systems",
IEEE Trans. Power Systems 33(6)):

- every bus is a node (``kind = bus``; ``element = bus``, ``name``, ``vn_kv`` kept);
- the bus of an in-service external grid (``ext_grid``) or generator (``gen``) gets
  ``kind = source``; static generators (``sgen``, rooftop PV and the like) do not, as they cannot
  hold a grid up on their own;
- in-service loads become demand: ``p_mw * scaling`` summed per bus, in MW (negative sums,
  loads used as generators, count as 0 and the import says so; a NaN or infinite load is an
  error naming it);
- in-service lines, two-winding transformers (hv-lv), three-winding transformers (hv-mv and
  hv-lv) and closed bus-bus switches become undirected edges (``kind`` line, trafo, trafo3w,
  switch); a line or transformer behind an open line/trafo switch carries nothing and is left
  out; open bus-bus switches are left out;
- coordinates: the GeoJSON ``geo`` column of pandapower 3 (WGS 84 by the GeoJSON rule when the
  values are degrees) or the ``bus_geodata`` table of pandapower 2 (CRS unknown: give --crs).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from ..errors import InputError
from .imports import ImportedLayer, checked_demand, edge_table, require_file
from .ppjson import SafeNet, read_net, require_columns

# the columns the mapping reads, per table (when the table has rows)
REQUIRED = {"ext_grid": {"bus"}, "gen": {"bus"}, "load": {"bus", "p_mw"},
            "line": {"from_bus", "to_bus"}, "trafo": {"hv_bus", "lv_bus"},
            "trafo3w": {"hv_bus", "mv_bus", "lv_bus"}, "switch": {"bus", "element", "et", "closed"}}


def _load(src) -> SafeNet:
    """The network's tables, read as data by :mod:`cascade.io.ppjson` (never by
    ``pandapower.from_json``, which runs code named in the file)."""
    path = require_file(src)
    net = read_net(path, "pandapower")
    if not isinstance(net.get("bus"), pd.DataFrame):
        raise InputError("pandapower network without a bus table", str(path))
    for table, columns in REQUIRED.items():
        require_columns(net, table, columns, str(path))
    return net


def _table(net, name: str) -> pd.DataFrame:
    table = net[name] if name in net else None
    return table if isinstance(table, pd.DataFrame) else pd.DataFrame()


def _in_service(table: pd.DataFrame) -> pd.DataFrame:
    if len(table) == 0 or "in_service" not in table.columns:
        return table
    return table[table["in_service"].fillna(True).astype(bool)]


def _point(value) -> tuple[float, float]:
    """A GeoJSON Point (string or dict) as (x, y); NaN when absent."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan, np.nan
    try:
        geo = json.loads(value) if isinstance(value, str) else value
        x, y = geo["coordinates"][:2]
        return float(x), float(y)
    except (ValueError, KeyError, TypeError, IndexError):
        return np.nan, np.nan


def bus_coordinates(net) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Coordinates of every bus (in the order of ``net.bus``) and their CRS when known."""
    n = len(net.bus)
    if "geo" in net.bus.columns and net.bus["geo"].notna().any():
        xy = np.array([_point(v) for v in net.bus["geo"]], float).reshape(n, 2)
        ok = np.isfinite(xy).all(axis=1)
        degrees = ok.any() and (np.abs(xy[ok, 0]) <= 180).all() and (np.abs(xy[ok, 1]) <= 90).all()
        return xy[:, 0], xy[:, 1], "EPSG:4326" if degrees else None
    geodata = _table(net, "bus_geodata")
    if len(geodata) and {"x", "y"} <= set(geodata.columns):
        geodata = geodata.reindex(net.bus.index)
        return geodata["x"].to_numpy(float), geodata["y"].to_numpy(float), None
    return np.full(n, np.nan), np.full(n, np.nan), None


def to_layer(net, layer: str = "power", prefix: str = "power-", source: str = "pandapower",
             rule: str = "dcflow") -> ImportedLayer:
    """Turn a pandapower network into an :class:`ImportedLayer` (mapping in the module docstring).

    Parameters
    ----------
    net : pandapower.pandapowerNet
        Not changed (the DC power flow runs on a copy).
    layer : str
        The layer's name.
    prefix : str
        Starts every id: buses are ``<prefix>bus-<index>``, edges ``<prefix>line-<index>`` and so on.
    source : str
        Name of the origin, for messages.
    rule : {"dcflow", "source"}
        ``dcflow`` (default): a v2 (docs/format.md) power layer with supply, dispatch, demand, reactance,
        shift and capacity, whose intact DC flows are pandapower's ``rundcpp`` flows.
        ``source``: the v1 connectivity layer of earlier versions (no flow columns).

    Returns
    -------
    ImportedLayer
    """
    if rule == "source":
        return _connectivity_layer(net, layer, prefix, source)
    if rule != "dcflow":
        raise InputError(f"a pandapower network imports as rule dcflow or source, not '{rule}'", source)
    from .pandapower_dc import dcflow_layer

    return dcflow_layer(net, layer, prefix, source)


def _connectivity_layer(net, layer: str, prefix: str, source: str) -> ImportedLayer:
    """The v1 layer (rule ``source``): buses, sources and edges without flow data.

    Parameters
    ----------
    net : pandapower.pandapowerNet
    layer : str
        The layer's name.
    prefix : str
        Starts every id: buses are ``<prefix>bus-<index>``, edges ``<prefix>line-<index>`` and so on.
    source : str
        Name of the origin, for messages.

    Returns
    -------
    ImportedLayer
    """
    bus = net.bus
    bus_id = pd.Series([f"{prefix}bus-{i}" for i in bus.index], index=bus.index)
    x, y, crs = bus_coordinates(net)
    sources = set()
    for name in ("ext_grid", "gen"):
        table = _in_service(_table(net, name))
        if len(table):
            sources |= set(table["bus"].astype(int))
    loads = _in_service(_table(net, "load"))
    demand = pd.Series(0.0, index=bus.index)
    if len(loads):
        p = loads["p_mw"].astype(float) * (loads["scaling"].astype(float) if "scaling" in loads else 1.0)
        checked_demand(p.clip(lower=0).to_numpy(), [f"load {i}" for i in loads.index], source)  # NaN, inf
        with np.errstate(over="ignore", invalid="ignore"):
            demand = demand.add(p.groupby(loads["bus"].astype(int)).sum(), fill_value=0.0).reindex(bus.index)
    values, note = checked_demand(demand.to_numpy(float), bus_id.to_numpy(), source, negative="zero",
                                  meaning=" (loads used as generators)")
    nodes = pd.DataFrame({
        "id": bus_id.to_numpy(), "layer": layer,
        "kind": ["source" if i in sources else "bus" for i in bus.index],
        "demand": values, "x": x, "y": y,
        "element": "bus", "name": bus["name"].astype(object).where(bus["name"].notna(), "").to_numpy()
        if "name" in bus else "",
        "vn_kv": bus["vn_kv"].to_numpy(float) if "vn_kv" in bus else np.nan,
    })

    switches = _table(net, "switch")
    open_at = {"l": set(), "t": set()}
    bus_bus = pd.DataFrame()
    if len(switches):
        closed = switches["closed"].fillna(True).astype(bool)
        for et in ("l", "t"):
            open_at[et] = set(switches.loc[(switches["et"] == et) & ~closed, "element"].astype(int))
        bus_bus = switches[(switches["et"] == "b") & closed]

    rows = []

    def add(kind, table, a, b, index_filter=None, length=None):
        table = _in_service(table)
        if len(table) == 0:
            return
        if index_filter:
            table = table[~table.index.isin(index_filter)]
        ids = [f"{prefix}{kind}-{i}" for i in table.index]
        rows.append(pd.DataFrame({
            "id": ids,
            "source": bus_id.reindex(table[a].astype(int)).to_numpy(),
            "target": bus_id.reindex(table[b].astype(int)).to_numpy(),
            "directed": False, "kind": kind,
            "length": (table[length].astype(float) * 1000.0).to_numpy() if length else np.nan,
            "name": table["name"].astype(object).where(table["name"].notna(), "").to_numpy()
            if "name" in table else "",
        }))

    add("line", _table(net, "line"), "from_bus", "to_bus", open_at["l"], length="length_km")
    add("trafo", _table(net, "trafo"), "hv_bus", "lv_bus", open_at["t"])
    trafo3w = _in_service(_table(net, "trafo3w"))
    if len(trafo3w):
        for side in ("mv", "lv"):
            part = trafo3w.copy()
            part.index = [f"{i}-{side}" for i in trafo3w.index]
            rows.append(pd.DataFrame({
                "id": [f"{prefix}trafo3w-{i}" for i in part.index],
                "source": bus_id.reindex(part["hv_bus"].astype(int)).to_numpy(),
                "target": bus_id.reindex(part[f"{side}_bus"].astype(int)).to_numpy(),
                "directed": False, "kind": "trafo3w", "length": np.nan,
                "name": part["name"].astype(object).where(part["name"].notna(), "").to_numpy()
                if "name" in part else ""}))
    if len(bus_bus):
        rows.append(pd.DataFrame({
            "id": [f"{prefix}switch-{i}" for i in bus_bus.index],
            "source": bus_id.reindex(bus_bus["bus"].astype(int)).to_numpy(),
            "target": bus_id.reindex(bus_bus["element"].astype(int)).to_numpy(),
            "directed": False, "kind": "switch", "length": 0.0,
            "name": bus_bus["name"].astype(object).where(bus_bus["name"].notna(), "").to_numpy()
            if "name" in bus_bus else ""}))
    return ImportedLayer(nodes, edge_table(rows, "bus", source), crs, source, notes=[note] if note else [])


def read_pandapower(src: str | os.PathLike, layer: str = "power", prefix: str = "power-",
                    rule: str = "dcflow") -> ImportedLayer:
    """Read a pandapower JSON file (``pandapower.to_json``) as one layer (``rule`` as in :func:`to_layer`).

    Raises
    ------
    InputError
        When the file is missing, is not JSON, or is not a pandapower network.
    """
    return to_layer(_load(src), layer, prefix, str(src), rule)
