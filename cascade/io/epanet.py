"""Import an EPANET model (an INP file, read with WNTR) as one water layer.

WNTR (Klise et al. 2017, "A software framework for assessing the resilience of drinking water
systems to disasters with an example earthquake case study", Environmental Modelling & Software
95) reads the INP file into a ``WaterNetworkModel``; this module maps it to the system format:

- junctions, tanks and reservoirs are nodes (``kind`` junction, or ``source`` for tanks and
  reservoirs: they feed the network; ``element`` keeps which one it is, ``elevation`` is kept);
- base demand becomes demand: the sum of the base values of a junction's demand categories,
  in litres per second (WNTR's SI m³/s × 1000); a negative sum (inflow) counts as 0 and the
  import says so, a NaN or infinite one is an error naming the junction;
- pipes and valves are edges (``kind`` pipe, or the valve type such as PRV); a pipe with a
  check valve is directed from its start node to its end node, other pipes and valves are
  undirected; links are kept whatever their initial status, since controls open and close them;
- each pump is a node of its own (``kind = pump``, at the middle of its ends) with directed edges
  from its start node and to its end node (``<pump>:in`` and ``<pump>:out``), so that
  ``cascade couple`` can make the pump depend on a power bus.

EPANET files carry no CRS: give ``--crs`` (an EPSG code or a PROJ string) to place them.

As a ``flow`` layer (the default; the v2 format of docs/format.md, unit L/s), amounts come from the model where it has
them and from stated assumptions where it does not:

- ``capacity`` of a pipe or a valve: a velocity limit ``VELOCITY`` (2 m/s, a common design limit
  of distribution mains) times its cross-section ``pi d^2 / 4`` (EPANET has no pipe rating); a
  flow control valve (FCV): its setting (the flow it lets through); a pump's two edges: the
  largest flow of its head curve ``h = A - B q^C``, ``(A / B)^(1/C)`` (WNTR's coefficients),
  empty (unlimited) for a constant-power pump;
- ``supply`` of a reservoir or a tank: the layer's whole base demand (EPANET gives sources a
  head, not a flow limit: the pipes leaving them limit what they deliver);
- closed pipes and valves are kept, with their capacity, as in the v1 layer (controls open them).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import InputError
from .imports import ImportedLayer, checked_demand, require_file

VELOCITY = 2.0   # m/s: the velocity limit that turns a pipe's diameter into its capacity


def _load(src) -> "wntr.network.WaterNetworkModel":
    path = require_file(src)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except UnicodeDecodeError:
        try:  # EPANET itself writes latin-1 files
            text = path.read_text(encoding="latin-1")
        except UnicodeDecodeError:
            raise InputError("not a text file", str(path)) from None
    sections = {line.strip().split("]")[0].upper() + "]" for line in text.splitlines()
                if line.strip().startswith("[")}
    if "[JUNCTIONS]" not in sections and "[RESERVOIRS]" not in sections and "[TANKS]" not in sections:
        raise InputError("not an EPANET INP file (no [JUNCTIONS], [RESERVOIRS] or [TANKS] section)",
                         str(path))
    try:
        import wntr
    except ImportError:
        raise InputError("importing EPANET files needs the 'import' extra: "
                         "pip install 'cascade-lifelines[import]'") from None
    try:
        return wntr.network.WaterNetworkModel(str(path))
    except Exception as exc:  # wntr raises ValueError, ENSyntaxError, KeyError, ...
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"malformed EPANET INP file: {message}", str(path)) from None


def _pump_capacity(pump) -> float:
    """The largest flow (m3/s) of a head pump's curve h = A - B q^C; NaN when it has none."""
    try:
        a, b, c = (float(v) for v in pump.get_head_curve_coefficients())
    except Exception:  # a power pump, or a curve WNTR cannot fit
        return np.nan
    if not (a > 0 and b > 0 and c > 0):
        return np.nan
    return (a / b) ** (1.0 / c)


