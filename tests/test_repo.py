"""The repository's own promises: README commands, CI script, ruff."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"<!-- (\w+)-command -->\n```sh\n(.+?)\n```", text))


def test_readme_has_exactly_the_two_setup_commands():
    cmds = readme_commands()
    assert set(cmds) == {"main", "test"}
    assert "hcsim compare --history linux --vmm qemu" in cmds["main"]
    assert "pip install -e '.[test]'" in cmds["test"] and "pytest" in cmds["test"]


def run_ci(tmp_path: Path, readme: str) -> subprocess.CompletedProcess:
    """Run a copy of ``.ci/run`` in a scratch clone holding only ``readme``."""
    (tmp_path / ".ci").mkdir()
    shutil.copy2(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text(readme)
    return subprocess.run(["sh", str(tmp_path / ".ci" / "run")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


FAKE_README = """# fake

<!-- main-command -->
```sh
echo main > main.txt
```

<!-- test-command -->
```sh
printf '%s\\n' "it ran" > ran.txt && exit {code}
```
"""


def test_ci_runs_the_readme_test_command_verbatim(tmp_path):
    proc = run_ci(tmp_path, FAKE_README.format(code=0))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == """+ printf '%s\\n' "it ran" > ran.txt && exit 0\n"""
    assert (tmp_path / "ran.txt").read_text() == "it ran\n"
    assert not (tmp_path / "main.txt").exists()


@pytest.mark.parametrize("code", [1, 5])         # 5: pytest collected nothing
def test_ci_fails_when_the_test_command_fails(tmp_path, code):
    proc = run_ci(tmp_path, FAKE_README.format(code=code))
    assert proc.returncode == code
    assert (tmp_path / "ran.txt").exists()


def test_ci_fails_without_a_test_command(tmp_path):
    proc = run_ci(tmp_path, FAKE_README.replace("test-command", "other-command").format(code=0))
    assert proc.returncode == 1
    assert "no test command" in proc.stderr and not (tmp_path / "ran.txt").exists()


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


def test_readme_has_each_heading_and_paragraph_once():
    """A speed update once pasted a second copy of five sections: every
    heading, and every paragraph of prose, appears once."""
    text = (ROOT / "README.md").read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)       # code blocks may repeat
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    assert len(headings) == len(set(headings)), sorted(
        h for h in set(headings) if headings.count(h) > 1)
    paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200]
    repeated = {p[:60] for p in paragraphs if paragraphs.count(p) > 1}
    assert not repeated, repeated
