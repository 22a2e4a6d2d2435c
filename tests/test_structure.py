"""The layering of the package: library modules never import the CLI layer.

``cascade/cli.py`` and ``cascade/commands/`` parse options and print; everything else is the
library, usable from Python without Click.  A library module that imports the CLI layer (even
inside a function) turns that around, so this test reads every import statement of the
library's source files.
"""
from __future__ import annotations

import ast
from pathlib import Path

import cascade

PACKAGE = Path(cascade.__file__).parent
CLI_LAYER = ("cascade.cli", "cascade.commands")


def library_files() -> list[Path]:
    files = [p for p in PACKAGE.rglob("*.py")   # cli.py and __main__.py (python -m cascade) are the CLI
             if p.name not in ("cli.py", "__main__.py") or p.parent != PACKAGE]
    return [p for p in files if "commands" not in p.relative_to(PACKAGE).parts]


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    package = ".".join(("cascade",) + path.relative_to(PACKAGE).parent.parts)
    source = path.read_text(encoding="utf-8") if source is None else source
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from . import commands` / `from cascade import cli`
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def test_the_library_files_are_found():
    names = {p.relative_to(PACKAGE).as_posix() for p in library_files()}
    assert {"report.py", "summary.py", "system.py", "io/csv_dir.py"} <= names
    assert "cli.py" not in names and "__main__.py" not in names and not any(n.startswith("commands/") for n in names)


def test_the_resolver_sees_relative_imports_of_the_cli_layer():
    """The check itself can fail: relative and absolute imports of the CLI layer are caught."""
    probe = "def f():\n    from ..commands.info import describe\n    from .. import cli\nimport cascade.commands\n"
    mods = [m for _, m in imported_modules(PACKAGE / "io" / "probe.py", probe)]
    assert {"cascade.commands.info", "cascade.cli", "cascade.commands"} <= set(mods)
    assert [m for _, m in imported_modules(PACKAGE / "probe.py", "from .commands import emit\n")][0] \
        == "cascade.commands"


def test_library_never_imports_the_cli_layer():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}: imports {module}"
                 for path in library_files() for line, module in imported_modules(path)
                 if module.startswith(CLI_LAYER)]
    assert offenders == []


def test_describe_lives_in_the_library():
    from cascade.commands import info
    from cascade.summary import describe

    assert info.describe is describe and describe.__module__ == "cascade.summary"
