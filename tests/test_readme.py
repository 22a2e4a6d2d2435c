"""The README's examples run as written.

Every fenced block of README.md names its language.  The runnable ones run here:

* ```python: in a fresh namespace per block, in a temporary directory holding a copy of
  ``networks/``, ``scenarios/`` and ``benchmarks/`` (so relative paths work as in the
  repository and nothing is written into the checkout);
* ```console: every line starting with ``$ `` (continued with a trailing ``\\``) is run by bash
  in such a directory, through a real process, and must exit 0; the other lines are its
  output as shown in the README, whose first line must start the same way as the real output's
  first line (up to its first digit);
* ```sh / ```bash: the whole block is a bash script (``set -e``) run the same way.  A ``make``
  command line is only dry-run (``make -n``) in the repository: the targets exist and their
  recipes expand, but building a virtual environment is no job for the test suite.

Outputs, file formats and synopses are ```text (or ```json, ```toml, ```csv) and are not run.
Commands run with the Python that runs the tests first on PATH and this checkout first on
PYTHONPATH, so ``python`` and ``cascade`` are this tree's.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUNNABLE = ("python", "console", "sh", "bash")
NOT_RUN = ("text", "json", "toml", "csv")
TIMEOUT = 300


@dataclass
class Block:
    lang: str
    line: int  # of the opening fence
    text: str

    @property
    def name(self) -> str:
        return f"{self.lang}-line{self.line}"


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text(encoding="utf-8") if text is None else text
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^```(\S*)\s*$", line)
        if lang is None:
            if fence:
                lang, start, body = fence.group(1), number, []
        elif line.rstrip() == "```":
            blocks.append(Block(lang, start, "\n".join(body) + "\n"))
            lang = None
        else:
            body.append(line)
    assert lang is None, f"README.md: the block opened on line {start} is never closed"
    return blocks


def console_commands(text: str) -> list[tuple[str, list[str]]]:
    """(command, shown output lines) of a console block."""
    runs: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            runs.append((command, []))
        elif runs:
            runs[-1][1].append(line)
        else:
            raise AssertionError(f"console block: output before any '$ ' command: {line!r}")
        i += 1
    return runs


BLOCKS = readme_blocks()
RUN = [b for b in BLOCKS if b.lang in RUNNABLE]


@pytest.fixture
def sandbox(tmp_path):
    """A working directory with copies of the repository's example inputs."""
    for name in ("networks", "scenarios"):
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "benchmarks").mkdir()
    for path in (ROOT / "benchmarks").glob("*.py"):
        shutil.copy(path, tmp_path / "benchmarks" / path.name)
    return tmp_path


def environment() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["MPLBACKEND"] = "Agg"
    for key in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(key, None)
    return env


