"""The compiled-system cache: a system directory read, validated and compiled once.

``load(path)`` returns ``(InfrastructureSystem, CompiledSystem)`` like
``compile_system(read_system(path))``, and keeps the result in ``PATH/.cascade-cache/`` (inside
the system directory, so that it goes where the system goes and a user sees it) as one
directory of ``.npy`` files of plain arrays, never a pickle: numbers as they are, text as UTF-8
bytes with offsets, node names of edges and dependencies as node indices.  A hit maps the files
into memory (``np.load(mmap_mode="c")``: no decompression, no copy, no checksum pass; pages
are read when used, and a column nobody reads costs nothing).  The directory's name is the
SHA-256 of the contents of the system's files (``nodes``, ``edges``, ``dependencies`` as CSV or Parquet, and
``system.toml``), of the directory's name (the default system name) and of this format's
version, so any change to a file is a different key: the old entry is never read again and is
removed when the new one is written.

* Safe to delete: a missing or unreadable entry is a miss (read the files again).
* Concurrent runs: each writes to a temporary directory in the cache directory and renames it
  (atomic), so a reader sees a whole entry or none; the first rename wins.
* Bad input is never cached: only a system that passed every check is written, so errors keep
  their one-line messages naming file and line.
* A directory that cannot be written (read-only, full disk) simply gets no cache.
* Off with ``cascade --no-cache ...`` or ``CASCADE_CACHE=0`` in the environment.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .compiled import CompiledSystem, compile_system
from .system import InfrastructureSystem, made_by_nan_column, nan_column

CACHE_DIR = ".cascade-cache"
FORMAT = 3   # 3: columns of NaN that the files left out are stored as their kind alone
FILES = ("nodes.csv", "edges.csv", "dependencies.csv", "nodes.parquet", "edges.parquet",
         "dependencies.parquet", "system.toml")
# Columns of edges and dependencies that hold node ids: stored as node indices.
NODE_COLUMNS = {"edges": ("source", "target"), "dependencies": ("dependent", "supplier")}
# Fields of CompiledSystem that are not plain numeric arrays, stored their own way.
SPECIAL = ("name", "index_dtype", "node_ids", "edge_ids", "layer_names", "group_name")


def _array_fields() -> list[str]:
    """The compiled system's numeric arrays, stored as they are (every other field)."""
    import dataclasses

    return [f.name for f in dataclasses.fields(CompiledSystem) if f.name not in SPECIAL]


def enabled(choice: bool | None = None) -> bool:
    """Whether to use the cache: ``choice`` when given, else ``CASCADE_CACHE`` (off for 0, off,
    no, false), else on."""
    if choice is not None:
        return bool(choice)
    return os.environ.get("CASCADE_CACHE", "1").strip().lower() not in ("0", "off", "no", "false")


def content_key(root: Path) -> str:
    """SHA-256 of the system's files (name, size, bytes), its default name and the format."""
    h = hashlib.sha256()
    h.update(f"cascade-cache {FORMAT}\0{root.resolve().name}\0".encode())
    for name in FILES:
        path = root / name
        if path.is_file():
            data = path.read_bytes()
            h.update(f"{name}\0{len(data)}\0".encode())
            h.update(data)
        else:
            h.update(f"{name}\0absent\0".encode())
    return h.hexdigest()


def cache_path(root: Path, key: str) -> Path:
    return root / CACHE_DIR / key


def _file_name(array_name: str) -> str:
    """The .npy file of an array of the entry ("nodes/0/data" -> "nodes.0.data.npy")."""
    return array_name.replace("/", ".") + ".npy"


def _remove(path: Path) -> None:
    import shutil

    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass


