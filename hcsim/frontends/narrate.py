"""Small display helpers for the design-report notebooks.

The notebooks state verdicts that are computed, not typed: a verdict is
rendered from the numbers of the history the notebook ran on, so the same
notebook rerun by ``hcsim report`` on a reader's history says what holds
there.  Everything returns an :class:`IPython.display.Markdown` object (text
compared by nbval, rendered in HTML) or a plain string; numbers are formatted
explicitly so outputs are identical on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from IPython.display import Markdown

# Verdicts and percentages are computed with the positions; re-exported for the notebooks.
from hcsim.analyses.positions import VERDICTS, pct

if TYPE_CHECKING:
    import pandas as pd

    from hcsim.analyses.baseline import Baseline
    from hcsim.evaluation.outcomes import Outcomes
    from hcsim.model.history import History

#: Scorecard columns shown by :func:`scorecard` (``hcsim.scorecard``'s names).
SCORECARD = ("strategy", "fwd_preserved", "bwd_preserved", "bwd_refused", "silent_loss",
             "bytes_per_vcpu", "pickup", "exhaustion")


def md(text: str) -> Markdown:
    """Markdown to display as a cell's result."""
    return Markdown(text)


def verdict(text: str) -> Markdown:
    """A bold verdict sentence a reader can quote."""
    return Markdown(f"**{text}**")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Markdown:
    """A Markdown table (pipes in cells escaped)."""
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def releases_span(releases: Sequence[str], indices: Iterable[int]) -> str:
    """Release names of ``indices``, joined, or ``none``."""
    names = [releases[k] for k in sorted(set(indices))]
    return ", ".join(names) if names else "none"


def baseline(b: Baseline) -> str:
    """A :func:`hcsim.baseline` as ``hcsim baseline`` prints it (72 columns)."""
    from hcsim.frontends.baseline_cmd import render

    return render(b, "text")


def formatted(frame: pd.DataFrame, percent: Sequence[str] = (),
              thousands: Sequence[str] = ()) -> pd.DataFrame:
    """A table to show: fractions in ``percent`` as ``12.3%``, counts in
    ``thousands`` as ``1,234`` (``-`` when missing); other columns kept."""
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if col in thousands:
            out[col] = ["-" if v is None or v is pd.NA or v != v else f"{int(v):,d}"
                        for v in out[col].astype(object)]
        elif col in percent:
            out[col] = [f"{100 * v:.1f}%" for v in out[col]]
    return out


def scorecard(card: pd.DataFrame, columns: Sequence[str] = SCORECARD) -> pd.DataFrame:
    """A :func:`hcsim.scorecard` to show: shares as ``12.3%``, bytes as ``1,234``.

    ``bytes_per_vcpu`` is ``-`` where the VMM cannot handle a register.
    """
    shown = card[list(columns)]
    return formatted(shown, percent=[c for c in shown.columns if shown[c].dtype.kind == "f"],
                     thousands=["bytes_per_vcpu"])


__all__ = ["SCORECARD", "VERDICTS", "baseline", "formatted", "md", "pct", "releases_span", "scorecard",
           "table", "verdict"]


# -- over many seeds and both host profiles (notebooks 02, 05, 07) ---------------------

def history_summary(h) -> dict:
    """One row describing a history: releases, ``registers_from``, services, and the
    feature registers ``upstream`` lists after ``registers_from`` (when, which)."""
    import hcsim
    from hcsim import regs

    after = [s for s in h.services if s.introduced > h.registers_from]
    first: dict[int, int] = {}
    for r in range(len(h.releases)):
        for rid in hcsim.registers(h, "upstream", r):
            if regs.is_feature(rid):
                first.setdefault(rid, r)
    new = [f"0x{rid:016x} at {h.releases[r]}" for rid, r in first.items() if r > h.registers_from]
    return {"history": h.name, "releases": f"{h.releases[0]}..{h.releases[-1]} ({len(h.releases)})",
            "registers_from": h.releases[h.registers_from], "services": len(h.services),
            "added later (default on / opt-in)":
                f"{sum(s.default_on for s in after)} / {sum(not s.default_on for s in after)}",
            "new upstream registers": ", ".join(new) or "none"}


