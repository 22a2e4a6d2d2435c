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
@click.option("--rule", default=None, type=click.Choice(["dcflow", "flow", "source"]),
              help="The layer's model: dcflow (pandapower's default: DC power flow with supply, "
                   "dispatch, reactances, ratings), flow (pandapipes' and EPANET's default: "
                   "capacitated flow) or source (connectivity only, as before v2).")
def command(fmt, src, layer, into, crs, prefix, rule):
    """Import SRC (a pandapower or pandapipes JSON, an EPANET INP, a GraphML or a GeoJSON)
    as layer --layer of the system --into, reprojecting its coordinates to the system's CRS.

    \b
    pandapower  rule dcflow, MW: buses -> nodes (loads, shunts -> demand; gen, sgen,
                ext_grid -> supply and dispatch, the slack's from rundcpp); lines,
                transformers (x*tap, phase shift, rating), closed bus-bus switches -> edges
    epanet      rule flow, L/s: junctions, tanks, reservoirs -> nodes (tanks, reservoirs
                kind=source with supply; base demand -> demand); pipes, valves -> edges
                with capacity; pumps -> nodes with a directed edge from and to their ends
    pandapipes  rule flow, kg/s: junctions -> nodes (ext_grid, sources -> supply, sinks ->
                demand); pipes, open valves, regulators, compressors, pumps -> edges
    graphml     nodes and edges as they are (x, y, kind, demand attributes; graph crs)
    geojson     Points -> nodes, LineStrings -> edges

    A new system takes the source's CRS when it is projected in metres, else the UTM
    zone of the data (degrees, feet, local grids), so distances are metres.  Importing into an existing system adds the layer and leaves every other
    row as it was; an existing layer name or an id clash is refused.  Each assumption the
    importer makes where the source leaves a field out is printed as a "note:" line.
    """
    _, summary = import_network(fmt, src, layer, into, crs=crs, prefix=prefix, rule=rule)
    click.echo(f"{into}: imported {summary}")
