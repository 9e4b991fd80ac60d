"""Multi-hop migration: one guest carried across a sequence of kernels.

:func:`hcsim.evaluation.spec.migrate` always saves from a *fresh* VM.  A guest that
has already been migrated is not fresh: its registers are whatever the last
restore left on the destination (QEMU's write-back of reset values for ids
missing from the stream, RAZ/WI bits dropped by an older kernel, ...), and
the next migration saves *those*.  This module carries that state:

* :func:`create` boots a guest on a kernel (``KVM_CREATE_VM``, vCPUs,
  configuration written by the VMM, then ``KVM_RUN``);
* :func:`hop` saves the running guest with the VMM's rules, restores it on a
  fresh VM of the destination kernel and runs it there;
* :func:`migrate_chain` does that along a path of kernels.

Every hop is classified twice: against the view on the previous host (what
a single-pair matrix shows) and against the **boot view**, the services the
guest discovered when it booted, which is what a running guest can break on
(guests discover services at boot, FACTS.md section 2).  A hop that "loses"
a service the guest only gained on the way is harmless; a path whose every
pair looks preserved in the matrix can still end without a service the
guest booted with (``raz-wi``: v6.15 -> v6.12 -> v6.15 drops the v6.15-only
bits on the way down and never gets them back).

Choices where DESIGN.md is silent:

* A refused or unsupported hop leaves the guest running on its source,
  unchanged (the VMM aborts, FACTS.md section 5); the next hop of the path
  departs from there.  A refused hop still sent its stream
  (``bytes_per_vcpu``); an unsupported one sent nothing.
* All vCPUs carry the same per-VM registers, so one vCPU per VM gives every
  outcome; bytes scale with the vCPU count (``bytes_per_vcpu`` is the
  wire cost of the saved stream, as :func:`hcsim.evaluation.measures.cost_at`).
* The guest's *state* (:meth:`Guest.state`) is its kernel and the values it
  reads back: feature registers and stored firmware values.  Two guests with
  equal states behave identically on every later hop, which is what lets
  :mod:`hcsim.analyses.fleet` memoise transitions.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from hcsim.errors import InputError
from hcsim.evaluation.outcomes import classify
from hcsim.evaluation.spec import boot, configure, unhandled
from hcsim.model.config import Config, Setting
from hcsim.model.history import History
from hcsim.model.kvm import VCPU, Kernel
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Cause, Refused, Vmm

#: A guest's state: (kernel name, host CPU, feature values, stored firmware values).
State = tuple[str, str, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


@dataclass
class Guest:
    """A running guest: its VM's vCPUs and the view it booted with."""

    vcpus: list[VCPU]
    boot_view: frozenset[str]

    @property
    def kernel(self) -> Kernel:
        return self.vcpus[0].vm.kernel

    @property
    def view(self) -> frozenset[str]:
        """The services the guest's hypercalls answer on its current host."""
        return self.vcpus[0].vm.guest_view()

    def state(self) -> State:
        """Everything a later hop depends on (see the module docstring)."""
        vm, kernel = self.vcpus[0].vm, self.kernel
        features = tuple(sorted((kernel.layout.regs[p].id, v) for p, v in vm.features.items()))
        return (kernel.name, kernel.host, features, tuple(sorted(vm.firmware.items())))


@dataclass(frozen=True)
class Hop:
    """One migration of a carried guest.

    ``outcome``, ``gained`` and ``lost`` compare with the view on the source
    host (as :class:`hcsim.evaluation.outcomes.Migration`); ``drift_gained`` and
    ``drift_lost`` compare the view after the hop with the boot view (after
    a refused hop: the unchanged view on the source).
    """

    src: str
    dst: str
    outcome: str
    gained: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()
    cause: Cause | None = None
    drift_gained: frozenset[str] = frozenset()
    drift_lost: frozenset[str] = frozenset()
    bytes_per_vcpu: int = 0

    @property
    def detail(self) -> str:
        """The cause as text (``""`` when there is none)."""
        return "" if self.cause is None else str(self.cause)


@dataclass(frozen=True)
class Chain:
    """A guest's path: where it booted, what it saw, and every hop."""

    boot: str
    boot_view: frozenset[str]
    hops: tuple[Hop, ...]
    final: str
    final_view: frozenset[str]

    @property
    def drift_lost(self) -> frozenset[str]:
        """Boot services missing at the end."""
        return self.boot_view - self.final_view

    @property
    def drift_gained(self) -> frozenset[str]:
        """Services present at the end that the guest did not boot with."""
        return self.final_view - self.boot_view

    @property
    def ever_lost(self) -> frozenset[str]:
        """Boot services missing after some hop (even if they came back)."""
        return frozenset().union(*(h.drift_lost for h in self.hops))

    @property
    def broken(self) -> bool:
        """Was the guest ever without a service it booted with?"""
        return bool(self.ever_lost)