def interval(summary, strategy: str, measure: str, vmm: str = "qemu") -> str:
    """``mean [low, high]`` of an :func:`hcsim.over_seeds` summary row, as percentages
    (the t interval of the mean over seeds)."""
    row = summary[(summary["strategy"] == strategy) & (summary["measure"] == measure)
                  & (summary["vmm"] == vmm)]
    if row.empty:
        raise KeyError(f"no row {strategy!r}, {measure!r}, {vmm!r} in the summary")
    r = row.iloc[0]
    return f"{pct(r['mean'])} [{pct(r['low'])}, {pct(r['high'])}]"


def tally(cases, unit: str = "seeds", show: int = 3) -> str:
    """Where a claim holds, said from per-case results (``{case: bool}``), not chosen.

    ``holds in all 30 seeds``, ``does not hold in any of 30 seeds``, or, where
    the evidence is mixed, ``mixed: holds in 21 of 30 seeds, not in 3, 8, 12, ...``.
    """
    cases = dict(cases)
    if not cases:
        raise ValueError("tally of no cases")
    n, bad = len(cases), [k for k, v in cases.items() if not v]
    every = "both" if n == 2 else f"all {n}"
    if not bad:
        return f"holds in {every} {unit}"
    if len(bad) == n:
        return f"does not hold in {'either of the 2' if n == 2 else f'any of {n}'} {unit}"
    names = ", ".join(str(b) for b in bad[:show]) + (", ..." if len(bad) > show else "")
    return f"mixed: holds in {n - len(bad)} of {n} {unit}, not in {names}"


def ranking(values, digits: int = 1) -> str:
    """``{name: share}`` as ``a 12.3% > b = c 4.0% > d 0.0%`` (largest first; equal
    shares at ``digits`` grouped), so prose about an order is read off the numbers."""
    groups: dict[str, list[str]] = {}
    for name, v in sorted(values.items(), key=lambda kv: -kv[1]):
        groups.setdefault(pct(v, digits), []).append(name)
    return " > ".join(f"{' = '.join(names)} {share}" for share, names in groups.items())


__all__ += ["history_summary", "interval", "ranking", "tally"]

# -- Notebooks 01, 03, 04: verdicts from the numbers, both host profiles, tables ---------------

def judge(cases: Mapping[str, tuple[int, int]], failing: str = "refused") -> str:
    """A verdict whose condition is the numbers themselves.

    ``cases[label] = (failures, total)``: the claim holds in a case with no
    failure.  ``holds`` when it holds in every case, ``does not hold`` when in
    none, ``holds with conditions`` otherwise.  Then every case: one-off
    cases (total 1) grouped as ``holds for a, b`` and ``<failing>: c``, the
    others as ``label: 3 of 48 <failing>``.

    >>> judge({"hypercall": (0, 48), "whole list": (3, 48)})
    'holds with conditions (hypercall: 0 of 48 refused; whole list: 3 of 48 refused)'
    >>> judge({"qemu": (0, 1), "crosvm": (1, 1)}, "below 16 KiB")
    'holds with conditions (holds for qemu; below 16 KiB: crosvm)'
    """
    held = [label for label, (n, _) in cases.items() if n == 0]
    word = VERDICTS[0] if len(held) == len(cases) else VERDICTS[2] if not held else VERDICTS[1]
    ok = [label for label, (n, total) in cases.items() if total == 1 and n == 0]
    bad = [label for label, (n, total) in cases.items() if total == 1 and n]
    parts = ([f"holds for {', '.join(ok)}"] if ok else []) + \
        ([f"{failing}: {', '.join(bad)}"] if bad else []) + \
        [f"{label}: {n:,d} of {total:,d} {failing}" for label, (n, total) in cases.items()
         if total != 1]
    return f"{word} ({'; '.join(parts)})"


def by_release(releases: Sequence[str], failed: Sequence[bool]) -> dict[str, tuple[int, int]]:
    """:func:`judge` cases from one flag per release: each run of equal flags
    is a case named by its release range, ``(releases failing, releases)``.

    >>> by_release(["a", "b", "c"], [False, True, True])
    {'a': (0, 1), 'b..c': (2, 2)}
    """
    spans: list[list] = []
    for k, flag in enumerate(failed):
        if spans and spans[-1][2] == flag:
            spans[-1][1] = k
        else:
            spans.append([k, k, flag])
    return {(releases[a] if a == b else f"{releases[a]}..{releases[b]}"):
            ((b - a + 1) if flag else 0, b - a + 1) for a, b, flag in spans}


