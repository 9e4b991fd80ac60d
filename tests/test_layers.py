"""The layers of the tree: a module imports only its own layer and the ones below."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hcsim"
#: Bottom to top; hcsim.errors, hcsim.limits and hcsim.files sit below every
#: layer; hcsim.__main__ (``python -m hcsim``) above them all.
LAYERS = ("model", "evaluation", "analyses", "frontends")


def imported(path: Path) -> set[str]:
    """Absolute hcsim modules a file imports, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.split(".")[0] == "hcsim"}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_above_it(layer):
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in imported(path):
            above = layer_of(module)
            if above is not None and above > LAYERS.index(layer):
                bad.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not bad, "\n".join(bad)


def test_the_shared_modules_import_no_layer():
    for name in ("errors.py", "limits.py", "files.py"):
        assert {m for m in imported(PACKAGE / name) if layer_of(m) is not None} == set(), name


def test_every_module_sits_in_a_layer():
    loose = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py", "errors.py",
                                                       "limits.py", "files.py"}
    assert not loose, f"modules outside the layers: {sorted(loose)}"


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from hcsim.frontends import commands\n")
    assert layer_of(next(iter(imported(bad)))) == LAYERS.index("frontends")
