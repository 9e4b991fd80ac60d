"""The scalar spec's driver: one migration, ioctl by ioctl.

:func:`migrate` creates a VM on the source kernel (:mod:`hcsim.model.kvm`),
configures and saves it through a :mod:`hcsim.model.vmm` policy, restores it
on a fresh VM of the destination and classifies the guest view change.  It
is the definition of right: the engine (:mod:`hcsim.evaluation.engine`) must
agree with it on every pair.  :func:`evaluate` runs it over every pair into
an :class:`~hcsim.evaluation.outcomes.Outcomes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hcsim.errors import InputError
from hcsim.evaluation.outcomes import CODES, Migration, Outcomes, classify, pack, words_for
from hcsim.model.config import Config, Setting
from hcsim.model.history import History
from hcsim.model.kvm import VCPU, Kernel
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Cause, Refused, Vmm


def boot(kernel: Kernel, vcpus: int) -> list[VCPU]:
    """Create a VM with ``vcpus`` initialised vCPUs (PSCI 0.2)."""
    vm = kernel.create_vm()
    return [vm.create_vcpu().init() for _ in range(vcpus)]


def unhandled(vmm: Vmm, cpu: VCPU) -> int | None:
    """A register the VMM cannot live with, or None."""
    return next((rid for rid in cpu.get_reg_list() if not vmm.handles(rid)), None)


def unsupported(vmm: Vmm, source: VCPU, destination: VCPU) -> Cause | None:
    """Why the VMM cannot migrate between these vCPUs' kernels, or None."""
    for side, cpu in (("source", source), ("destination", destination)):
        rid = unhandled(vmm, cpu)
        if rid is not None:
            return Cause("size", rid, cpu.vm.kernel.reg_name(rid), vmm=vmm.name, side=side)
    return None


def configured_values(kernel: Kernel, off: Config | Setting) -> dict[int, int]:
    """Feature register values with the services in ``off`` cleared.

    With a :class:`~hcsim.model.config.Setting`, services in ``setting.on`` are
    also set, and the firmware values it names are added under their
    register ids (where the kernel lists them).
    """
    setting = off if isinstance(off, Setting) else Setting(off=frozenset(off))
    layout, rel = kernel.layout, kernel.release
    values = {layout.regs[p].id: layout.reset(p, rel)
              for p in kernel.feature_pos.values()}
    for svc, pairs in zip(layout.history.services, layout.bits):
        if svc.introduced > rel or svc.name not in setting.off | setting.on:
            continue
        for pos, bit in pairs:
            rid = layout.regs[pos].id
            if rid in values:
                values[rid] = (values[rid] | 1 << bit if svc.name in setting.on
                               else values[rid] & ~(1 << bit))
    wanted = dict(setting.firmware)
    for rid, fw in kernel.firmware.items():
        if fw.name in wanted:
            values[rid] = wanted[fw.name]
    return values


def configure(vmm: Vmm, cpus: list[VCPU], off: Config | Setting) -> None:
    """Configure a new VM through the VMM; a setting the kernel rejects is bad input."""
    if off:
        try:
            vmm.configure(cpus, configured_values(cpus[0].vm.kernel, off))
        except Refused as exc:
            raise InputError(f"cannot configure a VM on {cpus[0].vm.kernel.name}: "
                             f"{exc.detail}") from None


def migrate(history: History, strategy: Strategy, vmm: Vmm, src: int, dst: int,
            off: Config | Setting = frozenset(), vcpus: int = 1,
            host: str | None = None, kernels: dict | None = None) -> Migration:
    """Create, configure and save a VM on ``src``; restore it on ``dst``.

    Every migration boots new VMs.  ``kernels`` (a dict the caller keeps for
    one history and strategy) reuses the :class:`Kernel` of a release: a
    kernel is the release's configuration, which no VM changes.
    """
    cpus = boot(_kernel(history, src, strategy, host, kernels), vcpus)
    dcpus = boot(_kernel(history, dst, strategy, host, kernels), vcpus)
    cause = unsupported(vmm, cpus[0], dcpus[0])
    if cause is not None:
        return Migration(src, dst, "unsupported", cause=cause)
    configure(vmm, cpus, off)
    before = cpus[0].vm.guest_view()
    stream = vmm.save(cpus)
    try:
        vmm.restore(dcpus, stream)
    except Refused as exc:
        return Migration(src, dst, "refused", cause=exc.cause)
    after = dcpus[0].vm.guest_view()
    return Migration(src, dst, classify(before, after),
                     after - before, before - after)


def _kernel(history: History, release: int, strategy: Strategy, host: str | None,
            kernels: dict | None) -> Kernel:
    if kernels is None:
        return Kernel(history, release, strategy, host)
    hit = kernels.get((release, host))
    if hit is None:
        hit = kernels[(release, host)] = Kernel(history, release, strategy, host)
    return hit


def evaluate(history: History, strategy: Strategy, vmm: Vmm,
             configs: Sequence[Config | Setting], vcpus: int = 1,
             reason: str = "") -> Outcomes:
    """Every (configuration, source, destination) by :func:`migrate`, with causes."""
    n, nw = len(history.releases), words_for(len(history.services))
    index = {s.name: k for k, s in enumerate(history.services)}
    shape = (len(configs), n, n)
    codes = np.empty(shape, np.int8)
    bits = np.zeros((2, *shape, len(history.services)), bool)
    causes = {}
    kernels: dict = {}
    for c, off in enumerate(configs):
        for s in range(n):
            for d in range(n):
                m = migrate(history, strategy, vmm, s, d, off, vcpus, kernels=kernels)
                codes[c, s, d] = CODES[m.outcome]
                if m.cause is not None:
                    causes[(c, s, d)] = m.cause
                for side, names in enumerate((m.gained, m.lost)):
                    for name in names:
                        bits[side, c, s, d, index[name]] = True
    return Outcomes(history, strategy, vmm, tuple(configs), codes, pack(bits[0], nw),
                    pack(bits[1], nw), "spec", reason, vcpus, causes)
