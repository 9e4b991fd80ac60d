"""The positions taken in the thread, the evidence for each, and a verdict computed from it.

Each :class:`Claim` is one statement of the September 2021 kvmarm thread
(Oliver Upton, Marc Zyngier; ``data/thread/``) with its verbatim words
(``...`` marks an elision; a test checks every quote against the message)
and a paraphrase that stays inside them.  :func:`evaluate` computes the
evidence on an :class:`Evidence` and returns a :class:`Finding`: the
measured :class:`Number` s, an evidence sentence built from them, and a
verdict whose rule is a function of those numbers only (``Finding.rule``
re-derives it, so a verdict cannot drift from its evidence) and whose
condition text is assembled from the same numbers.

The evidence is the *whole-list* model (DESIGN.md section 9): QEMU checks
every register it syncs, so drift of the other registers refuses pairs
whatever the encoding; refusals are split by blame where it matters.

* ``real``: the real history (bundled ``linux``) on each host profile
  (QEMU's Neoverse N1, the default, and ``max``, an unknown MIDR);
* ``futures``: synthetic histories over many seeds (default 30), with the
  other-register drift fitted to Linux, for what Linux never exercised (a
  new register whose service is on by default); every synthetic number is a
  mean with a 95 % percentile interval over the seeds;
* ``heavy``: busier futures (8 services per release) for the range claim.

Shares are of the *register era* (both ends at or after ``registers_from``)
unless the text says otherwise; configurations are the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from hcsim.evaluation.backends import evaluate as _evaluate
from hcsim.evaluation.measures import cost_at, new_vm_pickup, pair_mask, shares
from hcsim.evaluation.outcomes import BLAME_CODES, CODES
from hcsim.model.history import History, data_path
from hcsim.model.smccc import full_bitmap_bytes
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm

#: The three verdicts of a claim, in the order of decreasing support.
VERDICTS = ("holds", "holds with conditions", "does not hold")
HOLDS, CONDITIONS, FAILS = VERDICTS
OLIVER, MARC = "Oliver Upton", "Marc Zyngier"
THREAD = ("thread", "2021-09-30-zyngier-upton-hypercall-registers.txt")


def pct(x: float, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234 -> '12.3%'``."""
    return f"{100 * x:.{digits}f}%"


def thread_text() -> str:
    """The thread message, whitespace collapsed and quote markers (``>``) removed."""
    raw = data_path(*THREAD).read_text(encoding="utf-8")
    return " ".join(raw.replace(">", " ").split())


@dataclass(frozen=True)
class Claim:
    """A position from the thread: verbatim ``quote``, faithful ``claim``."""

    key: str
    who: str
    claim: str
    quote: str


@dataclass(frozen=True)
class Number:
    """One measured value; over seeds, ``values`` holds one per seed."""

    name: str
    value: float
    kind: str = "share"           # share | count | bytes
    values: tuple[float, ...] = ()

    @property
    def interval(self) -> tuple[float, float]:
        """The 2.5th and 97.5th percentiles over the seeds (the value itself if one)."""
        if not self.values:
            return self.value, self.value
        lo, hi = np.percentile(self.values, [2.5, 97.5])
        return float(lo), float(hi)

    def __str__(self) -> str:
        fmt = pct if self.kind == "share" else (lambda x: f"{x:,.0f}" + (" B" if self.kind ==
                                                                       "bytes" else ""))
        if not self.values:
            return fmt(self.value)
        lo, hi = self.interval
        return f"{fmt(self.value)} [{fmt(lo)}, {fmt(hi)}]"


@dataclass(frozen=True)
class Finding:
    """A claim, the numbers measured for it, the evidence sentence and the verdict."""

    claim: Claim
    numbers: dict[str, Number]
    evidence: str
    verdict: str
    condition: str = ""
    rule: Callable[[dict[str, Number]], str] = field(default=lambda n: HOLDS, repr=False,
                                                     compare=False)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def consistent(self) -> bool:
        """Does the verdict follow from the numbers, and does the evidence quote them?"""
        return (self.rule(self.numbers) == self.verdict
                and all(str(n) in self.evidence for n in self.numbers.values()))

    @property
    def stated(self) -> str:
        """The verdict with its condition: ``holds with conditions: ...``."""
        return f"{self.verdict}: {self.condition}" if self.condition else self.verdict

    def markdown(self) -> str:
        """Evidence, then the verdict in bold."""
        return f"*Evidence:* {self.evidence}.\n\n**Verdict: {self.stated}.**"

    def row(self) -> tuple[str, str, str, str]:
        """(claim, who said it, evidence, verdict) for a conclusion table."""
        return (self.claim.claim, self.claim.who, self.evidence, self.stated)


