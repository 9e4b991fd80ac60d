"""The core commands: ``strategies``, ``vmms``, ``matrix``, ``cost``, ``compare``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from hcsim import limits
from hcsim.errors import InputError
from hcsim.evaluation import measures
from hcsim.evaluation.backends import evaluate, note
from hcsim.evaluation.outcomes import DIRECTIONS, LETTERS, OUTCOMES, PRESERVED, Outcomes
from hcsim.files import check_output, emit
from hcsim.frontends import tables
from hcsim.model import config as config_mod
from hcsim.model import history as history_mod
from hcsim.model import strategies
from hcsim.model import vmm as vmm_mod

LEGEND = "P preserved  G gained  L lost  M mixed  R refused  U unsupported"
MATRIX_COLUMNS = ("src", "dst", "outcome", "gained", "lost", "detail", "blame")
COST_COLUMNS = ("release", "registers", "bytes_per_vcpu", "bytes_per_vm",
                "ioctls", "floor_bytes", "list_registers", "list_bytes_per_vcpu",
                "list_ioctls")
#: ``--engine`` values and the backend of :func:`hcsim.evaluation.backends.evaluate`.
ENGINES = {"auto": "auto", "strict": "engine", "scalar": "spec"}


# -- shared options and output -----------------------------------------------

def add_common(p: argparse.ArgumentParser, strategy: bool = True,
               many: bool = False) -> None:
    p.add_argument("--history", required=True, metavar="H",
                   help="history TOML path or bundled name (linux)")
    if strategy and many:
        p.add_argument("--strategy", action="append", metavar="S",
                       help="NAME[:k=v,...]; repeat; default: every strategy")
    elif strategy:
        p.add_argument("--strategy", required=True, metavar="S",
                       help="NAME[:k=v,...]")
    p.add_argument("--vmm", required=True, metavar="V", help="VMM policy")
    p.add_argument("--since", metavar="R",
                   help="only releases from R on (e.g. v5.19, where bitmaps start)")
    p.add_argument("--host", metavar="P",
                   help="host CPU profile (default: the history's `host`; "
                        "linux: neoverse-n1; max is QEMU -cpu max)")
    add_view(p)
    p.add_argument("--format", default="text", metavar="F",
                   help="text (72 columns), csv, json, markdown")
    p.add_argument("--output", metavar="FILE",
                   help="write here (atomically) instead of stdout")


def add_view(p: argparse.ArgumentParser) -> None:
    """``--registers`` and ``--features`` (DESIGN.md section 9)."""
    p.add_argument("--registers", choices=("all", "hypercall"), default=None,
                   help="all: the whole register list (the default where the history "
                        "has register lists, e.g. linux); hypercall: other registers "
                        "taken as identical on both sides (the thread's question alone)")
    p.add_argument("--features", metavar="F", default=None,
                   help="vCPU features the register lists are taken for: none (default) "
                        "or pmu (KVM_ARM_VCPU_PMU_V3)")


def apply_view(history, args):
    """The history in the view and vCPU feature set the options ask for."""
    from hcsim.model.other import parse_features
    if getattr(args, "registers", None) is not None:
        history = history.with_registers(args.registers)
    if getattr(args, "features", None) is not None:
        history = history.with_features(parse_features(args.features))
    return history


def at_least(minimum: int):
    """argparse type: an integer >= ``minimum`` (argparse names the option)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


positive = at_least(1)
#: ``--vcpus``: 1..KVM_MAX_VCPUS (512 on arm64, :mod:`hcsim.limits`).
vcpus = limits.argtype("vcpus", 1, limits.VCPUS)
VCPUS_HELP = f"vCPUs per VM (default 1; 1..{limits.VCPUS}, KVM_MAX_VCPUS on arm64)"


def add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="auto", choices=tuple(ENGINES),
                   help="auto (the vectorised engine where it applies, else the scalar "
                        "spec, with a note on stderr), strict (the engine or an error), "
                        "scalar (the spec, slow); same results")


def run_evaluate(args, history, strategy, vmm, configs, vcpus: int = 1,
                 sets: bool = True) -> Outcomes:
    """:func:`~hcsim.evaluation.backends.evaluate` for a command; notes go to stderr."""
    outcomes = evaluate(history, strategy, vmm, configs, ENGINES[args.engine], vcpus, sets)
    if outcomes.reason:
        print(f"hcsim: {note(outcomes)}", file=sys.stderr)
    return outcomes


