"""The system as pandas tables: nodes, edges, dependencies and layer rules (docs/format.md).

Names stay strings here; :func:`cascade.compiled.compile_system` is the one place where they
become integer indices.  Every check that docs/format.md lists for bad input happens in
:meth:`InfrastructureSystem.from_tables`, so a system built in Python gets the same checks as
one read from files.
"""
from __future__ import annotations

import mmap
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import InputError

RULES = ("source", "giant", "none", "flow", "dcflow")
FLOW_RULES = ("flow", "dcflow")
LIFELINES = ("power", "water", "gas", "transport", "communication")
# Layers that carry a supply from sources, and node kinds that name one: a layer like these
# without a node of kind 'source' falls back to rule 'giant', which `cascade info` points out.
SUPPLY_LAYERS = ("power", "electricity", "electric", "water", "gas", "heat", "district_heating")
SOURCE_LIKE = ("src", "plant", "generator", "gen", "ext_grid", "reservoir", "tank", "supply",
               "sources", "substation_source", "feed", "intake", "treatment", "well")

NODE_NUMBERS = {"demand": 0.0, "x": None, "y": None, "repair_time": None, "repair_cost": None}
EDGE_NUMBERS = {"repair_time": None, "repair_cost": None, "capacity": None, "length": None}
DEPENDENCY_NUMBERS = {"delay": 0.0}
# v2 (docs/format.md, "flow layers"): read when present, added with their defaults when a layer
# uses a flow rule, absent otherwise (so v1 tables stay exactly as they were).
FLOW_NODE_NUMBERS = {"supply": 0.0, "dispatch": None}
FLOW_EDGE_NUMBERS = {"reactance": None, "shift": 0.0}
FLOW_DEPENDENCY_NUMBERS = {"threshold": 1.0}
# Coordinates and phase shifts may be negative; every other number is a duration, cost or size.
SIGNED = {"x", "y", "shift", "reactance"}   # a negative reactance is a series capacitor
TOLERANCE = 1e-9
# Far beyond any map in metres, feet or degrees, and small enough that squared distances between
# coordinates stay finite.
MAX_COORDINATE = 1e15
TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f", ""}


def _pointers(values: np.ndarray) -> np.ndarray:
    """The object pointers of a contiguous 1-D object array, as integers (a view: valid while
    ``values`` lives)."""
    import ctypes

    if not len(values):
        return np.zeros(0, np.uintp)
    return np.frombuffer((ctypes.c_size_t * len(values)).from_address(values.ctypes.data), np.uintp)


