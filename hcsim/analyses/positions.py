"""The positions taken in the thread, and the hcsim evidence for each.

Each :class:`Claim` paraphrases one statement of the September 2021 kvmarm
thread (Oliver Upton, Marc Zyngier; ``thread/``), with who made it and a
short quote.  :func:`evaluate` computes the evidence for it on two
histories and returns a :class:`Finding` with a verdict from
:data:`hcsim.frontends.narrate.VERDICTS` and, where it only holds with conditions, the
condition:

* ``real``: a real history (the bundled ``linux``, or a reader's);
* ``future``: a synthetic history (:func:`hcsim.model.synthetic.generate`), for
  what the real history never exercised, e.g. a new register whose
  service is on by default.

Shares are of the *register era* (both ends of a migration at or after
``registers_from``, :mod:`hcsim.analyses.evidence`), unless the text says otherwise;
configurations are the defaults (every register left at its reset value).
The verdict logic is written out in each evaluator, so a verdict changes
when the evidence does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hcsim.analyses.evidence import codes, era_shares
from hcsim.evaluation.measures import cost_at, new_vm_pickup, pair_mask, shares, silent_loss
from hcsim.evaluation.outcomes import CODES
from hcsim.model.history import History
from hcsim.model.regs import feat_reg, short_name
from hcsim.model.smccc import full_bitmap_bytes
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm

#: The three verdicts of a claim, in the order of decreasing support.
VERDICTS = ("holds", "holds with conditions", "does not hold")


def pct(x: float, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234 -> '12.3%'``."""
    return f"{100 * x:.{digits}f}%"

HOLDS, CONDITIONS, FAILS = VERDICTS
OLIVER, MARC = "Oliver Upton", "Marc Zyngier"


@dataclass(frozen=True)
class Claim:
    """A position from the thread."""

    key: str
    who: str
    claim: str    # paraphrase
    quote: str    # the words in the thread


@dataclass(frozen=True)
class Finding:
    """A claim, the evidence computed for it, and the verdict."""

    claim: Claim
    evidence: str
    verdict: str
    condition: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

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
          "KVM_GET_REG_LIST is how userspace discovers new registers, as for system "
          "registers; nothing more is needed",
          "Just as it would need to be able to discover any new system register ... we "
          "have a way to discover all the registers"),
    Claim("raz-wi-range", OLIVER,
          "A reserved range of RAZ/WI registers keeps the guest ABI with an unchanged VMM "
          "and still lets new VMs pick up new features",
          "reserve a range of firmware registers ... Implement all of them as RAZ/WI by "
          "default ... but still allowing an old userspace to pick up new KVM features"),
    Claim("no-point-preadvertising", MARC,
          "There is no point advertising registers before userspace understands them: "
          "it could not program them anyway",
          "If userspace doesn't know about how this pseudo-register works, it won't be "
          "able to program it anyway."),
    Claim("firmware-not-id-registers", MARC,
          "Firmware registers do not follow the ID-register rule that zero means 'not "
          "implemented' (PSCI is the case in point)",
          "there is no such \"not implemented\" rule (case in point, PSCI)"),
    Claim("invalidate-on-write", MARC,
          "Invalidate-on-write solves new registers: the first write clears the defaults, "
          "so registers the VMM does not write stay off",
          "whenever userspace writes a set of firmware register, all the defaults are "
          "invalidated"),
    Claim("wide-registers", MARC,
          "Wider registers (KVM encodes 8 to 2048 bits) make this easy",
          "We could define a new class of hypercall-specific registers that would be much "
          "wider ... This would make it pretty easy to implement the above."),
    Claim("no-userspace-patch", OLIVER,
          "Userspace should not need a patch to preserve the guest ABI on a newer kernel",
          "Fundamentally, I don't think userspace should need a patch to preserve ABI on a "
          "newer kernel."),
    Claim("reg-list-disambiguates", OLIVER,
          "If KVM_GET_REG_LIST told feature (ID) registers apart from other state, the "
          "VMM would know which registers to zero",
          "If KVM_GET_REG_LIST were to disambiguate between ID registers ... it would be "
          "clear to what registers to zero on a newer kernel."),
    Claim("range-does-not-scale", MARC,
          "A reserved range only works until it is exhausted: it does not scale",
          "Your approach only works if we don't exceed that particular range. ... this is "
          "not scalable."),
    Claim("sixteen-kb", MARC,
          "Reserving the whole SMCCC hypervisor space costs 16 kB of zeroes at every "
          "save/restore",
          "that's 16kB worth of zeroes that userspace has to save/restore at all times"),
)

