"""``cascade couple SYSTEM --dependent LAYER[:KIND] --supplier LAYER[:KIND] --nearest K``."""
from __future__ import annotations

import click

from ..couple import couple
from ..errors import InputError
from ..io.imports import append_rows
from . import csv_safe_option, csv_text, system_argument


@click.command("couple")
@system_argument
@click.option("--dependent", required=True, metavar="LAYER[:KIND]",
              help="The nodes that depend, e.g. water:pump.")
@click.option("--supplier", required=True, metavar="LAYER[:KIND]",
              help="The nodes that may supply them, e.g. power or power:substation.")
@click.option("--nearest", type=click.IntRange(min=1), default=None, metavar="K",
              help="Each dependent depends on its K nearest suppliers.")
@click.option("--radius", type=click.FloatRange(min=0), default=None, metavar="METRES",
              help="Each dependent depends on every supplier within this distance.")
@click.option("--group", is_flag=True,
              help="The new suppliers of a dependent are alternatives (one of them suffices); "
                   "without it the dependent needs all of them.")
@click.option("--delay", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="HOURS",
              help="Hours the dependent keeps working after losing its suppliers (a backup).")
@click.option("--threshold", type=float, default=None, metavar="T",
              help="0 < T <= 1: a supplier in a flow layer (docs/format.md (v2)) counts for the new "
                   "rows only while its served fraction is at least T (default: the format's 1, "
                   "fully served).")
@click.option("--dry-run", is_flag=True, help="Print the rows instead of writing them.")
@click.option("--reproject", is_flag=True,
              help="A system in a geographic CRS (degrees): measure distances (and --radius) in "
                   "metres in the UTM zone of its centroid.")
@csv_safe_option
def command(system_dir, dependent, supplier, nearest, radius, group, delay, threshold, dry_run,
            reproject, csv_safe):
    """Append dependency rows to SYSTEM/dependencies.csv by geography: every --dependent
    node depends on its --nearest K --supplier nodes, or on those within --radius.

    \b
    Examples:
      cascade couple town --dependent water:pump --supplier power --nearest 1
      cascade couple town --dependent communication:cell --supplier power:substation \\
          --nearest 2 --group --delay 4
      cascade couple town --dependent water:pump --supplier power:substation \\
          --nearest 1 --threshold 0.8
    """
    from . import load

    if (nearest is None) == (radius is None):
        raise InputError("give exactly one of --nearest K and --radius METRES")
    system, _ = load(system_dir)
    rows, stats = couple(system, dependent, supplier, nearest=nearest, radius=radius, group=group,
                         delay=delay, reproject=reproject, threshold=threshold)
    if dry_run:
        click.echo(csv_text(rows, csv_safe), nl=False)
    elif len(rows):
        append_rows(system_dir, dependencies=rows)
    unit = _distance_unit(system.crs)
    notes = []
    if stats["unmatched"]:
        notes.append(f"{stats['unmatched']} without a supplier within {radius:g} {unit}")
    if stats["without_coordinates"]:
        notes.append(f"{stats['without_coordinates']} without coordinates (skipped)")
    if stats["existing"]:
        notes.append(f"{stats['existing']} pair(s) already present (skipped)")
    far = f", farthest {stats['max_distance']:,.0f} {unit}" if stats["max_distance"] is not None else ""
    verb = "would add" if dry_run else "added"
    click.echo(f"{system_dir}: {verb} {stats['rows']} dependency rows: {stats['matched']} of "
               f"{stats['dependents']} {dependent} node(s) on {stats['suppliers']} {supplier} node(s)"
               f"{far}" + (f"; {'; '.join(notes)}" if notes else ""), err=dry_run)


def _distance_unit(crs: str | None) -> str:
    """``m`` for a projected CRS in metres, else the honest ``coordinate units``."""
    if crs:
        try:
            from pyproj import CRS

            parsed = CRS.from_user_input(crs)
            if parsed.is_projected and parsed.axis_info and \
                    parsed.axis_info[0].unit_name in ("metre", "meter"):
                return "m"
        except Exception:   # an unreadable CRS is reported where it is used, not here
            pass
    return "coordinate units"
