"""``cascade simulate SYSTEM --fail ID ...``: one static cascade across all lifelines."""
from __future__ import annotations

import io
from pathlib import Path

import click

from ..simulation import simulate
from . import (csv_safe_option, csv_text, emit, engine_option, failure_ids, format_option, load,
               output_option, pct, system_argument, table, to_json)

SHOWN_PER_ROUND = 12


def render_table(result) -> str:
    before, after = result.layers(before=True), result.layers()
    data = result.to_dict()
    init = data["initial_failures"]
    out = [f"System {data['system']}: failed {len(init['nodes'])} node(s) and {len(init['edges'])} edge(s); "
           f"the cascade ran {data['rounds']} round(s), {len(data['failed'])} node(s) stopped working.", ""]
    rows = []
    for name in after.index:
        b, a = before.loc[name], after.loc[name]
        rows.append([name, f"{int(a.functioning)}/{int(a.nodes)}", f"{a.demand_served:,.0f}/{a.demand:,.0f}",
                     pct(b.service), pct(a.service)])
    out.append(table(rows, ["layer", "working", "demand served", "before", "after"], "lrrrr"))
    failed = result.failed()
    if len(failed):
        out.append("Failure chain:")
        for rnd, group in failed.groupby("round", sort=True):
            causes = group.groupby("cause", sort=False)
            parts = []
            for cause, rows_ in causes:
                names = [f"{r.id} (via {r.via})" if r.via else str(r.id)
                         for r in rows_.head(SHOWN_PER_ROUND).itertuples()]
                more = f" … and {len(rows_) - SHOWN_PER_ROUND} more" if len(rows_) > SHOWN_PER_ROUND else ""
                layers = ", ".join(f"{k} {v}" for k, v in rows_["layer"].value_counts().sort_index().items())
                parts.append(f"    {cause} [{layers}]: " + ", ".join(names) + more)
            out.append(f"  round {rnd}: {len(group)} node(s)")
            out += parts
    return "\n".join(out) + "\n"


@click.command("simulate")
@system_argument
@click.option("--fail", "-f", multiple=True, metavar="ID", help="A node or edge that fails (repeatable).")
@click.option("--fail-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file with one node or edge id per line.")
@format_option("table", "json", "csv")
@output_option
@engine_option
@csv_safe_option
def command(system_dir, fail, fail_file, fmt, output, engine, csv_safe):
    """Fail some nodes and edges of SYSTEM and show what stops working in every lifeline.

    The table shows each layer's service before and after and the failure chain round by
    round; JSON and CSV give every failed node with its round, cause and the supplier it
    lost ("via").
    """
    system, compiled = load(system_dir)
    ids = failure_ids(compiled, fail, fail_file)
    result = simulate(system, ids, engine=engine, compiled=compiled)
    if fmt == "json":
        text = to_json(result.to_dict())
    elif fmt == "csv":
        buf = io.StringIO()
        buf.write(csv_text(result.failed(), csv_safe))
        text = buf.getvalue()
    else:
        text = render_table(result)
    emit(text, output)