CLAIMS = (
    Claim("new-register-needs-vmm", OLIVER,
          "A hypercall register new on the destination kernel needs the VMM to know it "
          "and zero it, or an older guest changes on migration",
          "In order to maintain guest ABI, the VMM would need to know about that register "
          "and zero it when restoring an older guest."),
    Claim("get-reg-list-discovers", MARC,
          "Userspace discovers a new hypercall register through KVM_GET_REG_LIST, as it "
          "discovers any new system register",
          "Just as it would need to be able to discover any new system register exposed by "
          "default, as it happens at all times. Which is why we have a way to discover all "
          "the registers, architected or not."),
    Claim("raz-wi-range", OLIVER,
          "A reserved range of RAZ/WI registers keeps the guest ABI with an unchanged VMM "
          "and still lets new VMs pick up new features",
          "Perhaps instead we could reserve a range of firmware registers as the 'hypercall "
          "identity' registers. Implement all of them as RAZ/WI by default, encouraging "
          "userspace to zero these registers away for older VMs but still allowing an old "
          "userspace to pick up new KVM features."),
    Claim("range-exists-0x14", MARC,
          "The firmware register class 0x14 already is such a range; it need not be RAZ/WI",
          "The range already exists in the form of the \"coprocessor\" 0x14. I don't see "
          "the need to expose it as RAZ/WI, however."),
    Claim("no-point-preadvertising", MARC,
          "There is no point advertising registers before userspace understands them: "
          "it could not program them anyway",
          "If userspace doesn't know about how this pseudo-register works, it won't be able "
          "to program it anyway. ... I don't immediately see the point of advertising a set "
          "of registers ahead of time, before userspace grows an understanding of what these "
          "registers mean."),
    Claim("firmware-not-id-registers", MARC,
          "Firmware registers are not ID registers: userspace writes them and zero does not "
          "mean 'not implemented' (PSCI is the case in point)",
          "Our firmware registers don't follow the same rules. Userspace can write to them, "
          "and there is no such \"not implemented\" rule (case in point, PSCI)."),
    Claim("invalidate-on-write", MARC,
          "Invalidate-on-write: the first write to a firmware register clears the defaults, "
          "so registers the VMM does not write stay off",
          "My expectations were that whenever userspace writes a set of firmware register, "
          "all the defaults are invalidated."),
    Claim("wide-registers", MARC,
          "Wider registers (KVM encodes 8 to 2048 bits) make invalidate-on-write easy",
          "We could define a new class of hypercall-specific registers that would be much "
          "wider, and thus have a larger write granularity (KVM supports anything from 8 to "
          "2048 bits). This would make it pretty easy to implement the above."),
    Claim("no-userspace-patch", OLIVER,
          "Userspace should not need a patch to preserve the guest ABI on a newer kernel",
          "Fundamentally, I don't think userspace should need a patch to preserve ABI on a "
          "newer kernel."),
    Claim("reg-list-disambiguates", OLIVER,
          "If KVM_GET_REG_LIST told feature (ID) registers apart from other state, the "
          "VMM would know which registers to zero",
          "If KVM_GET_REG_LIST were to disambiguate between ID registers (hypercall, "
          "architectural feature ID registers) from other parts of the vCPU state, it would "
          "be clear to what registers to zero on a newer kernel."),
    Claim("range-does-not-scale", MARC,
          "A reserved range only works until it is exhausted: it does not scale",
          "Your approach only works if we don't exceed that particular range. Maybe it will "
          "never be a problem, but it remains that this is not scalable."),
    Claim("sixteen-kb", MARC,
          "Reserving the whole SMCCC hypervisor space costs 16 kB of zeroes at every "
          "save/restore",
          "that's 16kB worth of zeroes that userspace has to save/restore at all times"),
)

BY_KEY = {c.key: c for c in CLAIMS}
HOSTS = ("neoverse-n1", "max")


