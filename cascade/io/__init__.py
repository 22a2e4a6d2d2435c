"""Readers and writers of outside formats; names stay strings here."""
from .csv_dir import read_system, write_atomic, write_system
from .geojson import read_result, to_geojson
from .imports import import_network

__all__ = ["read_system", "write_system", "write_atomic", "read_result", "to_geojson", "import_network"]
