#!/usr/bin/env python3
"""Print the other-register ids one probe file lists and another does not.

    tools/reglists/probe-diff.py OLD.jsonl NEW.jsonl [--vm A] [--vm-new P]

Output is the ``removed = [...]`` / ``added = [...]`` arrays of a
``[[change]]`` entry of ``data/linux-reglists.toml`` (ids of classes other
than CORE, SVE, 0x14 and 0x16, with their kernel names), to paste under the
change's citation.  The ids come from the files' ``reg_list_chunk`` records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hcsim.model.reglists import is_other, read_probe_lists, sysreg_name  # noqa: E402


def block(key: str, ids: list[int]) -> str:
    if not ids:
        return f"{key} = []"
    rows = "".join(f'  {{ id = "{i:#018x}", name = "{sysreg_name(i)}" }},\n' for i in ids)
    return f"{key} = [\n{rows}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--vm", default="A", help="VM of OLD (and of NEW unless --vm-new); default A")
    ap.add_argument("--vm-new", help="VM of NEW")
    a = ap.parse_args(argv)
    old = read_probe_lists(a.old)[a.vm]
    new = read_probe_lists(a.new)[a.vm_new or a.vm]
    o = {i for i in old if is_other(i)}
    n = {i for i in new if is_other(i)}
    print(f"# {Path(a.old).name}:{a.vm} ({len(o)} other ids) -> "
          f"{Path(a.new).name}:{a.vm_new or a.vm} ({len(n)})")
    print(block("removed", sorted(o - n)))
    print(block("added", sorted(n - o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
