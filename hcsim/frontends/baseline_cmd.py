"""``hcsim baseline``: options and the baseline rendered as text, csv, json or markdown."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from hcsim import files
from hcsim.analyses.baseline import Baseline, HostSpec, compute, parse_hosts
from hcsim.frontends import tables
from hcsim.model import history as history_mod
from hcsim.model import strategies as strategies_mod
from hcsim.model import vmm as vmm_mod
from hcsim.model.history import History
from hcsim.model.regs import hexid, is_feature


def rows(b: Baseline) -> dict[str, list[dict]]:
    """Plain records of a baseline, by section (json and csv)."""
    return {
        "registers": [{"register": r.name, "id": hexid(r.id),
                       "value": None if r.value is None else f"0x{r.value:x}",
                       "hosts": list(r.hosts), "note": r.note} for r in b.registers],
        "costs": [{"host": c.host, "view": sorted(c.view), "given_up": sorted(c.given_up),
                   "turned_on": sorted(c.turned_on),
                   "shows_anyway": sorted(c.shows_anyway), "cannot_show": sorted(c.cannot_show),
                   "firmware": [{"register": n, "default": f"0x{d:x}", "baseline": f"0x{v:x}"}
                                for n, d, v in c.firmware]} for c in b.costs],
        "pairs": [{"src": p.src, "dst": p.dst, "outcome": p.outcome, "status": p.status,
                   "gained": sorted(p.gained), "lost": sorted(p.lost), "detail": p.detail,
                   "why": p.why} for p in b.pairs],
    }


CSV_COLUMNS = ("kind", "src", "dst", "name", "value", "outcome", "detail")


def render(b: Baseline, fmt: str) -> str:
    """The baseline as text (72 columns), json, csv or markdown."""
    if fmt == "json":
        doc = {"history": b.history, "strategy": b.strategy, "vmm": b.vmm,
               "hosts": list(b.hosts), "opt_in": b.opt_in, "safe": b.safe,
               "services": sorted(b.services), "services_off": sorted(b.setting.off),
               "notes": list(b.notes), **rows(b)}
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        return tables.to_csv(CSV_COLUMNS, _csv_records(b))
    if fmt == "markdown":
        return _markdown(b)
    return _text(b)


def _csv_records(b: Baseline) -> list[dict]:
    out = []
    for r in b.registers:
        out.append({"kind": "register", "src": ";".join(r.hosts), "dst": "", "name": r.name,
                    "value": "" if r.value is None else f"0x{r.value:x}", "outcome": "",
                    "detail": r.note})
    for c in b.costs:
        for s in sorted(c.given_up):
            out.append({"kind": "given-up", "src": c.host, "dst": "", "name": s, "value": "",
                        "outcome": "", "detail": ""})
        for s in sorted(c.turned_on):
            out.append({"kind": "turned-on", "src": c.host, "dst": "", "name": s, "value": "",
                        "outcome": "", "detail": ""})
        for kind, names in (("shows-anyway", c.shows_anyway), ("cannot-show", c.cannot_show)):
            for s in sorted(names):
                out.append({"kind": kind, "src": c.host, "dst": "", "name": s, "value": "",
                            "outcome": "", "detail": ""})
        for n, d, v in c.firmware:
            out.append({"kind": "firmware", "src": c.host, "dst": "", "name": n,
                        "value": f"0x{v:x}", "outcome": "", "detail": f"default 0x{d:x}"})
    for p in b.pairs:
        out.append({"kind": "pair", "src": p.src, "dst": p.dst, "name": "",
                    "value": p.status, "outcome": p.outcome,
                    "detail": p.why or p.detail})
    return out


def _short(name: str) -> str:
    return name.removeprefix("KVM_REG_ARM_")


def _wrap(prefix: str, words: Sequence[str], width: int = tables.EMAIL_WIDTH,
          indent: int | None = None) -> list[str]:
    lines, line = [], prefix
    for w in words:
        if len(line) + len(w) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = " " * (len(prefix) if indent is None else indent)
        line += w + " "
    lines.append(line.rstrip())
    return lines


def _text(b: Baseline) -> str:
    out = [f"baseline: history {b.history}, {b.strategy} under {b.vmm}",
           *_wrap("hosts: ", [h + "," for h in b.hosts[:-1]] + [b.hosts[-1]]), ""]
    out += _wrap("services on:  ", sorted(b.services) or ["(none)"])
    out += _wrap("services off: ", sorted(b.setting.off) or ["(none)"])
    out += ["", "write at VM creation (KVM_SET_ONE_REG, every vCPU):",
            f"  {'register':<24} {'value':>10}  hosts"]
    shown = [r for r in b.registers if not (is_feature(r.id) and r.value == 0)]
    zero = [r for r in b.registers if is_feature(r.id) and r.value == 0]
    if len(zero) <= 8:
        shown, zero = list(b.registers), []
    n = len(b.hosts)
    for r in shown:
        value = "-" if r.value is None else f"0x{r.value:x}"
        out.append(f"  {_short(r.name):<24} {value:>10}  {len(r.hosts)}/{n}")
        if r.note:
            out += _wrap("      ", r.note.split())
    if zero:
        out.append(f"  {len(zero)} other feature registers: 0x0")
    out += ["", "against each host's default VM (-given up, +turned on):"]
    any_cost = False
    for c in b.costs:
        parts = [f"-{s}" for s in sorted(c.given_up)] + [f"+{s}" for s in sorted(c.turned_on)]
        parts += [f"{_short(name)} 0x{d:x}->0x{v:x}" for name, d, v in c.firmware]
        if parts:
            any_cost = True
            out += _wrap(f"  {c.host:<10} ", parts)
    if not any_cost:
        out.append("  nothing")
    odd = [c for c in b.costs if c.shows_anyway or c.cannot_show]
    if odd:
        out += ["", "hosts that cannot boot a guest with exactly the baseline:"]
        for c in odd:
            parts = [f"+{s}" for s in sorted(c.shows_anyway)]
            parts += [f"-{s}" for s in sorted(c.cannot_show)]
            out += _wrap(f"  {c.host:<10} ", parts)
    bad = [p for p in b.pairs if not p.safe]
    total = len(b.pairs)
    out += ["", f"verified on {total} ordered host pairs: {total - len(bad)} safe, "
            f"{len(b.drifting)} drift, {len(b.impossible)} impossible"]
    for p in bad:
        words = [f"{p.status}:", p.src, "->", p.dst, p.outcome + (":" if p.detail else "")]
        words += [f"+{x}" for x in sorted(p.gained)] + [f"-{x}" for x in sorted(p.lost)]
        out += _wrap("  ", words + p.detail.split(), indent=6)
        if p.why and p.why != p.detail:
            out += _wrap("      ", p.why.split())
    for note in b.notes:
        out += _wrap("note: ", note.split())
    return "\n".join(out) + "\n"


def _markdown(b: Baseline) -> str:
    rec = rows(b)
    parts = [f"**Baseline** for history {b.history}, `{b.strategy}` under `{b.vmm}`; "
             f"hosts: {', '.join(b.hosts)}.", "",
             f"Services on: {', '.join(sorted(b.services)) or 'none'}; "
             f"off: {', '.join(sorted(b.setting.off)) or 'none'}.", ""]
    parts.append(tables.to_markdown(("register", "id", "value", "hosts", "note"),
                                    [{**r, "value": r["value"] or "-",
                                      "hosts": f"{len(r['hosts'])}/{len(b.hosts)}"}
                                     for r in rec["registers"]]))
    parts.append(tables.to_markdown(
        ("host", "given up", "turned on", "firmware"),
        [{"host": c.host, "given up": c.given_up, "turned on": c.turned_on,
          "firmware": ";".join(f"{_short(n)} 0x{d:x}->0x{v:x}" for n, d, v in c.firmware)}
         for c in b.costs]))
    parts.append(tables.to_markdown(("src", "dst", "outcome", "status", "why"),
                                    [{"src": p.src, "dst": p.dst, "outcome": p.outcome,
                                      "status": p.status, "why": p.why or p.detail}
                                     for p in b.pairs if not p.safe]
                                    or [{"src": "-", "dst": "-", "outcome": "-", "status": "safe",
                                         "why": "every pair is safe"}]))
    return "\n".join(parts)


def add_baseline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", required=True, metavar="H",
                   help="history TOML path or bundled name (linux)")
    p.add_argument("--strategy", required=True, metavar="S", help="NAME[:k=v,...]")
    p.add_argument("--vmm", required=True, metavar="V", help="VMM policy")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--hosts", metavar="FILE",
                       help="fleet inventory (TOML or CSV, see hcsim.analyses.inventory): its kernels "
                            "and CPU profiles")
    where.add_argument("--releases", metavar="LIST",
                       help="kernels, comma-separated, each KERNEL[@CPU] "
                            "(e.g. v6.1,v6.6,6.12.117+deb13-arm64@max)")
    from hcsim.frontends.commands import add_view
    add_view(p)
    p.add_argument("--opt-in", action="store_true",
                   help="also turn on opt-in services (default off) every host can show")
    p.add_argument("--format", default="text", metavar="F",
                   help="text (72 columns), csv, json, markdown")
    p.add_argument("--output", metavar="FILE", help="write here (atomically) instead of stdout")
    p.set_defaults(func=run_baseline)


def hosts_from_args(args, history: History) -> list[HostSpec]:
    if args.releases is not None:
        return parse_hosts(args.releases, history)
    from hcsim.analyses.inventory import load_inventory
    inv = load_inventory(args.hosts, history)
    return [HostSpec(g.kernel, g.cpu) for g in inv.groups]


def run_baseline(args) -> int:
    tables.check_format(args.format)
    files.check_output(args.output)
    history = history_mod.load(args.history)
    from hcsim.frontends.commands import apply_view
    history = apply_view(history, args)
    strategy = strategies_mod.parse(args.strategy)
    vmm = vmm_mod.parse(args.vmm)
    result = compute(history, strategy, vmm, hosts_from_args(args, history), args.opt_in)
    files.emit(render(result, args.format), args.output)
    return 0
