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


def _read_csv(path: Path, required: bool) -> pd.DataFrame | None:
    if not path.exists():
        if required:
            raise InputError("missing file", str(path))
        return None
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
        # differ from row + 2); from_tables names these lines in its errors.
        if len(lines) == len(table):
            table.attrs["lines"] = lines
        return table
    except pd.errors.EmptyDataError:
        raise InputError("empty file (it needs at least a header line)", str(path)) from None
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        detail = str(exc).strip().splitlines()[-1]
        raise InputError(f"malformed CSV: {detail}", str(path),
                         int(match.group(1)) if match else None) from None


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
    nodes = _read_csv(root / "nodes.csv", required=True)
    edges = _read_csv(root / "edges.csv", required=True)
    deps = _read_csv(root / "dependencies.csv", required=False)
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
    return InfrastructureSystem.from_tables(
        nodes, edges, deps, name=str(system.get("name", root.resolve().name)),
        crs=system.get("crs"), rules=rules, currency=system.get("currency"), units=settings["unit"], weights=settings["weight"],
        bases=settings["base"],
        lines={key: table.attrs.get("lines") for key, table in
               (("nodes", nodes), ("edges", edges), ("dependencies", deps)) if table is not None},
        files={"nodes": str(root / "nodes.csv"), "edges": str(root / "edges.csv"),
               "dependencies": str(root / "dependencies.csv"), "system": str(root / "system.toml")})


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


def write_system(system: InfrastructureSystem, path: str | os.PathLike) -> None:
    """Write a system directory that :func:`read_system` reads back to the same tables.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
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
    texts = {
        "nodes.csv": nodes.to_csv(index=False, lineterminator="\n"),
        "edges.csv": edges.to_csv(index=False, lineterminator="\n"),
        "dependencies.csv": system.dependencies.to_csv(index=False, lineterminator="\n"),
        "system.toml": "\n".join(lines) + "\n",
    }
    for name, text in texts.items():
        write_atomic(root / name, text)


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