def _setup(args):
    tables.check_format(args.format)
    check_output(args.output)
    history = history_mod.load(args.history)
    if args.since is not None:
        history = history.since(args.since)
    if args.host is not None:
        history = history.with_host(args.host)
    history = apply_view(history, args)
    return history, vmm_mod.parse(args.vmm)


# -- strategies, vmms ----------------------------------------------------------

def add_strategies(p):
    p.add_argument("--format", default="text", metavar="F")
    p.add_argument("--output", metavar="FILE")
    p.set_defaults(func=run_strategies)


def run_strategies(args) -> int:
    tables.check_format(args.format)
    check_output(args.output)
    rows = []
    for name, cls in strategies.REGISTRY.items():
        params = ",".join(f"{k}={p.default}" for k, p in cls.params.items())
        rows.append({"name": name, "parameters": params, "summary": cls.summary})
    emit(_listing(rows, args.format), args.output)
    return 0


def add_vmms(p):
    p.add_argument("--format", default="text", metavar="F")
    p.add_argument("--output", metavar="FILE")
    p.set_defaults(func=run_vmms)


def run_vmms(args) -> int:
    tables.check_format(args.format)
    check_output(args.output)
    rows = [{"name": name, "summary": cls.summary,
             "parameters": ",".join(f"{k}=" + ";".join(vmm_mod.id_name(i) for i in v)
                                    for k, v in getattr(cls, "params", {}).items())}
            for name, cls in vmm_mod.REGISTRY.items()]
    emit(_listing(rows, args.format), args.output)
    return 0


def _listing(rows: list[dict], fmt: str) -> str:
    cols = ("name", "parameters", "summary")
    if fmt == "csv":
        return tables.to_csv(cols, rows)
    if fmt == "json":
        return tables.to_json(rows)
    if fmt == "markdown":
        return tables.to_markdown(cols, rows)
    lines = []
    for r in rows:
        lines.append(f"{r['name']:<20} {r['summary']}")
        if r["parameters"]:
            lines.append(f"{'':<20} defaults: {r['parameters']}")
    return "\n".join(lines) + "\n"


# -- matrix ------------------------------------------------------------------------

def add_matrix(p):
    add_common(p)
    p.add_argument("--config", default="default", metavar="C",
                   help="default | off:NAME+NAME | random:p=P,seed=K[,n=N]")
    p.add_argument("--vcpus", type=vcpus, default=1, metavar="N", help=VCPUS_HELP)
    add_engine(p)
    p.set_defaults(func=run_matrix)


def run_matrix(args) -> int:
    history, vmm = _setup(args)
    strategy = strategies.parse(args.strategy)
    configs = config_mod.parse(args.config, history)
    rows = len(history.releases) ** 2 * len(configs)
    if rows > limits.MATRIX_ROWS:
        raise InputError(f"matrix: {len(history.releases):,} releases x {len(configs):,} "
                         f"configuration(s) = {rows:,} rows; at most {limits.MATRIX_ROWS:,} "
                         "(narrow it with --since, or use compare)")
    outcomes = run_evaluate(args, history, strategy, vmm, configs, args.vcpus)
    emit(render_matrix(outcomes, args.format), args.output)
    return 0


def matrix_rows(outcomes: Outcomes) -> tuple[tuple[str, ...], list[dict]]:
    rels = outcomes.history.releases
    total = len(outcomes.configs)
    cols = MATRIX_COLUMNS if total == 1 else ("config", *MATRIX_COLUMNS)
    rows = []
    for n in range(total):
        for m in outcomes.migrations(n):
            rows.append({"config": n, "src": rels[m.src], "dst": rels[m.dst],
                         "outcome": m.outcome, "gained": m.gained, "lost": m.lost,
                         "detail": m.detail, "blame": m.blame})
    return cols, rows