BY_KEY = {c.key: c for c in CLAIMS}


@dataclass(frozen=True)
class Histories:
    """The two histories the evidence is computed on."""

    real: History
    future: History


def _fwd(h: History, spec: str, vmm: str) -> float:
    return era_shares(h, spec, vmm, "forward")["preserved"]


def _bwd(h: History, spec: str, vmm: str, outcome: str) -> float:
    return era_shares(h, spec, vmm, "backward")[outcome]


def _new_registers(h: History, spec: str = "upstream") -> list[tuple[str, int, int]]:
    """(release, index, reset at listing) of registers listed after registers_from."""
    layout = parse_strategy(spec).layout(h)
    out = []
    for pos, reg in enumerate(layout.regs):
        if reg.listed_from > h.registers_from:
            out.append((h.releases[reg.listed_from], reg.id & 0xFFFF,
                        layout.reset(pos, reg.listed_from)))
    return out


def _pairs_where(h: History, spec_a: str, vmm_a: str, outcome_a: str,
                 spec_b: str, vmm_b: str, outcome_b: str) -> list[tuple[int, int]]:
    """Register-era pairs with ``outcome_a`` under (a) and ``outcome_b`` under (b)."""
    a, b = codes(h, spec_a, vmm_a)[0], codes(h, spec_b, vmm_b)[0]
    n, start = len(h.releases), h.registers_from
    mask = pair_mask(n, "forward", start) | pair_mask(n, "backward", start)
    hit = mask & (a == CODES[outcome_a]) & (b == CODES[outcome_b])
    return [(int(s), int(d)) for s, d in zip(*np.nonzero(hit))]


def _pair_names(h: History, pairs: list[tuple[int, int]], limit: int = 2) -> str:
    names = [f"{h.releases[s]} -> {h.releases[d]}" for s, d in pairs[:limit]]
    return ", ".join(names) + (", ..." if len(pairs) > limit else "")


# -- one evaluator per claim ---------------------------------------------------------------

def _new_register_needs_vmm(hs: Histories) -> tuple[str, str, str]:
    fut, real = hs.future, hs.real
    on_regs = [r for r in _new_registers(fut) if r[2]]
    q, z = _fwd(fut, "upstream", "qemu"), _fwd(fut, "upstream", "zero-unknown")
    real_new = _new_registers(real)
    real_text = ("; on " + real.name + ": " +
                 (", ".join(f"{short_name(feat_reg(i))} at {rel} resets to 0x{v:x}"
                           for rel, i, v in real_new)
                  if real_new else "no new register") +
                 f", forward {pct(_fwd(real, 'upstream', 'qemu'))} preserved")
    evidence = (f"upstream on {fut.name}: {len(on_regs)} new register(s) with a default-on "
                f"service; forward preserved {pct(q)} under qemu, {pct(z)} when the VMM zeroes "
                f"registers missing from the stream (zero-unknown)" + real_text)
    if q < 1.0 and z == 1.0:
        return (evidence, CONDITIONS,
                "with per-space registers (upstream) and a new register that resets "
                "non-zero; a register whose services are opt-in (reset 0, as "
                "VENDOR_HYP_BMAP_2) or a reserved range needs no VMM change")
    if q == 1.0:
        return evidence, CONDITIONS, "the histories never listed a default-on new register"
    return evidence, FAILS, "zeroing does not preserve the guest here"


