"""Import a pandapipes network (its ``to_json`` file) as one layer, usually gas.

Mapping (Lohmeier et al. 2020, "Pandapipes: An Open-Source Piping Grid Calculation Package for
Multi-Energy Grid Simulations", Sustainability 12(23)):

- every junction is a node (``kind = junction``; ``name``, ``elevation`` from ``height_m``);
- the junction of an in-service external grid (``ext_grid``) gets ``kind = source``;
- in-service sinks become demand: ``mdot_kg_per_s * scaling`` summed per junction, in kg/s
  (a negative sum counts as 0 and the import says so; NaN or infinite is an error);
- in-service pipes (undirected), open valves (undirected), pressure regulators
  (``press_control``), flow controllers, compressors and pumps (directed, from_junction to
  to_junction, the way they push gas) become edges with that ``kind``;
- coordinates: the ``junction_geodata`` table (its CRS is not stored: give --crs), or a GeoJSON
  ``geo`` column of the junction table (WGS 84 when the values are degrees).

As a ``flow`` layer (the default; the v2 format of docs/format.md, unit kg/s, pandapipes' own mass flows), amounts come
from the model where it has them and from stated assumptions where it does not:

- ``capacity`` of a pipe or a valve: a velocity limit (``GAS_VELOCITY`` 20 m/s for a gas,
  ``LIQUID_VELOCITY`` 2 m/s for a liquid: common design limits) times its inner cross-section
  times the fluid's density at the junctions' nominal pressure ``pn_bar`` and temperature
  ``tfluid_k`` (a gas as an ideal gas: its density at normal pressure from the pandapipes fluid,
  times ``(pn_bar + 1.01325) / 1.01325``); a flow controller: its ``controlled_mdot_kg_per_s``;
  regulators, compressors and pumps: empty (unlimited);
- ``supply``: a ``source`` element its ``mdot_kg_per_s * scaling``; an external grid (a pressure
  boundary, no flow limit in the model) the layer's whole demand.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import InputError
from .imports import ImportedLayer, checked_demand, edge_table, require_file
from .pandapower import _in_service, _point, _table
from .ppjson import SafeNet, read_net, require_columns

# component table -> (edge kind, directed)
GAS_VELOCITY = 20.0      # m/s, the velocity limit of gas pipes
LIQUID_VELOCITY = 2.0    # m/s, the velocity limit of water (district heating, water) pipes
P_NORMAL = 1.01325       # bar, the normal pressure of the fluids' densities
COMPONENTS = {"pipe": ("pipe", False), "press_control": ("regulator", True),
              "flow_control": ("flow_control", True), "compressor": ("compressor", True),
              "pump": ("pump", True)}


def _load(src) -> SafeNet:
    """The network's tables, read as data by :mod:`cascade.io.ppjson` (never by
    ``pandapipes.from_json``, which runs code named in the file)."""
    path = require_file(src)
    net = read_net(path, "pandapipes")
    if not isinstance(net.get("junction"), pd.DataFrame):
        raise InputError("pandapipes network without a junction table", str(path))
    require_columns(net, "ext_grid", {"junction"}, str(path))
    require_columns(net, "sink", {"junction", "mdot_kg_per_s"}, str(path))
    return net


def junction_coordinates(net) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Coordinates of every junction (in the order of ``net.junction``) and their CRS when known."""
    junction = net.junction
    n = len(junction)
    geodata = _table(net, "junction_geodata")
    if len(geodata) and {"x", "y"} <= set(geodata.columns):
        geodata = geodata.reindex(junction.index)
        return geodata["x"].to_numpy(float), geodata["y"].to_numpy(float), None
    if "geo" in junction.columns and junction["geo"].notna().any():
        xy = np.array([_point(v) for v in junction["geo"]], float).reshape(n, 2)
        ok = np.isfinite(xy).all(axis=1)
        degrees = ok.any() and (np.abs(xy[ok, 0]) <= 180).all() and (np.abs(xy[ok, 1]) <= 90).all()
        return xy[:, 0], xy[:, 1], "EPSG:4326" if degrees else None
    return np.full(n, np.nan), np.full(n, np.nan), None


def _names(table: pd.DataFrame):
    if "name" not in table:
        return ""
    return table["name"].astype(object).where(table["name"].notna(), "").to_numpy()