def load(path, cache: bool | None = None) -> tuple[InfrastructureSystem, CompiledSystem]:
    """``(system, compiled)`` of a system directory, from the cache when it holds this content.

    Parameters
    ----------
    path : str or path-like
        A system directory (see :func:`cascade.read_system`).
    cache : bool, optional
        Use the cache (default: on unless ``CASCADE_CACHE=0``).

    Raises
    ------
    InputError
        As :func:`cascade.read_system` (bad input is never cached).
    """
    from .io import read_system

    root = Path(path)
    if not enabled(cache) or not root.is_dir():
        system = read_system(root)
        return system, compile_system(system)
    try:
        key = content_key(root)
    except OSError:
        key = None
    if key is not None:
        hit = _read_entry(cache_path(root, key))
        if hit is not None:
            return hit
    system = read_system(root)
    compiled = compile_system(system)
    if key is not None:
        _write_entry(root, key, system, compiled)
    return system, compiled


# ------------------------------------------------------------------ text as plain arrays

def _encode_text(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """str values as (UTF-8 bytes, int64 offsets)."""
    try:
        import pyarrow as pa

        arr = pa.array(values, pa.large_string())
        offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset:arr.offset + len(arr) + 1]
        data = np.frombuffer(arr.buffers()[2], np.uint8) if arr.buffers()[2] is not None \
            else np.zeros(0, np.uint8)
        return data[offsets[0]:offsets[-1]].copy(), offsets - offsets[0]
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        encoded = [str(v).encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        return np.frombuffer(b"".join(encoded), np.uint8).copy(), offsets


def _decode_text(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_encode_text`: an object array of str."""
    n = len(offsets) - 1
    try:
        import pyarrow as pa

        arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(np.ascontiguousarray(offsets, np.int64)),
                                               pa.py_buffer(np.ascontiguousarray(data, np.uint8)))
        return arr.to_numpy(zero_copy_only=False).astype(object, copy=False)
    except ImportError:  # pragma: no cover
        raw = data.tobytes()
        return np.array([raw[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n)] or [],
                        dtype=object)


def _is_text(values: np.ndarray) -> bool:
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty")


# ------------------------------------------------------------------ entries

def _write_entry(root: Path, key: str, system: InfrastructureSystem, compiled: CompiledSystem) -> None:
    """Write the entry atomically; skip quietly when something cannot be stored or written."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "name": system.name, "crs": system.crs, "rules": system.rules,
            "units": system.units, "weights": system.weights, "bases": system.bases,
            "currency": system.currency, "compiled_name": compiled.name,
            "index_dtype": np.dtype(compiled.index_dtype).name,
            "layer_names": list(compiled.layer_names), "fields": _array_fields(), "tables": {}}
    node_ids = system.nodes["id"].to_numpy(dtype=object)
    for tname, table in (("nodes", system.nodes), ("edges", system.edges),
                         ("dependencies", system.dependencies)):
        if not isinstance(table.index, pd.RangeIndex) or table.index.start != 0 or table.index.step != 1:
            return
        cols = []
        for i, col in enumerate(table.columns):
            if not isinstance(col, str):
                return
            values = table[col].to_numpy()
            name = f"{tname}/{i}"
            if col in NODE_COLUMNS.get(tname, ()):
                if col in ("source", "target"):
                    index = compiled.edge_src if col == "source" else compiled.edge_dst
                else:
                    index = pd.Index(node_ids).get_indexer(values.astype(object))
                if len(index) != len(values) or np.any(np.asarray(index) < 0):
                    return
                arrays[name] = index
                kind = "node"
            elif made_by_nan_column(values):   # a default the files left out: nothing to store
                kind = "nan"
            elif values.dtype.kind in "fiub":
                arrays[name] = values
                kind = values.dtype.str
            elif _is_text(values):
                codes, uniques = pd.factorize(values)
                data, offsets = _encode_text(np.asarray(uniques, dtype=object))
                arrays[name] = codes.astype(np.int64)
                arrays[name + "/data"], arrays[name + "/offsets"] = data, offsets
                kind = "text"
            else:
                return   # an object column that is not all text: not stored
            cols.append([col, kind])
        meta["tables"][tname] = {"columns": cols, "rows": len(table)}
    group_codes, group_uniques = pd.factorize(compiled.group_name)
    if len(group_uniques) and not _is_text(np.asarray(group_uniques, dtype=object)):
        return
    arrays["compiled/group_name"] = group_codes.astype(np.int64)
    arrays["compiled/group_name/data"], arrays["compiled/group_name/offsets"] = \
        _encode_text(np.asarray(group_uniques, dtype=object))
    for field in _array_fields():
        value = getattr(compiled, field)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
            return
        arrays[f"compiled/{field}"] = value
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    folder = root / CACHE_DIR
    tmp = None
    try:
        folder.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{key[:16]}.", suffix=".tmp"))
        for name, value in arrays.items():
            np.save(tmp / _file_name(name), np.ascontiguousarray(value), allow_pickle=False)
        try:
            os.rename(tmp, cache_path(root, key))   # atomic; fails when another run was first
            tmp = None
        except OSError:
            pass
        for old in folder.iterdir():   # entries of earlier contents are never read again
            if old.name != key and not old.name.startswith("."):
                _remove(old)
    except OSError:
        pass
    finally:
        if tmp is not None:
            _remove(tmp)


def _read_entry(path: Path) -> tuple[InfrastructureSystem, CompiledSystem] | None:
    """The entry at ``path``, or None when it is missing or cannot be read back."""
    if not path.is_dir():
        return None
    try:
        with _Entry(path) as npz:
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
            if meta.get("format") != FORMAT or meta.get("fields") != _array_fields():
                return None
            tables = {}
            node_ids = None
            for tname in ("nodes", "edges", "dependencies"):
                spec = meta["tables"][tname]
                data = {}
                for i, (col, kind) in enumerate(spec["columns"]):
                    name = f"{tname}/{i}"
                    if kind == "node":
                        data[col] = node_ids[npz[name]]
                    elif kind == "text":
                        uniques = _decode_text(npz[name + "/data"], npz[name + "/offsets"])
                        codes = npz[name]
                        data[col] = np.append(uniques, "")[codes] if len(codes) else np.zeros(0, object)
                        if tname == "nodes" and col == "id":
                            node_ids = data[col]
                    elif kind == "nan":
                        data[col] = nan_column(spec["rows"])
                    else:
                        data[col] = npz[name]
                tables[tname] = pd.DataFrame(data, columns=[c for c, _ in spec["columns"]],
                                             index=pd.RangeIndex(spec["rows"]), copy=False)
            system = InfrastructureSystem(tables["nodes"], tables["edges"], tables["dependencies"],
                                          name=meta["name"], crs=meta["crs"], rules=meta["rules"],
                                          units=meta["units"], weights=meta["weights"],
                                          bases=meta["bases"], currency=meta["currency"])
            uniques = _decode_text(npz["compiled/group_name/data"], npz["compiled/group_name/offsets"])
            codes = npz["compiled/group_name"]
            group_name = uniques[codes] if len(codes) else np.zeros(0, object)
            fields = {field: npz[f"compiled/{field}"] for field in _array_fields()}
        compiled = CompiledSystem(
            name=meta["compiled_name"], index_dtype=np.dtype(meta["index_dtype"]),
            node_ids=system.nodes["id"].to_numpy(dtype=object),
            edge_ids=system.edges["id"].to_numpy(dtype=object),
            layer_names=list(meta["layer_names"]), group_name=group_name, **fields)
        return system, compiled
    except Exception:   # a damaged or foreign entry is a miss, never an error
        _remove(path)
        return None


class _Entry:
    """The arrays of an entry by name, memory-mapped (copy on write: the kernels may take
    writable buffers, and nothing is ever written back to the file); never unpickles."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getitem__(self, name: str) -> np.ndarray:
        file = self.path / _file_name(name)
        try:
            out = np.load(file, mmap_mode="c", allow_pickle=False)
        except ValueError:   # an empty array cannot be mapped
            out = np.load(file, allow_pickle=False)
        return out.view(np.ndarray) if isinstance(out, np.memmap) else out