def _get_reg_list_discovers(hs: Histories) -> tuple[str, str, str]:
    fut = hs.future
    q, z = _fwd(fut, "upstream", "qemu"), _fwd(fut, "upstream", "zero-unknown")
    evidence = (f"every model VMM saves what KVM_GET_REG_LIST lists; on {fut.name} QEMU "
                f"discovers the new register yet preserves {pct(q)} of forward pairs "
                f"(it writes back the reset value it read); knowing that class 0x16 means "
                f"'0 = off' (zero-unknown) gives {pct(z)}")
    if q < 1.0:
        return (evidence, CONDITIONS,
                "discovery is enough to carry registers both kernels have; to preserve an "
                "older guest the VMM must also know a new register's safe value, a VMM "
                "change")
    return evidence, HOLDS, ""


def _raz_wi_range(hs: Histories) -> tuple[str, str, str]:
    fut, real = hs.future, hs.real
    fq = min(_fwd(fut, "raz-wi", "qemu"), _fwd(real, "raz-wi", "qemu"))
    lost = _bwd(fut, "raz-wi", "qemu", "lost")
    lost_real = _bwd(real, "raz-wi", "qemu", "lost")
    pick = new_vm_pickup(fut, parse_strategy("raz-wi"))
    pick_up = new_vm_pickup(fut, parse_strategy("upstream"))
    evidence = (f"raz-wi under unchanged QEMU: forward preserved {pct(fq)} (both histories); "
                f"a new VM gets {pct(pick)} of the services (upstream {pct(pick_up)}); "
                f"backward pairs silently lost: {pct(lost)} on {fut.name}, {pct(lost_real)} "
                f"on {real.name}")
    if fq == 1.0 and pick >= pick_up and lost > 0:
        return (evidence, CONDITIONS,
                "forward only: moving back to a kernel that lacks a service the guest uses "
                "silently drops it, because writes of unknown bits are ignored")
    if fq == 1.0 and pick >= pick_up:
        return evidence, HOLDS, ""
    return evidence, FAILS, "an unchanged QEMU does not preserve forward migration"


def _no_point_preadvertising(hs: Histories) -> tuple[str, str, str]:
    fut, real = hs.future, hs.real
    saved = (_pairs_where(real, "upstream", "qemu", "refused", "raz-einval", "qemu",
                          "preserved"))
    fu, fr = _fwd(fut, "upstream", "qemu"), _fwd(fut, "raz-einval", "qemu")
    evidence = (f"an unchanged QEMU carries registers it does not understand; with the list "
                f"fixed in advance (raz-einval) {len(saved)} register-era pair(s) of {real.name} "
                f"refused under upstream are preserved ({_pair_names(real, saved)}), and "
                f"forward preserved on {fut.name} rises from {pct(fu)} to {pct(fr)}")
    if saved or fr > fu:
        return (evidence, FAILS,
                "preserving needs no understanding, only a register list that does not "
                "change; it does hold for configuring (turning a service off needs a VMM "
                "that knows the register)")
    return evidence, HOLDS, ""


def _firmware_not_id_registers(hs: Histories) -> tuple[str, str, str]:
    real = hs.real
    never_zero = [f for f in real.firmware if all(0 not in v.accepts for _, v in f.values)]
    n = len(real.releases)
    # Backward pairs whose saved value the destination rejects, whatever the encoding:
    # the source's reset is not among the destination's accepted values.
    rejected = [(s, d) for s in range(n) for d in range(s)
                if any(f.introduced <= d and f.at(s, real.host).reset
                       not in f.at(d, real.host).accepts for f in never_zero)]
    specs = ("upstream", "raz-wi", "raz-einval", "full-bitmap")
    grids = {spec: codes(real, spec, "qemu")[0] for spec in specs}
    refused = CODES["refused"]
    everywhere = all(grids[spec][s, d] == refused for spec in specs for s, d in rejected)
    steps = sorted(((s, d) for s, d in rejected if s == d + 1), reverse=True)
    evidence = (f"{real.name}: {', '.join(f.name for f in never_zero) or 'no firmware register'}"
                f" never accepts 0; {len(rejected)} backward pair(s), among them the steps "
                f"{_pair_names(real, steps, limit=4)}, carry a value the older kernel "
                f"rejects: refused under {'every' if everywhere else 'not every'} encoding "
                f"({', '.join(specs)})")
    if never_zero and rejected and everywhere:
        return (evidence, HOLDS, "so a reserved RAZ range fits feature bitmaps only; "
                "firmware values must be carried (or pinned by the VMM) as they are")
    if never_zero:
        return evidence, CONDITIONS, "no migration of this history depends on it"
    return evidence, CONDITIONS, "this history has no firmware register without a 0"


