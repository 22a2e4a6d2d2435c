"""Shared machinery of the importers: one imported layer, its reprojection, and adding it to a
system directory without touching the layers already there.

Each importer (:mod:`cascade.io.pandapower`, :mod:`cascade.io.epanet`,
:mod:`cascade.io.pandapipes`, :mod:`cascade.io.graphml`, :mod:`cascade.io.geojson`) turns its
source model into an :class:`ImportedLayer`: two tables in the columns of docs/format.md and the CRS
of their coordinates when the source says it.  :func:`import_layer` places that layer in the
system's CRS with pyproj and appends its rows to ``nodes.csv`` and ``edges.csv``.
"""
from __future__ import annotations

import json
import math
import os
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import InputError, reading
from ..system import InfrastructureSystem
from .csv_dir import _read_csv, layer_toml, read_system, write_atomic, write_system

FORMATS = ("pandapower", "epanet", "pandapipes", "graphml", "geojson")
# The layer rules an import format can produce; the first is its default.
RULE_CHOICES = {"pandapower": ("dcflow", "source"), "epanet": ("flow", "source"),
                "pandapipes": ("flow", "source")}


@dataclass
class ImportedLayer:
    """One layer read from an outside model, before it joins a system.

    Attributes
    ----------
    nodes : pandas.DataFrame
        Columns ``id``, ``layer``, ``kind``, ``demand`` (float ≥ 0), ``x``, ``y`` (float, NaN
        when unknown), plus ``element`` (the source model's element type) and ``name``.
    edges : pandas.DataFrame
        Columns ``id``, ``source``, ``target``, ``directed`` (bool), ``kind``, ``length`` (m).
    crs : str or None
        CRS of ``x`` and ``y`` as the source states it (``None`` when it does not).
    source : str
        The file it came from, for messages.
    rule, unit : str or None
        The layer's rule and unit label for ``system.toml`` (``None``: not written, the
        loader's default applies).
    base : float or None
        The per-unit base of a ``dcflow`` layer (``base`` in ``system.toml``).
    notes : list of str
        What the importer assumed where the source leaves a field out; ``cascade import``
        prints each as a note.
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame
    crs: str | None
    source: str
    rule: str | None = None
    unit: str | None = None
    base: float | None = None
    notes: list[str] = field(default_factory=list)

    def replace(self, **changes) -> "ImportedLayer":
        """A copy with some fields changed (the tables are shared, not copied)."""
        return dataclasses.replace(self, **changes)



def checked_demand(values, ids, source: str, *, negative: str = "refuse",
                   meaning: str = "") -> tuple[np.ndarray, str | None]:
    """Imported demands held to the rule of ``nodes.csv``: a finite number, not negative.

    Parameters
    ----------
    values : array-like of float
    ids : array-like of str
        The element each value belongs to, named in the message.
    source : str
        The file, for messages.
    negative : {"refuse", "zero"}
        ``"refuse"``: a negative value is an error.  ``"zero"``: it counts as demand 0 and a
        note says so (for models where a negative load is generation or inflow).
    meaning : str
        What a negative value means in the source model, for the note.

    Returns
    -------
    demand : ndarray of float
    note : str or None

    Raises
    ------
    InputError
        On NaN or an infinite value (or a negative one with ``negative="refuse"``), naming the
        first such element.
    """
    values = np.asarray(values, float)
    ids = np.asarray(ids, dtype=object)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(f"{ids[bad[0]]}: demand is {values[bad[0]]} ({bad.size} such element(s)); "
                         "a demand must be a finite number", source)
    neg = np.flatnonzero(values < 0)
    if not neg.size:
        return values, None
    if negative == "refuse":
        raise InputError(f"{ids[neg[0]]}: demand is negative ({values[neg[0]]:g}; {neg.size} such "
                         "element(s)); a demand must be 0 or more", source)
    examples = ", ".join(str(i) for i in ids[neg[:3]]) + (" ..." if neg.size > 3 else "")
    return (np.where(values < 0, 0.0, values),
            f"{neg.size} node(s) with a negative net demand{meaning} counted as 0: {examples}")


def crs_or_error(text: str | None, what: str) -> "pyproj.CRS | None":
    """Parse a CRS (``EPSG:NNNN``, a WKT or a PROJ string); a bad one is an :class:`InputError`."""
    if text is None or str(text).strip() == "":
        return None
    import pyproj

    try:
        return pyproj.CRS.from_user_input(str(text))
    except pyproj.exceptions.CRSError as exc:
        raise InputError(f"unknown CRS '{text}': {str(exc).splitlines()[0]}", what) from None


def read_json(path: str | os.PathLike) -> object:
    """Read a JSON file; a syntax error names the line."""
    path = Path(path)
    try:
        with reading(path), open(path, encoding="utf-8-sig") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg} (column {exc.colno})", str(path), exc.lineno) from None


def require_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", str(path))
    if path.is_dir():
        raise InputError("is a directory, not a file", str(path))
    return path


def utm_for(crs, x: np.ndarray, y: np.ndarray) -> str:
    """The UTM zone (WGS 84) that holds the centre of some coordinates in ``crs``."""
    import pyproj
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    to_geo = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(np.nanmean(x), np.nanmean(y))
    info = query_utm_crs_info(datum_name="WGS 84",
                              area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if not info:
        raise InputError(f"no UTM zone holds longitude {lon:.3f}, latitude {lat:.3f}")
    return f"{info[0].auth_name}:{info[0].code}"


def in_metres(crs) -> bool:
    """A projected CRS whose axes are in metres (distances in it are metres)."""
    axes = crs.axis_info
    return bool(crs.is_projected and axes and all(a.unit_name in ("metre", "meter") and
                                                   a.unit_conversion_factor == 1.0 for a in axes))


def place(layer: ImportedLayer, source_crs: str | None, system_crs: str | None,
          new_system: bool) -> tuple[ImportedLayer, str | None, str]:
    """Reproject a layer's coordinates to the system's CRS.

    Parameters
    ----------
    layer : ImportedLayer
    source_crs : str or None
        ``--crs`` of the command line; overrides the CRS the file states.
    system_crs : str or None
        The CRS of the system the layer joins.
    new_system : bool
        True when the system is created by this import: it takes the source's CRS when that is
        projected in metres, else (degrees, feet, a local grid) the UTM zone of the data's
        centre, so that distances (``cascade couple --radius``) are metres.

    Returns
    -------
    layer : ImportedLayer
        With ``x``, ``y`` in the target CRS.
    crs : str or None
        The system's CRS after the import.
    note : str
        What was done, for the user.
    """
    import pyproj

    src = crs_or_error(source_crs, "--crs") if source_crs else crs_or_error(layer.crs, layer.source)
    nodes = layer.nodes
    xy = nodes[["x", "y"]].to_numpy(float)
    has_xy = np.isfinite(xy).all(axis=1)
    if not has_xy.any():
        return layer, system_crs, "no coordinates"
    if src is None:
        if system_crs and not new_system:
            raise InputError(f"its coordinates carry no CRS and the system's CRS is {system_crs}: give "
                             "--crs naming the CRS of the source's coordinates (EPSG:NNNN or a PROJ string)",
                             layer.source)
        return layer, system_crs, "coordinates kept as they are (no CRS known)"
    target = crs_or_error(system_crs, "system.toml") if system_crs else None
    if target is None:
        if not new_system:
            return layer, system_crs, ("coordinates kept as they are: the system has coordinates "
                                       "but no CRS in system.toml")
        target_name = (f"EPSG:{src.to_epsg()}" if src.to_epsg() is not None else src.to_string()) \
            if in_metres(src) else utm_for(src, xy[has_xy, 0], xy[has_xy, 1])
        target = crs_or_error(target_name, "--crs")
    else:
        target_name = system_crs
    if src == target:
        return layer, target_name, f"coordinates already in {target_name}"
    transformer = pyproj.Transformer.from_crs(src, target, always_xy=True)
    x, y = transformer.transform(xy[has_xy, 0], xy[has_xy, 1])
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError(f"coordinates cannot be reprojected from {src.name} to {target.name} "
                         "(out of its area?); check --crs", layer.source)
    nodes = nodes.copy()
    nodes.loc[has_xy, "x"] = np.round(x, 3)
    nodes.loc[has_xy, "y"] = np.round(y, 3)
    return (layer.replace(nodes=nodes, crs=target_name), target_name,
            f"reprojected from {src.name} to {target.name}")


def fill_lengths(nodes: pd.DataFrame, edges: pd.DataFrame) -> None:
    """Edge lengths that the source leaves out: straight distance between the ends (in place)."""
    pos = nodes.set_index("id")[["x", "y"]]
    a = pos.reindex(edges["source"]).to_numpy(float)
    b = pos.reindex(edges["target"]).to_numpy(float)
    straight = np.hypot(*(a - b).T) if len(edges) else np.zeros(0)
    missing = edges["length"].isna().to_numpy()
    edges.loc[missing, "length"] = np.round(straight[missing], 3)


# ---------------------------------------------------------------------- system directories
def _raw(path: Path, columns: list[str]) -> pd.DataFrame:
    table = _read_csv(path, required=False)
    return pd.DataFrame(columns=columns) if table is None else table


def _as_strings(table: pd.DataFrame) -> pd.DataFrame:
    """Cells as the strings a CSV holds: NaN empty, booleans true/false, floats without '.0'."""
    out = {}
    for col in table.columns:
        values = []
        for v in table[col].tolist():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                values.append("")
            elif isinstance(v, (bool, np.bool_)):
                values.append("true" if v else "false")
            elif isinstance(v, (float, np.floating)) and float(v).is_integer() and abs(v) < 1e15:
                values.append(str(int(v)))
            else:
                values.append(str(v))
        out[col] = values
    return pd.DataFrame(out, columns=list(table.columns), dtype=object)


def append_rows(root: Path, nodes: pd.DataFrame | None = None, edges: pd.DataFrame | None = None,
                dependencies: pd.DataFrame | None = None,
                settings: dict[str, dict] | None = None) -> InfrastructureSystem:
    """Append rows to the CSV files of an existing system directory, keeping every existing
    cell as it is written (new columns are added empty for the old rows).

    ``settings`` (``{"rules": {layer: rule}, "units": ..., "bases": ...}``) are for layers that
    system.toml does not mention yet: their ``[layers.NAME]`` tables are appended to it.

    The combined tables are validated as a whole (:meth:`InfrastructureSystem.from_tables`)
    before anything is written, so a bad import leaves the directory as it was.

    Returns
    -------
    InfrastructureSystem
        The system as it is now on disk.
    """
    files = {"nodes": (root / "nodes.csv", nodes, ["id", "layer"]),
             "edges": (root / "edges.csv", edges, ["source", "target"]),
             "dependencies": (root / "dependencies.csv", dependencies, ["dependent", "supplier"])}
    combined, changed = {}, []
    for key, (path, rows, columns) in files.items():
        old = _raw(path, columns)
        if rows is None or len(rows) == 0:
            combined[key] = old
            continue
        new = _as_strings(rows)
        cols = list(old.columns) + [c for c in new.columns if c not in old.columns]
        combined[key] = pd.concat([old.reindex(columns=cols, fill_value=""),
                                   new.reindex(columns=cols, fill_value="")], ignore_index=True)
        changed.append(key)
    current = read_system(root)  # the TOML and the existing rows are valid before we touch them
    settings = {key: value for key, value in (settings or {}).items() if value}
    system = InfrastructureSystem.from_tables(
        combined["nodes"], combined["edges"], combined["dependencies"], name=current.name,
        crs=current.crs, rules=current.rules | settings.get("rules", {}),
        units=current.units | settings.get("units", {}), weights=current.weights,
        bases=current.bases | settings.get("bases", {}),
        files={k: str(v[0]) for k, v in files.items()} | {"system": str(root / "system.toml")})
    toml = _toml_tables(root / "system.toml", settings) if settings else None
    for key in changed:
        write_atomic(files[key][0], combined[key].to_csv(index=False, lineterminator="\n"))
    if toml is not None:
        write_atomic(root / "system.toml", toml)
    return system


def _toml_tables(path: Path, settings: dict[str, dict]) -> str:
    """system.toml's text with ``[layers.NAME]`` tables added for new layers (old text kept)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    layers = sorted(set().union(*(set(v) for v in settings.values())))
    for layer in layers:
        table = layer_toml(layer, settings.get("rules", {}).get(layer), settings.get("units", {}).get(layer),
                           None, settings.get("bases", {}).get(layer))
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + "\n".join(table) + "\n"
    return text