def render_matrix(outcomes: Outcomes, fmt: str) -> str:
    if fmt == "text":
        return "\n".join(text_matrix(outcomes, n) for n in range(len(outcomes.configs)))
    cols, rows = matrix_rows(outcomes)
    if fmt == "csv":
        return tables.to_csv(cols, rows)
    if fmt == "json":
        return tables.to_json([{c: r[c] for c in cols} for r in rows],
                              history=outcomes.history.name,
                              strategy=outcomes.strategy.spec, vmm=outcomes.vmm.name)
    return tables.to_markdown(cols, rows)


def text_matrix(outcomes: Outcomes, n: int = 0) -> str:
    """Letter matrix of configuration ``n`` (rows: source, columns: destination) or a summary."""
    history = outcomes.history
    rels = history.releases
    title = (f"{outcomes.strategy.spec} under {outcomes.vmm.name}, history {history.name} "
             f"({len(rels)} releases)")
    if len(outcomes.configs) > 1:
        title += f", config {n}"
    label = max(len(r) for r in rels)
    lines = [title]
    codes = outcomes.codes[n]
    if label + 1 + len(rels) <= tables.EMAIL_WIDTH:
        depth = max(len(r) for r in rels)
        for k in range(depth):
            lines.append(" " * (label + 1) + "".join(
                (r.rjust(depth)[k]) for r in rels).rstrip())
        for s, r in enumerate(rels):
            lines.append(r.ljust(label) + " " + "".join(
                LETTERS[OUTCOMES[code]] for code in codes[s].tolist()))
        lines.append("rows: source, columns: destination")
        lines.append(LEGEND)
    lines += summary_lines(outcomes, n)
    return "\n".join(lines) + "\n"


def summary_lines(outcomes: Outcomes, n: int = 0) -> list[str]:
    lines = []
    codes = outcomes.codes[n]
    for direction in DIRECTIONS:
        sh = measures.shares(codes, direction)
        parts = " ".join(f"{LETTERS[o]} {sh[o]:6.1%}" for o in OUTCOMES)
        lines.append(f"{direction:<8} {parts}")
    if outcomes.lost is not None and measures.silent_loss(codes):
        one = replace(outcomes, codes=codes[None], lost=outcomes.lost[n:n + 1])
        use = measures.loss_by_use(one)
        lines.append(f"silent loss {use['runtime'] + use['boot']:.1%} of pairs: "
                     f"{use['runtime']:.1%} lose a runtime service, "
                     f"{use['boot']:.1%} only boot-time ones")
    rels = outcomes.history.releases
    steps = [(s, d) for s in range(len(rels)) for d in (s - 1, s + 1)
             if 0 <= d < len(rels) and codes[s, d] != PRESERVED]
    if steps:
        lines.append("adjacent releases not preserved:")
        for s, d in steps[:24]:
            m = outcomes.migration(s, d, n)
            what = m.detail or "; ".join(
                [f"+{g}" for g in sorted(m.gained)] + [f"-{x}" for x in sorted(m.lost)])
            if m.blame:
                what = f"[{m.blame}] {what}"
            lines.append(f"  {rels[m.src]:>7} -> {rels[m.dst]:<7} {m.outcome:<9} {what}"[:72])
        if len(steps) > 24:
            lines.append(f"  ... {len(steps) - 24} more (use --format csv)")
    return lines


# -- cost --------------------------------------------------------------------------

def add_cost(p):
    add_common(p)
    p.add_argument("--vcpus", type=vcpus, default=1, metavar="N", help=VCPUS_HELP)
    p.set_defaults(func=run_cost)


def run_cost(args) -> int:
    history, vmm = _setup(args)
    strategy = strategies.parse(args.strategy)
    rows = [vars(c) for c in measures.cost(history, strategy, vmm, args.vcpus)]
    fmt = args.format
    if fmt == "csv":
        text = tables.to_csv(COST_COLUMNS, rows)
    elif fmt == "json":
        text = tables.to_json(rows, history=history.name, strategy=strategy.spec,
                              vmm=vmm.name, vcpus=args.vcpus)
    elif fmt == "markdown":
        text = tables.to_markdown(COST_COLUMNS, rows)
    else:
        head = (f"{strategy.spec} under {vmm.name}, history {history.name}, "
                f"{args.vcpus} vCPU(s)\n")
        cols = [("release", -8), ("regs", 5), ("B/vCPU", 7), ("B/VM", 8),
                ("ioctls", 7), ("floor B", 7), ("list", 5), ("B/vCPU", 7), ("ioctls", 7)]
        text = head + tables.fixed(cols, [[tables.cell(r[c]) or "-" for c in COST_COLUMNS]
                                          for r in rows])
        text += ("regs..ioctls: the hypercall registers (firmware, feature); list..:\n"
                 "the whole list the VMM saves (other registers too, DESIGN.md 9)\n")
    emit(text, args.output)
    return 0


