"""The ``cascade`` command line: a thin Click layer over the Python API.

Each command lives in :mod:`cascade.commands` (one module per command) and only parses,
calls the API and formats.  Bad input of any kind ends with exit status 2 and one line on
stderr (docs/format.md); output files are written atomically, so a failed run leaves none.
"""
from __future__ import annotations

import importlib
import sys

import click

from .errors import InputError

# (module in cascade.commands, command name): commands load lazily, so `cascade --help`
# stays fast and an optional extra that is missing only affects its own command.
COMMANDS = {
    "info": "info",
    "simulate": "simulate",
    "recover": "recover",
    "critical": "critical",
    "scenario": "scenario",
    "redundancy": "redundancy",
    "import": "importer",
    "couple": "couple",
    "export": "export",
    "map": "map",
    "report": "report",
    "risk": "risk",
    "convert": "convert",
}

# What `cascade --help` lists beside each command: written here so that the listing does not
# import every command module (and pandas, numpy, scipy with them); tests/test_cli_startup.py
# checks that every command has one.
SUMMARIES = {
    "convert": "Write SYSTEM to a new directory with its tables as Parquet or CSV.",
    "couple": "Add dependency rows between two layers of SYSTEM by distance.",
    "critical": "Rank nodes (or edges) by what their failure alone takes down (N-1).",
    "export": "Write SYSTEM (and a result) as GeoJSON.",
    "import": "Import a pandapower, pandapipes, EPANET, GraphML or GeoJSON network as a layer.",
    "info": "Describe SYSTEM: layers, counts, rules, demand, couplings, warnings.",
    "map": "Draw SYSTEM's lifelines (and a cascade) as a PNG, SVG or PDF map.",
    "recover": "Repair the failed elements with crews and follow service back.",
    "redundancy": "Rank redundancy measures by the loss they avoid; a budgeted plan.",
    "report": "Write an HTML report: the system, its map, rankings, a scenario, recovery.",
    "risk": "Expected annual loss of scenarios with annual rates, and its exceedance curve.",
    "scenario": "Sample a hazard scenario many times and cascade each sample.",
    "simulate": "Fail some nodes and edges of SYSTEM and show what stops working.",
}


class CliError(click.ClickException):
    """A user-facing error: one line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _one_line(exc: click.UsageError) -> CliError:
    """Click's usage error (usage, a hint and the error on four lines) as one line, exit 2."""
    path = exc.ctx.command_path if exc.ctx is not None else "cascade"
    return CliError(f"{exc.format_message()} (see '{path} --help')")


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"cascade.commands.{COMMANDS[name]}")
        return getattr(module, "command")

    def format_commands(self, ctx, formatter):
        # The summaries above, not each command's docstring: listing them imports nothing.
        rows = [(name, SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:   # plain `cascade`: the help, as click prints it
            raise
        except click.UsageError as exc:   # `cascade --bad` or `cascade nonsense`
            raise _one_line(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:   # a bad option of a command: one line too, exit 2
            raise _one_line(exc) from None
        except InputError as exc:
            raise CliError(str(exc)) from None
        except KeyboardInterrupt:
            # Ctrl-C: the work stops (threads cancel their queued batches, worker processes
            # ignore the signal and are shut down), one line, the shell's status for SIGINT.
            click.echo("interrupted: stopped, nothing written", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise CliError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.version_option(package_name="cascade-lifelines", prog_name="cascade")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars on stderr for long runs (default: only when stderr is a terminal).")
@click.option("--cache/--no-cache", default=None,
              help="Keep the compiled system in SYSTEM/.cascade-cache/ and reuse it while the files "
                   "are unchanged (default: on, unless CASCADE_CACHE=0).")
def cli(progress, cache):
    """Cascading failures in coupled city lifelines.

    A SYSTEM is a directory with nodes.csv, edges.csv, dependencies.csv and system.toml
    (see the README).  Try:  cascade simulate networks/demo_town --fail P-SUB-T03
    """
    from .light import hide_matplotlib_from_igraph

    hide_matplotlib_from_igraph()   # igraph's drawing is never used here (cascade/light.py)


def main():  # the console entry point
    try:
        cli(standalone_mode=True)
    except BrokenPipeError:  # `cascade ... | head`
        sys.stderr.close()
        sys.exit(0)
