"""``hcsim probe-replay``: replay real-kernel probe files against the model."""

from __future__ import annotations

import argparse
import sys

from hcsim.analyses.probe import replay
from hcsim.errors import InputError
from hcsim.model import history as history_mod


def add_probe_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="probe record file (.jsonl)")
    p.add_argument("--history", required=True, metavar="H",
                   help="history TOML path or bundled name (linux)")
    p.add_argument("--release", metavar="R",
                   help="mainline release or [[stable]] kernel name "
                        "(default: the probe's own release, if the history knows it)")
    p.add_argument("--cpu", metavar="MODEL",
                   help="host CPU profile (default: the file's .cpu-MODEL, else max)")
    p.add_argument("--format", default="text", metavar="F", help="text or json")
    p.set_defaults(func=run_probe_replay)


def run_probe_replay(args) -> int:
    if not args.file:
        raise InputError("probe file: empty path")
    if args.format not in ("text", "json"):
        raise InputError(f"unknown format {args.format!r} (known: text, json)")
    history = history_mod.load(args.history)
    if args.release is not None:
        history.kernel(args.release)          # unknown release: InputError
    result = replay(args.file, history, args.release, args.cpu)
    sys.stdout.write(result.as_json() if args.format == "json" else result.text())
    return 0 if result.ok else 1
