"""``hcsim fleet``: options, rendering and output files."""

from __future__ import annotations

import argparse
from pathlib import Path

from hcsim import files, limits
from hcsim.analyses.fleet.engine import (
    _pools,  # noqa: F401
    simulate,
)
from hcsim.analyses.fleet.records import CONFIGS, SUMMARY_COLUMNS, FleetResult
from hcsim.analyses.inventory import load_inventory, load_plan
from hcsim.errors import InputError
from hcsim.frontends import tables
from hcsim.model import history as history_mod
from hcsim.model import strategies as strategies_mod
from hcsim.model import vmm as vmm_mod


def add_fleet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", required=True, metavar="H",
                   help="history TOML path or bundled name (linux)")
    p.add_argument("--inventory", required=True, metavar="FILE",
                   help="hosts: TOML or CSV (format: hcsim.analyses.inventory)")
    from hcsim.frontends.commands import add_view
    add_view(p)
    p.add_argument("--plan", required=True, metavar="FILE", help="rollout plan (TOML)")
    p.add_argument("--strategy", action="append", metavar="S",
                   help="NAME[:k=v,...]; repeat; default: upstream")
    p.add_argument("--vmm", action="append", metavar="V",
                   help="VMM policy for every host; repeat; default: the inventory's")
    p.add_argument("--config", action="append", metavar="C", choices=CONFIGS,
                   help="default | baseline; repeat; default: both")
    p.add_argument("--guests", type=limits.argtype("guests", 0, limits.GUESTS), metavar="N",
                   help=f"guests (default: the plan's; cap {limits.GUESTS:,})")
    p.add_argument("--seed", type=limits.argtype("seed", 0, limits.SEED_MAX), default=0,
                   metavar="K", help="simulation seed (0..2**63-1)")
    p.add_argument("--format", default="text", metavar="F",
                   help="text (72 columns), csv, json, markdown")
    p.add_argument("--output", metavar="FILE", help="write the summary here (atomically)")
    p.add_argument("--timeline", metavar="FILE", help="also write the timeline as CSV")
    p.add_argument("--figure", metavar="FILE", help="also draw the timeline (PNG, SVG, PDF)")
    p.set_defaults(func=run_fleet)


def render(result: FleetResult, fmt: str) -> str:
    """The summary table as text (72 columns), csv, json or markdown."""
    records = result.summary.to_dict("records")
    if fmt == "csv":
        return tables.to_csv(SUMMARY_COLUMNS, records)
    if fmt == "json":
        return tables.to_json(records)
    if fmt == "markdown":
        return tables.to_markdown(SUMMARY_COLUMNS, records)
    cols = [("strategy", -18), ("vmm", -13), ("config", -8), ("broken", 7),
            ("refused", 7), ("blocked", 7), ("MiB", 6)]
    lines = []
    for r in records:
        name = r["strategy"]
        if len(name) > 18:          # a long spec gets its own line, as in the scorecard
            lines.append(name)
            name = ""
        lines.append(tables.fixed(cols, [[name, r["vmm"][:13], r["config"],
                                          str(r["broken_guests"]),
                                          str(r["refused"] + r["unsupported"] + r["stranded"]),
                                          str(r["hosts_blocked"]),
                                          f"{r['bytes_moved'] / (1 << 20):.0f}"]]
                                  ).splitlines()[1])
    head = tables.fixed(cols, [])
    if records:
        head = (f"fleet: {records[0]['hosts']} hosts, {records[0]['guests']} guests\n" + head)
    notes = ("broken: guests that lost a service they booted with.  refused:\n"
             "evacuations refused, unsupported or with no host.  blocked:\n"
             "host upgrades that could not drain.  MiB: migration streams.\n")
    return head + "".join(line + "\n" for line in lines) + notes


def run_fleet(args) -> int:
    tables.check_format(args.format)
    files.check_outputs(args.output, args.timeline, args.figure)
    if args.figure and Path(args.figure).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"{args.figure}: the figure must be a .png, .svg or .pdf file")
    history = history_mod.load(args.history)
    from hcsim.frontends.commands import apply_view
    history = apply_view(history, args)
    inv = load_inventory(args.inventory, history)
    plan = load_plan(args.plan, history, inv)
    specs = args.strategy or ["upstream"]
    for spec in specs:
        strategies_mod.parse(spec)
    vmms = args.vmm or [None]
    for v in vmms:
        if v is not None:
            vmm_mod.parse(v)
        inv.with_vmm(v)
    result = simulate(history, inv, plan, specs, vmms, args.config or list(CONFIGS),
                      args.guests, args.seed)
    text = render(result, args.format)
    outputs = {}
    if args.timeline:
        outputs[args.timeline] = result.timeline.to_csv(index=False).encode()
    if args.figure:
        import io

        import matplotlib
        matplotlib.use("Agg")
        from hcsim.frontends import plots
        fig = plots.fleet_timeline(result.timeline, result.hosts)
        buf = io.BytesIO()
        fig.savefig(buf, format=Path(args.figure).suffix[1:].lower(), dpi=120)
        outputs[args.figure] = buf.getvalue()
    for path, data in outputs.items():      # everything is rendered: now write
        with files.atomic_file(path, "wb") as fh:
            fh.write(data)
    files.emit(text, args.output)
    return 0
