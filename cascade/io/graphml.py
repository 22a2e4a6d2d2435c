"""Import a GraphML graph (for example a street network saved by OSMnx) as one layer.

Read with :func:`networkx.read_graphml` (Hagberg, Schult and Swart 2008, "Exploring network
structure, dynamics, and function using NetworkX"); OSMnx (Boeing 2017, "OSMnx: New methods for
acquiring, constructing, analyzing, and visualizing complex street networks", Computers,
Environment and Urban Systems 65) saves its graphs this way, with node attributes ``x``, ``y``
and the graph attribute ``crs``.

- every node is a node; attributes ``kind`` and ``demand`` are used when present (``kind``
  defaults to ``node``; ``demand`` must be a finite number ≥ 0, as in ``nodes.csv``), ``x`` and ``y`` are the coordinates, other simple attributes are kept;
- every edge is an edge (directed when the graph is), id ``<prefix><u>-<v>`` (``-<key>`` added in
  a multigraph) unless it has an ``id`` attribute; ``length`` is kept; bulky ``geometry`` is dropped;
- the graph attribute ``crs`` (or ``--crs``) names the CRS of ``x``, ``y``.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd

from ..errors import InputError
from .imports import ImportedLayer, checked_demand, require_file

RESERVED = {"id", "layer", "source", "target", "directed", "geometry"}


def _number(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return np.nan
    return out if np.isfinite(out) else np.nan


def _load(src):
    import networkx as nx

    path = require_file(src)
    try:
        return nx.read_graphml(str(path))
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(f"malformed GraphML (XML): {' '.join(str(exc).split())}", str(path), line) from None
    except (nx.NetworkXError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"malformed GraphML: {' '.join(str(exc).split()) or type(exc).__name__}",
                         str(path)) from None


def to_layer(graph, layer: str = "transport", prefix: str = "transport-",
             source: str = "graphml") -> ImportedLayer:
    """Turn a networkx graph into an :class:`ImportedLayer` (mapping in the module docstring)."""
    node_rows = []
    for node, attrs in graph.nodes(data=True):
        row = {k: v for k, v in attrs.items() if k not in RESERVED and not isinstance(v, (list, dict))}
        raw = row.pop("demand", None)
        try:
            demand = 0.0 if raw is None or str(raw).strip() == "" else float(raw)
        except (TypeError, ValueError):
            raise InputError(f"node '{node}': demand '{raw}' is not a number", source) from None
        row.update({"id": f"{prefix}{node}", "layer": layer, "kind": str(attrs.get("kind", "node")) or "node",
                    "demand": demand,
                    "x": _number(attrs.get("x")), "y": _number(attrs.get("y")), "name": str(node)})
        node_rows.append(row)
    edge_rows = []
    multi = graph.is_multigraph()
    edges = graph.edges(keys=True, data=True) if multi else ((u, v, None, d) for u, v, d in graph.edges(data=True))
    for u, v, key, attrs in edges:
        row = {k: val for k, val in attrs.items() if k not in RESERVED and not isinstance(val, (list, dict))}
        given = attrs.get("id")
        eid = f"{prefix}{given}" if given not in (None, "") else \
            f"{prefix}{u}-{v}" + (f"-{key}" if multi else "")
        row.update({"id": eid, "source": f"{prefix}{u}", "target": f"{prefix}{v}",
                    "directed": graph.is_directed(), "kind": str(attrs.get("kind", "edge")) or "edge",
                    "length": _number(attrs.get("length"))})
        edge_rows.append(row)
    nodes = pd.DataFrame(node_rows) if node_rows else pd.DataFrame(
        columns=["id", "layer", "kind", "demand", "x", "y", "name"])
    edges_df = pd.DataFrame(edge_rows) if edge_rows else pd.DataFrame(
        columns=["id", "source", "target", "directed", "kind", "length"])
    dup = edges_df["id"].duplicated()
    if dup.any():
        raise InputError(f"two edges have the id '{edges_df.loc[dup, 'id'].iloc[0]}'", source)
    nodes["demand"], _ = checked_demand(nodes["demand"].to_numpy(float), nodes["id"].to_numpy(), source)
    crs = graph.graph.get("crs")
    return ImportedLayer(nodes, edges_df, str(crs) if crs else None, source)


def read_graphml(src: str | os.PathLike, layer: str = "transport", prefix: str = "transport-") -> ImportedLayer:
    """Read a GraphML file as one layer.

    Raises
    ------
    InputError
        When the file is missing or is not GraphML.
    """
    return to_layer(_load(src), layer, prefix, str(src))