class Evidence:
    """The histories the evidence is computed on, with cached evaluations.

    ``real`` is one history (its own host first, then ``max`` if it has that
    profile); ``futures`` and ``heavy`` are lists of synthetic histories.
    """

    def __init__(self, real: History, futures: Sequence[History],
                 heavy: Sequence[History] = ()):
        hosts = [real.host] + [h for h in HOSTS if h != real.host and h in real.hosts()]
        self.real = {h: real.with_host(h) for h in hosts}
        self.futures = tuple(futures)
        self.heavy = tuple(heavy)
        self._cache: dict = {}

    @cached_property
    def linux(self) -> History:
        """The real history on its default host."""
        return next(iter(self.real.values()))

    def outcomes(self, h: History, spec: str, vmm: str):
        key = (id(h), spec, vmm)
        hit = self._cache.get(key)
        if hit is None:
            strategy = self._cache.setdefault(("strategy", spec), parse_strategy(spec))
            hit = self._cache[key] = (h, _evaluate(h, strategy, parse_vmm(vmm)))
        return hit[1]

    def firmware_rejected(self, h: History) -> np.ndarray:
        """``[src, dst]``: pairs where a firmware register's source value (its reset
        on the source host) is one the destination rejects, whatever the encoding."""
        key = ("fw", id(h))
        hit = self._cache.get(key)
        if hit is None:
            n = len(h.releases)
            bad = np.zeros((n, n), bool)
            for f in h.firmware:
                for s in range(f.introduced, n):
                    reset = f.at(s, h.host).reset
                    for d in range(f.introduced, n):
                        bad[s, d] |= reset not in f.at(d, h.host).accepts
            hit = self._cache[key] = (h, bad)
        return hit[1]

    def era(self, h: History, spec: str, vmm: str, direction: str) -> dict[str, float]:
        """Register-era shares of each outcome, plus ``refused by strategy``
        (refused by the feature registers: blamed on the hypercall registers
        and not a firmware value the destination rejects, nor other-register
        drift) and ``harm`` (changed, unsupported or refused by strategy)."""
        o = self.outcomes(h, spec, vmm)
        out = shares(o, direction, h.registers_from)
        n = len(h.releases)
        pick = pair_mask(n, direction, h.registers_from)
        blame = o.blame_codes()[0][pick]
        strategy_refused = (np.isin(blame, [BLAME_CODES["hypercall"], BLAME_CODES["both"]])
                            & ~self.firmware_rejected(h)[pick])
        count = max(1, int(pick.sum()))
        out["refused by strategy"] = float(strategy_refused.sum()) / count
        out["refused by drift"] = float((blame == BLAME_CODES["other"]).sum()) / count
        out["harm"] = (out["gained"] + out["lost"] + out["mixed"] + out["unsupported"]
                       + out["refused by strategy"])
        return out

    def over(self, name: str, fn: Callable[[History], float], which: str = "futures",
             kind: str = "share") -> Number:
        """``fn`` over every synthetic history of ``which``: mean and per-seed values."""
        vals = tuple(float(fn(h)) for h in getattr(self, which))
        return Number(name, float(np.mean(vals)), kind, vals)

    def real_min_max(self, name: str, fn: Callable[[History], float],
                     worst: str = "max") -> Number:
        """``fn`` on every host profile of the real history: the worst one."""
        vals = [float(fn(h)) for h in self.real.values()]
        return Number(name, max(vals) if worst == "max" else min(vals))


def _over_seeds_text(ev: Evidence) -> str:
    return f"{len(ev.futures)} synthetic futures"


def _hosts(ev: Evidence) -> str:
    return " and ".join(ev.real)


# -- one evaluator per claim: numbers, evidence, rule, condition ------------------------------
# Each returns (numbers, evidence, rule, condition(numbers, verdict)).

def _new_register_needs_vmm(ev: Evidence):
    N = {"gain qemu": ev.over("gain qemu", lambda h: ev.era(h, "upstream", "qemu", "forward")
                              ["gained"]),
         "gain zero": ev.over("gain zero", lambda h: ev.era(h, "upstream", "zero-unknown",
                                                            "forward")["gained"]),
         "seeds": Number("seeds", sum(ev.era(h, "upstream", "qemu", "forward")["gained"] > 0
                                      for h in ev.futures), "count"),
         "real gain": ev.real_min_max("real gain", lambda h: ev.era(h, "upstream", "qemu",
                                                                    "forward")["gained"])}
    evidence = (f"upstream under unchanged QEMU, {_over_seeds_text(ev)}: forward pairs that "
                f"gain a service {N['gain qemu']}, in {N['seeds']} of {len(ev.futures)} futures "
                f"(those whose new register resets non-zero); a VMM that zeroes feature "
                f"registers missing from the stream (zero-unknown): {N['gain zero']}; "
                f"{ev.linux.name} on {_hosts(ev)}: {N['real gain']} (its one new register, "
                f"VENDOR_HYP_BMAP_2, resets to 0)")

    def rule(n):
        if n["gain qemu"].value > 0 and n["gain zero"].value == 0:
            return CONDITIONS if n["seeds"].value < len(ev.futures) or \
                n["real gain"].value == 0 else HOLDS
        return HOLDS if n["gain qemu"].value > 0 else FAILS

    def condition(n, verdict):
        if verdict != CONDITIONS:
            return ""
        return (f"for per-space registers (upstream) whose new register resets non-zero "
                f"({n['seeds']} of {len(ev.futures)} futures, none on {ev.linux.name}); "
                f"zeroing it then removes every gain ({n['gain zero']})")
    return N, evidence, rule, condition


def _get_reg_list_discovers(ev: Evidence):
    N = {"gain qemu": ev.over("gain qemu", lambda h: ev.era(h, "upstream", "qemu", "forward")
                              ["gained"]),
         "drift": ev.real_min_max("drift", lambda h: ev.era(h, "upstream", "qemu", "forward")
                                  ["refused by drift"])}
    evidence = (f"every modelled VMM saves what KVM_GET_REG_LIST lists, so discovery works; "
                f"but QEMU writes back the reset value it read, and {N['gain qemu']} of forward "
                f"pairs of {_over_seeds_text(ev)} still gain a service under upstream; on "
                f"{ev.linux.name} the list's drift (system registers, not hypercall ones) "
                f"refuses {N['drift']} of forward pairs under QEMU")

    def rule(n):
        return CONDITIONS if n["gain qemu"].value > 0 or n["drift"].value > 0 else HOLDS

    def condition(n, verdict):
        parts = []
        if n["gain qemu"].value > 0:
            parts.append(f"discovering a register is not knowing its safe value "
                         f"({n['gain qemu']} of forward pairs gain)")
        if n["drift"].value > 0:
            parts.append(f"and a discovered list that drifts is refused by QEMU "
                         f"({n['drift']} of {ev.linux.name}'s forward pairs)")
        return "; ".join(parts)
    return N, evidence, rule, condition


