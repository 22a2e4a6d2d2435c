"""Read the JSON files that ``pandapower.to_json`` and ``pandapipes.to_json`` write, without
running anything in them.

pandapower's own reader (``pandapower.from_json``) restores every object whose JSON names a
``_module`` and a ``_class``: it imports that module and calls that class with data from the
file, so a crafted file runs any code it likes (pandapower issue 3049).  This reader parses the
file with the plain :func:`json.load` (no object hook), accepts only the structure ``to_json``
writes, and imports nothing:

- the root is a ``pandapowerNet`` or ``pandapipesNet`` wrapper around a dict of entries;
- an entry that is a ``pandas`` ``DataFrame`` or ``Series`` becomes that table, parsed by
  :func:`pandas.read_json` with its stored ``orient`` and ``dtype`` (GeoJSON ``geo`` cells stay
  strings);
- the other objects ``to_json`` writes (numpy scalars and arrays, tuples and sets, pandapower and
  pandapipes classes such as controllers, fluids and component lists, shapely geometries,
  networkx graphs) are allowed but never built: the importers do not need them;
- any other ``_module``/``_class`` anywhere in the file, including inside table cells and inside
  the allowed objects, is refused with one line naming where it is.
"""
from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

NETS = {"pandapower": {("pandapower.auxiliary", "pandapowerNet")},
        "pandapipes": {("pandapipes.pandapipes_net", "pandapipesNet")}}
TABLES = {("pandas.core.frame", "DataFrame"), ("pandas.core.series", "Series"),
          ("pandas", "DataFrame"), ("pandas", "Series")}
_BUILTINS = {"tuple", "set", "frozenset", "complex"}
# Modules whose objects to_json writes; listed ones are accepted as opaque values, never imported.
_OPAQUE_PREFIXES = ("pandapower.", "pandapipes.", "shapely", "geopandas")


class Opaque:
    """An object the file names (a controller, a fluid ...) that the importers do not build."""

    def __init__(self, module: str, cls: str):
        self.module, self.cls = module, cls

    def __repr__(self) -> str:
        return f"<{self.module}.{self.cls}, not loaded>"


class SafeFluid:
    """A pandapipes fluid read as data: its name, whether it is a gas, and its density.

    pandapipes writes a ``Fluid`` with its properties as nested objects; only the density is
    read here, from the property types pandapipes ships (a constant, a linear function of
    temperature, or a table interpolated linearly, as ``FluidPropertyInterExtra`` does inside
    its range).  Any other density type leaves it unknown (``None``), never built.
    """

    def __init__(self, name: str, is_gas: bool, density):
        self.name, self.is_gas, self._density = name, is_gas, density

    @classmethod
    def of(cls, text):
        try:
            data = json.loads(text) if isinstance(text, str) else dict(text)
            prop = data.get("all_properties", {}).get("density")
            kind = str(prop.get("_class", "")) if isinstance(prop, dict) else ""
            raw = prop.get("_object", "{}") if isinstance(prop, dict) else "{}"
            values = json.loads(raw) if isinstance(raw, str) else dict(raw)
            values = {key: cls._plain(v) for key, v in values.items()}
            if kind == "FluidPropertyConstant":
                density = ("constant", float(values["value"]))
            elif kind == "FluidPropertyLinear":
                density = ("linear", float(values["offset"]), float(values["slope"]))
            elif kind == "FluidPropertyInterExtra":
                density = ("table", np.asarray(values["x"], float), np.asarray(values["y"], float))
            else:
                density = None
            return cls(str(data.get("name", "")), bool(data.get("is_gas", data.get("fluid_type") == "gas")),
                       density)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Opaque("pandapipes.properties.fluids", "Fluid")

    @staticmethod
    def _plain(value):
        """Numbers of a fluid property: numpy scalars and arrays are written as nested
        ``{"_module": "numpy", "_object": ...}`` entries; read them as plain numbers."""
        if isinstance(value, dict) and str(value.get("_module", "")).split(".")[0] == "numpy":
            inner = value.get("_object")
            if isinstance(inner, str):
                inner = json.loads(inner)
            return SafeFluid._plain(inner)
        if isinstance(value, list):
            return [SafeFluid._plain(v) for v in value]
        return value

    def get_density(self, temperature):
        t = np.asarray(temperature, float)
        if self._density is None:
            raise ValueError(f"fluid '{self.name}': density of an unknown form")
        if self._density[0] == "constant":
            return np.full(t.shape, self._density[1])
        if self._density[0] == "linear":
            return self._density[1] + self._density[2] * t
        x, y = self._density[1], self._density[2]
        return np.interp(t, x, y)

    def __repr__(self) -> str:
        return f"<pandapipes fluid {self.name!r} read as data>"


