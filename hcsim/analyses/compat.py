"""Machine-type compat lists for a range of kernels (``hcsim compat``).

A QEMU machine type stays migratable across host kernels only if every
ordered pair of them passes QEMU's register-list checks (FACTS.md section
5): the count check (``cpreg_vmstate_array_len``) and the sorted walk.  Eric
Auger's posted series (FACTS.md section 4) gives a machine type two id
lists: ``x-mig-hidden-regs`` (left out of the cpreg list, never saved or
restored) and ``x-mig-safe-missing-regs`` (incoming ids the destination
lacks are ignored, in the count too).  This module finds lists under which
every ordered pair of the chosen releases passes those checks.

The search:

* Only an id that one chosen release saves and another lacks can fail a
  check; those are the candidates.  With every candidate safe-missing, no
  incoming id is ever missing on the destination, so both checks pass.
* Candidates are then dropped one at a time, highest id first, as long as
  no pair meets a register-list refusal again.  The result is
  *irreducible*: putting back any single id it leaves out is not needed,
  and dropping any id it keeps brings a refusal back.  (The smallest list
  is a set-cover problem; an irreducible one is what a maintainer can
  check by hand.)
* ``x-mig-hidden-regs`` stays empty: safe-missing already removes every
  list refusal, and hiding a register also stops migrating it between two
  kernels that both have it, so a register that carries guest state (a
  non-zero bitmap, a system register the guest uses) would lose it.  Ids
  whose value can carry guest state are *marked*, never proposed silently.

Every check runs the VMM itself (``qemu-compat`` with the lists, through
:func:`hcsim.evaluation.backends.evaluate`): the rule lives in
:mod:`hcsim.model.vmm` only.  What still fails after the lists (a firmware
value, say) is reported with its cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hcsim.errors import InputError
from hcsim.evaluation.backends import evaluate
from hcsim.evaluation.outcomes import REFUSED
from hcsim.evaluation.spec import boot
from hcsim.model.history import History
from hcsim.model.kvm import Kernel
from hcsim.model.regs import is_feature, reg_name
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Vmm
from hcsim.model.vmm import parse as parse_vmm

#: Cause kinds of a register-list refusal (the checks the lists address).
LIST_KINDS = ("count", "unknown")


def parse_releases(history: History, text: str) -> tuple[int, ...]:
    """``R1,R2,...`` or ranges ``A..B`` (inclusive), as release indices."""
    out: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise InputError(f"--releases {text!r}: an empty release name")
        first, dots, last = item.partition("..")
        if dots:
            a, b = history.index(first), history.index(last)
            if a > b:
                raise InputError(f"--releases: range {item!r} runs backwards")
            out += range(a, b + 1)
        else:
            out.append(history.index(item))
    chosen = tuple(sorted(set(out)))
    if len(chosen) < 2:
        raise InputError("--releases: give at least two releases")
    return chosen


def compat_vmm(hidden=(), safe_missing=()) -> Vmm:
    """``qemu-compat`` with exactly these lists."""
    def ids(values):
        return ";".join(f"0x{v:016x}" for v in sorted(values))
    return parse_vmm(f"qemu-compat:hidden={ids(hidden)},safe-missing={ids(safe_missing)}")


def saved(history: History, strategy: Strategy, vmm: Vmm, release: int) -> frozenset[int]:
    """The ids the VMM saves from a fresh vCPU of ``release``."""
    cpu = boot(Kernel(history, release, strategy), 1)[0]
    return frozenset(rid for rid in cpu.get_reg_list() if vmm.saves(rid))


@dataclass
class Compat:
    """The lists found, what they leave, and why some ids need care."""

    history: History
    strategy: Strategy
    releases: tuple[int, ...]
    lists: dict[int, frozenset[int]]
    safe_missing: tuple[int, ...]
    hidden: tuple[int, ...] = ()
    marks: dict[int, str] = field(default_factory=dict)
    remaining: list[tuple[int, int, str, str]] = field(default_factory=list)
    before: int = 0

    @property
    def pairs(self) -> int:
        return len(self.releases) * (len(self.releases) - 1)

    def where(self, rid: int) -> tuple[str, str]:
        """(releases listing it, releases not listing it), as names."""
        names = self.history.releases
        has = [names[r] for r in self.releases if rid in self.lists[r]]
        lacks = [names[r] for r in self.releases if rid not in self.lists[r]]
        return ",".join(has), ",".join(lacks)


def list_refusals(history: History, strategy: Strategy, vmm: Vmm,
                  releases: tuple[int, ...]) -> list[tuple[int, int, str, str]]:
    """Refused ordered pairs of ``releases``: (src, dst, kind, cause text)."""
    outcomes = evaluate(history, strategy, vmm, sets=False)
    out = []
    for s in releases:
        for d in releases:
            if s != d and outcomes.codes[0, s, d] == REFUSED:
                cause = outcomes.cause(0, s, d)
                out.append((s, d, cause.kind, str(cause)))
    return out


def _mark(history: History, strategy: Strategy, lists, releases, rid: int) -> str:
    """Why ignoring ``rid`` on a destination that lacks it may drop guest state."""
    if is_feature(rid) or rid >> 16 & 0xFFF == 0x14:
        values = set()
        for r in releases:
            if rid in lists[r]:
                values.add(boot(Kernel(history, r, strategy), 1)[0].get_one_reg(rid))
        if values != {0}:
            shown = ", ".join(f"0x{v:x}" for v in sorted(values))
            return f"reset value {shown}: the services or firmware state it carries are dropped"
        return ("zero at reset: safe while the VMM leaves it 0 (a VM configured "
                "with its services would lose them)")
    return ("value not modelled: safe only if the guest cannot use it "
            "(the feature is absent on the source)")


def find(history: History, strategy: Strategy, releases: tuple[int, ...]) -> Compat:
    """Irreducible ``x-mig-safe-missing-regs`` for ``releases`` (module docstring)."""
    plain = compat_vmm()
    lists = {r: saved(history, strategy, plain, r) for r in releases}
    every = frozenset.intersection(*lists.values())
    candidates = sorted(frozenset.union(*lists.values()) - every, reverse=True)
    before = sum(kind in LIST_KINDS
                 for _, _, kind, _ in list_refusals(history, strategy, plain, releases))
    keep = set(candidates)
    for rid in candidates:
        trial = keep - {rid}
        refusals = list_refusals(history, strategy, compat_vmm((), trial), releases)
        if not any(kind in LIST_KINDS for _, _, kind, _ in refusals):
            keep = trial
    final = compat_vmm((), keep)
    remaining = list_refusals(history, strategy, final, releases)
    if any(kind in LIST_KINDS for _, _, kind, _ in remaining):   # the module's argument
        raise RuntimeError("compat: every candidate safe-missing still leaves a "
                           "register-list refusal; the QEMU rule changed?")
    marks = {rid: _mark(history, strategy, lists, releases, rid) for rid in keep}
    return Compat(history, strategy, releases, lists, tuple(sorted(keep)), (),
                  marks, remaining, before)


def name(rid: int) -> str:
    """A register's kernel name, without ``KVM_REG_ARM_``."""
    return reg_name(rid).removeprefix("KVM_REG_ARM_")


def next_step(kind: str) -> str:
    """What a maintainer does about a pair the lists leave refused."""
    if kind == "errno":
        return "a firmware value: pick one every host takes (hcsim baseline)"
    if kind == "size":
        return "a register QEMU cannot hold (its size): no list helps"
    return "a register-list refusal: not expected after the lists"