def bash(script: str, cwd: Path, where: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=environment(),
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (f"{where}: exit {proc.returncode}\n$ {script}\n"
                                  f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    return proc


def dry_run_make(script: str) -> str:
    """Replace each `make TARGET ...` line by a dry run in the repository."""
    out = []
    for line in script.splitlines():
        m = re.match(r"^(\s*)make\s+(.*)$", line)
        out.append(f"{m.group(1)}make -n -C {ROOT} {m.group(2)} >/dev/null" if m else line)
    return "\n".join(out) + "\n"


def test_every_block_names_its_language():
    """A bare ``` fence would hide a block from this module; every fence says what it holds."""
    bad = [f"README.md, line {b.line}: ```{b.lang}" for b in BLOCKS if b.lang not in RUNNABLE + NOT_RUN]
    assert bad == []


def test_the_extractor_reads_blocks_and_commands():
    blocks = readme_blocks("intro\n```python\nx = 1\n```\ntext\n```console\n$ cascade a \\\n    --b\nout 1\n"
                           "out 2\n$ echo\n```\n")
    assert [(b.lang, b.line) for b in blocks] == [("python", 2), ("console", 6)]
    assert console_commands(blocks[1].text) == [("cascade a  --b", ["out 1", "out 2"]), ("echo", [])]
    assert "make -n -C" in dry_run_make("make demo   # comment\n")


def test_there_is_something_to_run():
    langs = {b.lang for b in RUN}
    assert {"python", "console", "sh"} <= langs and len(RUN) >= 10


@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_readme_example_runs(block, sandbox, monkeypatch):
    where = f"README.md, block at line {block.line}"
    if block.lang == "python":
        import matplotlib

        matplotlib.use("Agg")
        monkeypatch.chdir(sandbox)
        code = compile("\n" * block.line + block.text, f"README.md:{block.line}", "exec")
        exec(code, {"__name__": "__readme__"})
    elif block.lang == "console":
        runs = console_commands(block.text)
        assert runs, f"{where}: a console block without a '$ ' command"
        for command, shown in runs:
            proc = bash(dry_run_make(command), sandbox, where)
            shown = [s for s in shown if s.strip()]
            if shown and not command.startswith("make "):
                head = re.split(r"\d", shown[0])[0]
                first = (proc.stdout.splitlines() or [""])[0]
                assert first.startswith(head), f"{where}: `{command}` printed {first!r}, the README shows {shown[0]!r}"
    else:
        bash(dry_run_make(block.text), sandbox, where)


def test_the_example_of_cascade_help_runs():
    """`cascade --help` suggests a first command; run from the repository root, it works."""
    env = environment()
    help_text = subprocess.run(["cascade", "--help"], capture_output=True, text=True, env=env, cwd=ROOT,
                               timeout=TIMEOUT).stdout
    m = re.search(r"Try:\s+(cascade .+?)(?:\n\s*\n|\Z)", help_text, re.S)  # Click may wrap it
    assert m, help_text
    command = " ".join(m.group(1).split())
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, f"`{command}`: {proc.stderr}"
    assert proc.stdout.startswith("System ") and "stopped working" in proc.stdout


# ------------------------------------------------------------------ the project documents itself
DESIGN_NOTES = [name + ".md" for name in ("FORMAT", "SCIENCE", "STYLE", "ARCHITECTURE")]


def tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout (an sdist): every file under the root
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    else:
        names = out.stdout.splitlines()
    keep = (".md", ".py", ".pyx", ".pxd", ".toml", ".csv", ".txt", ".cfg")
    return [ROOT / n for n in names if n.endswith(keep) or n in ("Makefile", ".ci/run")]


def test_no_pointer_to_design_notes_outside_the_repository():
    """The design notes (FORMAT, SCIENCE, STYLE, ARCHITECTURE) were never shipped: nothing may send a
    reader to them."""
    found = []
    for path in tracked_text_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in DESIGN_NOTES:
            for m in re.finditer(rf"(?<![\w/]){re.escape(name)}", text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert found == []


def test_every_local_link_and_docs_path_exists():
    """Markdown links and `docs/...` paths in the README, the docs and the code point at files."""
    missing = []
    for path in tracked_text_files():
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        targets = set(re.findall(r"\bdocs/[\w.-]+\.md\b", text))
        if path.suffix == ".md":
            targets |= {t.split("#")[0] for t in re.findall(r"\]\(([^)#\s]+(?:#[^)\s]*)?)\)", text)
                        if "://" not in t and not t.startswith("#")}
        for target in targets:
            base = ROOT if target.startswith("docs/") and path.suffix != ".md" else path.parent
            if not (base / target).exists():
                missing.append(f"{path.relative_to(ROOT)}: {target}")
    assert missing == []


def test_the_docs_hold_the_format_and_the_model():
    readme = README.read_text(encoding="utf-8")
    assert "docs/format.md" in readme and "docs/model.md" in readme
    fmt = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    for needle in ("`nodes.csv`", "`edges.csv`", "`dependencies.csv`", "`system.toml`", "## Static cascade",
                   "**usable**", "`giant`", "`source`", "`none`", "## Service", "## Bad input", "alternatives"):
        assert needle in fmt, needle
    model = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    for needle in ("Buldyrev", "P∞ = p · (1 − exp(−k · P∞))²", "Bruneau", "Hazus", "Osat"):
        assert needle in model, needle