def create(kernel: Kernel, vmm: Vmm, config: Config | Setting = frozenset(),
           vcpus: int = 1) -> Guest:
    """Boot a guest on ``kernel``: create, configure through ``vmm``, run.

    A configuration the kernel rejects (a firmware value it does not
    accept) is bad input: :class:`~hcsim.errors.InputError`.
    """
    cpus = boot(kernel, vcpus)
    configure(vmm, cpus, config)
    for cpu in cpus:
        cpu.run()
    return Guest(cpus, cpus[0].vm.guest_view())


def hop(guest: Guest, vmm: Vmm, dst: Kernel) -> tuple[Hop, Guest]:
    """Migrate a running guest to a fresh VM on ``dst``; (the hop, the guest after it)."""
    src = guest.kernel
    before = guest.view
    stream_cost = 0

    def stay(outcome: str, cause: Cause) -> tuple[Hop, Guest]:
        return (Hop(src.name, dst.name, outcome, cause=cause,
                    drift_gained=before - guest.boot_view,
                    drift_lost=guest.boot_view - before,
                    bytes_per_vcpu=stream_cost), guest)

    dcpus = boot(dst, len(guest.vcpus))
    for side, cpu in (("source", guest.vcpus[0]), ("destination", dcpus[0])):
        rid = _unhandled(vmm, cpu)
        if rid is not None:
            return stay("unsupported", Cause("size", rid, cpu.vm.kernel.reg_name(rid),
                                             vmm=vmm.name, side=side))
    stream = vmm.save(guest.vcpus)
    stream_cost = sum(vmm.wire_bytes(rid) for rid, _ in stream[0])
    try:
        vmm.restore(dcpus, stream)
    except Refused as exc:
        return stay("refused", exc.cause)
    for cpu in dcpus:
        cpu.run()
    moved = Guest(dcpus, guest.boot_view)
    after = moved.view
    return (Hop(src.name, dst.name, classify(before, after), after - before, before - after,
                None, after - guest.boot_view, guest.boot_view - after, stream_cost), moved)


#: Per kernel and VMM: the first register the VMM cannot handle (the register
#: list of a kernel never changes, so a 2048-register list is scanned once).
_UNHANDLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unhandled(vmm: Vmm, cpu: VCPU) -> int | None:
    per_kernel = _UNHANDLED.setdefault(cpu.vm.kernel, {})
    key = (type(vmm), vmm.name)
    if key not in per_kernel:
        per_kernel[key] = unhandled(vmm, cpu)
    return per_kernel[key]


def migrate_chain(history: History, strategy: Strategy, vmm: Vmm,
                  kernels: Sequence[int | str], off: Config | Setting = frozenset(),
                  vcpus: int = 1, host: str | None = None) -> Chain:
    """Boot on ``kernels[0]``, then migrate to each following kernel in turn.

    ``kernels`` are release indices or names (mainline or ``[[stable]]``);
    ``host`` is the host CPU profile of every kernel (default: the
    history's).  A refused or unsupported hop leaves the guest where it is.

    Examples
    --------
    A v6.15 guest that opted in to ``DISCOVER_IMPL_VER`` (and pinned PSCI 1.1
    so that v6.12 takes it) goes down to v6.12 and back under ``raz-wi``:

    >>> import hcsim
    >>> from hcsim.model.config import Setting
    >>> from hcsim.analyses.chain import migrate_chain
    >>> h = hcsim.load("linux").with_registers("hypercall")   # the bitmaps alone
    >>> opt_in = Setting(on=frozenset({"DISCOVER_IMPL_VER"}),
    ...                  firmware=(("PSCI_VERSION", 0x10001),))
    >>> c = migrate_chain(h, hcsim.parse_strategy("raz-wi"), hcsim.parse_vmm("qemu"),
    ...                   ["v6.15", "v6.12", "v6.15"], off=opt_in)
    >>> [hop.outcome for hop in c.hops], sorted(c.drift_lost)
    (['lost', 'preserved'], ['DISCOVER_IMPL_VER'])
    """
    if not kernels:
        raise InputError("a chain needs at least the kernel the guest boots on")
    built = [Kernel(history, k, strategy, host) for k in kernels]
    guest = create(built[0], vmm, off, vcpus)
    hops = []
    for dst in built[1:]:
        step, guest = hop(guest, vmm, dst)
        hops.append(step)
    return Chain(built[0].name, guest.boot_view, tuple(hops), guest.kernel.name, guest.view)
