"""One module per CLI command; each defines ``command`` and uses the helpers here."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import click
import numpy as np

from ..compiled import CompiledSystem, compile_system
from ..errors import InputError, did_you_mean, reading
from ..io import read_system, write_atomic
from ..system import InfrastructureSystem
from ..resources import release_memory  # noqa: F401  (used by the commands)

system_argument = click.argument("system_dir", metavar="SYSTEM",
                                 type=click.Path(file_okay=False, path_type=Path))
output_option = click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
                             help="Write to this file (atomically) instead of standard output.")
engine_option = click.option("--engine", type=click.Choice(["core", "reference"]), default="core",
                             show_default=True,
                             help="The Cython core, or the slow networkx reference engine to check it.")

# One rule for --seed in every command: numpy seeds are non-negative; 63 bits keep them exact
# in JSON and in every integer type on the way.
SEED = click.IntRange(0, 2**63 - 1)


csv_safe_option = click.option(
    "--csv-safe", is_flag=True,
    help="CSV: start text cells that begin with = + - @, a tab or CR with ' so that spreadsheets "
         "show them as text instead of running them as formulas (map/export --result read such "
         "files back to the same ids).")


def csv_text(frame, safe: bool = False, **kwargs) -> str:
    """A table as CSV text; with ``safe``, formula-like text cells are neutralised."""
    from ..io.csv_dir import neutralise_formulas

    return (neutralise_formulas(frame) if safe else frame).to_csv(index=False, lineterminator="\n", **kwargs)


def format_option(*choices: str, default: str = "table"):
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default,
                        show_default=True, help="Output format.")


def load(system_dir: Path) -> tuple[InfrastructureSystem, CompiledSystem]:
    """Read and compile a system directory (errors become one line and exit 2), through the
    compiled-system cache (:mod:`cascade.cache`) unless ``cascade --no-cache`` or
    ``CASCADE_CACHE=0`` turns it off."""
    from ..cache import load as cached_load

    ctx = click.get_current_context(silent=True)
    choice = ctx.find_root().params.get("cache") if ctx is not None else None
    _arrow_pool()
    out = cached_load(system_dir, cache=choice)
    release_memory()
    return out


def _arrow_pool() -> None:
    """pyarrow's jemalloc pool for reading, unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses one:
    at 10^6 rows it peaks about 150 MB lower than the default mimalloc (it reuses what the
    reader frees).  Set in the process, never in the environment (no child inherits it)."""
    import os

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (ImportError, NotImplementedError, AttributeError):   # a build without jemalloc
        pass




def read_id_lines(path: Path) -> list[tuple[str, int]]:
    """(text, file line) of every line that is not blank and does not start with #."""
    with reading(path):
        text = Path(path).read_text(encoding="utf-8-sig")
    return [(line.strip(), k) for k, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]


def read_id_file(path: Path) -> list[str]:
    """Ids, one per line; blank lines and lines starting with # are skipped."""
    return [text for text, _ in read_id_lines(path)]


def failure_ids(compiled: CompiledSystem, fail, fail_file) -> list[str]:
    """The ids of --fail and --fail-file, checked against the system (unknown id: exit 2)."""
    ids = [(name, "--fail", None) for name in fail]
    if fail_file:
        ids += [(name, str(fail_file), line) for name, line in read_id_lines(fail_file)]
    for name, where, line in ids:
        if name not in compiled._node_map and name not in compiled._edge_map:
            raise InputError(f"unknown node or edge id '{name}'"
                             + did_you_mean(name, [*compiled._node_map, *compiled._edge_map]), where, line)
    return [name for name, _, _ in ids]


def to_json(data) -> str:
    """Strict JSON (RFC 8259): NaN and infinities as null, numpy scalars as numbers."""
    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (np.integer,)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(x) else None  # JSON has no NaN or Infinity
        if isinstance(x, np.bool_):
            return bool(x)
        return x
    return json.dumps(clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def emit(text: str, output: Path | None) -> None:
    """Print, or write the whole text atomically to ``output``."""
    if output is None:
        click.echo(text, nl=False)
    else:
        if not output.parent.exists():
            raise InputError("directory does not exist", str(output.parent))
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)


def emit_chunks(pieces, output: Path | None) -> None:
    """:func:`emit` of the text ``"".join(pieces)`` piece by piece: printed, or written to a
    temporary file beside ``output`` renamed at the end (no partial output file)."""
    if output is None:
        for piece in pieces:
            click.echo(piece, nl=False)
        return
    import tempfile

    if not output.parent.exists():
        raise InputError("directory does not exist", str(output.parent))
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for piece in pieces:
                fh.write(piece)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    click.echo(f"wrote {output}", err=True)


def table(rows: list[list], headers: list[str], align: str | None = None) -> str:
    """A plain text table; ``align`` has one 'l' or 'r' per column."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                               for c, w, a in zip(row, widths, align)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def pct(x) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:5.1f}%"


def default_threads() -> int:
    """The machine's usable cores (the process's CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# One rule for --threads and --workers in every command: at least 1 and at most this many per
# usable core (more only queues work, and 10^5 threads or worker processes exhaust the machine).
PER_CORE = 4
PARALLEL_RULE = f"at most {PER_CORE}x the machine's cores"


class Parallel(click.ParamType):
    """``--threads N`` / ``--workers N``: an integer from 1 to :data:`PER_CORE` x the usable
    cores; outside that, click's one-line error (exit 2) says the limit on this machine."""

    name = "integer"

    def convert(self, value, param, ctx):
        n = click.INT.convert(value, param, ctx)
        cores = default_threads()
        if n < 1:
            self.fail(f"{n} is not a positive number", param, ctx)
        if n > PER_CORE * cores:
            self.fail(f"{n} is more than {PER_CORE * cores} ({PARALLEL_RULE}: {PER_CORE} x {cores} here)",
                      param, ctx)
        return n


PARALLEL = Parallel()


def is_terminal() -> bool:
    return sys.stderr.isatty()


def show_progress() -> bool:
    """Whether long runs show a progress bar on stderr: ``cascade --progress/--no-progress``,
    else only when stderr is a terminal (a piped or redirected run stays quiet)."""
    ctx = click.get_current_context(silent=True)
    choice = ctx.find_root().params.get("progress") if ctx is not None else None
    return is_terminal() if choice is None else bool(choice)
