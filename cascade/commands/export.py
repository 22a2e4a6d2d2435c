"""``cascade export SYSTEM --format geojson [--result FILE]``: a system and a result for GIS."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..io import read_system
from ..io.geojson import read_result, to_geojson
from . import emit, output_option, system_argument


@click.command("export")
@system_argument
@click.option("--format", "fmt", type=click.Choice(["geojson"]), default="geojson", show_default=True,
              help="Output format.")
@click.option("--result", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A result to attach as properties: `cascade simulate --format json` output, a "
                   "`cascade critical` ranking (CSV/JSON), `cascade scenario` output (JSON, or CSV "
                   "failure probabilities), or any CSV/JSON table with an 'id' column.")
@output_option
def command(system_dir, fmt, result, output):
    """Write SYSTEM as GeoJSON (nodes as Points, edges as LineStrings, every column as a
    property; the CRS of system.toml named for QGIS), with a --result's columns added."""
    system = read_system(system_dir)
    props = read_result(result, system) if result is not None else None
    emit(json.dumps(to_geojson(system, props), ensure_ascii=False, separators=(",", ":"),
                         allow_nan=False) + "\n", output)