def host_views(history: History) -> dict[str, History]:
    """The history on its own host profile and, where it knows it, on ``max``.

    ``max`` is QEMU's ``-cpu max``: an unknown MIDR, so the kernel's errata
    lists match nothing and the Spectre workaround levels differ from a
    known core's (``data/linux-upstream.md``).
    """
    names = [history.host] + [n for n in ("max",) if n in history.hosts() and n != history.host]
    return {n: history.with_host(n) for n in names}


def refusals(outcomes: Outcomes, direction: str = "forward", since: int = 0,
             adjacent: bool = False) -> dict[str, int]:
    """Refused pairs of one direction, counted by cause (the register that trips).

    Keys are ``EINVAL on SMCCC_ARCH_WORKAROUND_2`` for a kernel errno and
    ``count check, no TCR2_EL1`` for QEMU's count check or sorted walk (the
    first register the destination lacks), sorted; ``adjacent`` keeps only
    one-release steps.
    """
    from collections import Counter

    import numpy as np

    from hcsim.evaluation.measures import pair_mask
    from hcsim.evaluation.outcomes import OUTCOMES
    from hcsim.model import regs

    mask = pair_mask(outcomes.n, direction, since) & (outcomes.codes[0] == OUTCOMES.index("refused"))
    if adjacent:
        s, d = np.indices(mask.shape)
        mask &= abs(s - d) == 1
    found: Counter = Counter()
    for s, d in zip(*np.nonzero(mask)):
        c = outcomes.migration(int(s), int(d)).cause
        name = c.name.removeprefix("KVM_REG_ARM_") if c.name else regs.hexid(c.reg or 0)
        found[f"{c.errno} on {name}" if c.kind == "errno"
              else f"count check, no {name}"] += 1
    return dict(sorted(found.items()))


def pairs(n: int, direction: str = "forward", since: int = 0, adjacent: bool = False) -> int:
    """How many ordered pairs of ``direction`` (``adjacent``: one-release steps)."""
    m = n - since
    return m - 1 if adjacent else m * (m - 1) // 2


def count(outcomes: Outcomes, direction: str, names: Iterable[str], since: int = 0) -> int:
    """How many ``direction`` pairs (both ends from ``since``) end in one of ``names``."""
    from hcsim.evaluation.measures import counts
    from hcsim.evaluation.outcomes import CODES, DIRECTIONS

    row = counts(outcomes, since)[DIRECTIONS.index(direction)]
    return int(sum(row[CODES[n]] for n in names))


def refusal_table(history: History, strategy: str, vmm: str, direction: str = "forward",
                  since: int = 0, adjacent: bool = False) -> pd.DataFrame:
    """Refused pairs by cause on every host view (:func:`host_views`), on the
    hypercall registers alone and on the whole list: one row per cause, one
    column per (host, ``hypercall`` or ``whole list``), ``0`` where that cause
    does not refuse."""
    import pandas as pd

    from hcsim.evaluation.backends import evaluate
    from hcsim.model.strategies import parse as parse_strategy
    from hcsim.model.vmm import parse as parse_vmm

    cols = {}
    for host, h in host_views(history).items():
        for view in ("hypercall", "all"):
            out = evaluate(h.with_registers(view), parse_strategy(strategy), parse_vmm(vmm),
                           None, "auto")
            label = (host, "whole list" if view == "all" else "hypercall")
            cols[label] = refusals(out, direction, since, adjacent)
    frame = pd.DataFrame(cols).fillna(0).astype(int).sort_index()
    frame.columns.names = ["host", "registers"]
    frame.index.name = f"{direction} pairs refused by"
    return frame


