"""``cascade import FORMAT SRC --layer NAME --into DIR``: an outside network becomes a layer."""
from __future__ import annotations

from pathlib import Path

import click

from ..io.imports import FORMATS, import_network


@click.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("src", metavar="SRC", type=click.Path(path_type=Path))
@click.option("--layer", required=True, help="Name of the new layer (power, water, gas, ...).")
@click.option("--into", "into", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="System directory to add the layer to (created when it does not exist).")
@click.option("--crs", default=None, metavar="CRS",
              help="CRS of SRC's coordinates when the file does not carry one "
                   "(EPSG:NNNN or a PROJ string); it overrides the file's.")
@click.option("--prefix", default=None, metavar="TEXT",
              help="Starts every imported node and edge id  [default: LAYER-].")
def command(fmt, src, layer, into, crs, prefix):
    """Import SRC (a pandapower or pandapipes JSON, an EPANET INP, a GraphML or a GeoJSON)
    as layer --layer of the system --into, reprojecting its coordinates to the system's CRS.

    \b
    pandapower  buses -> nodes (ext_grid/gen buses kind=source, loads -> demand in MW);
                lines, transformers, closed bus-bus switches -> edges
    epanet      junctions, tanks, reservoirs -> nodes (tanks, reservoirs kind=source;
                base demand -> demand in L/s); pipes, valves -> edges; pumps -> nodes
                with a directed edge from and to their ends
    pandapipes  junctions -> nodes (ext_grid kind=source, sinks -> demand in kg/s);
                pipes, open valves, regulators, compressors, pumps -> edges
    graphml     nodes and edges as they are (x, y, kind, demand attributes; graph crs)
    geojson     Points -> nodes, LineStrings -> edges

    A new system takes the source's CRS when it is projected in metres, else the UTM
    zone of the data (degrees, feet, local grids), so distances are metres.  Importing into an existing system adds the layer and leaves every other
    row as it was; an existing layer name or an id clash is refused.
    """
    _, summary = import_network(fmt, src, layer, into, crs=crs, prefix=prefix)
    click.echo(f"{into}: imported {summary}")
