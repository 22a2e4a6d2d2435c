"""``cascade convert SYSTEM OUT``: the same system with its tables in the other format (CSV or
Parquet, docs/format.md)."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ..io import read_system
from ..io.csv_dir import system_format, write_system
from . import system_argument


@click.command("convert")
@system_argument
@click.argument("out", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("--to", "fmt", type=click.Choice(["parquet", "csv"]), default=None,
              help="Format of OUT  [default: Parquet for a CSV system, CSV for a Parquet one]")
def command(system_dir, out, fmt):
    """Write SYSTEM to the new directory OUT with its tables (nodes, edges, dependencies) as
    Parquet files, or back as CSV; system.toml is copied.  Parquet reads faster and is smaller
    for large systems; every command reads either.  The tables are read and checked first, so
    a bad SYSTEM writes nothing."""
    source = system_format(system_dir) if system_dir.is_dir() else "csv"
    fmt = fmt or ("csv" if source == "parquet" else "parquet")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("already exists and is not an empty directory (choose a new OUT)", str(out))
    system = read_system(system_dir)
    write_system(system, out, format=fmt)
    click.echo(f"wrote {out} ({fmt}: {len(system.nodes):,} nodes, {len(system.edges):,} edges, "
               f"{len(system.dependencies):,} dependencies)", err=True)
