"""Rainfall that drains through the grid: ponding per catchment, fed back through the cascade.

``[hazard] type = "rainfall"`` (registered in :mod:`cascade.hazards`).  A storm of depth
``P`` (mm) over ``duration`` (h) falls on catchments read from a GeoJSON file.  Each catchment
holds some of it (``storage``) and its drainage pump stations remove the rest at their
capacity, but only the pumps that still **work** after the cascade.  What neither holds nor
pumps away ponds::

    V_rain    = P / 1000 · A                                  m³
    V_pumped  = duration · Σ capacity of working pumps        m³ (capacity in m³/h)
    V_ponded  = max(0, V_rain − V_storage − V_pumped)         m³
    depth     = V_ponded / A_ponding                          m

``A`` is the area that drains into the catchment (its ``area_m2`` property, default the
polygon's area) and ``A_ponding`` where the water collects (``ponding_area_m2``, default the
polygon's area, at most ``A``): draw the polygon around the low-lying district whose assets
get wet and give the larger area that drains into it as ``area_m2``.
Every node inside the catchment polygon (and every edge whose midpoint is inside) fails when
``depth`` exceeds its flood threshold: the node or edge column ``flood_threshold`` (m) when it
is set, else ``[hazard.threshold]`` per kind / layer / ``layer:kind`` (as the flood hazard),
else it does not flood.

**Fixpoint.**  The flood and the cascade run together: depths with every pump running, the
cascade of what floods, then depths again with only the pumps that still run, the cascade of
what floods in addition (incrementally), and so on until the set of running pumps stops
changing.  A pump runs while it works, and also while it is down only because a dependency
group lost its suppliers, if each such group has a backup (``delay``, hours) of at least the
storm's ``duration`` and the pump itself is dry: a diesel set that outlasts the storm keeps
the station pumping (the static cascade still counts the station as lost afterwards, when the
backup is taken as exhausted).  Failures only add up, so this ends after at most (number of pumps + 1) cascades:
a substation that floods stops the pumps it feeds, the water rises, more assets flood.

Model assumptions and limits (say them with every result):

* one volume balance per catchment for the whole storm: no overland flow between catchments,
  no pipe or channel hydraulics, no timing inside the storm (a pump that fails at any point
  is taken as failed for the whole ``duration``: conservative), uniform rain;
* the ponded depth is uniform over ``A_ponding`` and reaches every asset in the polygon:
  no terrain inside a catchment (draw polygons around low-lying districts);
* pumps deliver their rated capacity while they work (no head losses, no outfall limits);
* storage (depression storage, infiltration, pipes, tanks) is a fixed volume.

Design storm
------------
``depth`` (mm), or ``return_period`` T (years) with the parameters of the annual-maximum rain
depth for this duration, fitted elsewhere: ``[hazard.gumbel] location, scale`` (mm) gives
``x_T = μ − σ ln(−ln(1 − 1/T))``; ``[hazard.gev] location, scale, shape`` with
F(x) = exp(−(1 + ξ (x − μ)/σ)^(−1/ξ)) (ξ > 0 heavy tail; scipy's ``genextreme`` uses
``c = −ξ``) gives ``x_T = μ + σ/ξ ((−ln(1 − 1/T))^(−ξ) − 1)``.  ``depth_sd`` (mm) adds a
per-sample normal offset (truncated at 0 mm).

Catchment file
--------------
A GeoJSON FeatureCollection of Polygon / MultiPolygon features in the system's CRS (metres).
Properties: ``id`` (unique), ``storage_mm`` (mm over the catchment area) **or** ``storage_m3``,
optional ``area_m2`` and ``ponding_area_m2``, and ``pumps``: a list of node ids (capacity
from the node column ``pump_capacity``, m³/h) or an object ``{node id: capacity m³/h}``.
A node inside several catchments belongs to the first.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .compiled import CAUSES
from .errors import InputError, reading
from .hazards import Hazard, _check_names, _lookup, _Table, points_in_polygons


CAUSE_DEPENDENCY = CAUSES.index("dependency")


# --------------------------------------------------------------------------- design storms
def gumbel_depth(return_period: float, location: float, scale: float) -> float:
    """Depth (mm) of the T-year event of a Gumbel (EV1) fit of annual maxima."""
    p = 1.0 - 1.0 / return_period
    return location - scale * math.log(-math.log(p))


def gev_depth(return_period: float, location: float, scale: float, shape: float) -> float:
    """Depth (mm) of the T-year event of a GEV fit; ``shape`` ξ (> 0: heavy tail)."""
    if shape == 0.0:
        return gumbel_depth(return_period, location, scale)
    y = -math.log(1.0 - 1.0 / return_period)
    return location + scale / shape * (y ** (-shape) - 1.0)


# --------------------------------------------------------------------------- catchments
@dataclass
class Catchment:
    """One catchment: polygons (rings as (k, 2) arrays) and its water balance inputs."""

    id: str
    polygons: list
    area: float                   # m²
    ponding_area: float           # m²
    storage_m3: float
    pumps: dict                   # node id -> capacity m³/h, or None (from `pump_capacity`)


def ring_area(ring: np.ndarray) -> float:
    """Unsigned shoelace area of a closed or open ring."""
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def _number(props, key, file, where, low=0.0, low_open=False):
    value = props[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < low or (low_open and value == low):
        raise InputError(f"{where}: property '{key}' must be a number {'>' if low_open else '>='} {low}, "
                         f"not {value!r}", file)
    return float(value)


def read_catchments(path: Path) -> list[Catchment]:
    """Read and validate a catchment GeoJSON file (see the module docstring)."""
    file = str(path)
    with reading(path, "catchment file"):
        raw = Path(path).read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid GeoJSON: {exc}", file) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise InputError("expected a GeoJSON FeatureCollection of catchment polygons", file)
    out, seen = [], set()
    for k, feat in enumerate(data["features"]):
        where = f"feature {k}"
        if not isinstance(feat, dict) or not isinstance(feat.get("properties"), dict) \
                or not isinstance(feat.get("geometry"), dict):
            raise InputError(f"{where}: a Feature needs 'geometry' and 'properties'", file)
        props, geom = feat["properties"], feat["geometry"]
        cid = props.get("id")
        if not isinstance(cid, (str, int)) or isinstance(cid, bool) or str(cid) == "":
            raise InputError(f"{where}: property 'id' (a string) is required", file)
        cid = str(cid)
        where = f"catchment '{cid}'"
        if cid in seen:
            raise InputError(f"{where}: duplicate id", file)
        seen.add(cid)
        unknown = set(props) - {"id", "storage_mm", "storage_m3", "area_m2", "ponding_area_m2",
                                "pumps", "name", "description"}
        if unknown:
            raise InputError(f"{where}: unknown property '{sorted(unknown)[0]}'", file)
        if geom.get("type") == "Polygon":
            coords = [geom.get("coordinates")]
        elif geom.get("type") == "MultiPolygon":
            coords = geom.get("coordinates")
        else:
            raise InputError(f"{where}: geometry must be a Polygon or MultiPolygon, "
                             f"not {geom.get('type')!r}", file)
        polygons = []
        try:
            for rings in coords:
                arrs = [np.asarray(r, float)[:, :2] for r in rings]
                if not arrs or any(len(a) < 3 for a in arrs) or not all(np.isfinite(a).all() for a in arrs):
                    raise ValueError
                polygons.append(arrs)
        except (TypeError, ValueError, IndexError):
            raise InputError(f"{where}: polygon coordinates must be rings of at least 3 [x, y] "
                             "points", file) from None
        computed = sum(ring_area(p[0]) - sum(ring_area(h) for h in p[1:]) for p in polygons)
        area = _number(props, "area_m2", file, where, low_open=True) if "area_m2" in props else computed
        if area <= 0:
            raise InputError(f"{where}: the polygon has no area", file)
        ponding = _number(props, "ponding_area_m2", file, where, low_open=True) \
            if "ponding_area_m2" in props else min(area, computed)
        if ponding > area:
            raise InputError(f"{where}: ponding_area_m2 ({ponding:g}) exceeds the area ({area:g} m²)", file)
        if ("storage_mm" in props) == ("storage_m3" in props):
            raise InputError(f"{where}: give exactly one of the properties 'storage_mm' and 'storage_m3'", file)
        storage = _number(props, "storage_mm", file, where) / 1000.0 * area if "storage_mm" in props \
            else _number(props, "storage_m3", file, where)
        pumps_raw = props.get("pumps", [])
        if isinstance(pumps_raw, list) and all(isinstance(p, str) for p in pumps_raw):
            pumps = {p: None for p in pumps_raw}
            if len(pumps) != len(pumps_raw):
                raise InputError(f"{where}: a pump is listed twice", file)
        elif isinstance(pumps_raw, dict):
            pumps = {str(p): _number(pumps_raw, p, file, f"{where} pump", low=0.0) for p in pumps_raw}
        else:
            raise InputError(f"{where}: property 'pumps' must be a list of node ids or "
                             "{node id: capacity in m3/h}", file)
        out.append(Catchment(cid, polygons, float(area), float(ponding), float(storage), pumps))
    if not out:
        raise InputError("no catchment in the file", file)
    return out


# --------------------------------------------------------------------------- the hazard
@dataclass
class RainfallHazard(Hazard):
    """A storm over catchments drained by pumps that depend on the cascade (module docstring)."""

    catchments: str = ""
    duration: float = 1.0
    depth: float | None = None
    return_period: float | None = None
    distribution: dict | None = None
    depth_sd: float = 0.0
    threshold: dict = field(default_factory=dict)
    type: str = "rainfall"
    feedback = True               # class attribute: Scenario.run calls settle()
    _file: str = ""
    _catchments: Any = None
    _design: float = 0.0

    @classmethod
    def parse(cls, t: _Table, base: Path):
        path = t.string("catchments", required=True)
        duration = t.number("duration", required=True, low=0.0, low_open=True)
        depth = t.number("depth", low=0.0)
        rp = t.number("return_period", low=1.0, low_open=True)
        dist = None
        for name, keys in (("gumbel", ("location", "scale")), ("gev", ("location", "scale", "shape"))):
            if t.has(name):
                if dist is not None:
                    raise InputError("give one of [hazard.gumbel] and [hazard.gev], not both", t.file)
                sub = _Table(t.get(name), f"hazard.{name}", t.file)
                dist = {"type": name, **{k: sub.number(k, required=True, low=0.0 if k == "scale" else None,
                                                       low_open=k == "scale") for k in keys}}
                sub.finish()
        if (depth is None) == (rp is None):
            raise InputError("give exactly one of 'hazard.depth' (mm) and 'hazard.return_period' "
                             "(years, with [hazard.gumbel] or [hazard.gev])", t.file)
        if rp is not None and dist is None:
            raise InputError("'hazard.return_period' needs the fit of annual-maximum depths: "
                             "[hazard.gumbel] or [hazard.gev]", t.file)
        if depth is not None and dist is not None:
            raise InputError(f"[hazard.{dist['type']}] is used with 'hazard.return_period', "
                             "not with 'hazard.depth'", t.file)
        if rp is not None:
            design = gumbel_depth(rp, dist["location"], dist["scale"]) if dist["type"] == "gumbel" \
                else gev_depth(rp, dist["location"], dist["scale"], dist["shape"])
            if not math.isfinite(design) or design < 0:
                raise InputError(f"the {rp:g}-year depth of this fit is {design:g} mm; check "
                                 f"[hazard.{dist['type']}]", t.file)
        else:
            design = depth
        threshold = t.get("threshold", {})
        sub = _Table(threshold, "hazard.threshold", t.file)
        threshold = {k: sub.number(k, required=True, low=0.0) for k in threshold}
        return cls(catchments=path, duration=duration, depth=depth, return_period=rp,
                   distribution=dist, depth_sd=t.number("depth_sd", 0.0, low=0.0),
                   threshold=threshold, _file=t.file,
                   _catchments=read_catchments((base / path).resolve()), _design=float(design))

    @property
    def design_depth(self) -> float:
        """The storm's depth in mm (given, or the T-year quantile of the fit)."""
        return self._design

    def describe(self):
        d = super().describe()
        d["design_depth_mm"] = self._design
        return {k: v for k, v in d.items() if v is not None}

    # ------------------------------------------------------------------ per system
    def prepare(self, system, compiled, el):
        if np.isnan(el.x).any() or np.isnan(el.y).any():
            raise InputError("the rainfall hazard needs coordinates 'x' and 'y' on every node", "nodes.csv")
        _check_names(self.threshold, el, "hazard.threshold", self._file, edges=True)
        cats = self._catchments
        n, m = compiled.n_nodes, compiled.n_edges
        node_catch = np.full(n, -1, np.int64)
        src, dst = compiled.edge_src.astype(np.int64), compiled.edge_dst.astype(np.int64)
        mx, my = (el.x[src] + el.x[dst]) / 2, (el.y[src] + el.y[dst]) / 2
        edge_catch = np.full(m, -1, np.int64)
        for c, cat in enumerate(cats):
            for px, py, owner in ((el.x, el.y, node_catch), (mx, my, edge_catch)):
                # Only points in the bounding box and not yet in a catchment are tested.
                lo = np.min([r.min(axis=0) for p in cat.polygons for r in p], axis=0)
                hi = np.max([r.max(axis=0) for p in cat.polygons for r in p], axis=0)
                cand = np.flatnonzero((owner < 0) & (px >= lo[0]) & (px <= hi[0])
                                      & (py >= lo[1]) & (py <= hi[1]))
                owner[cand[points_in_polygons(px[cand], py[cand], cat.polygons)]] = c
        default = self.threshold.get("default", np.inf)
        thr_n = _lookup(self.threshold, el.node_layer, el.node_kind, default, el.groups()).astype(float)
        thr_e = _lookup(self.threshold, el.edge_layer, el.edge_kind, default,
                        el.groups(edges=True)).astype(float)
        for table, ids, file in ((el.nodes, compiled.node_ids, "nodes.csv"),
                                 (system.edges, compiled.edge_ids, "edges.csv")):
            if "flood_threshold" not in table.columns:
                continue
            try:
                own = np.asarray(table["flood_threshold"], float)
            except (TypeError, ValueError):
                raise InputError("column 'flood_threshold' must hold numbers (m)", file) from None
            bad = np.flatnonzero(own < 0)
            if len(bad):
                raise InputError(f"'{ids[bad[0]]}': flood_threshold must be >= 0 m, not {own[bad[0]]:g}",
                                 file)
            if file == "nodes.csv":
                thr_n = np.where(np.isnan(own), thr_n, own)
            else:
                thr_e = np.where(np.isnan(own), thr_e, own)
        capacity_col = np.asarray(el.nodes["pump_capacity"], float) if "pump_capacity" in el.nodes.columns \
            else np.full(n, np.nan)
        pump_idx, pump_catch, pump_cap = [], [], []
        node_map = compiled._node_map
        for c, cat in enumerate(cats):
            for pid, cap in cat.pumps.items():
                if pid not in node_map:
                    raise InputError(f"catchment '{cat.id}': pump '{pid}' is not a node of the system",
                                     self.catchments)
                i = node_map[pid]
                if cap is None:
                    cap = capacity_col[i]
                    if not np.isfinite(cap) or cap < 0:
                        raise InputError(f"catchment '{cat.id}': pump '{pid}' has no capacity (give it "
                                         "in the catchment file or the node column 'pump_capacity', m3/h)",
                                         self.catchments)
                pump_idx.append(i)
                pump_catch.append(c)
                pump_cap.append(float(cap))
        fn = np.flatnonzero((node_catch >= 0) & np.isfinite(thr_n))
        fe = np.flatnonzero((edge_catch >= 0) & np.isfinite(thr_e))
        fpos = np.full(n, -1, np.int64)
        fpos[fn] = np.arange(len(fn))
        return {"area": np.array([c.area for c in cats]),
                "ponding_area": np.array([c.ponding_area for c in cats]),
                "storage": np.array([c.storage_m3 for c in cats]),
                "pump_idx": np.asarray(pump_idx, np.int64), "pump_catch": np.asarray(pump_catch, np.int64),
                "pump_cap": np.asarray(pump_cap, float), "pump_fpos": fpos[np.asarray(pump_idx, np.int64)],
                "node_catch": node_catch, "edge_catch": edge_catch,
                "thr_n": thr_n, "thr_e": thr_e, "fn": fn, "fe": fe,
                "fn_catch": node_catch[fn], "fe_catch": edge_catch[fe],
                "fn_thr": thr_n[fn], "fe_thr": thr_e[fe]}

    # ------------------------------------------------------------------ per sample
    def rain(self, draws) -> float:
        """This sample's storm depth in mm (the first global draw when ``depth_sd`` > 0)."""
        if self.depth_sd > 0:
            return max(0.0, self._design + self.depth_sd * draws.rng.standard_normal())
        return self._design

    def ponding(self, prep, rain_mm: float, pumps_working: np.ndarray) -> np.ndarray:
        """Ponded depth (m) per catchment for a storm and a mask of working pumps."""
        removed = np.bincount(prep["pump_catch"], weights=prep["pump_cap"] * pumps_working,
                              minlength=len(prep["area"])) * self.duration
        ponded = rain_mm / 1000.0 * prep["area"] - prep["storage"] - removed
        return np.maximum(ponded, 0.0) / prep["ponding_area"]

    def _flooded(self, prep, depth, thr_n, thr_e):
        """Indices of the floodable nodes and edges under ``depth`` (per catchment, m)."""
        mn, me = self._wet(prep, depth, thr_n, thr_e)
        return prep["fn"][mn], prep["fe"][me]

    @staticmethod
    def _wet(prep, depth, thr_n, thr_e):
        """Masks over the floodable nodes ``fn`` and edges ``fe``: depth > max(0, threshold)."""
        return depth[prep["fn_catch"]] > thr_n, depth[prep["fe_catch"]] > thr_e

    def _thresholds(self, prep, compiled, immune, fragility_scale):
        thr_n, thr_e = prep["fn_thr"], prep["fe_thr"]
        if not immune and not fragility_scale:
            return thr_n, thr_e
        full_n, full_e = prep["thr_n"].copy(), prep["thr_e"].copy()
        for name, factor in (fragility_scale or {}).items():
            if not (isinstance(factor, (int, float)) and factor > 0):
                raise InputError(f"fragility_scale of '{name}' must be a positive number")
            nodes, edges = compiled.split_ids([name])
            full_n[nodes] *= factor
            full_e[edges] *= factor
        if immune:
            nodes, edges = compiled.split_ids(list(immune))
            full_n[nodes] = np.inf
            full_e[edges] = np.inf
        return full_n[prep["fn"]], full_e[prep["fe"]]

    def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
        """The flood with every pump running (the fixpoint's first step)."""
        depth = self.ponding(prep, self.rain(draws), np.ones(len(prep["pump_idx"])))
        nodes, edges = self._flooded(prep, depth, prep["fn_thr"] * scale_nodes[prep["fn"]],
                                     prep["fe_thr"] * scale_edges[prep["fe"]])
        n_mask = np.zeros(compiled.n_nodes, bool)
        e_mask = np.zeros(compiled.n_edges, bool)
        n_mask[nodes] = True
        e_mask[edges] = True
        return n_mask, e_mask

    def _pumping(self, prep, ws, wet_n) -> np.ndarray:
        """Which pumps run through the storm: those that work, and those down only because a
        dependency group lost its suppliers when every such group has a backup (``delay``)
        of at least the storm's ``duration`` and the pump itself stays dry."""
        pump_idx = prep["pump_idx"]
        now = ws.working[pump_idx] != 0
        if now.all():
            return now
        c = ws.compiled
        for j in np.flatnonzero(~now):
            v = pump_idx[j]
            if ws.cause[v] != CAUSE_DEPENDENCY:
                continue
            if prep["pump_fpos"][j] >= 0 and wet_n[prep["pump_fpos"][j]]:
                continue
            groups = range(c.grp_ptr[v], c.grp_ptr[v + 1])
            now[j] = all(ws.alive[g] > 0 or c.group_delay[g] >= self.duration for g in groups)
        return now

    def settle(self, prep, draws, compiled, ws, *, immune=(), fragility_scale=None, trace=None):
        """Run the flood and the cascade to their common fixpoint in ``ws``.

        ``compiled`` is the system the scenario was prepared for; ``ws`` may belong to a
        system that extends it (appended edges and dependency rows keep indices).  Returns
        the sorted node and edge indices that flooded (the direct failures); ``ws`` holds the
        final state.  ``trace``, a list, receives one dict per step: ``depth`` per catchment
        (m), ``pumps`` working mask, the flooded ``nodes`` and ``edges`` so far.
        """
        rain = self.rain(draws)
        thr_n, thr_e = self._thresholds(prep, compiled, immune, fragility_scale)
        fn, fe, pump_idx = prep["fn"], prep["fe"], prep["pump_idx"]
        pumps = np.ones(len(pump_idx), bool)
        depth = self.ponding(prep, rain, pumps)
        wet_n, wet_e = self._wet(prep, depth, thr_n, thr_e)
        idx = ws.compiled.index_dtype
        ws.run(fn[wet_n].astype(idx), fe[wet_e].astype(idx))
        while True:
            if trace is not None:
                trace.append({"depth": depth, "pumps": pumps.copy(), "nodes": fn[wet_n], "edges": fe[wet_e]})
            now = self._pumping(prep, ws, wet_n)
            if not (now ^ pumps).any():
                return fn[wet_n], fe[wet_e]
            # Pumps only stop, so the water only rises and the wet sets only grow.
            pumps = now
            depth = self.ponding(prep, rain, pumps)
            more_n, more_e = self._wet(prep, depth, thr_n, thr_e)
            new_n, new_e = fn[more_n & ~wet_n], fe[more_e & ~wet_e]
            wet_n, wet_e = more_n, more_e
            if len(new_n) or len(new_e):
                ws.run(new_n.astype(idx), new_e.astype(idx), incremental=True)
