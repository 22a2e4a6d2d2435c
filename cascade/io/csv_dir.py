"""Read and write a system directory (docs/format.md): nodes.csv, edges.csv, dependencies.csv, system.toml."""
from __future__ import annotations

import csv
import os
import re
import tempfile
import warnings
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, reading
from ..system import (EDGE_NUMBERS, FLOW_EDGE_NUMBERS, FLOW_NODE_NUMBERS, NODE_NUMBERS,
                      InfrastructureSystem)

SYSTEM_KEYS = {"name", "crs", "currency"}
LAYER_KEYS = {"rule", "unit", "weight", "base"}


def _read_csv(path: Path, required: bool, strip: bool = False, known: tuple | None = None,
              keep: dict | None = None, raw: bool = False) -> "pd.DataFrame | _Raw | None":
    """A CSV file as a table of strings (``''`` for empty cells), the file line of each row in
    ``attrs["lines"]`` when it is not simply row + 2.

    Regular files (one line per row, no quoted field starting after a space) are read by
    pyarrow's multi-threaded reader; every other file, and every file pyarrow refuses, by pandas
    as before, so each bad input keeps its one-line message naming the file and the line.
    With ``strip``, cells come stripped of surrounding whitespace (as
    :meth:`InfrastructureSystem.from_tables` would do) and the table is marked so that it does
    not strip them again.  ``known``, ``keep`` and ``raw`` are the fast path's (see
    :func:`_read_csv_arrow`).
    """
    if not path.exists():
        if required:
            raise InputError("missing file", str(path))
        return None
    fast = _read_csv_arrow(path, strip, known, keep, raw)
    if fast is not None:
        return fast
    try:
        with reading(path, "CSV file"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                                encoding="utf-8-sig", index_col=False)
            if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                _raise_long_row(path)
            header, header_line, lines = record_lines(path)
        check_header(header, header_line, path)
        # The file line where each row starts (blank lines and multi-line quoted fields make it
        # differ from row + 2); from_tables names these lines in its errors.  An array, not a
        # list: pandas deep-copies attrs on every operation.
        if len(lines) == len(table):
            table.attrs["lines"] = np.asarray(lines, np.int64)
        return table
    except pd.errors.EmptyDataError:
        raise InputError("empty file (it needs at least a header line)", str(path)) from None
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        detail = str(exc).strip().splitlines()[-1]
        raise InputError(f"malformed CSV: {detail}", str(path),
                         int(match.group(1)) if match else None) from None


# The characters Python's str.strip() removes.
# (the list of "".join(chr(c) for c in range(0x110000) if chr(c).isspace()); a test checks it).
PY_SPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
            "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
# Space before a quoted field: pandas (skipinitialspace) reads it as quoted, pyarrow would not.
_SPACE_QUOTE = re.compile(rb'(^|,) +"', re.MULTILINE)
# Bytes that are never white space in UTF-8 text: ASCII except the characters of PY_SPACE.  A
# file made of these and line ends alone has no cell to trim.
_NO_SPACE = bytes(b for b in range(128) if not chr(b).isspace())
_BLANK_LINE = re.compile(rb'(?:\A|\n)[ \t\r\x0b\x0c]*\n|\n[ \t\r\x0b\x0c]+\Z')


# Columns that name nodes: read as the node ids' own objects when every name is known.
NODE_COLUMNS = ("source", "target", "dependent", "supplier")