def is_system_dir(root: Path) -> bool:
    return (root / "nodes.csv").exists()


def add_layer(layer: ImportedLayer, into: str | os.PathLike, name: str,
              source_crs: str | None = None) -> tuple[InfrastructureSystem, str]:
    """Add an imported layer to the system directory ``into`` (created when missing).

    Parameters
    ----------
    layer : ImportedLayer
        Its ``layer`` column must already be ``name``.
    into : path
        A system directory, or a directory that does not exist yet (or is empty).
    name : str
        The layer's name; it must not exist in the system.
    source_crs : str, optional
        The CRS of the source's coordinates when the file does not state it.

    Returns
    -------
    system : InfrastructureSystem
        The system after the import.
    note : str
        A line for the user: counts and what happened to the coordinates.

    Raises
    ------
    InputError
        When the layer exists already, an id clashes with one in the system, or the
        coordinates cannot be placed in the system's CRS.
    """
    root = Path(into)
    if root.exists() and not root.is_dir():
        raise InputError("is a file, not a system directory", str(root))
    new = not is_system_dir(root)
    if new and root.exists() and any(root.iterdir()):
        raise InputError("is neither a system directory (no nodes.csv) nor empty", str(root))
    existing = None if new else read_system(root)
    if existing is not None:
        if name in existing.layers:
            raise InputError(f"layer '{name}' already exists in this system; import under another "
                             "--layer name", str(root))
        for what, ids, old in (("node", layer.nodes["id"], existing.nodes["id"]),
                               ("edge", layer.edges["id"], existing.edges["id"])):
            clash = ids[ids.isin(set(old))]
            if len(clash):
                raise InputError(f"{what} id '{clash.iloc[0]}' of the imported layer is already in the "
                                 f"system ({len(clash)} clash(es)); choose another --prefix", str(root))
    layer, crs, note = place(layer, source_crs, existing.crs if existing is not None else None, new)
    if "length" in layer.edges.columns and layer.edges["length"].isna().any():
        edges = layer.edges.copy()
        fill_lengths(layer.nodes, edges)
        layer = layer.replace(edges=edges)
    settings = {key: ({name: value} if value is not None else {})
                for key, value in (("rules", layer.rule), ("units", layer.unit), ("bases", layer.base))}
    if new:
        system = InfrastructureSystem.from_tables(
            layer.nodes, layer.edges, None, name=root.resolve().name, crs=crs,
            files={"nodes": f"{layer.source} (nodes)", "edges": f"{layer.source} (edges)"}, **settings)
        root.mkdir(parents=True, exist_ok=True)
        write_system(system, root)
    else:
        system = append_rows(root, layer.nodes, layer.edges, settings=settings)
    sources = int((layer.nodes["kind"] == "source").sum())
    unit = f" {layer.unit}" if layer.unit else ""
    rule = f", rule {layer.rule}" if layer.rule else ""
    summary = (f"layer '{name}'{rule}: {len(layer.nodes)} nodes ({sources} sources), {len(layer.edges)} edges, "
               f"demand {layer.nodes['demand'].sum():,.6g}{unit}; {note}")
    summary += "".join(f"\nnote: {text}" for text in layer.notes)
    return system, summary