def same_cells(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays of equal length hold equal cells (``np.all(a == b)``), comparing object
    pointers first: cells that are the same object are equal without a comparison of text
    (the reader fills the columns that name nodes with the node ids' own str objects)."""
    if len(a) != len(b):
        return False
    if a.dtype == object and b.dtype == object and a.ndim == b.ndim == 1:
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        differ = np.flatnonzero(_pointers(a) != _pointers(b))
        return bool(np.all(a[differ] == b[differ]))
    return bool(np.all(a == b))


class _File(str):
    """A file name for messages that also knows the line each table row starts on."""

    lines = None

    @classmethod
    def of(cls, name: str, lines=None) -> "_File":
        out = cls(name)
        out.lines = None if lines is None else list(lines)
        return out


def _line(row: int, file: str | None = None) -> int:
    """File line of a table row: the line the CSV reader saw it start on, else row + 2 (the
    header is line 1 and no blank lines or multi-line fields come before)."""
    lines = getattr(file, "lines", None)
    if lines is not None and 0 <= int(row) < len(lines):
        return int(lines[int(row)])
    return int(row) + 2


def _strings(table: pd.DataFrame) -> pd.DataFrame:
    """Every cell as a stripped string, missing cells as ''."""
    out = {}
    if table.attrs.get("stripped"):
        # Read by cascade.io.csv_dir, which already made every cell a stripped str.  (Columns
        # of a frame without attrs: pandas deep-copies attrs into every Series it makes.)
        table = pd.DataFrame(table, copy=False)
        table.attrs = {}
        for col in table.columns:
            out[str(col).strip()] = table[col].to_numpy(dtype=object)
        return pd.DataFrame(out, columns=list(out), copy=False)
    for col in table.columns:
        values = table[col]
        missing = values.isna().to_numpy()
        values = values.astype(str).str.strip()
        if missing.any():
            values = values.where(~missing, "")
        out[str(col).strip()] = values.to_numpy(dtype=object)
    return pd.DataFrame(out, columns=list(out) if out else [str(c).strip() for c in table.columns])


def _lower(values: pd.Series) -> np.ndarray:
    """``values.str.lower()`` of a column of str, computed once per distinct value."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    lowered = np.array([str(u).lower() for u in uniques] + [""], dtype=object)
    return lowered[codes]


def _require(table: pd.DataFrame, columns: Iterable[str], file: str) -> None:
    for col in columns:
        if col not in table.columns:
            raise InputError(f"missing required column '{col}'", file)
    for col in columns:
        empty = np.flatnonzero(table[col].to_numpy() == "")
        if empty.size:
            raise InputError(f"empty '{col}'", file, _line(empty[0], file))


# Columns of at least this many bytes that are NaN everywhere (a default) are mapped, not filled.
NAN_MAP_MIN_BYTES = 1 << 20
_nan_file: list = []   # [descriptor, bytes] of the in-memory file of NaN, made on first use
_nan_lock = threading.Lock()
_nan_arrays: dict = {}   # id -> weak reference of each mapped column (arrays are not hashable)


def nan_column(n: int) -> np.ndarray:
    """``np.full(n, np.nan)`` that takes no memory of this process until it is used (issue 15).

    A private (copy-on-write) mapping of one in-memory file of NaN (Linux ``memfd``) that every
    such column shares: a normal writable float64 array, but a page is resident only once read,
    and private once written (a write changes this column alone).  The default columns a file
    leaves out (``x``, ``y``, ``repair_*``, ``capacity``, ``length``: 67 MB at 10^6 nodes) then
    cost one file of the largest (8 bytes a row) until something reads them.  Elsewhere, and
    for small columns, it is ``np.full``.
    """
    nbytes = 8 * int(n)
    if nbytes < NAN_MAP_MIN_BYTES or not hasattr(os, "memfd_create"):
        return np.full(n, np.nan)
    try:
        with _nan_lock:
            if not _nan_file or _nan_file[1] < nbytes:
                size = -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE
                fd = os.memfd_create("cascade-nan", os.MFD_CLOEXEC)
                try:
                    block = np.full(min(size, 1 << 20) // 8, np.nan).tobytes()
                    done = 0
                    while done < size:
                        done += os.pwrite(fd, block[:size - done], done)
                except OSError:
                    os.close(fd)
                    raise
                if _nan_file:
                    os.close(_nan_file[0])   # its mappings keep their own reference
                _nan_file[:] = [fd, size]
            view = mmap.mmap(_nan_file[0], nbytes, flags=mmap.MAP_PRIVATE,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
        out = np.frombuffer(view, np.float64, count=n)
        key = id(out)
        _nan_arrays[key] = weakref.ref(out, lambda _, key=key: _nan_arrays.pop(key, None))
        return out
    except (OSError, ValueError):
        return np.full(n, np.nan)


def made_by_nan_column(values: np.ndarray) -> bool:
    """Whether ``values`` is (a view of) a mapped column of :func:`nan_column`.  It says how
    the column was made, not that it is still NaN: only for code that holds the table since
    it was read (the cache, which stores such a column as its length alone)."""
    while isinstance(values, np.ndarray):
        ref = _nan_arrays.get(id(values))
        if ref is not None and ref() is values:
            return True
        values = values.base
    return False


def _numbers(table: pd.DataFrame, spec: Mapping[str, float | None], file: str) -> pd.DataFrame:
    """Turn the format's numeric columns into floats; reject bad values by line.  Returns the
    table: the same object, or with the missing columns (their defaults) appended in ``spec``'s
    order as a new frame that shares every other column (a frame's ``table[col] = array``
    copies the array, which would fill a mapped column of NaN, see :func:`nan_column`)."""
    missing = {}
    for col, default in spec.items():
        if col not in table.columns:
            missing[col] = nan_column(len(table)) if default is None else np.full(len(table), float(default))
            continue
        raw = table[col].to_numpy()
        values = _parse_numbers(raw)
        bad = np.flatnonzero(np.isnan(values) & (raw != "") | np.isinf(values))
        if bad.size:
            raise InputError(f"'{col}' is not a number: '{raw[bad[0]]}'", file, _line(bad[0], file))
        if col in SIGNED:  # distances between coordinates must not overflow
            far = np.flatnonzero(np.abs(values) > MAX_COORDINATE)
            if far.size:
                raise InputError(f"'{col}' is out of range: '{raw[far[0]]}' (coordinates stay within "
                                 f"±{MAX_COORDINATE:.0e})", file, _line(far[0], file))
        if col not in SIGNED:
            neg = np.flatnonzero(values < 0)
            if neg.size:
                raise InputError(f"'{col}' is negative: '{raw[neg[0]]}'", file, _line(neg[0], file))
        if default is not None:
            values = np.where(np.isnan(values), default, values)
        table[col] = values
    if not missing:
        return table
    if not table.columns.is_unique:
        for col, value in missing.items():
            table[col] = value
        return table
    data = {col: table[col] for col in table.columns}
    data.update(missing)
    out = pd.DataFrame(data, index=table.index, columns=list(data), copy=False)
    out.attrs = dict(table.attrs)
    return out


def _parse_numbers(raw: np.ndarray) -> np.ndarray:
    """Cells as floats (NaN for empty or not a number), parsed once per distinct text."""
    if raw.dtype != object or len(raw) < 1000:
        return pd.to_numeric(pd.Series(np.where(raw == "", None, raw)), errors="coerce").to_numpy(float)
    codes, uniques = pd.factorize(raw)
    parsed = _parse_numbers(np.asarray(uniques, dtype=object)) if len(uniques) < len(raw) \
        else pd.to_numeric(pd.Series(np.where(uniques == "", None, uniques)), errors="coerce").to_numpy(float)
    return np.append(parsed, np.nan)[codes]


def _finite_sums(table: pd.DataFrame, col: str, file: str, by_layer: bool = False) -> None:
    """Reject numbers so large that their sum overflows (1e308 + 1e308 is inf): totals, shares
    and JSON would turn into inf, nan and 'Infinity' without a word."""
    with np.errstate(over="ignore", invalid="ignore"):
        values = table[col].to_numpy(float)
        if np.isfinite(np.nansum(values)):
            return
        where = ""
        if by_layer:
            sums = pd.Series(values).groupby(table["layer"].to_numpy()).sum()
            bad = [str(k) for k, v in sums.items() if not np.isfinite(v)]
            where = f" of layer '{bad[0]}'" if bad else " of all layers together"
    raise InputError(f"the '{col}' values{where} add up to more than the largest number "
                     f"(about 1.8e308); write them in a larger unit", file)


def _attributes(table: pd.DataFrame, known: Iterable[str]) -> None:
    """Other columns are kept; a column whose filled cells are all numbers becomes float."""
    for col in table.columns:
        if col in known:
            continue
        raw = table[col]
        values = pd.to_numeric(pd.Series(np.where(raw == "", None, raw)), errors="coerce")
        if (raw != "").any() and not (values.isna() & (raw != "")).any():
            table[col] = values.astype(float)


def _positions(table: pd.DataFrame, col: str, index: pd.Index | None, node_ids: np.ndarray,
               found: dict) -> np.ndarray:
    """Positions of the node names of ``table[col]`` in ``index`` (-1 when unknown): those the
    CSV reader found (``found[col]``, from its ``attrs["node_positions"]``; used when they name
    exactly these cells), else a hash lookup (in ``pd.Index(node_ids)`` when ``index`` is
    None: ids the reader proved unique)."""
    values = table[col].to_numpy(dtype=object)
    found = found.get(col)
    if found is not None and len(found) == len(values):
        pos = np.asarray(found, np.int64)
        if not len(pos) or (pos.min() >= 0 and pos.max() < len(node_ids)
                            and same_cells(node_ids[pos], values)):
            return pos
    return (index if index is not None else pd.Index(node_ids)).get_indexer(values)


def _duplicates(ids: pd.Series, what: str, file: str, hint: str = "",
                index: pd.Index | None = None) -> None:
    """Name the first repeated id; ``index``: ``pd.Index`` of the same ids, whose hash table
    is then built once for this check and for its lookups afterwards."""
    if (index if index is not None else pd.Index(ids.to_numpy(dtype=object))).is_unique:
        return
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first, second = rows[0], rows[1:][ids.iloc[rows[1:]].to_numpy() == ids.iloc[rows[0]]][0]
        raise InputError(f"duplicate {what} '{ids.iloc[first]}' (also on line {_line(first, file)}){hint}",
                         file, _line(second, file))


def _present(spec: Mapping[str, float | None], table: pd.DataFrame, flow_layers) -> dict:
    """The v2 columns to parse: those in the table, and all of them when a layer uses a flow rule."""
    return {col: default for col, default in spec.items() if flow_layers or col in table.columns}


def _priority(nodes: pd.DataFrame, suppliers: set, file: str) -> None:
    """Parse ``priority`` as integers; empty cells default to 1 for suppliers, else 0."""
    raw = nodes["priority"].to_numpy() if "priority" in nodes.columns else np.full(len(nodes), "", object)
    default = nodes["id"].isin(suppliers).to_numpy().astype(np.int64)
    values = pd.to_numeric(pd.Series(np.where(raw == "", None, raw)), errors="coerce").to_numpy(float)
    bad = np.flatnonzero((raw != "") & ~(np.isfinite(values) & (values == np.round(values))))
    if bad.size:
        raise InputError(f"'priority' is not an integer: '{raw[bad[0]]}'", file, _line(bad[0], file))
    nodes["priority"] = np.where(raw == "", default, np.nan_to_num(values)).astype(np.int64)



def _check_flow(nodes: pd.DataFrame, edges: pd.DataFrame, deps: pd.DataFrame,
                rules: Mapping[str, str], files: Mapping[str, str]) -> None:
    """The checks of docs/format.md (v2): thresholds, reactances, dispatch, sources of flow layers."""
    if "threshold" in deps.columns:
        t = deps["threshold"].to_numpy(float)
        bad = np.flatnonzero(~((t > 0) & (t <= 1)))
        if bad.size:
            raise InputError(f"'threshold' must be in (0, 1], not {t[bad[0]]:g}", files["dependencies"],
                             _line(bad[0], files["dependencies"]))
    if "reactance" in edges.columns:
        x = edges["reactance"].to_numpy(float)
        bad = np.flatnonzero(x == 0)
        if bad.size:
            raise InputError(f"edge '{edges['id'].iloc[bad[0]]}': 'reactance' must not be 0 (negative is a "
                             "series capacitor; join the buses, or give a small reactance)",
                             files["edges"], _line(bad[0], files["edges"]))
    if "dispatch" in nodes.columns:
        supply = nodes["supply"].to_numpy(float) if "supply" in nodes.columns else np.zeros(len(nodes))
        dispatch = nodes["dispatch"].to_numpy(float)
        bad = np.flatnonzero(dispatch > supply * (1 + TOLERANCE) + TOLERANCE)
        if bad.size:
            v = bad[0]
            raise InputError(f"node '{nodes['id'].iloc[v]}': dispatch {dispatch[v]:g} is above its supply "
                             f"{supply[v]:g}", files["nodes"], _line(v, files["nodes"]))
    layer = nodes["layer"].to_numpy(object)
    for name, rule in rules.items():
        if rule not in FLOW_RULES:
            continue
        here = layer == name
        bad = np.flatnonzero(here & (nodes["kind"].to_numpy(object) == "source")
                             & ~(nodes["supply"].to_numpy(float) > 0))
        if bad.size:
            raise InputError(f"node '{nodes['id'].iloc[bad[0]]}' has kind = source but no supply "
                             f"(layer '{name}' uses the {rule} rule; give it a supply > 0)",
                             files["nodes"], _line(bad[0], files["nodes"]))
        if rule != "dcflow":
            continue
        sources = here & (nodes["supply"].to_numpy(float) > 0)
        given = ~np.isnan(nodes["dispatch"].to_numpy(float))
        if (sources & given).any() and (sources & ~given).any():
            v = np.flatnonzero(sources & ~given)[0]
            raise InputError(f"node '{nodes['id'].iloc[v]}' has no dispatch while other sources of layer "
                             f"'{name}' have one (give it for every source of the layer or for none)",
                             files["nodes"], _line(v, files["nodes"]))
        edge_layer = edges["source"].map(dict(zip(nodes["id"], layer))).to_numpy(object)
        bad = np.flatnonzero((edge_layer == name) & np.isnan(edges["reactance"].to_numpy(float)))
        if bad.size:
            raise InputError(f"edge '{edges['id'].iloc[bad[0]]}' of dcflow layer '{name}' has no reactance",
                             files["edges"], _line(bad[0], files["edges"]))

def _layer_number(layer: str, key: str, value, positive: bool, file: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating, str)):
        raise InputError(f"layer '{layer}': {key} must be a number, not {value!r}", file)
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"layer '{layer}': {key} must be a number, not {value!r}", file) from None
    if not np.isfinite(number):
        raise InputError(f"layer '{layer}': {key} must be finite, not {value!r}", file)
    if positive and number <= 0:
        raise InputError(f"layer '{layer}': {key} must be > 0, not {value!r}", file)
    if number < 0:
        raise InputError(f"layer '{layer}': {key} must be >= 0, not {value!r}", file)
    return number


def _layer_settings(units, weights, bases, currency, file: str):
    """Validate the layer units, weights, bases and the currency label (system.toml)."""
    out_units = {}
    for layer, unit in (units or {}).items():
        if not isinstance(unit, str):
            raise InputError(f"layer '{layer}': unit must be a string, not {unit!r}", file)
        if unit.strip():
            out_units[str(layer)] = unit.strip()
    out_weights = {str(k): _layer_number(str(k), "weight", v, False, file)
                   for k, v in (weights or {}).items()}
    out_bases = {str(k): _layer_number(str(k), "base", v, True, file)
                 for k, v in (bases or {}).items()}
    if currency is not None and not isinstance(currency, str):
        raise InputError(f"currency must be a string, not {currency!r}", file)
    currency = currency.strip() if currency else None
    return out_units, out_weights, out_bases, currency or None


@dataclass
class InfrastructureSystem:
    """A coupled lifeline system: nodes, edges and dependencies as pandas tables.

    Build one with :func:`cascade.read_system` (a directory in the format of docs/format.md),
    :meth:`from_tables` or :meth:`from_networkx`; those validate.  Construct the dataclass
    directly only from tables that went through them.

    Attributes
    ----------
    nodes : pandas.DataFrame
        One row per node: ``id``, ``layer``, ``kind``, ``demand``, ``x``, ``y``,
        ``repair_time``, ``repair_cost`` and any other attribute columns.
    edges : pandas.DataFrame
        One row per edge: ``id``, ``source``, ``target``, ``directed`` (bool) and attributes.
    dependencies : pandas.DataFrame
        One row per (dependent, supplier): ``dependent``, ``supplier``, ``group`` (``''`` when
        the row is a group of its own), ``delay`` (hours) and attributes.
    name : str
    crs : str or None
        Coordinate reference system of ``x`` and ``y``, for example ``"EPSG:32650"``.
    rules : dict of str to str
        Rules set explicitly in ``system.toml``; see :meth:`layer_rules` for all layers.
    units : dict of str to str
        Units of the layers' amounts set explicitly (``[layers.NAME] unit``), e.g. ``"MW"``;
        see :meth:`layer_unit`.
    weights : dict of str to float
        Explicit weights (>= 0) of layers where results add layers together; see
        :meth:`layer_weight` (default 1).
    bases : dict of str to float
        Explicit per-unit bases (> 0) of layers, for ``dcflow`` layers; see
        :meth:`layer_base` (default 100).
    currency : str or None
        The label of repair costs (``[system] currency``), for example ``"EUR"``.
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame
    dependencies: pd.DataFrame
    name: str = "system"
    crs: str | None = None
    rules: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    bases: dict[str, float] = field(default_factory=dict)
    currency: str | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_tables(cls, nodes: pd.DataFrame, edges: pd.DataFrame | None = None,
                    dependencies: pd.DataFrame | None = None, *, name: str = "system",
                    crs: str | None = None, rules: Mapping[str, str] | None = None,
                    files: Mapping[str, str] | None = None,
                    units: Mapping[str, str] | None = None,
                    weights: Mapping[str, float] | None = None,
                    bases: Mapping[str, float] | None = None,
                    currency: str | None = None,
                    lines: Mapping[str, Iterable[int] | None] | None = None) -> "InfrastructureSystem":
        """Validate raw tables (any cell types) and build a system.

        Parameters
        ----------
        nodes, edges, dependencies : pandas.DataFrame
            Columns as in docs/format.md; ``edges`` and ``dependencies`` may be omitted.
        name, crs, rules, currency
            As in ``system.toml`` (``[system] currency`` labels repair costs).
        units, weights, bases : dict, optional
            Per-layer ``unit``, ``weight`` and ``base`` of ``system.toml`` (docs/format.md (v2)).
        files : dict, optional
            Names to use in error messages for ``nodes``, ``edges``, ``dependencies`` and
            ``system`` (defaults: ``nodes.csv`` and so on).
        lines : dict, optional
            For ``nodes``, ``edges`` and ``dependencies`` read from files: the file line each
            row starts on, so that errors name it (default: row + 2).

        Raises
        ------
        InputError
            On any of the bad inputs of docs/format.md, naming the file and line.
        """
        files = {"nodes": "nodes.csv", "edges": "edges.csv", "dependencies": "dependencies.csv",
                 "system": "system.toml", **(files or {})}
        if edges is None:
            edges = pd.DataFrame(columns=["source", "target"])
        if dependencies is None:
            dependencies = pd.DataFrame(columns=["dependent", "supplier"])

        rules = {str(k): str(v) for k, v in (rules or {}).items()}
        for layer, rule in rules.items():
            if rule not in RULES:
                raise InputError(f"layer '{layer}': unknown rule '{rule}' "
                                 f"(use {', '.join(RULES[:-1])} or {RULES[-1]})", files["system"])
        flow_layers = {layer for layer, rule in rules.items() if rule in FLOW_RULES}
        units, weights, bases, currency = _layer_settings(units, weights, bases, currency,
                                                          files["system"])

        # cascade.io.csv_dir's reader proves the ids unique while it looks up the node names
        # (one pyarrow hash set); else a pandas Index's hash table checks them here and is kept
        # for the lookups below.
        unique_ids = bool(nodes.attrs.get("stripped") and nodes.attrs.get("unique_ids"))
        nodes = _strings(nodes)
        lines = lines or {}
        f = _File.of(files["nodes"], lines.get("nodes"))
        _require(nodes, ["id", "layer"], f)
        node_index = None if unique_ids else pd.Index(nodes["id"].to_numpy(dtype=object))
        if node_index is not None:
            _duplicates(nodes["id"], "node id", f, index=node_index)
        if "kind" not in nodes.columns:
            nodes["kind"] = ""
        # 'source' is the one kind the model reads: 'Source' or 'SOURCE' mean it too.
        spelled = (_lower(nodes["kind"]) == "source") & (nodes["kind"].to_numpy() != "source")
        if spelled.any():
            nodes.loc[spelled, "kind"] = "source"
        given = {"nodes": set(nodes.columns)}   # columns the table has (others: defaults)
        nodes = _numbers(nodes, NODE_NUMBERS, f)
        nodes = _numbers(nodes, _present(FLOW_NODE_NUMBERS, nodes, flow_layers), f)
        _finite_sums(nodes, "demand", f, by_layer=True)
        _attributes(nodes, {"id", "layer", "kind", "priority", *NODE_NUMBERS, *FLOW_NODE_NUMBERS})
        node_layer = nodes["layer"].to_numpy(dtype=object)

        node_ids = nodes["id"].to_numpy(dtype=object)
        edge_positions = edges.attrs.get("node_positions", {}) if edges.attrs.get("stripped") else {}
        # The reader found every edge id given and distinct (one pyarrow hash), as for the nodes.
        edge_ids_unique = bool(edges.attrs.get("stripped") and edges.attrs.get("unique_ids"))
        edges = _strings(edges)
        f = _File.of(files["edges"], lines.get("edges"))
        _require(edges, ["source", "target"], f)
        if "id" not in edges.columns:
            edges["id"] = ""
        if not edge_ids_unique:   # (else none is blank)
            blank = edges["id"] == ""
            edges.loc[blank, "id"] = edges.loc[blank, "source"] + "->" + edges.loc[blank, "target"]
        ends = {}
        for end in ("source", "target"):
            ends[end] = _positions(edges, end, node_index, node_ids, edge_positions)
            unknown = np.flatnonzero(ends[end] < 0)
            if unknown.size:
                row = unknown[0]
                raise InputError(f"edge '{edges['id'].iloc[row]}' names unknown node "
                                 f"'{edges[end].iloc[row]}'", f, _line(row, f))
        layer_codes, layer_uniques = pd.factorize(node_layer)
        across = np.flatnonzero(layer_codes[ends["source"]] != layer_codes[ends["target"]])
        if across.size:
            row = across[0]
            raise InputError(f"edge '{edges['id'].iloc[row]}' joins layer "
                             f"'{node_layer[ends['source'][row]]}' to layer "
                             f"'{node_layer[ends['target'][row]]}'; edges stay inside one layer",
                             f, _line(row, f))
        # The ends as the node ids' own string objects (equal text, no second copy in memory).
        del edge_positions
        edges["source"] = node_ids[ends["source"]]
        edges["target"] = node_ids[ends["target"]]
        if not edge_ids_unique:
            _duplicates(edges["id"], "edge id", f, "; give parallel edges an explicit id")
        if "directed" not in edges.columns:
            edges["directed"] = ""
        flag = pd.Series(_lower(edges["directed"]), index=edges.index)
        bad = np.flatnonzero(~flag.isin(TRUE | FALSE).to_numpy())
        if bad.size:
            raise InputError(f"'directed' must be true or false, not '{edges['directed'].iloc[bad[0]]}'",
                             f, _line(bad[0], f))
        edges["directed"] = flag.isin(TRUE).to_numpy()
        given["edges"] = set(edges.columns)
        edges = _numbers(edges, EDGE_NUMBERS, f)
        edges = _numbers(edges, _present(FLOW_EDGE_NUMBERS, edges, flow_layers), f)
        for col in ("repair_time", "repair_cost"):  # recovery adds them up over nodes and edges
            # A column added as its default (NaN) adds nothing: not read (see nan_column).
            parts = [t[[col]] for key, t in (("nodes", nodes), ("edges", edges)) if col in given[key]]
            if parts:
                _finite_sums(pd.concat(parts), col, f"{files['nodes']} and {f}")
        _attributes(edges, {"id", "source", "target", "directed", *EDGE_NUMBERS, *FLOW_EDGE_NUMBERS})
        order = ["id", "source", "target", "directed"] \
            + [c for c in edges.columns if c not in ("id", "source", "target", "directed")]
        if list(edges.columns) != order:   # (a selection copies every column)
            edges = edges[order]

        dep_positions = dependencies.attrs.get("node_positions", {}) \
            if dependencies.attrs.get("stripped") else {}
        deps = _strings(dependencies)
        f = _File.of(files["dependencies"], lines.get("dependencies"))
        _require(deps, ["dependent", "supplier"], f)
        dep_ends = {}
        for col in ("dependent", "supplier"):
            dep_ends[col] = _positions(deps, col, node_index, node_ids, dep_positions)
            unknown = np.flatnonzero(dep_ends[col] < 0)
            if unknown.size:
                row = unknown[0]
                raise InputError(f"{col} '{deps[col].iloc[row]}' is not a node", f, _line(row, f))
            deps[col] = node_ids[dep_ends[col]]
        selfdep = np.flatnonzero(dep_ends["dependent"] == dep_ends["supplier"])
        if selfdep.size:
            raise InputError(f"node '{deps['dependent'].iloc[selfdep[0]]}' depends on itself",
                             f, _line(selfdep[0], f))
        if "group" not in deps.columns:
            deps["group"] = ""
        deps = _numbers(deps, DEPENDENCY_NUMBERS, f)
        deps = _numbers(deps, _present(FLOW_DEPENDENCY_NUMBERS, deps, flow_layers), f)
        _attributes(deps, {"dependent", "supplier", "group", *DEPENDENCY_NUMBERS,
                           *FLOW_DEPENDENCY_NUMBERS})
        if "priority" in nodes.columns or flow_layers:
            _priority(nodes, set(deps["supplier"]), _File.of(files["nodes"], lines.get("nodes")))
        _check_flow(nodes, edges, deps, rules, {key: _File.of(name, lines.get(key)) for key, name in files.items()})
        system = cls(nodes=nodes, edges=edges, dependencies=deps, name=str(name),
                     crs=crs if crs else None, rules=rules, units=units, weights=weights, bases=bases,
                     currency=currency)
        # What the checks above found, for compile_system to reuse instead of hashing every
        # name again (it checks that the tables still hold these names: a hint, not a truth).
        system._node_hint = (node_ids, node_index,
                             {("edges", "source"): ends["source"], ("edges", "target"): ends["target"],
                              ("dependencies", "dependent"): dep_ends["dependent"],
                              ("dependencies", "supplier"): dep_ends["supplier"]})
        return system

    @classmethod
    def from_networkx(cls, layers: Mapping[str, "nx.Graph"], dependencies=None, *,
                      name: str = "system", crs: str | None = None,
                      rules: Mapping[str, str] | None = None,
                      units: Mapping[str, str] | None = None,
                      weights: Mapping[str, float] | None = None,
                      bases: Mapping[str, float] | None = None,
                      currency: str | None = None) -> "InfrastructureSystem":
        """Build a system from one networkx graph per layer.

        Parameters
        ----------
        layers : dict of str to networkx.Graph
            Layer name to graph.  Node attributes (``kind``, ``demand``, ``x``, ``y``, ...)
            and edge attributes (``id``, ``repair_time``, ...) are carried over.  Edges of a
            ``DiGraph`` are directed; node names must be unique across layers.
        dependencies : iterable or pandas.DataFrame, optional
            Rows ``(dependent, supplier)``, ``(dependent, supplier, {"group": ..., "delay": ...})``
            or dicts with those keys, or a DataFrame with the columns of ``dependencies.csv``.
        name, crs, rules, units, weights, bases, currency
            As in ``system.toml``.

        Examples
        --------
        >>> import networkx as nx
        >>> power = nx.path_graph(["plant", "sub"])
        >>> nx.set_node_attributes(power, {"plant": "source"}, "kind")
        >>> water = nx.Graph([("pump", "tap")])
        >>> s = InfrastructureSystem.from_networkx({"power": power, "water": water},
        ...                                        [("pump", "sub")])
        >>> len(s.nodes), len(s.edges), len(s.dependencies)
        (4, 2, 1)
        """
        node_rows, edge_rows = [], []
        for layer, graph in layers.items():
            for node, attrs in graph.nodes(data=True):
                node_rows.append({**attrs, "id": node, "layer": layer})
            for u, v, attrs in graph.edges(data=True):
                edge_rows.append({**attrs, "source": u, "target": v,
                                  "directed": graph.is_directed()})
        if isinstance(dependencies, pd.DataFrame):
            dep_table = dependencies
        else:
            dep_rows = []
            for row in dependencies or []:
                if isinstance(row, Mapping):
                    dep_rows.append(dict(row))
                else:
                    dependent, supplier, *rest = row
                    dep_rows.append({**(rest[0] if rest else {}), "dependent": dependent,
                                     "supplier": supplier})
            dep_table = pd.DataFrame(dep_rows, columns=None if dep_rows else ["dependent", "supplier"])
        try:
            return cls._from_rows(node_rows, edge_rows, dep_table, name, crs, rules,
                                  units=units, weights=weights, bases=bases, currency=currency)
        except InputError as err:   # tables built in Python have rows, not file lines
            if err.line is not None:
                err.line, err.unit = err.line - 1, "row"
            raise

    @classmethod
    def _from_rows(cls, node_rows, edge_rows, dep_table, name, crs, rules, **settings):
        return cls.from_tables(
            pd.DataFrame(node_rows, columns=None if node_rows else ["id", "layer"]),
            pd.DataFrame(edge_rows, columns=None if edge_rows else ["source", "target"]),
            dep_table, name=name, crs=crs, rules=rules, **settings,
            files={"nodes": "nodes (from networkx)", "edges": "edges (from networkx)",
                   "dependencies": "dependencies"})

    # ------------------------------------------------------------------ queries
    @property
    def layers(self) -> list[str]:
        """Layer names in name order (the order of every per-layer output)."""
        return sorted(set(pd.unique(self.nodes["layer"].to_numpy(dtype=object))) | set(self.rules))

    def fallback_warnings(self) -> list[str]:
        """Layers whose rule fell back to ``giant`` for lack of a source although they look
        like a supply lifeline (their name, or a node kind like ``plant`` or ``Src``)."""
        out = []
        rules = self.layer_rules()
        kinds = self.nodes.groupby("layer")["kind"].agg(lambda k: sorted(set(k)))
        for layer, rule in rules.items():
            if layer in self.rules or rule != "giant" or layer not in kinds.index:
                continue
            looks = [k for k in kinds[layer] if k.lower() in SOURCE_LIKE or "source" in k.lower()]
            if looks or layer.lower() in SUPPLY_LAYERS:
                why = (f"kind(s) {', '.join(repr(k) for k in looks[:3])} look like a source"
                       if looks else "its name is a supply lifeline")
                out.append(f"layer '{layer}' has no node of kind 'source', so its rule fell back to "
                           f"'giant' (a node works when in the layer's largest connected piece), but "
                           f"{why}: mark its sources with kind = source, or set "
                           f"[layers.{layer}] rule = \"giant\" in system.toml to keep this rule")
        return out

    def layer_rules(self) -> dict[str, str]:
        """The rule of every layer: explicit, else ``source`` when it has a source, else ``giant``."""
        with_source = set(pd.unique(self.nodes["layer"].to_numpy(dtype=object)[
            self.nodes["kind"].to_numpy(dtype=object) == "source"]))
        return {layer: self.rules.get(layer, "source" if layer in with_source else "giant")
                for layer in self.layers}

    def flow_layers(self) -> list[str]:
        """Layers whose rule is ``flow`` or ``dcflow`` (docs/format.md (v2)), in name order."""
        return [layer for layer, rule in self.layer_rules().items() if rule in FLOW_RULES]

    def layer_unit(self, layer: str) -> str:
        """The layer's unit label from ``system.toml`` (``''`` when not given)."""
        return self.units.get(layer, "")

    def layer_weight(self, layer: str) -> float:
        """The layer's weight where layers are summed (default 1)."""
        return float(self.weights.get(layer, 1.0))

    def layer_base(self, layer: str) -> float:
        """The per-unit base of a ``dcflow`` layer in its unit (default 100)."""
        return float(self.bases.get(layer, 100.0))

    def copy(self) -> "InfrastructureSystem":
        return InfrastructureSystem(self.nodes.copy(), self.edges.copy(), self.dependencies.copy(),
                                    self.name, self.crs, dict(self.rules), dict(self.units),
                                    dict(self.weights), dict(self.bases), self.currency)

    def __repr__(self) -> str:
        return (f"InfrastructureSystem({self.name!r}: {len(self.nodes)} nodes, {len(self.edges)} edges, "
                f"{len(self.dependencies)} dependencies, layers {self.layers})")