def anatomy(ids: Iterable[int]) -> pd.DataFrame:
    """Each register id split into its fields (uapi ``arch/arm64/include/uapi/asm/kvm.h``)."""
    import pandas as pd

    from hcsim.model import regs

    rows = []
    for rid in ids:
        d = regs.decode(rid)
        rows.append({"id": regs.hexid(rid), "name": regs.reg_name(rid),
                     "arch (63:56)": f"0x{rid >> 56:02x}",
                     "size (55:52)": (rid & regs.KVM_REG_SIZE_MASK) >> regs.KVM_REG_SIZE_SHIFT,
                     "width (bits)": d.width,
                     "class (27:16)": f"0x{d.coproc:02x} {regs.COPROC_NAMES[d.coproc]}",
                     "index (15:0)": d.index})
    return pd.DataFrame(rows)


def runs(releases: Sequence[str], values: Sequence[object]) -> list[tuple[str, object]]:
    """Release ranges of equal value: ``[("v4.16..v5.18", 0), ("v5.19..v6.14", 16)]``."""
    out: list[tuple[int, int, object]] = []
    for k, v in enumerate(values):
        if out and out[-1][2] == v:
            out[-1] = (out[-1][0], k, v)
        else:
            out.append((k, k, v))
    return [(releases[a] if a == b else f"{releases[a]}..{releases[b]}", v) for a, b, v in out]


def downtime_ms(bytes_moved: int, set_calls: int, link_gbps: float, set_us: float) -> float:
    """Milliseconds the guest stays stopped for its registers: the bytes on a
    ``link_gbps`` link plus ``set_calls`` ``KVM_SET_ONE_REG`` of ``set_us``
    each (the source's ``GET_ONE_REG`` calls are not counted)."""
    return bytes_moved * 8 / (link_gbps * 1e6) + set_calls * set_us / 1e3


__all__ += ["anatomy", "count", "downtime_ms", "host_views", "judge", "pairs", "refusal_table",
            "refusals", "runs"]


def moved(history: History, specs: Sequence[str], vmm: str, vcpus: int, link_gbps: float,
          set_us: float, release: int | None = None) -> pd.DataFrame:
    """What one save/restore of a ``vcpus``-vCPU VM moves at ``release`` (default:
    the last), per strategy: the hypercall registers beside the whole list
    (registers per vCPU, bytes and ``KVM_SET_ONE_REG`` calls per VM), and the
    whole list's share of downtime (:func:`downtime_ms`).  Strategies the VMM
    cannot carry are left out."""
    import pandas as pd

    from hcsim.evaluation.measures import cost_at
    from hcsim.model.strategies import parse as parse_strategy
    from hcsim.model.vmm import parse as parse_vmm

    at = len(history.releases) - 1 if release is None else release
    rows = []
    for spec in specs:
        c = cost_at(history, parse_strategy(spec), parse_vmm(vmm), at, vcpus)
        if c.registers is None:
            continue
        whole_bytes, whole_sets = c.list_bytes_per_vcpu * vcpus, c.list_ioctls // 2
        rows.append({"strategy": spec, "hypercall registers": c.registers,
                     "whole list": c.list_registers, "hypercall B/VM": c.bytes_per_vm,
                     "whole list B/VM": whole_bytes, "SET_ONE_REG calls": whole_sets,
                     "downtime ms": round(downtime_ms(whole_bytes, whole_sets, link_gbps,
                                                      set_us), 2)})
    return pd.DataFrame(rows)


__all__ += ["by_release", "moved"]


# -- Notebook 04: the Linux replay --------------------------------------------------------------

def hypercall_snapshot(history: History, strategy: str, release: int) -> dict[int, int]:
    """The hypercall registers a fresh vCPU at ``release`` lists, with their reset values."""
    from hcsim.evaluation.measures import registers
    from hcsim.model.strategies import parse as parse_strategy

    return registers(history.with_registers("hypercall"), parse_strategy(strategy), release)


def epochs(history: History, strategy: str) -> list[int]:
    """Releases where the hypercall registers (ids or reset values) change, the first included."""
    out, previous = [], None
    for r in range(len(history.releases)):
        snap = tuple(hypercall_snapshot(history, strategy, r).items())
        if snap != previous:
            out.append(r)
            previous = snap
    return out