def _invalidate_on_write(hs: Histories) -> tuple[str, str, str]:
    fut = hs.future
    vals = {v: _fwd(fut, "invalidate-on-write", v)
            for v in ("qemu", "firecracker", "cloud-hypervisor")}
    up = _fwd(fut, "upstream", "qemu")
    evidence = (f"{fut.name}, forward preserved: upstream {pct(up)}; invalidate-on-write "
                + ", ".join(f"{v} {pct(x)}" for v, x in vals.items()))
    if vals["firecracker"] == 1.0 and vals["qemu"] <= up:
        return (evidence, CONDITIONS,
                "only for VMMs that write back just the registers they saved (Firecracker, "
                "Cloud Hypervisor); QEMU writes back every register it lists, the new one "
                "with its reset value, after the invalidation")
    if min(vals.values()) == 1.0:
        return evidence, HOLDS, ""
    return evidence, FAILS, "forward migration is not preserved"


def _wide_registers(hs: Histories) -> tuple[str, str, str]:
    fut = hs.future
    unsup = {v: era_shares(fut, "wide", v, "forward")["unsupported"]
             for v in ("qemu", "cloud-hypervisor")}
    fc_fwd = _fwd(fut, "wide", "firecracker")
    fc_lost = _bwd(fut, "wide", "firecracker", "lost")
    evidence = (f"{fut.name}, wide (2048-bit): unsupported in "
                + ", ".join(f"{pct(x)} of pairs under {v}" for v, x in unsup.items())
                + f"; Firecracker preserves {pct(fc_fwd)} forward and silently loses "
                f"{pct(fc_lost)} backward")
    if min(unsup.values()) > 0 and fc_fwd == 1.0:
        return (evidence, CONDITIONS,
                "only with a VMM that carries registers wider than 64 bits (Firecracker); "
                "QEMU and Cloud Hypervisor cannot start such a VM, and RAZ/WI semantics "
                "still lose services on backward migration")
    return evidence, HOLDS if fc_fwd == 1.0 else FAILS, ""


def _no_userspace_patch(hs: Histories) -> tuple[str, str, str]:
    fut, real = hs.future, hs.real
    specs = ("upstream", "invalidate-on-write", "raz-wi", "full-bitmap", "raz-einval")
    ok = [s for s in specs if _fwd(fut, s, "qemu") == 1.0 and _fwd(real, s, "qemu") == 1.0]
    fixed = _pairs_where(real, "upstream", "qemu", "refused", "upstream", "qemu-tolerant",
                         "preserved")
    evidence = (f"forward preserved in every register-era pair with unchanged QEMU on both "
                f"histories: {', '.join(ok) or 'none'}; on {real.name}, {len(fixed)} "
                f"upstream pair(s) needed QEMU's later tolerance ({_pair_names(real, fixed)})")
    if ok:
        return (evidence, CONDITIONS,
                f"achievable when every service has a register fixed in advance "
                f"({', '.join(ok)}); upstream needs a VMM change whenever a new register "
                "resets non-zero, and needed one for VENDOR_HYP_BMAP_2 going back")
    return evidence, FAILS, "no strategy preserves forward migration with an unchanged VMM"


