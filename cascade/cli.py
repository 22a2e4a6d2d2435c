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


class CliError(click.ClickException):
    """A user-facing error: one line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"cascade.commands.{COMMANDS[name]}")
        return getattr(module, "command")

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
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


def main():  # the console entry point
    try:
        cli(standalone_mode=True)
    except BrokenPipeError:  # `cascade ... | head`
        sys.stderr.close()
        sys.exit(0)