def _diameter(table: pd.DataFrame) -> np.ndarray:
    """Inner diameters in metres (``inner_diameter_mm`` of pandapipes 0.9+, ``diameter_m`` before)."""
    if "inner_diameter_mm" in table:
        return table["inner_diameter_mm"].to_numpy(float) / 1000.0
    if "diameter_m" in table:
        return table["diameter_m"].to_numpy(float)
    return np.full(len(table), np.nan)


class _Capacity:
    """Mass-flow capacity (kg/s) of pipes and valves from a velocity limit."""

    def __init__(self, net):
        self.fluid = net["fluid"] if "fluid" in net else None
        self.gas = bool(getattr(self.fluid, "is_gas", True))
        self.velocity = GAS_VELOCITY if self.gas else LIQUID_VELOCITY
        junction = net.junction
        self.pn = junction["pn_bar"].astype(float) if "pn_bar" in junction else pd.Series(0.0, junction.index)
        self.t = junction["tfluid_k"].astype(float) if "tfluid_k" in junction else pd.Series(293.15, junction.index)

    def density(self, a: pd.Series, b: pd.Series) -> np.ndarray:
        pn = (self.pn.reindex(a.astype(int)).to_numpy() + self.pn.reindex(b.astype(int)).to_numpy()) / 2
        t = (self.t.reindex(a.astype(int)).to_numpy() + self.t.reindex(b.astype(int)).to_numpy()) / 2
        if self.fluid is None:
            return np.full(len(a), np.nan)
        try:
            rho = np.asarray(self.fluid.get_density(t), float) * np.ones(len(a))
        except Exception:  # a fluid without a density property
            return np.full(len(a), np.nan)
        return rho * (np.nan_to_num(pn) + P_NORMAL) / P_NORMAL if self.gas else rho

    def __call__(self, table: pd.DataFrame, a: pd.Series, b: pd.Series) -> np.ndarray:
        return self.velocity * np.pi * _diameter(table) ** 2 / 4 * self.density(a, b)


def to_layer(net, layer: str = "gas", prefix: str = "gas-", source: str = "pandapipes",
             rule: str = "flow") -> ImportedLayer:
    """Turn a pandapipes network into an :class:`ImportedLayer` (mapping in the module docstring).

    Parameters
    ----------
    net : pandapipes.pandapipesNet
    layer : str
    prefix : str
        Starts every id: junctions are ``<prefix>junction-<index>``, edges
        ``<prefix><component>-<index>`` (``pipe``, ``valve``, ``press_control``, ...).
    source : str
        Name of the origin, for messages.
    rule : {"flow", "source"}
        ``flow`` (default): a the v2 format of docs/format.md layer in kg/s with ``supply`` and ``capacity`` (module
        docstring); ``source``: the v1 connectivity layer.
    """
    if rule not in ("flow", "source"):
        raise InputError(f"a pandapipes network imports as rule flow or source, not '{rule}'", source)
    capacity_of = _Capacity(net)
    junction = net.junction
    jid = pd.Series([f"{prefix}junction-{i}" for i in junction.index], index=junction.index)
    x, y, crs = junction_coordinates(net)
    grids = _in_service(_table(net, "ext_grid"))
    sources = set(grids["junction"].astype(int)) if len(grids) else set()
    sinks = _in_service(_table(net, "sink"))
    demand = pd.Series(0.0, index=junction.index)
    if len(sinks):
        m = sinks["mdot_kg_per_s"].astype(float) * (sinks["scaling"].astype(float) if "scaling" in sinks else 1.0)
        checked_demand(m.clip(lower=0).to_numpy(), [f"sink {i}" for i in sinks.index], source)  # NaN, inf
        with np.errstate(over="ignore", invalid="ignore"):
            demand = demand.add(m.groupby(sinks["junction"].astype(int)).sum(), fill_value=0.0).reindex(junction.index)
    values, note = checked_demand(demand.to_numpy(float), jid.to_numpy(), source, negative="zero",
                                  meaning=" (sinks that feed in)")
    nodes = pd.DataFrame({
        "id": jid.to_numpy(), "layer": layer,
        "kind": ["source" if i in sources else "junction" for i in junction.index],
        "demand": values, "x": x, "y": y,
        "element": "junction", "name": _names(junction),
        "elevation": junction["height_m"].to_numpy(float) if "height_m" in junction else np.nan,
    })
    rows = []
    for table_name, (kind, directed) in COMPONENTS.items():
        table = _in_service(_table(net, table_name))
        if len(table) == 0 or not {"from_junction", "to_junction"} <= set(table.columns):
            continue
        rows.append(pd.DataFrame({
            "id": [f"{prefix}{table_name}-{i}" for i in table.index],
            "source": jid.reindex(table["from_junction"].astype(int)).to_numpy(),
            "target": jid.reindex(table["to_junction"].astype(int)).to_numpy(),
            "directed": directed, "kind": kind,
            "length": table["length_km"].to_numpy(float) * 1000.0 if "length_km" in table else np.nan,
            "name": _names(table),
            "capacity": capacity_of(table, table["from_junction"], table["to_junction"]) if kind == "pipe"
            else table["controlled_mdot_kg_per_s"].to_numpy(float) if kind == "flow_control"
            and "controlled_mdot_kg_per_s" in table else np.nan}))
    valves = _in_service(_table(net, "valve"))
    if len(valves):
        if "opened" in valves:
            valves = valves[valves["opened"].fillna(True).astype(bool)]
        if {"from_junction", "to_junction"} <= set(valves.columns):  # pandapipes < 0.12
            a, b = valves["from_junction"], valves["to_junction"]
        else:  # junction-element valves; "ju" joins two junctions
            if "et" in valves:
                valves = valves[valves["et"].astype(str) == "ju"]
            a, b = valves["junction"], valves["element"]
        rows.append(pd.DataFrame({
            "id": [f"{prefix}valve-{i}" for i in valves.index],
            "source": jid.reindex(a.astype(int)).to_numpy(),
            "target": jid.reindex(b.astype(int)).to_numpy(),
            "directed": False, "kind": "valve", "length": 0.0, "name": _names(valves),
            "capacity": capacity_of(valves, a, b)}))
    edges = edge_table(rows, "junction", source)
    if rule == "source":
        return ImportedLayer(nodes, edges.drop(columns="capacity", errors="ignore"), crs, source,
                             notes=[note] if note else [])
    layer = _flow_layer(net, nodes, edges, jid, capacity_of, crs, source)
    return layer.replace(notes=([note] if note else []) + layer.notes)


