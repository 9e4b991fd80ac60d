"""Regenerate the example outputs quoted in README.md from the live commands.

    python benchmarks/update_readme.py        # rewrites README.md in place

tests/test_repo.py checks that README.md matches what this script writes.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hcsim.frontends import cli  # noqa: E402

BLOCKS = {"scorecard": ["compare", "--history", "linux", "--vmm", "qemu"],
          "scorecard-compat": ["compare", "--history", "linux", "--vmm", "qemu-compat"],
          "scorecard-max": ["compare", "--history", "linux", "--vmm", "qemu",
                            "--host", "max", "--strategy", "upstream"]}


def output(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(argv) == 0
    return buf.getvalue()


def render(text: str) -> str:
    for name, argv in BLOCKS.items():
        body = output(argv).rstrip("\n")
        text = re.sub(rf"(<!-- {name} -->\n```\n).*?(\n```)",
                      lambda m, body=body: m.group(1) + body + m.group(2), text, flags=re.S)
    return text


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
