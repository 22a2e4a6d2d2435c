"""``cascade map SYSTEM [--result FILE | --fail ID ...] --output map.png``: the lifelines on their
coordinates; on a system with flow layers, the loading of its power lines and pipes."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ..io import read_system
from . import system_argument

ALL = 2**31 - 1   # --top 0: every element


@click.command("map")
@system_argument
@click.option("--result", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Mark its elements: failed nodes of a `simulate --format json` run, the top of a "
                   "`critical` ranking, or `scenario` failure probabilities.")
@click.option("--fail", "-f", multiple=True, metavar="ID",
              help="Run the cascade from this node or edge (repeatable) and mark it, as --result "
                   "with a simulate result would; flow layers: line and pipe loading after the cascade.")
@click.option("--fail-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file with one node or edge id per line to fail (as --fail).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The PNG (or SVG, PDF) file to write.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of a ranking's most critical elements to mark and number, 0 for all.")
@click.option("--title", default=None, help="Title (default: the system's name and the result).")
@click.option("--dpi", type=click.IntRange(min=30, max=600), default=150, show_default=True)
def command(system_dir, result, fail, fail_file, output, top, title, dpi):
    """Draw SYSTEM's lifelines in their own colours on their coordinates, with the
    dependencies between them, and mark failed, critical or likely-to-fail elements.

    On a system with flow layers (docs/format.md (v2)) the map colours each rated branch of a
    dcflow layer by its loading |flow| / capacity, marks branches tripped on overload and nodes
    served only in part: for the intact system without --result or --fail, else for the
    cascade of --fail (or of a simulate --format json result).  Pipes of flow layers (water,
    gas): the bottleneck pipes, full in every routing of the served amounts (unique), in thick
    purple; every other rated pipe coloured by its loading in one routing of the served amounts
    (not unique: other routings serve the same), on a colour bar of its own."""
    from ..io.geojson import read_result
    from ..report import draw_map, flow_state, has_flow_layers
    from . import failure_ids, load

    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError("the map is written as .png, .svg or .pdf", str(output))
    if not output.parent.exists():
        raise InputError("directory does not exist", str(output.parent))
    if result is not None and (fail or fail_file):
        raise InputError("give either --result or --fail/--fail-file, not both")
    if fail or fail_file:
        system, compiled = load(system_dir)
        props = flow_state(system, failure_ids(compiled, fail, fail_file), compiled=compiled)
    else:
        system = read_system(system_dir)
        props = read_result(result, system) if result is not None else None
        if props is None and has_flow_layers(system):
            props = flow_state(system)
    draw_map(system, props, output, top=top or ALL, title=title, dpi=dpi)
    click.echo(f"wrote {output}", err=True)