def _flow_layer(net, nodes, edges, jid, capacity_of, crs, source) -> ImportedLayer:
    """Add ``supply`` to the v1 tables and say what was assumed."""
    total = float(nodes["demand"].sum())
    supply = pd.Series(0.0, index=jid.index)
    feeds = _in_service(_table(net, "source"))
    if len(feeds):
        m = feeds["mdot_kg_per_s"].astype(float) * (feeds["scaling"].astype(float) if "scaling" in feeds else 1.0)
        supply = supply.add(m.clip(lower=0).groupby(feeds["junction"].astype(int)).sum(), fill_value=0.0)
    grids = _in_service(_table(net, "ext_grid"))
    if len(grids):
        supply = supply.add(pd.Series(total, index=sorted(set(grids["junction"].astype(int)))), fill_value=0.0)
    supply = supply.reindex(jid.index).to_numpy(float)
    nodes = nodes.copy()
    nodes.insert(4, "supply", supply)
    nodes.loc[supply > 0, "kind"] = "source"
    fluid = "gas" if capacity_of.gas else "liquid"
    notes = [f"pipes and valves: capacity = {capacity_of.velocity:g} m/s ({fluid}) x inner cross-section x "
             "density at the junctions' pn_bar and tfluid_k, in kg/s"]
    if len(grids):
        notes.append(f"{len(set(grids['junction']))} external grid junction(s): supply = the layer's whole "
                     f"demand, {total:,.6g} kg/s")
    unlimited = int(edges["capacity"].isna().sum()) if len(edges) else 0
    if unlimited:
        notes.append(f"{unlimited} edge(s) without a diameter or flow setting (regulators, compressors, "
                     "pumps, ...): capacity left empty (unlimited)")
    return ImportedLayer(nodes, edges, crs, source, rule="flow", unit="kg/s", notes=notes)


def read_pandapipes(src: str | os.PathLike, layer: str = "gas", prefix: str = "gas-",
                    rule: str = "flow") -> ImportedLayer:
    """Read a pandapipes JSON file (``pandapipes.to_json``) as one layer (``rule`` as in :func:`to_layer`).

    Raises
    ------
    InputError
        When the file is missing, is not JSON, or is not a pandapipes network.
    """
    return to_layer(_load(src), layer, prefix, str(src), rule)