def _read_csv_arrow(path: Path, strip: bool, known: tuple | None = None,
                    keep: dict | None = None, raw: bool = False) -> "pd.DataFrame | _Raw | None":
    """The fast path of :func:`_read_csv`, or None when the file needs the careful one.

    Each column is dictionary-encoded by pyarrow and only its distinct values become Python
    strings (a column of a million repeated layer names costs five strings and an array of
    pointers).  The result equals pandas' ``read_csv(dtype=str, keep_default_na=False,
    skipinitialspace=True)`` of the same file.

    ``known`` is ``(ids, objects)``: the node ids as a pyarrow array and as the object array of
    their Python strings; columns of :data:`NODE_COLUMNS` whose every cell is one of them are
    looked up by pyarrow and filled with those same objects (no new strings, no hashing of
    Python strings).  ``keep``, a dict, receives the pyarrow ``id`` column.  With ``raw``, the
    trimmed columns come back as a :class:`_Raw` (no Python strings yet), for
    :func:`_finish_tables` to look the node names of every file up at once.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return None
    try:
        with reading(path, "CSV file"):
            data = path.read_bytes()
    except InputError:
        return None   # the careful path reports it
    view = memoryview(data)
    if data.startswith(b"\xef\xbb\xbf"):
        view = view[3:]
    text = bytes(view[: min(len(view), 1 << 16)])
    end = text.find(b"\n")
    if end <= 0 or b"\r" in data and b"\r\n" not in data:
        return None
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if b'"' in data and _SPACE_QUOTE.search(data):
        return None
    # Blank (or all-space) lines: pandas skips them, pyarrow would read a row of empty cells.
    body = bytes(view) if len(view) != len(data) else data
    if body.startswith((b"\n", b"\r\n")) or b"\n\n" in body or b"\n\r\n" in body:
        return None
    if (b"\n " in body or b"\n\t" in body or body[:1] in (b" ", b"\t")) and _BLANK_LINE.search(body):
        return None
    try:
        header = next(csv.reader([text[:end].decode("utf-8").rstrip("\r")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        return None
    names = [h.lstrip(" ") for h in header]
    if not header or len(set(header)) != len(header) or len({n.strip() for n in names}) != len(names) \
            or any(h.startswith('"') or not h.strip() for h in header):
        return None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(view),
            read_options=pacsv.ReadOptions(use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows + 1 != n_lines or table.column_names != header:
        return None
    # Trimming is a no-op on a file without white space inside its lines (one pass of
    # bytes.translate instead of a Unicode trim of every column).
    rest = data.translate(None, _NO_SPACE)
    trim = len(rest) != rest.count(b"\n")
    return _arrow_frame(table, names, strip, known, keep, trim, raw)


class _Raw:
    """A table read by pyarrow, its cells trimmed, not yet a DataFrame: ``frame()`` makes it
    one (see :func:`_finish_tables`)."""

    def __init__(self, names: list[str], columns: list, strip: bool):
        self.names, self.columns, self.strip = names, columns, strip

    def column(self, name: str):
        return self.columns[self.names.index(name)] if name in self.names else None

    def frame(self, found: dict | None = None, objects: np.ndarray | None = None,
              keep: dict | None = None) -> pd.DataFrame:
        return _build_frame(self.names, self.columns, self.strip, found or {}, objects, keep)


def _lookup(parts: list, ids) -> list:
    """Positions of the names of each pyarrow array of ``parts`` among the node ids ``ids``
    (one hash set of the ids for all of them): per part an int array, or None when a name is
    not a node id (the checks of :meth:`InfrastructureSystem.from_tables` then name it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not parts:
        return []
    codes = pc.index_in(pa.chunked_array([p.cast(pa.string()) for p in parts], pa.string()),
                        value_set=ids.cast(pa.string()))
    ends = np.cumsum([0] + [len(part) for part in parts])
    out = []
    for i in range(len(parts)):
        part = codes.slice(ends[i], ends[i + 1] - ends[i])
        out.append(part.to_numpy() if part.null_count == 0 else None)
    return out


def _distinct(ids) -> bool:
    """Whether the pyarrow column of ids has no blank cell and no repeated one (one pyarrow
    hash; :meth:`InfrastructureSystem.from_tables` then hashes the edge ids no more)."""
    import pyarrow.compute as pc

    if len(ids) == 0:
        return True
    if pc.any(pc.equal(ids, "")).as_py():
        return False
    # Each id found at its own position (count_distinct peaked 260 MB higher at 10^6 edges).
    codes = pc.index_in(ids, value_set=ids)
    return codes.null_count == 0 and bool(np.array_equal(codes.to_numpy(), np.arange(len(ids))))


def _finish_tables(nodes, edges, deps) -> tuple:
    """The tables of :func:`read_system` as DataFrames, from what the readers returned
    (DataFrames, or :class:`_Raw` tables of the fast path).

    On the fast path the node ids and every column that names nodes (of edges and
    dependencies) are looked up in one pyarrow hash set of the ids: every node id found at its
    own position proves the ids unique (``attrs["unique_ids"]``, so that
    :meth:`InfrastructureSystem.from_tables` hashes them no more; the same attribute of the
    edges says their ids are all given and distinct, see :func:`_distinct`), and the other columns
    become the node ids' own string objects with their positions in ``attrs["node_positions"]``
    (checked there against the cells)."""
    ids = nodes.column("id") if isinstance(nodes, _Raw) else None
    wanted = [(key, table, name) for key, table in (("edges", edges), ("dependencies", deps))
              if ids is not None and isinstance(table, _Raw)
              for name in table.names if name in NODE_COLUMNS]
    found: dict = {"edges": {}, "dependencies": {}}
    unique = False
    distinct = False
    if ids is not None:
        # (Not beside the nodes' conversion to Python strings on a thread: that peaked 200 MB
        # higher at 10^6 nodes.)
        codes = _lookup([ids] + [table.column(name) for _, table, name in wanted], ids)
        if isinstance(edges, _Raw) and "id" in edges.names:
            distinct = _distinct(edges.column("id"))
        unique = codes[0] is not None and bool(np.array_equal(codes[0], np.arange(len(ids))))
        for (key, _, name), pos in zip(wanted, codes[1:]):
            if pos is not None:
                found[key][name] = pos
        del codes
    if isinstance(nodes, _Raw):
        nodes = nodes.frame()
    if unique:
        nodes.attrs["unique_ids"] = True
    objects = nodes["id"].to_numpy(dtype=object) if ids is not None else None
    if isinstance(edges, _Raw):
        edges = edges.frame(found["edges"], objects)
        if distinct:
            edges.attrs["unique_ids"] = True
    if isinstance(deps, _Raw):
        deps = deps.frame(found["dependencies"], objects)
    return nodes, edges, deps


def _arrow_frame(table, names: list[str], strip: bool, known: tuple | None = None,
                 keep: dict | None = None, trim: bool = True, raw: bool = False):
    """A pyarrow table of strings as the DataFrame of :func:`_read_csv_arrow` (column names
    ``names``; ``trim=False``: no cell has white space to trim), or with ``raw`` a
    :class:`_Raw` of its trimmed columns."""
    import pyarrow.compute as pc

    trimmed = []
    for name, column in zip(names, table.columns):
        column = column.combine_chunks()
        # Python's str.strip() (every character for which str.isspace() holds), or pandas'
        # skipinitialspace (the spaces that start a field).
        if trim:
            column = pc.utf8_trim(column, characters=PY_SPACE) if strip \
                else pc.utf8_ltrim(column, characters=" ")
        trimmed.append(column)
    del table
    if raw:
        return _Raw(names, trimmed, strip)
    # The columns that name nodes are looked up together: one hash set of the node ids per
    # file, not one per column.
    found = {}
    lookup = [name for name in names if name in NODE_COLUMNS] if known is not None else []
    for name, pos in zip(lookup, _lookup([trimmed[names.index(name)] for name in lookup],
                                         known[0] if known is not None else None)):
        if pos is not None:
            found[name] = pos
    return _build_frame(names, trimmed, strip, found, known[1] if known is not None else None, keep)


def _build_frame(names: list[str], trimmed: list, strip: bool, found: dict,
                 objects: np.ndarray | None, keep: dict | None) -> pd.DataFrame:
    """The DataFrame of trimmed pyarrow columns; the columns of ``found`` (node positions)
    become the node ids' own objects ``objects[positions]``."""
    columns = {}
    for name, column in zip(names, trimmed):
        if keep is not None and name == "id":
            keep["id"] = column
        head = column.slice(0, 4096)
        if name in found:
            columns[name] = objects[found[name]]
            continue
        if len(head) and len(head.unique()) <= len(head) // 2:
            # Few distinct values: one Python string each and an array of pointers.
            encoded = column.dictionary_encode()
            uniques = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
            columns[name] = uniques[encoded.indices.to_numpy(zero_copy_only=False)]
        else:
            columns[name] = column.to_numpy(zero_copy_only=False).astype(object, copy=False)
    out = pd.DataFrame(columns, columns=names, copy=False)
    if strip:
        out.attrs["stripped"] = True
    if found:
        # The node positions of those columns: from_tables checks and uses them (no new hash).
        out.attrs["node_positions"] = found
    return out


def record_lines(path: Path) -> tuple[list[str], int, list[int]]:
    """The header's fields and line, and the line each data row starts on, skipping the blank
    lines pandas skips (a quoted field may span lines)."""
    header, header_line, lines = None, 0, []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = csv.reader(fh, skipinitialspace=True)
        end = 0
        for row in rows:
            start, end = end + 1, rows.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header, header_line = row, start
            else:
                lines.append(start)
    return header or [], header_line, lines


def check_header(header: list[str], line: int, path: Path) -> None:
    """A column named twice would be renamed by pandas ('id.1') and read as another column."""
    seen = {}
    for i, name in enumerate(header, start=1):
        key = name.strip()
        if key in seen:
            raise InputError(f"column '{key}' appears twice in the header (columns {seen[key]} and {i}); "
                             "give every column its own name", str(path), line)
        seen[key] = i


def _raise_long_row(path: Path) -> None:
    """Name the first row with more fields than the header (pandas would drop them)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = csv.reader(fh)
        width = len(next(rows))
        for row in rows:
            if len(row) > width:
                raise InputError(f"malformed CSV: {len(row)} fields where the header has {width}",
                                 str(path), rows.line_num)
    raise InputError("malformed CSV: a row has more fields than the header", str(path))


def _read_toml(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        with reading(path, "TOML file"), open(path, "rb") as fh:
            config = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"malformed TOML: {exc}", str(path)) from None
    unknown = set(config) - {"system", "layers"}
    if unknown:
        raise InputError(f"unknown table '{sorted(unknown)[0]}' (expected [system] and [layers.NAME])",
                         str(path))
    if not isinstance(config.get("system", {}), dict) or not isinstance(config.get("layers", {}), dict):
        raise InputError("[system] and [layers] must be tables", str(path))
    unknown = set(config.get("system", {})) - SYSTEM_KEYS
    if unknown:
        raise InputError(f"unknown key '{sorted(unknown)[0]}' in [system] (expected name, crs, currency)", str(path))
    for layer, table in config.get("layers", {}).items():
        if not isinstance(table, dict):
            raise InputError(f"[layers.{layer}] must be a table", str(path))
        unknown = set(table) - LAYER_KEYS
        if unknown:
            raise InputError(f"unknown key '{sorted(unknown)[0]}' in [layers.{layer}] "
                             "(expected rule, unit, weight, base)",
                             str(path))
    return config


def read_system(path: str | os.PathLike) -> InfrastructureSystem:
    """Read a system directory.

    Parameters
    ----------
    path : str or path-like
        A directory holding ``nodes.csv`` and ``edges.csv``, and optionally
        ``dependencies.csv`` and ``system.toml``.

    Returns
    -------
    InfrastructureSystem

    Raises
    ------
    InputError
        On every bad input of docs/format.md, naming the file and the line.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("not a system directory" if root.exists() else "no such directory", str(root))
    fmt = system_format(root)
    ext = ".parquet" if fmt == "parquet" else ".csv"
    reader = _read_parquet if fmt == "parquet" else _read_csv
    # Read in file order (a file's reading error comes first; one at a time: two at once
    # peaked 160 MB higher at 10^6 nodes), then the node names of every table looked up at
    # once (_finish_tables).
    nodes = reader(root / f"nodes{ext}", required=True, strip=True, raw=True)
    edges = reader(root / f"edges{ext}", required=True, strip=True, raw=True)
    deps = reader(root / f"dependencies{ext}", required=False, strip=True, raw=True)
    nodes, edges, deps = _finish_tables(nodes, edges, deps)
    config = _read_toml(root / "system.toml")
    system = config.get("system", {})
    rules = {layer: table.get("rule") for layer, table in config.get("layers", {}).items()
             if "rule" in table}
    for layer, rule in rules.items():
        if not isinstance(rule, str):
            raise InputError(f"layer '{layer}': rule must be a string", str(root / "system.toml"))
    settings = {key: {layer: table[key] for layer, table in config.get("layers", {}).items() if key in table}
                for key in ("unit", "weight", "base")}
    for layer, unit in settings["unit"].items():
        if not isinstance(unit, str):
            raise InputError(f"layer '{layer}': unit must be a string", str(root / "system.toml"))
    try:
        return _from_tables(root, ext, nodes, edges, deps, system, rules, settings)
    except InputError as err:
        if fmt == "parquet" and err.line is not None and str(err.file).endswith(".parquet"):
            err.line, err.unit = err.line - 1, "row"   # rows of data, 1 = the first
        raise


def _from_tables(root, ext, nodes, edges, deps, system, rules, settings):
    return InfrastructureSystem.from_tables(
        nodes, edges, deps, name=str(system.get("name", root.resolve().name)),
        crs=system.get("crs"), rules=rules, currency=system.get("currency"), units=settings["unit"], weights=settings["weight"],
        bases=settings["base"],
        lines={key: table.attrs.get("lines") for key, table in
               (("nodes", nodes), ("edges", edges), ("dependencies", deps)) if table is not None},
        files={"nodes": str(root / f"nodes{ext}"), "edges": str(root / f"edges{ext}"),
               "dependencies": str(root / f"dependencies{ext}"), "system": str(root / "system.toml")})


TABLES = ("nodes", "edges", "dependencies")


def system_format(root: Path) -> str:
    """``"csv"`` or ``"parquet"``: the format of a system directory's tables (docs/format.md).

    A directory holds its tables in one format: ``nodes.parquet`` without ``nodes.csv`` is a
    Parquet system; both at once is an error (which one is meant?)."""
    for name in TABLES:
        if (root / f"{name}.csv").exists() and (root / f"{name}.parquet").exists():
            raise InputError(f"both {name}.csv and {name}.parquet: a system keeps its tables in one "
                             "format (remove one, or use cascade convert)", str(root))
    if (root / "nodes.parquet").exists() and not (root / "nodes.csv").exists():
        if any((root / f"{name}.csv").exists() for name in TABLES):
            raise InputError("nodes.parquet with CSV tables: a system keeps its tables in one format",
                             str(root))
        return "parquet"
    if any((root / f"{name}.parquet").exists() for name in TABLES):
        raise InputError("Parquet tables without nodes.parquet: a system keeps its tables in one "
                         "format", str(root))
    return "csv"


def _read_parquet(path: Path, required: bool, strip: bool = True, known: tuple | None = None,
                  keep: dict | None = None, raw: bool = False) -> "pd.DataFrame | _Raw | None":
    """A Parquet table as the strings :func:`_read_csv` gives for the same table in CSV: each
    column cast to text by pyarrow (numbers in their shortest exact form, booleans as
    true/false, missing cells as ``''``), so one set of checks covers both formats."""
    if not path.exists():
        if required:
            raise InputError("missing file", str(path))
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise InputError("reading Parquet needs pyarrow (pip install pyarrow)", str(path)) from None
    try:
        with reading(path, "Parquet file"):
            table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError)):
            raise
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", str(path)) from None
    names = [str(n).strip() for n in table.column_names]
    seen = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise InputError(f"column '{name}' appears twice (columns {seen[name]} and {i}); "
                             "give every column its own name", str(path))
        seen[name] = i
    columns = []
    for name, column in zip(names, table.columns):
        try:
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                column = column.cast(pa.string())
        except (pa.ArrowException, ValueError):
            raise InputError(f"column '{name}' of type {column.type} cannot be read as text or "
                             "numbers", str(path)) from None
        columns.append(pc.fill_null(column, ""))
    return _arrow_frame(pa.table(columns, names=[f"c{i}" for i in range(len(columns))]), names,
                        strip, known, keep, raw=raw)