def to_layer(wn, layer: str = "water", prefix: str = "water-", source: str = "epanet",
             rule: str = "flow", velocity: float = VELOCITY) -> ImportedLayer:
    """Turn a WNTR ``WaterNetworkModel`` into an :class:`ImportedLayer` (mapping in the module docstring).

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
    layer : str
    prefix : str
        Starts every id: nodes keep their EPANET names after it (``<prefix><name>``), links
        are ``<prefix>pipe-<name>`` and ``<prefix>valve-<name>`` (EPANET lets a node and a link
        share a name); pumps become node ``<prefix>pump-<name>`` with edges
        ``<prefix>pump-<name>:in`` and ``...:out``.
    source : str
        Name of the origin, for messages.
    rule : {"flow", "source"}
        ``flow`` (default): a the v2 format of docs/format.md layer in L/s with ``supply`` and ``capacity`` (module
        docstring); ``source``: the v1 connectivity layer.
    velocity : float
        The velocity limit (m/s) that gives pipes and valves their capacity.
    """
    if rule not in ("flow", "source"):
        raise InputError(f"an EPANET model imports as rule flow or source, not '{rule}'", source)
    node_rows = []
    for name, node in wn.nodes():
        kind = node.node_type.lower()  # Junction, Tank, Reservoir
        demand = 0.0
        if kind == "junction":
            demand = sum(float(d.base_value) for d in node.demand_timeseries_list) * 1000.0
        x, y = node.coordinates if node.coordinates is not None else (np.nan, np.nan)
        node_rows.append({"id": f"{prefix}{name}", "layer": layer,
                          "kind": "junction" if kind == "junction" else "source",
                          "demand": demand, "x": float(x), "y": float(y),
                          "element": kind, "name": name,
                          "elevation": float(getattr(node, "elevation", np.nan)
                                             if kind != "reservoir" else node.base_head)})
    edge_rows = []
    pos = {f"{prefix}{r['name']}": (r["x"], r["y"]) for r in node_rows}
    for name, link in wn.links():
        a, b = f"{prefix}{link.start_node_name}", f"{prefix}{link.end_node_name}"
        ltype = link.link_type.lower()  # Pipe, Pump, Valve
        if ltype == "pump":
            pump = f"{prefix}pump-{name}"
            (xa, ya), (xb, yb) = pos[a], pos[b]
            node_rows.append({"id": pump, "layer": layer, "kind": "pump", "demand": 0.0,
                              "x": (xa + xb) / 2, "y": (ya + yb) / 2, "element": "pump", "name": name,
                              "elevation": np.nan})
            q_max = _pump_capacity(link) * 1000.0
            edge_rows.append({"id": f"{pump}:in", "source": a, "target": pump, "directed": True,
                              "kind": "pump", "length": np.nan, "name": name, "capacity": q_max})
            edge_rows.append({"id": f"{pump}:out", "source": pump, "target": b, "directed": True,
                              "kind": "pump", "length": np.nan, "name": name, "capacity": q_max})
        elif ltype == "pipe":
            edge_rows.append({"id": f"{prefix}pipe-{name}", "source": a, "target": b,
                              "directed": bool(link.check_valve), "kind": "pipe",
                              "length": float(link.length), "name": name,
                              "diameter": float(link.diameter),
                              "capacity": velocity * np.pi * float(link.diameter) ** 2 / 4 * 1000.0})
        else:
            kind = str(getattr(link, "valve_type", "valve")).lower() or "valve"
            capacity = velocity * np.pi * float(link.diameter) ** 2 / 4 * 1000.0
            if kind == "fcv" and np.isfinite(float(link.initial_setting or np.nan)):
                capacity = max(float(link.initial_setting), 0.0) * 1000.0
            edge_rows.append({"id": f"{prefix}valve-{name}", "source": a, "target": b, "directed": False,
                              "kind": kind, "length": np.nan, "name": name, "diameter": float(link.diameter),
                              "capacity": capacity})
    nodes = pd.DataFrame(node_rows, columns=["id", "layer", "kind", "demand", "x", "y", "element",
                                              "name", "elevation"])
    nodes["demand"], note = checked_demand(nodes["demand"].to_numpy(float), nodes["id"].to_numpy(), source,
                                           negative="zero", meaning=" (inflow into the network)")
    edges = pd.DataFrame(edge_rows, columns=["id", "source", "target", "directed", "kind", "length",
                                              "name", "diameter", "capacity"])
    if rule == "source":
        return ImportedLayer(nodes, edges.drop(columns="capacity"), None, source,
                             notes=[note] if note else [])
    total = float(nodes["demand"].sum())
    nodes.insert(4, "supply", np.where(nodes["kind"] == "source", total, 0.0))
    notes = [f"pipes and valves: capacity = {velocity:g} m/s x cross-section (from their diameter), in L/s",
             f"{int((nodes['kind'] == 'source').sum())} reservoir(s) and tank(s): supply = the layer's "
             f"whole base demand, {total:,.6g} L/s"]
    if note:
        notes.insert(0, note)
    unlimited = int(((edges["kind"] == "pump") & edges["capacity"].isna()).sum()) // 2
    if unlimited:
        notes.append(f"{unlimited} pump(s) without a head curve: capacity left empty (unlimited)")
    return ImportedLayer(nodes, edges, None, source, rule="flow", unit="L/s", notes=notes)


def read_epanet(src: str | os.PathLike, layer: str = "water", prefix: str = "water-",
                rule: str = "flow") -> ImportedLayer:
    """Read an EPANET INP file as one layer (``rule`` as in :func:`to_layer`).

    Raises
    ------
    InputError
        When the file is missing, is not an INP file, or WNTR cannot read it.
    """
    return to_layer(_load(src), layer, prefix, str(src), rule)