def _raz_wi_range(ev: Evidence):
    N = {"harm fwd": ev.over("harm fwd", lambda h: ev.era(h, "raz-wi", "qemu", "forward")
                             ["harm"]),
         "lost bwd": ev.over("lost bwd", lambda h: ev.era(h, "raz-wi", "qemu", "backward")
                             ["lost"] + ev.era(h, "raz-wi", "qemu", "backward")["mixed"]),
         "real lost": ev.real_min_max("real lost", lambda h: ev.era(h, "raz-wi", "qemu",
                                                                    "backward")["lost"]),
         "pickup": ev.over("pickup", lambda h: new_vm_pickup(h, parse_strategy("raz-wi"))
                           - new_vm_pickup(h, parse_strategy("upstream")))}
    evidence = (f"raz-wi under unchanged QEMU, {_over_seeds_text(ev)}: forward pairs the "
                f"encoding changes or refuses {N['harm fwd']}; new-VM pickup minus upstream's "
                f"{N['pickup']}; backward pairs silently lost {N['lost bwd']} "
                f"({ev.linux.name}: {N['real lost']})")

    def rule(n):
        if n["harm fwd"].value == 0 and n["pickup"].value >= 0:
            return CONDITIONS if n["lost bwd"].value > 0 else HOLDS
        return FAILS

    def condition(n, verdict):
        return (f"forward only: going back to a kernel that lacks a service silently drops it "
                f"in {n['lost bwd']} of backward pairs, because writes of unknown bits are "
                f"ignored" if verdict == CONDITIONS else "")
    return N, evidence, rule, condition


def _never_zero(h: History) -> list:
    """Firmware registers of ``h`` that accept 0 in no release (PSCI_VERSION)."""
    return [f for f in h.firmware if all(0 not in v.accepts for _, v in f.values)]


def _range_exists_0x14(ev: Evidence):
    real = ev.linux
    never_zero = _never_zero(real)
    N = {"fw": Number("fw", len(real.firmware), "count"),
         "never zero": Number("never zero", len(never_zero), "count"),
         "zero fwd": ev.over("zero fwd", lambda h: ev.era(h, "upstream", "zero-unknown",
                                                          "forward")["harm"]),
         "qemu fwd": ev.over("qemu fwd", lambda h: ev.era(h, "upstream", "qemu",
                                                          "forward")["harm"])}
    evidence = (f"class 0x14 holds {N['fw']} firmware registers on {real.name}, {N['never zero']}"
                f" of which ({', '.join(f.name for f in never_zero)}) never accept 0; Linux put "
                f"the bitmaps in a new class 0x16 (KVM_REG_ARM_FW_FEAT_BMAP, v5.19) whose every "
                f"member means '0 = off', so a VMM can zero by class: forward pairs changed or "
                f"refused by the encoding fall from {N['qemu fwd']} (QEMU) to {N['zero fwd']} "
                f"(zero-unknown) over {_over_seeds_text(ev)}")

    def rule(n):
        return CONDITIONS if n["never zero"].value > 0 else HOLDS

    def condition(n, verdict):
        return (f"the class existed, but mixing bitmaps with {n['never zero']} value registers "
                f"where 0 is not 'off' would have ruled out zeroing by class; upstream's "
                f"separate class 0x16 is Oliver's distinction" if verdict == CONDITIONS else "")
    return N, evidence, rule, condition


def _no_point_preadvertising(ev: Evidence):
    def saved(h):
        a = ev.outcomes(h, "upstream", "qemu").codes[0]
        b = ev.outcomes(h, "raz-einval", "qemu").codes[0]
        f = h.registers_from
        return int(((a[f:, f:] == CODES["refused"]) & (b[f:, f:] == CODES["preserved"])).sum())
    N = {"saved": Number("saved", min(saved(h) for h in ev.real.values()), "count"),
         "up": ev.over("up", lambda h: ev.era(h, "upstream", "qemu", "forward")["harm"]),
         "re": ev.over("re", lambda h: ev.era(h, "raz-einval", "qemu", "forward")["harm"])}
    evidence = (f"QEMU carries registers it does not understand; with the list fixed in advance "
                f"(raz-einval) {N['saved']} register-era pair(s) of {ev.linux.name} refused under "
                f"upstream are preserved on every host, and forward pairs changed or refused by "
                f"the encoding fall from {N['up']} to {N['re']} over {_over_seeds_text(ev)}")

    def rule(n):
        return CONDITIONS if n["saved"].value > 0 or n["re"].value < n["up"].value else HOLDS

    def condition(n, verdict):
        return (f"for configuring (turning a service off needs a VMM that knows the register); "
                f"not for preserving, which needs only a list that does not change "
                f"({n['saved']} Linux pairs, forward harm {n['up']} -> {n['re']})"
                if verdict == CONDITIONS else "")
    return N, evidence, rule, condition


