"""A non-editable install runs the README's main job with the data it ships.

The wheel is built from a scratch copy of the sources (so no stale ``build/``
of the checkout leaks into it and the checkout is left untouched), installed
with ``pip install --target`` and run with only that target on ``PYTHONPATH``
from an empty directory: the checkout's own ``hcsim/`` and ``data/`` cannot
be imported or read.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hcsim.frontends import cli

ROOT = Path(__file__).resolve().parent.parent
MAIN_JOB = ["compare", "--history", "linux", "--vmm", "qemu"]


def pip(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                           "--no-input", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def offline_backend() -> bool:
    """Can this environment build the wheel itself (setuptools >= 77, PEP 639)?

    ``pip install -e '.[test]'`` installs it, so the build needs no network;
    an older environment lets pip fetch the build backend (build isolation).
    """
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0]) >= 77
    except importlib.metadata.PackageNotFoundError:
        return False


def test_wheel_installed_elsewhere_runs_the_main_job(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("hcsim", "data"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    isolation = ["--no-build-isolation"] if offline_backend() else []
    pip("wheel", "--no-deps", *isolation, "--wheel-dir", str(tmp_path / "dist"), str(src),
        cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("hcsim-*.whl")
    target = tmp_path / "target"
    pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel), cwd=tmp_path)

    # Every module and every data file is in the install, byte for byte.
    for tree, dest in (("hcsim", target / "hcsim"), ("data", target / "hcsim" / "data")):
        want = [p.relative_to(ROOT / tree) for p in sorted((ROOT / tree).rglob("*"))
                if p.is_file() and (tree == "data" or p.suffix == ".py")]
        for rel in want:
            assert (dest / rel).read_bytes() == (ROOT / tree / rel).read_bytes(), rel

    run = tmp_path / "run"
    run.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import hcsim.model.history as h; print(h.__file__, h.resolve('linux'), "
         "h.data_path('kernel-probe'), h.data_path('fleet-example'), sep='\\n')"],
        cwd=run, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    paths = where.stdout.split()
    assert len(paths) == 4 and all(Path(p).is_relative_to(target / "hcsim") for p in paths), paths

    installed = subprocess.run([str(target / "bin" / "hcsim"), *MAIN_JOB], cwd=run, env=env,
                               capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    assert cli.main(MAIN_JOB) == 0
    assert installed.stdout == capsys.readouterr().out
    assert installed.stdout.startswith("hcsim scorecard: history linux (49 releases")