def reader(fmt: str) -> Callable[..., ImportedLayer]:
    """The reader function of an import format."""
    if fmt == "pandapower":
        from .pandapower import read_pandapower as read
    elif fmt == "epanet":
        from .epanet import read_epanet as read
    elif fmt == "pandapipes":
        from .pandapipes import read_pandapipes as read
    elif fmt == "graphml":
        from .graphml import read_graphml as read
    elif fmt == "geojson":
        from .geojson import read_geojson as read
    else:
        raise InputError(f"unknown import format '{fmt}' (use {', '.join(FORMATS)})")
    return read


def import_network(fmt: str, src: str | os.PathLike, layer: str, into: str | os.PathLike,
                   crs: str | None = None, prefix: str | None = None,
                   rule: str | None = None) -> tuple[InfrastructureSystem, str]:
    """Read ``src`` in format ``fmt`` and add it to the system ``into`` as layer ``layer``.

    ``prefix`` starts every node and edge id (default ``"<layer>-"``), so that two imports
    never clash.  ``rule`` chooses the layer's model where a format has two: ``dcflow``
    (pandapower's default) or ``flow`` (pandapipes' and EPANET's default) for a the v2 format of docs/format.md layer
    with amounts, ``source`` for the v1 connectivity layer.  Returns the system after the import
    and a summary line (followed by one ``note:`` line per assumption the importer made).
    """
    if not str(layer).strip():
        raise InputError("--layer must not be empty")
    read = reader(fmt)
    options = {}
    if rule is not None:
        allowed = RULE_CHOICES.get(fmt, ())
        if rule not in allowed:
            raise InputError(f"--rule {rule}: a {fmt} network imports as "
                             + (" or ".join(allowed) if allowed else "its nodes and edges only (no --rule)"))
        options["rule"] = rule
    imported = read(src, layer=layer, prefix=f"{layer}-" if prefix is None else prefix, **options)
    return add_layer(imported, into, layer, crs)


def empty_layer_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    nodes = pd.DataFrame(columns=["id", "layer", "kind", "demand", "x", "y", "element", "name"])
    edges = pd.DataFrame(columns=["id", "source", "target", "directed", "kind", "length", "name"])
    return nodes, edges


def edge_table(rows: list[pd.DataFrame], node_table: str, source: str) -> pd.DataFrame:
    """The edges of an imported layer from per-element frames (``id``, ``source``, ``target``,
    ``kind`` ...); an end that maps to no imported node is an error naming the element."""
    edges = pd.concat(rows, ignore_index=True) if rows else empty_layer_tables()[1]
    unknown = edges["source"].isna() | edges["target"].isna()
    if unknown.any():
        raise InputError(f"{edges.loc[unknown, 'kind'].iloc[0]} '{edges.loc[unknown, 'id'].iloc[0]}' "
                         f"connects a {node_table} that is not in the {node_table} table", source)
    return edges
