import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
sys.path.insert(0, str(Path(__file__).parent))   # tests/strategies.py


def write_dir(path: Path, nodes: str, edges: str, deps: str | None = None, toml: str | None = None) -> Path:
    """A system directory from CSV texts (leading spaces of each line removed)."""
    path.mkdir(parents=True, exist_ok=True)
    clean = lambda text: "\n".join(line.strip() for line in text.strip().splitlines()) + "\n"
    (path / "nodes.csv").write_text(clean(nodes))
    (path / "edges.csv").write_text(clean(edges))
    if deps is not None:
        (path / "dependencies.csv").write_text(clean(deps))
    if toml is not None:
        (path / "system.toml").write_text(clean(toml))
    return path


@pytest.fixture
def town(tmp_path):
    """A small two-layer town: a power plant feeding two substations, a pump on one of them."""
    return write_dir(
        tmp_path / "town",
        """id,layer,kind,demand
           plant,power,source,0
           sub1,power,,100
           sub2,power,,50
           pump,water,source,0
           tap1,water,,80
           tap2,water,,20""",
        """source,target,directed
           plant,sub1,true
           plant,sub2,true
           pump,tap1,false
           tap1,tap2,false""",
        """dependent,supplier,group,delay
           pump,sub1,,0""",
        """[system]
           name = "town"
        """)


@pytest.fixture
def demo_copy(tmp_path):
    dst = tmp_path / "demo"
    shutil.copytree(DEMO, dst)
    return dst