def _firmware_not_id_registers(ev: Evidence):
    real = ev.linux
    never_zero = _never_zero(real)
    n_rel = len(real.releases)
    rejected = [(s, d) for s in range(n_rel) for d in range(s)
                if any(f.introduced <= d and f.at(s, real.host).reset
                       not in f.at(d, real.host).accepts for f in never_zero)]
    specs = ("upstream", "raz-wi", "raz-einval", "full-bitmap")
    grids = {spec: ev.outcomes(real, spec, "qemu").codes[0] for spec in specs}
    everywhere = sum(all(grids[spec][s, d] == CODES["refused"] for spec in specs)
                     for s, d in rejected)
    N = {"never zero": Number("never zero", len(never_zero), "count"),
         "rejected": Number("rejected", len(rejected), "count"),
         "refused": Number("refused", everywhere, "count")}
    evidence = (f"{real.name}: {', '.join(f.name for f in never_zero) or 'no firmware register'}"
                f" ({N['never zero']}) never accept 0; {N['rejected']} backward pairs carry a "
                f"value the older kernel rejects, {N['refused']} of them refused under every "
                f"encoding ({', '.join(specs)}); in the feature bitmaps, by contrast, a 0 bit "
                f"does mean 'not offered', under every encoding")

    def rule(n):
        if n["never zero"].value == 0:
            return CONDITIONS
        return HOLDS if n["refused"].value == n["rejected"].value else CONDITIONS

    def condition(n, verdict):
        return ("" if verdict == HOLDS else
                f"for value registers only ({n['never zero']} on {real.name}, {n['refused']} of "
                f"{n['rejected']} rejected pairs refused everywhere); the feature bitmaps do "
                f"follow the ID-register rule")
    return N, evidence, rule, condition


def _invalidate_on_write(ev: Evidence):
    vmms = ("qemu", "firecracker", "cloud-hypervisor")
    N = {v: ev.over(v, lambda h, v=v: ev.era(h, "invalidate-on-write", v, "forward")["harm"])
         for v in vmms}
    N["upstream"] = ev.over("upstream", lambda h: ev.era(h, "upstream", "qemu", "forward")
                            ["harm"])
    evidence = (f"{_over_seeds_text(ev)}, forward pairs changed or refused by the encoding: "
                f"upstream under QEMU {N['upstream']}; invalidate-on-write "
                + ", ".join(f"{v} {N[v]}" for v in vmms))

    def rule(n):
        worst = max(n[v].value for v in vmms)
        best = min(n[v].value for v in vmms)
        if worst == 0:
            return HOLDS
        return CONDITIONS if best < n["upstream"].value else FAILS

    def condition(n, verdict):
        if verdict != CONDITIONS:
            return ""
        good = [v for v in vmms if n[v].value < n["upstream"].value]
        bad = [v for v in vmms if v not in good]
        return ("only for VMMs that write back just the registers they saved ("
                + ", ".join(f"{v}: {n[v]}" for v in good) + ")"
                + "".join(f"; {v} writes back every register it lists, the new one with its "
                          f"reset value, after the invalidation ({n[v]})" for v in bad))
    return N, evidence, rule, condition


def _wide_registers(ev: Evidence):
    marc = "wide:writes=invalidate"
    N = {"unsupported": ev.over("unsupported", lambda h: ev.era(h, marc, "qemu", "forward")
                                ["unsupported"]),
         "fc": ev.over("fc", lambda h: ev.era(h, marc, "firecracker", "forward")["harm"]),
         "fc iow": ev.over("fc iow", lambda h: ev.era(h, "invalidate-on-write", "firecracker",
                                                      "forward")["harm"]),
         "new regs": ev.over("new regs", lambda h: len(parse_strategy("upstream").layout(h).regs)
                             - len(parse_strategy(marc).layout(h).regs),
                             "heavy" if ev.heavy else "futures", kind="count")}
    evidence = (f"Marc's reading ({marc}: per-space 2048-bit registers, first write clears "
                f"them all), {_over_seeds_text(ev)}: QEMU cannot save a register wider than 64 "
                f"bits ({N['unsupported']} of pairs unsupported, Cloud Hypervisor likewise); "
                f"under Firecracker forward harm {N['fc']} against {N['fc iow']} for 64-bit "
                f"invalidate-on-write; in busy futures it lists {N['new regs']} fewer "
                f"registers than upstream")

    def rule(n):
        if n["unsupported"].value > 0:
            return CONDITIONS if n["fc"].value <= n["fc iow"].value else FAILS
        return HOLDS

    def condition(n, verdict):
        return (f"with a VMM that carries registers wider than 64 bits (Firecracker: forward "
                f"harm {n['fc']}); QEMU and Cloud Hypervisor cannot start such a VM "
                f"({n['unsupported']} unsupported)" if verdict == CONDITIONS else "")
    return N, evidence, rule, condition


