"""The repository's own promises: README commands, CI script, ruff."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"<!-- (\w+)-command -->\n```sh\n(.+?)\n```", text))


def test_readme_has_exactly_the_two_setup_commands():
    cmds = readme_commands()
    assert set(cmds) == {"main", "test"}
    assert "hcsim compare --history linux --vmm qemu" in cmds["main"]
    assert "pip install -e '.[test]'" in cmds["test"] and "pytest" in cmds["test"]


def test_ci_runs_the_readme_test_command_and_fails_on_empty_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci                      # extracts the README line
    assert "set -eu" in ci
    assert "|| true" not in ci and "exit 0" not in ci


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    proc = subprocess.run([ruff, "check", "hcsim", "tests", "tools", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_examples_are_the_real_output():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import update_readme
    text = (ROOT / "README.md").read_text()
    assert update_readme.render(text) == text, "run benchmarks/update_readme.py"