class SafeNet(dict):
    """The entries of a network file: tables as pandas objects, plain JSON values as they are.

    Supports ``name in net``, ``net[name]`` and ``net.name`` like a pandapower network.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def allowed(module: str, cls: str) -> bool:
    """Whether a ``_module``/``_class`` pair is one that pandapower's or pandapipes' ``to_json``
    writes (the allow-list; nothing on it is ever imported)."""
    if (module, cls) in TABLES or any((module, cls) in pairs for pairs in NETS.values()):
        return True
    if module == "builtins":
        return cls in _BUILTINS
    if module == "numpy":
        return cls == "array" or (cls.isidentifier() and hasattr(np, cls)
                                  and isinstance(getattr(np, cls), type)
                                  and issubclass(getattr(np, cls), np.generic))
    if module == "networkx":
        return cls in ("MultiGraph", "Graph")
    return module == "pandapower" or module == "pandapipes" or module.startswith(_OPAQUE_PREFIXES)


def _check(value, where: str, file: str) -> None:
    """Refuse any object in ``value`` (JSON already parsed) that is not on the allow-list."""
    stack = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, dict):
            if "_module" in v or "_class" in v:
                module, cls = str(v.get("_module", "")), str(v.get("_class", ""))
                if not allowed(module, cls):
                    raise InputError(f"refused: {at} names the Python object '{module}.{cls}', which "
                                     "pandapower's to_json never writes (files are read as data; "
                                     "nothing in them is run)", file)
                inner = v.get("_object")
                if isinstance(inner, str) and inner[:1] in "[{":
                    try:
                        inner = json.loads(inner)
                    except ValueError:
                        inner = None
                stack.append((inner, f"{at} ({cls})"))
                continue
            stack.extend((item, at) for item in v.values())
        elif isinstance(v, list):
            stack.extend((item, at) for item in v)


def _table(entry: dict, name: str, file: str):
    """A DataFrame or Series from its to_json wrapper."""
    text = entry.get("_object")
    if not isinstance(text, str):
        raise InputError(f"table '{name}' is not stored as a JSON string", file)
    orient = entry.get("orient", "split" if entry.get("_class") == "DataFrame" else None)
    if orient not in ("split", "columns", "index", "records", "values", "table", None):
        raise InputError(f"table '{name}' has an unknown orient '{orient}'", file)
    dtype = entry.get("dtype")
    if dtype is not None and not (isinstance(dtype, dict) and all(isinstance(t, str) for t in dtype.values())):
        raise InputError(f"table '{name}' has a malformed dtype entry", file)
    try:
        if entry["_class"] == "Series":
            return pd.read_json(StringIO(text), typ="series", orient=orient, precise_float=True,
                                dtype=dtype if dtype is not None else True)
        table = pd.read_json(StringIO(text), orient=orient, precise_float=True, convert_axes=False,
                             dtype=dtype if dtype is not None else True)
    except (ValueError, TypeError, KeyError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"table '{name}' cannot be read: {message}", file) from None
    if not table.shape[0] or orient == "columns":
        try:
            table.index = table.index.astype(np.int64)
        except (ValueError, TypeError):
            pass
    if entry.get("is_multiindex") or entry.get("is_multicolumn"):
        return table  # kept as read (string tuples); no importer reads such a table
    if entry.get("index_name") is not None:
        table.index.name = str(entry["index_name"])
    if "geo" in table.columns:  # GeoJSON cells stay strings
        table["geo"] = [json.dumps(v) if isinstance(v, dict) else v for v in table["geo"]]
    return table


def _value(value, name: str, file: str):
    if isinstance(value, dict) and "_module" in value:
        pair = (str(value["_module"]), str(value.get("_class", "")))
        if pair in TABLES:
            return _table(value, name, file)
        if pair == ("pandapipes.properties.fluids", "Fluid"):
            return SafeFluid.of(value.get("_object", "{}"))
        return Opaque(*pair)
    return value


def read_net(path: str | Path, kind: str, data=None) -> SafeNet:
    """Read a ``to_json`` file of ``kind`` (``"pandapower"`` or ``"pandapipes"``) as data.

    Parameters
    ----------
    path : path
        The file (for messages, and read when ``data`` is not given).
    kind : str
    data : object, optional
        The file already parsed by :func:`json.load`.

    Raises
    ------
    InputError
        When the file is not such a network or names an object outside the allow-list.
    """
    file = str(path)
    if data is None:
        from .imports import read_json
        data = read_json(path)
    pairs = NETS[kind]
    cls = f"{kind}Net"
    if not (isinstance(data, dict) and (str(data.get("_module", "")), str(data.get("_class", ""))) in pairs):
        raise InputError(f"not a {kind} network (expected the JSON that {kind}.to_json writes, with "
                         f"\"_class\": \"{cls}\")", file)
    body = data.get("_object")
    if isinstance(body, str):  # older files store the entries as one JSON string
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        raise InputError(f"not a {kind} network: its \"_object\" is not a dict of tables", file)
    for key, value in body.items():
        _check(value, f"entry '{key}'", file)
    net = SafeNet()
    for key, value in body.items():
        net[str(key)] = _value(value, str(key), file)
    return net


def require_columns(net: SafeNet | dict, table: str, columns: set[str], file: str) -> None:
    """A table the importer reads must have the columns it reads."""
    frame = net[table] if table in net else None
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        return
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise InputError(f"table '{table}' lacks column(s) {', '.join(missing)}", file)