SPECS = ("upstream", "invalidate-on-write", "raz-wi", "full-bitmap", "full-bitmap:spaces=all",
         "raz-einval")


def _no_userspace_patch(ev: Evidence):
    N = {spec: Number(spec, max(ev.over(spec, lambda h, s=spec: ev.era(h, s, "qemu", "forward")
                                        ["harm"]).value,
                                ev.real_min_max(spec, lambda h, s=spec: ev.era(
                                    h, s, "qemu", "forward")["harm"]).value))
         for spec in SPECS}
    evidence = ("forward pairs changed or refused by the encoding under unchanged QEMU, worst "
                f"of {_over_seeds_text(ev)} (mean) and {ev.linux.name}: "
                + ", ".join(f"{s} {N[s]}" for s in SPECS))

    def rule(n):
        return CONDITIONS if any(n[s].value == 0 for s in SPECS) else FAILS

    def condition(n, verdict):
        ok = [s for s in SPECS if n[s].value == 0]
        return (f"achievable when every service's register exists in advance ({', '.join(ok)}); "
                f"upstream needs a VMM change whenever a new register resets non-zero "
                f"({n['upstream']})" if verdict == CONDITIONS else "")
    return N, evidence, rule, condition


def _reg_list_disambiguates(ev: Evidence):
    def every_lost(h):
        s = shares(ev.outcomes(h, "upstream", "zero-unknown"), "forward")
        return s["lost"] + s["mixed"]
    N = {"era": ev.over("era", lambda h: ev.era(h, "upstream", "zero-unknown", "forward")
                        ["harm"]),
         "all lost": ev.over("all lost", every_lost)}
    evidence = (f"class 0x16 is that distinction: zeroing feature registers missing from the "
                f"stream (zero-unknown) leaves {N['era']} of register-era forward pairs changed "
                f"or refused by the encoding ({_over_seeds_text(ev)}), but over all pairs it "
                f"loses services in {N['all lost']} of forward ones (sources from before "
                f"registers_from, which sent no feature register)")

    def rule(n):
        if n["era"].value == 0:
            return CONDITIONS if n["all lost"].value > 0 else HOLDS
        return FAILS

    def condition(n, verdict):
        return (f"the VMM must zero only when the source kernel had feature registers (else "
                f"{n['all lost']} of forward pairs lose services), and it is still a userspace "
                f"change" if verdict == CONDITIONS else "")
    return N, evidence, rule, condition


def _range_does_not_scale(ev: Evidence):
    real = ev.linux
    R = int(parse_strategy("raz-einval").values["ranges"])
    bits = 64 * R
    span = len(real.releases) - 1 or 1
    rate = len(real.services) / span
    lasts = math.inf if rate == 0 else (bits - len(real.services)) / rate
    heavy = ev.heavy or ev.futures
    which = "heavy" if ev.heavy else "futures"
    ours = "raz-einval:ranges=3,overflow=opt-in"
    N = {"lasts": Number("lasts", lasts / span if math.isfinite(lasts) else 1e9, "count"),
         "exhausted": Number("exhausted", sum(parse_strategy("raz-einval").layout(h).exhaustion()
                                              is not None for h in heavy), "count"),
         "re gain": ev.over("re gain", lambda h: ev.era(h, "raz-einval", "qemu", "forward")
                            ["gained"], which),
         "up gain": ev.over("up gain", lambda h: ev.era(h, "upstream", "qemu", "forward")
                            ["gained"], which),
         "ours gain": ev.over("ours gain", lambda h: ev.era(h, ours, "qemu", "forward")
                              ["gained"], which)}
    evidence = (f"{real.name} added {len(real.services)} services in {span} releases: {bits} "
                f"reserved bits (R={R}) outlast it {N['lasts']} times over at that rate; "
                f"{len(heavy)} busy futures (8 services per release) exhaust the range in "
                f"{N['exhausted']} of them, and past it forward gains are {N['re gain']} under "
                f"raz-einval against {N['up gain']} under upstream; with overflow registers "
                f"opt-in ({ours}) {N['ours gain']}")

    def rule(n):
        return CONDITIONS if n["exhausted"].value > 0 else FAILS

    def condition(n, verdict):
        return (f"a range does run out ({n['exhausted']} of {len(heavy)} busy futures), and its "
                f"overflow registers bring back upstream's forward gains unless they reset to 0 "
                f"({n['ours gain']}); at Linux's rate it outlasts the history "
                f"{n['lasts']} times over" if verdict == CONDITIONS else "")
    return N, evidence, rule, condition