# -- compare -------------------------------------------------------------------

def add_compare(p):
    add_common(p, many=True)
    p.add_argument("--config", default="default", metavar="C")
    add_engine(p)
    p.set_defaults(func=run_compare)


def run_compare(args) -> int:
    history, vmm = _setup(args)
    specs = args.strategy or list(strategies.DEFAULTS)
    chosen = [strategies.parse(s) for s in specs]
    configs = config_mod.parse(args.config, history)
    scores = [measures.score(run_evaluate(args, history, strategy, vmm, configs, sets=False))
              for strategy in chosen]
    emit(render_scorecard(history, vmm.name, scores, args.format), args.output)
    return 0


def render_scorecard(history, vmm: str, scores, fmt: str) -> str:
    rows = [s.flat() for s in scores]
    cols = tuple(rows[0]) if rows else ()
    if fmt == "csv":
        return tables.to_csv(cols, rows)
    if fmt == "json":
        return tables.to_json(rows, history=history.name, vmm=vmm)
    if fmt == "markdown":
        return tables.to_markdown(cols, rows)
    n = len(history.releases)
    lines = [f"hcsim scorecard: history {history.name} ({n} releases, "
             f"{history.releases[0]}..{history.releases[-1]}), VMM {vmm}",
             "",
             f"{'':<20} {'forward %':^15} {'backward %':^15} silent    B/  new",
             f"{'strategy':<20} {'P':>3} {'G':>3} {'L':>3} {'R':>3}  "
             f"{'P':>3} {'G':>3} {'L':>3} {'R':>3}   loss  vCPU  VMs"]
    notes = []
    blame_rows: list[str] = []
    for s in scores:
        name = s.strategy
        if len(name) > 20:
            lines.append(name)
            name = ""
        f, b = s.forward, s.backward
        shares = " ".join(f"{round(100 * f[o]):>3}" for o in ("preserved", "gained", "lost", "refused"))
        shares += "  " + " ".join(f"{round(100 * b[o]):>3}"
                                   for o in ("preserved", "gained", "lost", "refused"))
        size = "-" if s.bytes_per_vcpu is None else str(s.bytes_per_vcpu)
        if f["unsupported"] == b["unsupported"] == 1:
            shares = f"{'(' + vmm + ' cannot handle its registers)':<33}"
        lines.append(f"{name:<20} {shares}  {s.silent_loss:5.1%} {size:>5} {s.pickup:4.0%}")
        extra = [f"{o} {100 * d[o]:.0f}% {k}" for k, d in (("fwd", f), ("bwd", b))
                 for o in ("mixed", "unsupported") if 0 < d[o] < 1]
        if s.exhaustion:
            extra.append(f"new register at {s.exhaustion}")
        split = s.refused_by or {}
        if history.whole and split:
            blame_rows.append(f"  {s.strategy[:20]:<20} fwd " + "/".join(
                f"{100 * split['forward'][k]:.0f}" for k in ("strategy", "drift", "both"))
                + "  bwd " + "/".join(f"{100 * split['backward'][k]:.0f}"
                                      for k in ("strategy", "drift", "both")))
        if extra:
            notes.append(f"  {s.strategy}: " + ", ".join(extra))
    lines += ["",
              "P/G/L/R: preserved, gained, lost, refused shares of ordered",
              "release pairs (forward: source older).  silent loss: lost or",
              "mixed, all pairs.  B/vCPU: wire bytes at the last release.",
              "new VMs: share of services a default VM gets at the last release."]
    if blame_rows:
        lines += ["", "refused, % of pairs, by strategy/drift/both:"] + blame_rows + [
                  "strategy: the hypercall registers (firmware, feature) trip",
                  "QEMU's check or SET_ONE_REG; drift: other registers the",
                  "strategy does not control; both: both kinds.  Whole register",
                  "list; --registers hypercall leaves the drift out."]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines) + "\n"