def epoch_table(history: History, strategy: str, vmms: Sequence[str]) -> pd.DataFrame:
    """One row per :func:`epochs` release: hypercall registers listed, added (with reset
    value) and changed, bytes per vCPU each VMM saves of them, and for QEMU the other
    registers and the whole list."""
    import pandas as pd

    from hcsim.evaluation.measures import cost_at
    from hcsim.model import regs
    from hcsim.model.strategies import parse as parse_strategy
    from hcsim.model.vmm import parse as parse_vmm

    st, rows, before = parse_strategy(strategy), [], {}
    for r in epochs(history, strategy):
        now = hypercall_snapshot(history, strategy, r)
        row = {"from": history.releases[r], "listed": len(now),
               "added (reset value)": ", ".join(f"{regs.short_name(i)}=0x{v:x}"
                                                for i, v in now.items() if i not in before),
               "reset changed": ", ".join(f"{regs.short_name(i)} 0x{before[i]:x}->0x{v:x}"
                                          for i, v in now.items()
                                          if i in before and before[i] != v)}
        for name in vmms:
            c = cost_at(history, st, parse_vmm(name), r)
            row[f"{name} B/vCPU"] = "-" if c.bytes_per_vcpu is None else c.bytes_per_vcpu
        row["other listed"] = len(history.other_at(r))
        row["qemu whole list B/vCPU"] = cost_at(history, st, parse_vmm("qemu"), r).list_bytes_per_vcpu
        rows.append(row)
        before = now
    return pd.DataFrame(rows)


def list_changes(history: History) -> dict[int, tuple[list[int], list[int]]]:
    """Per release, the other registers it lists that its predecessor did not, and those
    it stopped listing: ``{release: (added, gone)}``, releases with a change only."""
    out = {}
    for r in range(1, len(history.releases)):
        old, new = set(history.other_at(r - 1)), set(history.other_at(r))
        if old != new:
            out[r] = (sorted(new - old), sorted(old - new))
    return out


def events(history: History, strategy: str = "upstream") -> dict[str, int]:
    """The releases where the history's migrations change, found not typed: the
    bitmaps' arrival, the first new feature register, a firmware reset value
    that the older kernel, which lists the register too, rejects (found by a
    crosvm step back: it saves class 0x14 only), a firmware value saved by the
    older kernel that the newer one rejects, and other registers no longer
    listed."""
    from hcsim.evaluation.spec import migrate
    from hcsim.model import regs
    from hcsim.model.strategies import parse as parse_strategy
    from hcsim.model.vmm import parse as parse_vmm

    st, crosvm = parse_strategy(strategy), parse_vmm("crosvm")
    found = {"bitmaps introduced": history.registers_from}
    if (new := st.layout(history).exhaustion()) is not None:
        found["new feature register"] = new
    for r in range(1, len(history.releases)):
        back = migrate(history, st, crosvm, r, r - 1).cause
        if back is not None and back.kind == "errno" and \
                back.reg in hypercall_snapshot(history, strategy, r - 1):
            value = hypercall_snapshot(history, strategy, r)[back.reg]
            found[f"{back.name.removeprefix('KVM_REG_ARM_')} reset {value:#x}"] = r
        fwd = migrate(history, st, crosvm, r - 1, r).cause
        if fwd is not None and fwd.kind == "errno":
            found[f"{fwd.name.removeprefix('KVM_REG_ARM_')} rejected forward"] = r
    for r, (_, gone) in list_changes(history).items():
        if gone:
            found[f"{regs.reg_name(gone[0])}{' ...' if len(gone) > 1 else ''} no longer listed"] = r
    return found


def brief(cause) -> str:
    """A cause without QEMU's words: ``count 184 > 181``, ``EINVAL on ...``."""
    return f"count {cause.sent} > {cause.ours}" if cause.kind == "count" else str(cause)


def step_outcomes(history: History, spec: str, vmms: Sequence[str], src: int,
                  dst: int) -> dict[str, str]:
    """Outcome of one migration under each VMM, with its cause and blame."""
    from hcsim.evaluation.spec import migrate
    from hcsim.model.strategies import parse as parse_strategy
    from hcsim.model.vmm import parse as parse_vmm

    out = {}
    for name in vmms:
        m = migrate(history, parse_strategy(spec), parse_vmm(name), src, dst)
        out[name] = m.outcome + (f" ({brief(m.cause)}) [{m.blame}]" if m.cause else "")
    return out


#: Letters of :func:`blame_grid`: a refusal by its blame.
MARKS = {"hypercall": "H", "other": "O", "both": "B"}