def _sixteen_kb(ev: Evidence):
    real = ev.linux
    last = len(real.releases) - 1
    vmms = ("qemu", "firecracker", "cloud-hypervisor")
    fb = {v: cost_at(real, parse_strategy("full-bitmap"), parse_vmm(v), last) for v in vmms}
    bitmaps = {v: cost_at(real, parse_strategy("full-bitmap"), parse_vmm(v), last,
                          feature_only=True) for v in vmms}
    up = cost_at(real, parse_strategy("upstream"), parse_vmm("qemu"), last)
    N = {v: Number(v, bitmaps[v].bytes_per_vcpu or 0, "bytes") for v in vmms}
    N["payload"] = Number("payload", full_bitmap_bytes(), "bytes")
    N["list"] = Number("list", up.list_bytes_per_vcpu or 0, "bytes")
    N["list fb"] = Number("list fb", fb["qemu"].list_bytes_per_vcpu or 0, "bytes")
    N["calls"] = Number("calls", up.list_ioctls or 0, "count")
    N["calls fb"] = Number("calls fb", fb["qemu"].list_ioctls or 0, "count")
    evidence = (f"payload {N['payload']}; bitmap bytes per vCPU at {real.releases[last]}: "
                + ", ".join(f"{v} {N[v]}" for v in vmms)
                + f"; QEMU's whole list moves {N['list']} per vCPU in {N['calls']} "
                f"GET/SET_ONE_REG calls under upstream, {N['list fb']} in {N['calls fb']} "
                f"with the full bitmap")

    def rule(n):
        return HOLDS if n["qemu"].value >= n["payload"].value else CONDITIONS

    def condition(n, verdict):
        return (f"understated: under QEMU the bitmaps alone move {n['qemu']} per vCPU, "
                f"{n['qemu'].value / n['list'].value:.0f} times the {n['list']} of state "
                f"really moved" if verdict == HOLDS else
                f"a VMM pays less than the payload ({n['qemu']} under QEMU)")
    return N, evidence, rule, condition


EVALUATORS: dict[str, Callable] = {
    "new-register-needs-vmm": _new_register_needs_vmm,
    "get-reg-list-discovers": _get_reg_list_discovers,
    "raz-wi-range": _raz_wi_range,
    "range-exists-0x14": _range_exists_0x14,
    "no-point-preadvertising": _no_point_preadvertising,
    "firmware-not-id-registers": _firmware_not_id_registers,
    "invalidate-on-write": _invalidate_on_write,
    "wide-registers": _wide_registers,
    "no-userspace-patch": _no_userspace_patch,
    "reg-list-disambiguates": _reg_list_disambiguates,
    "range-does-not-scale": _range_does_not_scale,
    "sixteen-kb": _sixteen_kb,
}


def evaluate(key: str, evidence: Evidence) -> Finding:
    """The finding for one claim (by key)."""
    numbers, text, rule, condition = EVALUATORS[key](evidence)
    verdict = rule(numbers)
    return Finding(BY_KEY[key], numbers, text, verdict, condition(numbers, verdict), rule)


def as_text(findings: list[Finding], width: int = 72) -> str:
    """The findings as plain text for an email: numbered, wrapped at ``width``."""
    import textwrap

    out = []
    for n, f in enumerate(findings, 1):
        head = f"{n}. {f.claim.claim} ({f.claim.who})"
        out.append(textwrap.fill(head, width, subsequent_indent="   "))
        for label, text in (("Evidence", f.evidence), ("Verdict", f.stated)):
            out.append(textwrap.fill(f"{label}: {text}", width, initial_indent="   ",
                                     subsequent_indent="   "))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# -- the two closing rows: what Linux merged, and ours --------------------------------------

#: Our strategy: raz-einval with three reserved registers (upstream's count at
#: v5.19) and overflow registers that reset to 0.
OURS = "raz-einval:ranges=3,overflow=opt-in"
MERGED = Claim("merged", "Linux v5.19",
               "What Linux merged (per-space 64-bit bitmaps, strict -EINVAL) keeps a guest's "
               "services across kernel versions", "")
OUR_CLAIM = Claim("ours", "hcsim",
                  f"{OURS} is at least as safe as every other deployable encoding on every "
                  "migration, and moves no more bytes than upstream", "")


def merged(ev: Evidence) -> Finding:
    """The closing row for upstream: silent loss, forward gains, backward refusals
    it causes under QEMU and under the posted series (``qemu-compat``)."""
    def bwd(vmm):
        return lambda h: ev.era(h, "upstream", vmm, "backward")["refused by strategy"]
    N = {"loss": Number("loss", max([ev.over("l", lambda h, d=d: ev.era(h, "upstream", "qemu", d)
                                             ["lost"]).value for d in ("forward", "backward")]
                                    + [ev.real_min_max("l", lambda h: ev.era(
                                        h, "upstream", "qemu", "backward")["lost"]).value])),
         "gain": ev.over("gain", lambda h: ev.era(h, "upstream", "qemu", "forward")["gained"]),
         "bwd qemu": ev.real_min_max("bwd qemu", bwd("qemu")),
         "bwd compat": ev.real_min_max("bwd compat", bwd("qemu-compat"))}
    text = (f"register-era silent loss {N['loss']} (worst of {ev.linux.name} and the mean of "
            f"{_over_seeds_text(ev)}); forward gains {N['gain']} under unchanged QEMU; "
            f"{ev.linux.name} backward pairs it refuses (VENDOR_HYP_BMAP_2): {N['bwd qemu']} "
            f"under QEMU, {N['bwd compat']} under the posted qemu-compat series")

    def rule(n):
        if n["loss"].value > 0:
            return FAILS
        return CONDITIONS if n["gain"].value > 0 or n["bwd qemu"].value > 0 else HOLDS

    verdict = rule(N)
    cond = (f"it never loses a service silently, but gains {N['gain']} forward when a new "
            f"register resets non-zero, and refuses {N['bwd qemu']} of {ev.linux.name}'s "
            f"backward pairs until QEMU hides the new register ({N['bwd compat']})"
            if verdict == CONDITIONS else "")
    return Finding(MERGED, N, text, verdict, cond, rule)


