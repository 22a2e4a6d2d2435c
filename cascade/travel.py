"""Crews on roads: crew bases (depots), where each failed element is reached, travel times.

A crew travels from its base, or from its last job, to its next element over the edges of the
transport layer that are not damaged (a failed road edge, or one whose end is a failed
intersection, blocks travel until it is repaired; a failed intersection can be driven to, not
through).  An edge's travel time is its ``travel_time`` (hours) where given, else ``length``
(metres) / speed (km/h).  An element is reached at its node, an edge at either end; an
element outside the transport layer is reached at the transport node nearest (by ``x``, ``y``)
to its node (for an edge, to either end).  Whether an intersection works under the ``giant``
rule does not matter for driving: only damage blocks.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .compiled import CompiledSystem
from .errors import InputError, reading
from .system import InfrastructureSystem

#: The layer crews drive on.
ROAD_LAYER = "transport"
#: Default crew speed (km/h) where an edge has no ``travel_time``.
DEFAULT_SPEED = 30.0


def read_depots(path, compiled: CompiledSystem) -> np.ndarray:
    """Read a depots CSV: column ``node`` (a transport node id), optional ``count`` (crews
    based there, default 1).  Returns the bases expanded to one entry per crew slot (node
    indices, in file order).  Bad input raises :class:`InputError` naming file and line."""
    file = str(path)
    if ROAD_LAYER not in compiled.layer_names:
        raise InputError(f"--depots needs a layer named '{ROAD_LAYER}' to drive on", file)
    road = compiled.layer_names.index(ROAD_LAYER)
    pos = compiled._node_map
    out: list[int] = []
    with reading(path, "depots file"), open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or "node" not in [h.strip() for h in rows[0]]:
        raise InputError("missing column 'node' (a depot is a transport node id)", file, 1)
    head = [h.strip() for h in rows[0]]
    i_node = head.index("node")
    i_count = head.index("count") if "count" in head else -1
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        name = row[i_node].strip() if i_node < len(row) else ""
        if name not in pos:
            raise InputError(f"unknown node '{name}'", file, line)
        v = pos[name]
        if compiled.node_layer[v] != road:
            raise InputError(f"depot '{name}' is in layer '{compiled.layer_names[compiled.node_layer[v]]}', "
                             f"not in '{ROAD_LAYER}'", file, line)
        count = 1
        if i_count >= 0 and i_count < len(row) and row[i_count].strip():
            try:
                count = int(row[i_count].strip())
            except ValueError:
                raise InputError(f"count '{row[i_count].strip()}' is not a whole number", file, line) from None
            if count < 1:
                raise InputError(f"count must be at least 1, not {count}", file, line)
        out += [v] * count
    if not out:
        raise InputError("no depot listed", file)
    return np.array(out, np.int64)


class Roads:
    """Travel of the crews of one recovery.

    Parameters
    ----------
    system, compiled
    elem, is_node : ndarray, shape (k,)
        The failed elements (node or edge index) and which are nodes.
    bases : ndarray of int64
        Depot node of each crew slot (:func:`read_depots`); crew i starts at
        ``bases[i % len(bases)]``.
    n_crews : int
    speed : float
        km/h, for edges without ``travel_time``.
    """

    def __init__(self, system: InfrastructureSystem, compiled: CompiledSystem, elem: np.ndarray,
                 is_node: np.ndarray, bases: np.ndarray, n_crews: int, speed: float = DEFAULT_SPEED):
        c = self.compiled = compiled
        if not (speed > 0 and math.isfinite(speed)):
            raise InputError(f"--speed must be a positive number of km/h, not {speed}")
        road = c.layer_names.index(ROAD_LAYER)
        self.n = c.n_nodes
        self.base = np.asarray(bases, np.int64)[np.arange(n_crews) % len(bases)]
        edges = system.edges
        in_road = c.node_layer[c.edge_src] == road
        self.edges = np.flatnonzero(in_road)
        tt = pd.to_numeric(edges["travel_time"], errors="coerce").to_numpy(float) \
            if "travel_time" in edges.columns else np.full(c.n_edges, np.nan)
        length = pd.to_numeric(edges["length"], errors="coerce").to_numpy(float) \
            if "length" in edges.columns else np.full(c.n_edges, np.nan)
        hours = np.where(np.isnan(tt), length / 1000.0 / speed, tt)[self.edges]
        bad = np.flatnonzero(np.isnan(hours))
        if bad.size:
            raise InputError(f"road edge '{c.edge_ids[self.edges[bad[0]]]}' has neither travel_time "
                             "nor length (needed by --depots)", "edges.csv")
        self.hours = hours
        # Arcs: both ways unless directed.
        src = c.edge_src[self.edges].astype(np.int64)
        dst = c.edge_dst[self.edges].astype(np.int64)
        both = c.edge_directed[self.edges] == 0
        self.arc_tail = np.concatenate([src, dst[both]])
        self.arc_head = np.concatenate([dst, src[both]])
        self.arc_edge = np.concatenate([np.arange(len(self.edges)), np.flatnonzero(both)])
        self.arc_hours = np.concatenate([hours, hours[both]])

        # Failed elements that block roads: (element position, road edge position or -1, node or -1).
        k = len(elem)
        edge_pos = np.full(c.n_edges, -1, np.int64)
        edge_pos[self.edges] = np.arange(len(self.edges))
        self.block_edge = np.where(~is_node, edge_pos[np.where(is_node, 0, elem)], -1)
        self.block_node = np.where(is_node & (c.node_layer[np.where(is_node, elem, 0)] == road), elem, -1)
        self.road_elem = (self.block_edge >= 0) | (self.block_node >= 0)

        # Access nodes of every failed element (up to two).
        road_nodes = np.flatnonzero(c.node_layer == road)
        nodes = system.nodes
        xy = None
        if {"x", "y"} <= set(nodes.columns):
            xy = np.column_stack([pd.to_numeric(nodes["x"], errors="coerce").to_numpy(float),
                                  pd.to_numeric(nodes["y"], errors="coerce").to_numpy(float)])

        def nearest(v: np.ndarray) -> np.ndarray:
            out = v.copy()
            off = c.node_layer[v] != road
            if not off.any():
                return out
            if xy is None:
                raise InputError("--depots: nodes.csv needs x and y to reach elements off the roads")
            from scipy.spatial import cKDTree
            pts = xy[road_nodes]
            ok = ~np.isnan(pts).any(axis=1)
            if not ok.any():
                raise InputError(f"--depots: no node of '{ROAD_LAYER}' has x and y", "nodes.csv")
            q = xy[v[off]]
            missing = np.flatnonzero(np.isnan(q).any(axis=1))
            if missing.size:
                raise InputError(f"--depots: node '{c.node_ids[v[off][missing[0]]]}' has no x, y to find "
                                 "its nearest road", "nodes.csv")
            out[off] = road_nodes[ok][cKDTree(pts[ok]).query(q)[1]]
            return out

        a = np.where(is_node, elem, c.edge_src[np.where(is_node, 0, elem)]).astype(np.int64)
        b = np.where(is_node, elem, c.edge_dst[np.where(is_node, 0, elem)]).astype(np.int64)
        self.access = np.column_stack([nearest(a), nearest(b)]) if k else np.zeros((0, 2), np.int64)
        self._graphs: dict = {}
        self._dist: dict = {}

    # ------------------------------------------------------------------ distances
    def key(self, status: np.ndarray) -> bytes:
        """What blocks the roads: the road elements not repaired yet (status < 2)."""
        return (status[self.road_elem] < 2).tobytes()

    def _graph(self, status: np.ndarray, key: bytes):
        g = self._graphs.get(key)
        if g is None:
            from scipy.sparse import csr_matrix
            open_edge = np.ones(len(self.edges), bool)
            blocked = self.road_elem & (status < 2)
            open_edge[self.block_edge[blocked & (self.block_edge >= 0)]] = False
            bad_node = np.zeros(self.n, bool)
            bad_node[self.block_node[blocked & (self.block_node >= 0)]] = True
            use = open_edge[self.arc_edge] & ~bad_node[self.arc_tail]
            # Zero-hour arcs stay arcs: store hours + a tiny epsilon removed after.
            g = csr_matrix((self.arc_hours[use] + 1e-12, (self.arc_tail[use], self.arc_head[use])),
                           shape=(self.n, self.n))
            if len(self._graphs) > 256:
                self._graphs.clear()
            self._graphs[key] = g
        return g

    def distances(self, status: np.ndarray, origin: int) -> np.ndarray:
        """Hours from node ``origin`` to every node with the roads of ``status``; inf where no
        open road leads."""
        key = self.key(status)
        d = self._dist.get((key, origin))
        if d is None:
            from scipy.sparse.csgraph import dijkstra
            d = dijkstra(self._graph(status, key), directed=True, indices=int(origin))
            if len(self._dist) > 20000:
                self._dist.clear()
            self._dist[(key, origin)] = d
        return d

    def travel(self, dist: np.ndarray, elems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Travel hours to each element (inf: unreachable) and the access node reached."""
        acc = self.access[elems]
        d = dist[acc]
        j = np.argmin(d, axis=1)
        hours = d[np.arange(len(elems)), j]
        return np.round(hours, 9), acc[np.arange(len(elems)), j]