def blame_grid(history: History, strategy: str, vmm: str) -> str:
    """Every ordered pair as one letter: a refusal by blame (:data:`MARKS`), any other
    outcome by its letter in lower case; rows are sources, columns destinations."""
    from hcsim.evaluation.backends import evaluate
    from hcsim.evaluation.outcomes import BLAMES, LETTERS, OUTCOMES
    from hcsim.model.strategies import parse as parse_strategy
    from hcsim.model.vmm import parse as parse_vmm

    out = evaluate(history, parse_strategy(strategy), parse_vmm(vmm), None, "auto")
    codes, blames = out.codes[0], out.blame_codes()[0]
    lines = []
    for s, rel in enumerate(history.releases):
        row = "".join(MARKS[BLAMES[blames[s, d]]] if OUTCOMES[codes[s, d]] == "refused"
                      else LETTERS[OUTCOMES[codes[s, d]]].lower()
                      for d in range(len(history.releases)))
        lines.append(f"{rel:>6} {row}")
    return "\n".join(lines)


def changed_pairs(history: History, strategy: str, vmm: str,
                  since: int = 0) -> list[tuple[int, int, str, str, str]]:
    """Pairs (both ends from ``since``) whose outcome on the whole list differs from
    the hypercall view's: ``(src, dst, before, after, blame after)``."""
    from hcsim.evaluation.backends import evaluate
    from hcsim.evaluation.outcomes import BLAMES, OUTCOMES
    from hcsim.model.strategies import parse as parse_strategy
    from hcsim.model.vmm import parse as parse_vmm

    st, policy = parse_strategy(strategy), parse_vmm(vmm)
    a = evaluate(history.with_registers("all"), st, policy, None, "auto")
    b = evaluate(history.with_registers("hypercall"), st, policy, None, "auto")
    blames, n = a.blame_codes()[0], len(history.releases)
    return [(s, d, OUTCOMES[b.codes[0, s, d]], OUTCOMES[a.codes[0, s, d]], BLAMES[blames[s, d]])
            for s in range(since, n) for d in range(since, n)
            if a.codes[0, s, d] != b.codes[0, s, d]]


__all__ += ["MARKS", "blame_grid", "brief", "changed_pairs", "epoch_table", "epochs", "events",
            "hypercall_snapshot", "list_changes", "step_outcomes"]


def ci(values, fmt: str = "pct") -> str:
    """``mean [low, high]`` of values over futures: the Student's t 95% interval of
    the mean (:func:`hcsim.analyses.sensitivity.t_interval`); ``fmt`` ``pct`` or a
    format string such as ``"{:,.0f}"``."""
    from hcsim.analyses.sensitivity import t_interval

    show = pct if fmt == "pct" else fmt.format
    m, lo, hi = t_interval(values)
    return f"{show(m)} [{show(lo)}, {show(hi)}]"


__all__ += ["ci"]


def survival(results, default: str | None = None) -> str:
    """Whether a claim survives other assumptions, from ``{assumption: holds}``
    (bools) measured under each: ``survives all 4`` or ``fragile: ...`` naming the
    assumptions under which the answer differs from ``default`` (the first)."""
    results = dict(results)
    base = results[default if default is not None else next(iter(results))]
    changed = [k for k, v in results.items() if bool(v) != bool(base)]
    if not changed:
        return f"survives all {len(results)}"
    return (f"fragile: {'holds' if base else 'fails'} by default, "
            f"{'fails' if base else 'holds'} under {'; '.join(changed)}")


__all__ += ["survival"]


def baseline_row(b) -> dict:
    """A :func:`hcsim.baseline` as one table row: pairs safe, drifting and impossible,
    the services it gives up and the firmware values it pins lower, per host."""
    given = sorted({s for c in b.costs for s in c.given_up})
    fw = sorted({f"{n} {d:#x}->{v:#x} ({c.host})" for c in b.costs for n, d, v in c.firmware})
    return {"safe": sum(p.safe for p in b.pairs), "drift": len(b.drifting),
            "impossible": len(b.impossible), "services given up": ", ".join(given) or "-",
            "firmware": ", ".join(fw) or "-"}


__all__ += ["baseline_row"]
