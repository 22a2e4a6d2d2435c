"""Coupling by geography: dependency rows from the nearest suppliers or those within a radius.

The usual way to couple lifelines when the utilities do not say which substation feeds which
pump is geographic proximity: each dependent takes its nearest supplier(s) of the other layer
(Buldyrev et al. 2010, "Catastrophic cascade of failures in interdependent networks", Nature 464,
couple nodes one to one; Rinaldi, Peerenboom and Kelly 2001, "Identifying, understanding, and
analyzing critical infrastructure interdependencies", IEEE Control Systems 21(6), call this
*geographic* interdependency).  Nearest neighbours come from a k-d tree
(:class:`scipy.spatial.cKDTree`) over the suppliers' coordinates.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError
from .system import InfrastructureSystem


def parse_selector(text: str, system: InfrastructureSystem, what: str) -> tuple[str, str | None]:
    """``LAYER`` or ``LAYER:KIND`` checked against the system."""
    layer, _, kind = str(text).partition(":")
    layer, kind = layer.strip(), kind.strip() or None
    if layer not in set(system.nodes["layer"]):
        raise InputError(f"{what}: no layer '{layer}' in the system (layers: {', '.join(system.layers)})")
    if kind is not None:
        kinds = set(system.nodes.loc[system.nodes["layer"] == layer, "kind"])
        if kind not in kinds:
            raise InputError(f"{what}: layer '{layer}' has no node of kind '{kind}' "
                             f"(kinds: {', '.join(sorted(k for k in kinds if k)) or 'none'})")
    return layer, kind


def _select(system: InfrastructureSystem, layer: str, kind: str | None) -> pd.DataFrame:
    nodes = system.nodes
    mask = nodes["layer"] == layer
    if kind is not None:
        mask &= nodes["kind"] == kind
    return nodes.loc[mask, ["id", "x", "y"]]


def couple(system: InfrastructureSystem, dependent: str, supplier: str, *, nearest: int | None = None,
           radius: float | None = None, group: bool = False, delay: float = 0.0,
           group_name: str | None = None, reproject: bool = False,
           threshold: float | None = None) -> tuple[pd.DataFrame, dict]:
    """Dependency rows that make each dependent node depend on the suppliers near it.

    Parameters
    ----------
    system : InfrastructureSystem
        Nodes need ``x`` and ``y`` (in metres for ``radius`` to mean metres: a projected CRS).
    dependent, supplier : str
        ``LAYER`` or ``LAYER:KIND``: which nodes depend, and which may supply them.
    nearest : int, optional
        Each dependent gets its ``nearest`` closest suppliers (ties broken by file order).
    radius : float, optional
        Each dependent gets every supplier within ``radius`` (same unit as the coordinates),
        nearest first.  Exactly one of ``nearest`` and ``radius`` is given.
    group : bool
        True: a dependent's new suppliers are alternatives (one dependency group; the dependent
        works while at least one of them works).  False: each row is a group of its own (the
        dependent needs all of them).
    delay : float
        Hours the dependent keeps working after losing the group (a backup), ≥ 0.
    group_name : str, optional
        Label of the group when ``group`` is true (default: the supplier layer, made unique
        among the dependent's existing groups).
    reproject : bool
        A system in a geographic CRS is refused (distances in degrees mean nothing) unless
        this is true: then distances (and ``radius``) are metres in the UTM zone of the
        nodes' centroid (:mod:`cascade.crs`).
    threshold : float, optional
        0 < t ≤ 1: the rows' ``threshold`` (docs/format.md (v2)): a supplier of a flow layer
        counts only while its served fraction is ≥ t.  None: no ``threshold`` column (the
        format's default, 1).

    Returns
    -------
    rows : pandas.DataFrame
        Columns ``dependent``, ``supplier``, ``group`` (``''`` unless ``group``), ``delay``
        (float), ``threshold`` (float, only when given), ``distance`` (float, coordinate units),
        in dependent file order then distance.
        Pairs that already have a dependency row are left out.
    stats : dict
        ``dependents``, ``suppliers``, ``rows``, ``without_coordinates`` (dependents skipped),
        ``unmatched`` (dependents with no supplier within ``radius``), ``existing`` (pairs
        already present), ``max_distance``.

    Raises
    ------
    InputError
        On an unknown layer or kind, a bad ``nearest``/``radius``/``delay``, or suppliers
        without coordinates.
    """
    from scipy.spatial import cKDTree

    if (nearest is None) == (radius is None):
        raise InputError("give exactly one of --nearest K and --radius METRES")
    if nearest is not None and int(nearest) < 1:
        raise InputError(f"--nearest must be at least 1, not {nearest}")
    if radius is not None and not (np.isfinite(radius) and radius >= 0):
        raise InputError(f"--radius must be a distance ≥ 0, not {radius}")
    if not (np.isfinite(delay) and delay >= 0):
        raise InputError(f"--delay must be hours ≥ 0, not {delay}")
    if threshold is not None and not (0 < threshold <= 1):
        raise InputError(f"--threshold must be in (0, 1], not {threshold:g}")
    from .crs import metric_frame

    dep_layer, dep_kind = parse_selector(dependent, system, "--dependent")
    sup_layer, sup_kind = parse_selector(supplier, system, "--supplier")
    frame = metric_frame(system.crs, system.nodes["x"], system.nodes["y"], "cascade couple", reproject)
    deps = _select(system, dep_layer, dep_kind)
    sups = _select(system, sup_layer, sup_kind)
    if frame is not None:
        deps, sups = deps.copy(), sups.copy()
        for table in (deps, sups):
            table["x"], table["y"] = frame.xy(table["x"], table["y"])
    sup_xy = sups[["x", "y"]].to_numpy(float)
    sup_ok = np.isfinite(sup_xy).all(axis=1)
    if not sup_ok.any():
        raise InputError(f"--supplier: no node of '{supplier}' has coordinates (x, y)")
    sups, sup_xy = sups[sup_ok], sup_xy[sup_ok]
    dep_xy = deps[["x", "y"]].to_numpy(float)
    dep_ok = np.isfinite(dep_xy).all(axis=1)
    without = int((~dep_ok).sum())
    deps, dep_xy = deps[dep_ok], dep_xy[dep_ok]
    sup_ids = sups["id"].to_numpy(object)
    dep_ids = deps["id"].to_numpy(object)
    tree = cKDTree(sup_xy)
    same = dep_layer == sup_layer
    pairs_d, pairs_s, dist = [], [], []
    if nearest is not None and len(dep_ids):
        # One more than asked when the layers are the same, to drop the node itself.  The k-d
        # tree returns k neighbours but breaks a tie at the k-th distance arbitrarily, so take
        # every supplier within that distance and order them by (distance, file order).
        k = min(int(nearest) + (1 if same else 0), len(sup_ids))
        d, _ = tree.query(dep_xy, k=k)
        kth = d.reshape(len(dep_ids), k)[:, -1]
        hits = tree.query_ball_point(dep_xy, r=kth * (1 + 1e-9) + 1e-9)
        for i, name in enumerate(dep_ids):
            cand = np.asarray(hits[i], dtype=np.int64)
            dd = np.hypot(*(sup_xy[cand] - dep_xy[i]).T)
            taken = 0
            for j in np.lexsort((cand, dd)):
                if taken == nearest:
                    break
                if sup_ids[cand[j]] == name:
                    continue
                pairs_d.append(name)
                pairs_s.append(sup_ids[cand[j]])
                dist.append(dd[j])
                taken += 1
    elif radius is not None:
        # A little wider than asked, then the exact test, so a supplier at exactly the radius
        # is in whatever rounding the tree does.
        r = float(radius)
        hits = tree.query_ball_point(dep_xy, r=r * (1 + 1e-9) + 1e-9) if len(dep_ids) else []
        for i, name in enumerate(dep_ids):
            cand = np.asarray(hits[i], dtype=np.int64)
            dd = np.hypot(*(sup_xy[cand] - dep_xy[i]).T)
            cand, dd = cand[dd <= r], dd[dd <= r]
            for j in np.lexsort((cand, dd)):
                if sup_ids[cand[j]] == name:
                    continue
                pairs_d.append(name)
                pairs_s.append(sup_ids[cand[j]])
                dist.append(dd[j])
    rows = pd.DataFrame({"dependent": pd.Series(pairs_d, dtype=object),
                         "supplier": pd.Series(pairs_s, dtype=object),
                         "distance": np.round(np.asarray(dist, float), 3)})
    old = system.dependencies
    present = set(zip(old["dependent"], old["supplier"]))
    keep = np.array([(a, b) not in present for a, b in zip(rows["dependent"], rows["supplier"])], bool)
    existing = int((~keep).sum()) if len(rows) else 0
    rows = rows[keep] if len(rows) else rows
    labels = [""] * len(rows)
    if group and len(rows):
        base = group_name or sup_layer
        taken = old.groupby("dependent")["group"].agg(set).to_dict() if len(old) else {}
        labels = []
        for name in rows["dependent"]:
            label, n = base, 2
            while label in taken.get(name, set()):
                label, n = f"{base}-{n}", n + 1
            labels.append(label)
    rows.insert(2, "group", labels)
    rows.insert(3, "delay", float(delay))
    if threshold is not None:
        rows.insert(4, "threshold", float(threshold))
    matched = rows["dependent"].nunique()
    stats = {"dependents": int(len(dep_ids)), "suppliers": int(len(sup_ids)), "rows": int(len(rows)),
             "matched": int(matched), "without_coordinates": without,
             "unmatched": int(len(dep_ids) - len(set(pairs_d))), "existing": existing,
             "max_distance": float(rows["distance"].max()) if len(rows) else None}
    return rows.reset_index(drop=True), stats


def couple_system(system: InfrastructureSystem, *args, **kwargs) -> tuple[InfrastructureSystem, dict]:
    """:func:`couple`, then a new system with the rows appended to its dependencies."""
    rows, stats = couple(system, *args, **kwargs)
    deps = pd.concat([system.dependencies, rows], ignore_index=True)
    out = InfrastructureSystem.from_tables(system.nodes, system.edges, deps, name=system.name,
                                           crs=system.crs, rules=system.rules,
                                           units=system.units, weights=system.weights,
                                           bases=system.bases, currency=system.currency)
    return out, stats