def ours(era: pd.DataFrame, every: pd.DataFrame, cost: dict[str, tuple[int, int, int]],
         pickup: Number, histories: int) -> Finding:
    """The closing row for :data:`OURS` from :func:`hcsim.analyses.pairwise.compare`
    tables (register era and every pair), :func:`~hcsim.analyses.pairwise.cost_excess`
    per history set (``linux``, ``eager``, ``lazy``) and the pickup it gives up
    against upstream (upstream's minus ours)."""
    def worst(table, key):
        t = table[table.a == OURS]
        return Number(key, int((~t.dominates).sum()), "count")
    N = {"not dominated": worst(era, "not dominated"),
         "others": Number("others", int(len(era[era.a == OURS])), "count"),
         "worse pairs": Number("worse pairs", int(era[era.a == OURS].worse.sum()), "count"),
         "all worse": Number("all worse", int(every[every.a == OURS].worse.sum()), "count"),
         "pickup": pickup}
    for k, (more, total, _) in cost.items():
        N[f"cost {k}"] = Number(f"cost {k}", more, "count")
        N[f"of {k}"] = Number(f"of {k}", total, "count")
    beaten = sorted(set(every[(every.a == OURS) & (every.worse > 0)].b))
    text = (f"over {histories} histories and {len(set(era.vmm))} VMMs, register era: "
            f"{N['not dominated']} of {N['others']} (VMM, strategy) comparisons not dominated, "
            f"{N['worse pairs']} pairs worse; over every pair {N['all worse']} pairs worse "
            f"(against {', '.join(beaten) or 'none'}: backward into kernels without feature "
            f"registers); releases where it moves more bytes than upstream: "
            + ", ".join(f"{k} {N['cost ' + k]} of {N['of ' + k]}" for k in cost)
            + f"; new-VM pickup given up against upstream {N['pickup']} in busy futures")

    def rule(n):
        if n["not dominated"].value > 0:
            return FAILS
        caveats = n["all worse"].value + sum(n[f"cost {k}"].value for k in cost)
        return CONDITIONS if caveats or n["pickup"].value > 0 else HOLDS

    verdict = rule(N)
    parts = []
    if N["all worse"].value:
        parts.append(f"in the register era; over every pair it is worse on {N['all worse']} "
                     f"pairs")
    for k in cost:
        if N[f"cost {k}"].value:
            parts.append(f"it moves more bytes than upstream on {N['cost ' + k]} of "
                         f"{N['of ' + k]} {k} releases")
    if N["pickup"].value > 0:
        parts.append(f"new VMs of an unchanged VMM get {N['pickup']} fewer of the services "
                     f"(the overflow ones) than under upstream in busy futures")
    return Finding(OUR_CLAIM, N, text, verdict, "; ".join(parts) if verdict == CONDITIONS
                   else "", rule)


@dataclass
class Contest:
    """Our strategy against the others: dominance tables, cost, pickup, the finding."""

    grid: object
    era: pd.DataFrame
    every: pd.DataFrame
    cost: dict[str, tuple[int, int, int]]
    pickup: Number
    finding: Finding


def contest(ev: Evidence, specs: Sequence[str], vmms: Sequence[str],
            eager: Sequence[History]) -> Contest:
    """:data:`OURS` against ``specs`` under ``vmms`` on every history of ``ev``
    (:mod:`hcsim.analyses.pairwise`); its cost against upstream on the real
    history, on ``eager`` futures (every space's bitmap listed from the start,
    as Linux at v5.19) and on ``ev.futures``; its pickup in the busy futures."""
    from hcsim.analyses import pairwise

    hs = [*ev.real.values(), *ev.futures, *ev.heavy]
    grid = pairwise.Grid(hs, ev.outcomes)
    era = pairwise.compare(grid, specs, vmms, "era")
    every = pairwise.compare(grid, specs, vmms, "all")
    cost = {ev.linux.name: pairwise.cost_excess([ev.linux], OURS, "upstream"),
            "eager": pairwise.cost_excess(eager, OURS, "upstream"),
            "lazy": pairwise.cost_excess(ev.futures, OURS, "upstream")}
    o, u = parse_strategy(OURS), parse_strategy("upstream")
    pickup = ev.over("pickup", lambda h: new_vm_pickup(h, u) - new_vm_pickup(h, o),
                     "heavy" if ev.heavy else "futures")
    return Contest(grid, era, every, cost, pickup, ours(era, every, cost, pickup, len(hs)))
