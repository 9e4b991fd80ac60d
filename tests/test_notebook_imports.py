"""The notebooks use the public API: ``hcsim``'s top level and the presentation modules.

A notebook is an argument a reader reruns (``hcsim report``); if it reached
into internals, every refactoring would break it.  Its code cells may import
third-party packages, ``hcsim`` and names of ``hcsim``'s top level, and the
two presentation modules (figures and prose); no other ``hcsim`` module.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: hcsim modules a notebook may import besides the package itself.
PRESENTATION = {"hcsim.frontends.plots", "hcsim.frontends.narrate"}


def code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def internal_imports(source: str) -> list[str]:
    """hcsim modules imported other than ``hcsim`` and :data:`PRESENTATION`."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module != "hcsim.frontends" else \
                [f"hcsim.frontends.{a.name}" for a in node.names]
        else:
            continue
        bad += [n for n in names if n.startswith("hcsim.") and n not in PRESENTATION]
    return bad


def dotted_internals(source: str) -> list[str]:
    """``hcsim.<subpackage>...`` attribute chains (internals reached without an import)."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "hcsim"
                and node.attr in ("model", "evaluation", "analyses", "frontends")):
            bad.append(f"hcsim.{node.attr}")
    return bad


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("0*.ipynb")), ids=lambda p: p.stem)
def test_notebook_imports_only_the_public_api(notebook):
    source = code(notebook)
    assert internal_imports(source) + dotted_internals(source) == []


def test_the_check_catches_an_internal_import():
    assert internal_imports("from hcsim.evaluation import measures\nimport hcsim.model.kvm\n"
                            "from hcsim.frontends import plots, tables") == [
        "hcsim.evaluation", "hcsim.model.kvm", "hcsim.frontends.tables"]
    assert dotted_internals("k = hcsim.model.kvm.Kernel") == ["hcsim.model"]