def _reg_list_disambiguates(hs: Histories) -> tuple[str, str, str]:
    fut = hs.future
    era = _fwd(fut, "upstream", "zero-unknown")
    every = shares(codes(fut, "upstream", "zero-unknown"), "forward")
    lost = every["lost"] + every["mixed"]
    evidence = (f"class 0x16 is that distinction: zeroing feature registers missing from the "
                f"stream (zero-unknown) preserves {pct(era)} of register-era forward pairs on "
                f"{fut.name}, but over all pairs it loses services in {pct(lost)} of forward "
                f"ones (sources from before registers_from, which sent no feature register)")
    if era == 1.0 and lost > 0:
        return (evidence, CONDITIONS,
                "the VMM must zero only when the source kernel had feature registers, and "
                "it still needs a userspace change")
    if era == 1.0:
        return evidence, HOLDS, ""
    return evidence, FAILS, "zeroing by class does not preserve the guest"


def _range_does_not_scale(hs: Histories) -> tuple[str, str, str]:
    from hcsim.model.synthetic import generate

    real, fut = hs.real, hs.future
    bits = 64 * int(parse_strategy("raz-einval").values["ranges"])
    span = len(real.releases) - 1 or 1
    rate = len(real.services) / span
    lasts = math.inf if rate == 0 else (bits - len(real.services)) / rate
    heavy = generate(releases=len(fut.releases), rate=8.0, seed=0, name="heavy")
    ex = parse_strategy("raz-einval").layout(heavy).exhaustion()
    up_f, re_f = _fwd(heavy, "upstream", "qemu"), _fwd(heavy, "raz-einval", "qemu")
    re_loss = silent_loss(codes(heavy, "raz-einval", "qemu"), heavy.registers_from)
    more = "forever" if math.isinf(lasts) else f"about {lasts:,.0f} more releases"
    evidence = (f"{real.name} added {len(real.services)} services in {span} releases; "
                f"{bits} reserved bits (R=4) last {more} at that rate. A much busier future "
                f"({len(heavy.services)} services in {len(heavy.releases)} releases) "
                f"overflows at {heavy.releases[ex] if ex is not None else 'no release'}; its "
                f"register-era forward preserved share is {pct(re_f)} (upstream {pct(up_f)}), "
                f"silent loss {pct(re_loss)}")
    if lasts < span:
        return evidence, HOLDS, ""
    return (evidence, CONDITIONS,
            "a range does run out, and past it new overflow registers bring back upstream's "
            "problem (no silent loss); at the observed rate R=4 outlasts the history "
            f"{lasts / span:,.0f} times over")


def _sixteen_kb(hs: Histories) -> tuple[str, str, str]:
    real = hs.real
    last = len(real.releases) - 1
    per = {v: cost_at(real, parse_strategy("full-bitmap"), parse_vmm(v), last,
                      feature_only=True).bytes_per_vcpu
           for v in ("qemu", "firecracker", "cloud-hypervisor")}
    evidence = (f"payload {full_bitmap_bytes():,d} B; wire bytes per vCPU: "
                + ", ".join(f"{v} {b:,d} B" for v, b in per.items())
                + f"; x512 vCPUs under QEMU: {per['qemu'] * 512 / (1 << 20):.1f} MiB per VM")
    if per["qemu"] >= full_bitmap_bytes():
        return (evidence, HOLDS,
                "understated: twice that under QEMU (id + value) and paid per vCPU")
    return evidence, CONDITIONS, "a VMM pays less than 16 KiB"


EVALUATORS: dict[str, Callable[[Histories], tuple[str, str, str]]] = {
    "new-register-needs-vmm": _new_register_needs_vmm,
    "get-reg-list-discovers": _get_reg_list_discovers,
    "raz-wi-range": _raz_wi_range,
    "no-point-preadvertising": _no_point_preadvertising,
    "firmware-not-id-registers": _firmware_not_id_registers,
    "invalidate-on-write": _invalidate_on_write,
    "wide-registers": _wide_registers,
    "no-userspace-patch": _no_userspace_patch,
    "reg-list-disambiguates": _reg_list_disambiguates,
    "range-does-not-scale": _range_does_not_scale,
    "sixteen-kb": _sixteen_kb,
}


def evaluate(key: str, histories: Histories) -> Finding:
    """The finding for one claim (by key) on the two histories."""
    evidence, verdict, condition = EVALUATORS[key](histories)
    return Finding(BY_KEY[key], evidence, verdict, condition)


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