def _toml_string(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def layer_toml(layer: str, rule: str | None = None, unit: str | None = None,
               weight: float | None = None, base: float | None = None) -> list[str]:
    """The lines of one ``[layers.NAME]`` table of system.toml (settings that are None left out)."""
    lines = [f"[layers.{_toml_string(layer)}]"]
    if rule is not None:
        lines.append(f"rule = {_toml_string(rule)}")
    if unit is not None:
        lines.append(f"unit = {_toml_string(unit)}")
    for key, value in (("weight", weight), ("base", base)):
        if value is not None:
            lines.append(f"{key} = {float(value)!r}")
    return lines


def write_system(system: InfrastructureSystem, path: str | os.PathLike, format: str = "csv") -> None:
    """Write a system directory that :func:`read_system` reads back to the same tables.

    ``format`` is ``"csv"`` (nodes.csv, ...) or ``"parquet"`` (nodes.parquet, ...: text
    columns as strings, numbers as float64, ``directed`` as booleans).  Each file is written to
    a temporary name and renamed, so a reader never sees half a file.
    """
    if format not in ("csv", "parquet"):
        raise ValueError("format must be 'csv' or 'parquet'")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    # Optional numeric columns that are empty everywhere are left out (the reader adds them back).
    nodes = system.nodes.drop(columns=[c for c in [*NODE_NUMBERS, *FLOW_NODE_NUMBERS] if c != "demand"
                                       and c in system.nodes and system.nodes[c].isna().all()])
    edges = system.edges.drop(columns=[c for c in [*EDGE_NUMBERS, *FLOW_EDGE_NUMBERS] if c in system.edges
                                       and system.edges[c].isna().all()])
    edges["directed"] = np.where(edges["directed"].astype(bool), "true", "false")
    lines = ["[system]", f"name = {_toml_string(system.name)}"]
    if system.crs:
        lines.append(f"crs = {_toml_string(system.crs)}")
    if system.currency:
        lines.append(f"currency = {_toml_string(system.currency)}")
    for layer in sorted(set(system.rules) | set(system.units) | set(system.weights) | set(system.bases)):
        lines += [""] + layer_toml(layer, system.rules.get(layer), system.units.get(layer),
                                   system.weights.get(layer), system.bases.get(layer))
    if format == "parquet":
        edges["directed"] = system.edges["directed"].astype(bool).to_numpy()
        texts = {f"{name}.parquet": _parquet_bytes(table) for name, table in
                 (("nodes", nodes), ("edges", edges), ("dependencies", system.dependencies))}
    else:
        texts = {
            "nodes.csv": nodes.to_csv(index=False, lineterminator="\n"),
            "edges.csv": edges.to_csv(index=False, lineterminator="\n"),
            "dependencies.csv": system.dependencies.to_csv(index=False, lineterminator="\n"),
        }
    texts["system.toml"] = "\n".join(lines) + "\n"
    for name, text in texts.items():
        write_atomic(root / name, text)


def _parquet_bytes(table: pd.DataFrame) -> bytes:
    """A table as the bytes of a Parquet file (zstd-compressed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


# A cell that starts with one of these is run as a formula by spreadsheets (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells that a spreadsheet would run as a formula (they start
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) start with ``'`` instead, which
    spreadsheets show as text.  Numbers are left alone.  :func:`restore_ids` undoes it for ids."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = [("'" + v) if isinstance(v, str) and v.startswith(FORMULA_START) else v
                        for v in out[col]]
    return out


def restore_ids(values, known) -> list:
    """Ids (or layer names) read back from a CSV written with ``--csv-safe``: ``'=x`` is ``=x``
    when only the latter is known (a value that is known as written is kept; other text stays
    as written)."""
    out = []
    for v in values:
        if isinstance(v, str) and v not in known and v[:1] == "'" and v[1:2] and \
                v[1:].startswith(FORMULA_START) and v[1:] in known:
            v = v[1:]
        out.append(v)
    return out


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
