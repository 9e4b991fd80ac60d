"""The context a kvmarm maintainer asks for (notebook 09): evidence, as tables.

Five questions that sit next to the thread's, each answered from the probe
records (``data/kernel-probe/``) or the model, with the sources the numbers
rest on.  Every function returns plain data (a pandas DataFrame or a dict)
so that a report can set its verdict against the numbers.

* **Protected mode** (:func:`protected_probes`, :func:`vendor_calls`): what a
  host booted with ``kvm-arm.mode=protected`` answered, against the same
  kernel in nVHE mode; which KVM vendor hypercalls have a bitmap bit.
* **The SMCCC filter** (:func:`filter_reach`, :func:`filter_discovery`):
  what a destination-side ``KVM_ARM_VM_SMCCC_FILTER`` could change in the
  outcomes, computed from the unfiltered outcome sets.
* **Several vCPUs and resets** (:func:`per_vm_cost`, :func:`vcpu_invariance`,
  :func:`reset_writeback`, :func:`reset_before_restore`).
* **The QEMU series** (:func:`series_effect`, :data:`QEMU_TOLERANCES`).
* **ID registers** (:func:`is_feature_id`, :func:`list_drift`,
  :func:`bitmap_masks`).

Kernel facts used here (checked in ``arch/arm64/kvm/hypercalls.c`` of a
tree with the SMCCC filter, commit 821d935c87bc, v6.4):

* ``kvm_arm_set_fw_reg_bmap``: a bit outside the kernel's mask is
  ``-EINVAL``; then, under ``kvm->arch.config_lock``, ``kvm_vm_has_ran_once``
  and a different value is ``-EBUSY``.  The bitmaps live in
  ``kvm->arch.smccc_feat``: per VM.  ``PSCI_VERSION`` is stored in
  ``kvm->arch.psci_version``: per VM too.
* ``kvm_smccc_set_filter``: ``-EBUSY`` once the VM has run; the first filter
  inserts the SMCCC architecture ranges (OEN 0, SMC32 and SMC64) as
  ``KVM_SMCCC_FILTER_HANDLE``, so userspace cannot filter them.
  ``kvm_smccc_get_action``: "Intervening actions in the SMCCC filter take
  precedence over the pseudo-firmware register bitmaps".
* ``kvm_smccc_call_handler``: ``SMCCC_ARCH_FEATURES(PV_TIME_FEATURES)``
  answers from ``std_hyp_bmap``; ``ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID``
  returns ``vendor_hyp_bmap``.  Neither looks at the filter.

QEMU facts (``target/arm/kvm.c``): ``kvm_arm_reset_vcpu`` re-runs
``KVM_ARM_VCPU_INIT``, then ``write_kvmstate_to_list`` (a GET of every
listed register) and ``write_list_to_cpustate``; the following
``kvm_arch_put_registers`` writes the list back.  So a vCPU reset writes
back the values KVM holds at that moment.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hcsim.evaluation import backends
from hcsim.evaluation.measures import pair_mask
from hcsim.evaluation.outcomes import BLAMES, OUTCOMES, classify
from hcsim.evaluation.spec import boot, configure, unsupported
from hcsim.model.history import History, data_path
from hcsim.model.kvm import Kernel, KvmError
from hcsim.model.regs import (
    KVM_REG_ARM64_SYSREG,
    KVM_REG_ARM_FW,
    coproc_of,
    is_feature,
    short_name,
)
from hcsim.model.smccc import SPACES, function_id
from hcsim.model.strategies import Strategy
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import (
    COMPAT_SAFE_MISSING,
    Refused,
    RestoreRule,
    Vmm,
)
from hcsim.model.vmm import parse as parse_vmm

__all__ = ["KVM_VENDOR_CALLS", "QEMU_TOLERANCES", "bitmap_masks", "cross_vcpu_probes",
           "filter_discovery", "filter_reach", "is_feature_id", "list_drift", "per_vm_cost",
           "protected_probes", "reset_before_restore", "reset_writeback", "series_effect",
           "vcpu_invariance", "vendor_calls"]


def _strategy(s: str | Strategy) -> Strategy:
    return parse_strategy(s) if isinstance(s, str) else s


def _vmm(v: str | Vmm) -> Vmm:
    return parse_vmm(v) if isinstance(v, str) else v


def _probe_dir(directory: str | Path | None) -> Path:
    return Path(directory) if directory is not None else data_path("kernel-probe")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- 1. protected mode ---------------------------------------------------------

#: Record types that carry an answer of the kernel (compared between modes).
ANSWERS = ("create_vm", "create_vcpu", "vcpu_init", "vcpu_reinit", "reg_list",
           "reg_list_chunk", "fw_reg_ids", "get", "set", "bitmap_bitscan", "badaddr", "run")


def protected_probes(directory: str | Path | None = None) -> pd.DataFrame:
    """Each ``<kernel>.protected.jsonl`` probe against the same kernel's nVHE probe.

    Parameters
    ----------
    directory : path, optional
        Probe directory; default the bundled ``data/kernel-probe``.

    Returns
    -------
    pandas.DataFrame
        One row per kernel with a protected-mode probe, sorted by kernel:
        ``kernel``, ``answers`` (records carrying a kernel answer in the
        protected file), ``differing`` (of those, how many differ from the
        nVHE file's record at the same position, plus any length
        difference), ``fw_ids`` (class 0x14/0x16 ids the protected run
        lists), ``same_list`` (its whole ``KVM_GET_REG_LIST`` equals nVHE's),
        ``vm_types`` (the VM types the probe created: ``default`` when no
        ``create_vm`` record names one, i.e. ``KVM_CREATE_VM(0)``, never a
        protected VM).

    Examples
    --------
    >>> t = protected_probes()
    >>> bool((t["differing"] == 0).all())
    True
    """
    d = _probe_dir(directory)
    rows = []
    for prot in sorted(d.glob("*.protected.jsonl")):
        kernel = prot.name.removesuffix(".protected.jsonl")
        base = d / f"{kernel}.jsonl"
        if not base.exists():
            continue
        a = [r for r in _records(prot) if r["t"] in ANSWERS]
        b = [r for r in _records(base) if r["t"] in ANSWERS]
        differing = sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
        ids = [int(i, 16) for r in a if r["t"] == "reg_list_chunk" and r["vm"] == "A"
               for i in r["ids"]]
        base_ids = [int(i, 16) for r in b if r["t"] == "reg_list_chunk" and r["vm"] == "A"
                    for i in r["ids"]]
        types = sorted({str(r.get("type", "default")) for r in a if r["t"] == "create_vm"})
        rows.append({"kernel": kernel, "answers": len(a), "differing": differing,
                     "fw_ids": sum(coproc_of(i) in (0x14, 0x16) for i in ids),
                     "same_list": ids == base_ids, "vm_types": ",".join(types)})
    return pd.DataFrame(rows, columns=["kernel", "answers", "differing", "fw_ids",
                                       "same_list", "vm_types"])


#: KVM's vendor-hypervisor (OEN 6) function numbers, ``include/linux/arm-smccc.h``
#: (``ARM_SMCCC_KVM_FUNC_*``), with who answers them.  FEATURES and PTP:
#: v5.13 (923961a7ff2e, 3bf725699bf6); 2..9: the pKVM guest calls
#: (HYP_MEMINFO, MEM_SHARE, MEM_UNSHARE, MMIO_GUARD_*, MEM_RELINQUISH),
#: answered by the pKVM hypervisor at EL2 for protected VMs
#: (``arch/arm64/kvm/hyp/nvhe/pkvm.c``, ``kvm_handle_pvm_hvc64``); 64, 65:
#: DISCOVER_IMPL_VER/CPUS (c0000e58c74e, v6.15), forwarded to the VMM.
KVM_VENDOR_CALLS: tuple[tuple[int, str, str], ...] = (
    (0, "FEATURES", "KVM"), (1, "PTP", "KVM"),
    (2, "HYP_MEMINFO", "pKVM (EL2)"), (3, "MEM_SHARE", "pKVM (EL2)"),
    (4, "MEM_UNSHARE", "pKVM (EL2)"), (5, "MMIO_GUARD_INFO", "pKVM (EL2)"),
    (6, "MMIO_GUARD_ENROLL", "pKVM (EL2)"), (7, "MMIO_GUARD_MAP", "pKVM (EL2)"),
    (8, "MMIO_GUARD_UNMAP", "pKVM (EL2)"), (9, "MEM_RELINQUISH", "pKVM (EL2)"),
    (64, "DISCOVER_IMPL_VER", "VMM (filter)"), (65, "DISCOVER_IMPL_CPUS", "VMM (filter)"),
)


def vendor_calls(history: History, strategy: str | Strategy = "upstream") -> pd.DataFrame:
    """Every KVM vendor function number and the bitmap bit (if any) that gates it.

    The bit comes from the model: the strategy's layout of the history's
    ``vendor-hyp`` services, matched to :data:`KVM_VENDOR_CALLS` by function
    number (the history's services are numbered from 0 in order of
    introduction unless they pin a register and bit; upstream's vendor
    bitmaps give bit *n* of ``VENDOR_HYP_BMAP`` to function *n* and bit *n*
    of ``VENDOR_HYP_BMAP_2`` to function 64+*n*).

    Parameters
    ----------
    history : History
        From :func:`hcsim.load`.
    strategy : str or Strategy
        Whose layout places the services (default ``upstream``).

    Returns
    -------
    pandas.DataFrame
        ``function``, ``name``, ``answered_by``, ``service`` (the history's
        service, or ""), ``register`` and ``bit`` (its upstream placement,
        or "" and -1: no bit gates the call).
    """
    layout = _strategy(strategy).layout(history)
    placed = {}
    for svc, pairs in zip(history.services, layout.bits):
        if svc.space != "vendor-hyp" or not pairs:
            continue
        pos, bit = pairs[0]
        reg = layout.regs[pos].id
        base = 64 if short_name(reg).endswith("_2") else 0
        placed[base + bit] = (svc.name, short_name(reg), bit)
    rows = []
    for fn, name, who in KVM_VENDOR_CALLS:
        svc, reg, bit = placed.get(fn, ("", "", -1))
        rows.append({"function": fn, "name": name, "answered_by": who, "service": svc,
                     "register": reg, "bit": bit})
    return pd.DataFrame(rows)


# -- 2. the SMCCC filter -------------------------------------------------------

#: The release that added ``KVM_ARM_VM_SMCCC_FILTER`` (821d935c87bc).
FILTER_FROM = "v6.4"


def filter_reach(history: History, strategy: str | Strategy = "upstream",
                 vmm: str | Vmm = "qemu", since: str = "v5.19",
                 filter_from: str = FILTER_FROM) -> pd.DataFrame:
    """What a destination-side SMCCC filter could change, pair by pair.

    The filter denies function ids of a VM before the bitmaps are consulted
    and is not a register: it changes no register list, count check or
    ``SET_ONE_REG``.  So its effect is exact from the unfiltered outcome:
    with a filter on the destination denying every service the destination
    gained, a ``gained`` pair becomes ``preserved`` and a ``mixed`` pair
    ``lost``; nothing else changes (it cannot give back a service the
    destination lacks, nor pass a refused restore).  The filter exists only
    on destinations from ``filter_from``; a bitmap configuration (clearing
    the same bits before the restore, ``hcsim baseline``) reaches the same
    pairs from ``registers_from`` where every gained service has a bit.

    Parameters
    ----------
    history, strategy, vmm
        As :func:`hcsim.evaluate`; ``since`` restricts to releases from
        there on (default the register era).

    Returns
    -------
    pandas.DataFrame
        One row per (direction, outcome before): ``direction``, ``before``,
        ``pairs``, ``after_filter`` (the outcome with the filter),
        ``filter_fixes`` (pairs the filter turns into ``preserved``),
        ``bitmap_fixes`` (pairs a destination bitmap setting turns into
        ``preserved``).  ``attrs["gained"]``: for each service, the
        ``gained`` pairs (either direction) in which the destination gains it.
    """
    h = history.since(since) if since else history
    o = backends.evaluate(h, _strategy(strategy), _vmm(vmm))
    f0 = h.index(filter_from)
    rows = []
    for m in o.migrations():
        if m.src == m.dst:
            continue
        fixed = m.outcome == "gained"
        rows.append({"direction": "forward" if m.src < m.dst else "backward",
                     "before": m.outcome, "after_filter": FILTERED.get(m.outcome, m.outcome),
                     "filter_fixes": fixed and m.dst >= f0,
                     "bitmap_fixes": fixed and m.dst >= h.registers_from})
    df = pd.DataFrame(rows)
    gains = Counter(name for m in o.migrations() if m.outcome == "gained" for name in m.gained)
    out = (df.groupby(["direction", "before", "after_filter"], sort=False)
           .agg(pairs=("before", "size"), filter_fixes=("filter_fixes", "sum"),
                bitmap_fixes=("bitmap_fixes", "sum")).reset_index())
    order = {o: k for k, o in enumerate(OUTCOMES)}
    out = out.sort_values(["direction", "before"], key=lambda c: c.map(
        order) if c.name == "before" else c.map({"forward": 0, "backward": 1}))
    out = out[["direction", "before", "pairs", "after_filter", "filter_fixes", "bitmap_fixes"]]
    out = out.astype({"filter_fixes": int, "bitmap_fixes": int}).reset_index(drop=True)
    out.attrs["gained"] = dict(sorted(gains.items()))
    return out


#: Outcome with a destination filter denying the gained services.
FILTERED = {"gained": "preserved", "mixed": "lost"}


#: How a guest discovers each service of the Linux history: the discovery
#: call and its function id (``include/linux/arm-smccc.h``).  TRNG:
#: ``TRNG_VERSION`` (OEN 4, function 0x50), gated by the service's own bit;
#: PV time: ``SMCCC_ARCH_FEATURES(PV_TIME_FEATURES)`` (OEN 0, function 1),
#: answered by KVM from ``std_hyp_bmap``; FUNC_FEAT and PTP: the vendor
#: UID call (0xFF01) then ``KVM_FEATURES`` (function 0), both gated by the
#: FUNC_FEAT bit, ``KVM_FEATURES`` answering ``vendor_hyp_bmap``
#: (``hypercalls.c`` ``kvm_smccc_test_fw_bmap``); a Linux guest asks the UID
#: first and takes every vendor service from the ``KVM_FEATURES`` answer
#: (``drivers/firmware/smccc/kvm_guest.c`` ``kvm_init_hyp_services``).
#: DISCOVER_IMPL_*: not checked here (unverified), left out.
DISCOVERY = {
    "TRNG_V1_0": ("TRNG_VERSION", function_id("std", 0x50)),
    "PV_TIME": ("SMCCC_ARCH_FEATURES", 0x80000001),
    "FUNC_FEAT": ("VENDOR_HYP_CALL_UID", function_id("vendor-hyp", 0xFF01)),
    "PTP": ("KVM_FEATURES", function_id("vendor-hyp", 0)),
}


def filter_discovery(history: History) -> pd.DataFrame:
    """Can a filter hide each service the way a cleared bitmap bit does?

    A cleared bit makes a service's calls and its discovery answer "not
    supported" together, and nothing else.  A filter denies function ids.
    It hides one service the same way only if the guest's discovery call for
    it can be denied (it is outside the SMCCC architecture range, OEN 0,
    which ``kvm_smccc_filter_insert_reserved`` keeps for KVM) and denying it
    hides no other service: a denied vendor-hypervisor discovery call (UID
    or ``KVM_FEATURES``) hides every vendor-hypervisor service of the guest.

    Parameters
    ----------
    history : History
        Its services are looked up in :data:`DISCOVERY`.

    Returns
    -------
    pandas.DataFrame
        One row per service of the history with a known discovery call:
        ``service``, ``discovery``, ``discovery_id``, ``filterable``,
        ``also_hides`` (other services of :data:`DISCOVERY` the denied call
        hides, ``,``-joined),
        ``like_a_bit`` (filterable and hides nothing else).
    """
    vendor = [s.name for s in history.services if s.space == "vendor-hyp"]
    rows = []
    for svc in history.services:
        if svc.name not in DISCOVERY:
            continue
        call, fid = DISCOVERY[svc.name]
        filterable = (fid >> 24) & 0x3F != 0
        also = [n for n in vendor if n != svc.name and n in DISCOVERY] \
            if (fid >> 24) & 0x3F == SPACES["vendor-hyp"] else []
        rows.append({"service": svc.name, "discovery": call, "discovery_id": f"0x{fid:08x}",
                     "filterable": filterable, "also_hides": ",".join(also),
                     "like_a_bit": filterable and not also})
    return pd.DataFrame(rows)


# -- 3. several vCPUs and resets -----------------------------------------------

def _per_vm(kernel: Kernel, rid: int) -> bool:
    """A register whose state is per VM: a feature register, or a stored firmware value."""
    if is_feature(rid):
        return True
    fw = kernel.firmware.get(rid)
    return fw is not None and fw.on_write == "store"


def per_vm_cost(history: History, strategy: str | Strategy = "upstream",
                vmm: str | Vmm = "qemu", release: str | None = None,
                vcpus: Sequence[int] = (1, 8, 64, 512)) -> pd.DataFrame:
    """Wire bytes and ioctls of per-VM state saved once per vCPU.

    VMMs save every listed register of every vCPU; the feature bitmaps and
    ``PSCI_VERSION`` are per VM, so all but one copy are redundant.

    Parameters
    ----------
    history, strategy, vmm
        As :func:`hcsim.cost`.
    release : str, optional
        Default the last release.
    vcpus : sequence of int
        vCPU counts, one row each.

    Returns
    -------
    pandas.DataFrame
        One row per vCPU count: ``vcpus``, ``per_vm_registers``,
        ``hypercall_bytes`` (hypercall registers, all vCPUs),
        ``redundant_bytes`` (the per-VM registers' copies beyond the first),
        ``list_bytes`` (the whole list, all vCPUs), ``redundant_share``
        (redundant over whole-list bytes), ``redundant_ioctls`` (one GET
        and one SET per redundant copy).
    """
    st, policy = _strategy(strategy), _vmm(vmm)
    rel = release or history.releases[-1]
    kernel = Kernel(history, rel, st)
    cpu = boot(kernel, 1)[0]
    saved = [rid for rid in cpu.get_reg_list() if policy.saves(rid)]
    hyp = [r for r in saved if coproc_of(r) in (0x14, 0x16)]
    per_vm = [r for r in hyp if _per_vm(kernel, r)]
    b_hyp = sum(policy.wire_bytes(r) for r in hyp)
    b_vm = sum(policy.wire_bytes(r) for r in per_vm)
    b_list = sum(policy.wire_bytes(r) for r in saved)
    rows = []
    for n in vcpus:
        red = b_vm * (n - 1)
        rows.append({"vcpus": n, "per_vm_registers": len(per_vm),
                     "hypercall_bytes": b_hyp * n, "redundant_bytes": red,
                     "list_bytes": b_list * n, "redundant_share": red / (b_list * n),
                     "redundant_ioctls": 2 * len(per_vm) * (n - 1)})
    return pd.DataFrame(rows)


def vcpu_invariance(history: History, strategy: str | Strategy, vmm: str | Vmm,
                    vcpus: int = 4, since: str = "v5.19") -> dict[str, int]:
    """Pairs whose outcome changes between a 1-vCPU and an ``vcpus``-vCPU guest.

    The ``vcpus`` guest is evaluated by the scalar spec (the engine models
    one vCPU), every vCPU saving and restoring the whole list, as VMMs do;
    the 1-vCPU guest by :func:`hcsim.evaluate` (the engine where it models
    the pair, which agrees with the spec: ``tests/test_engine_differential.py``).

    Parameters
    ----------
    history, strategy, vmm
        As :func:`hcsim.evaluate`.
    vcpus : int
        vCPUs of the guest set against one vCPU.
    since : str
        First release (default the register era); ``None``: all.

    Returns
    -------
    dict
        ``pairs`` compared and ``changed``.
    """
    h = history.since(since) if since else history
    st, policy = _strategy(strategy), _vmm(vmm)
    one = backends.evaluate(h, st, policy, sets=False)
    many = backends.evaluate(h, st, policy, backend="spec", vcpus=vcpus)
    return {"pairs": int(one.codes.size), "changed": int((one.codes != many.codes).sum())}


def reset_writeback(history: History, strategy: str | Strategy, release: str,
                    vmm: str | Vmm = "qemu", off: Sequence[str] = ("PTP",),
                    stale: bool = False, after_run: bool = True) -> dict:
    """A VMM resets vCPU 1 of a configured 2-vCPU VM and writes its list back.

    The VM is created on ``release``, configured through vCPU 0 (the
    services ``off`` turned off, :meth:`Vmm.configure`), vCPU 0 runs (if
    ``after_run``), then vCPU 1 is re-initialised (``KVM_ARM_VCPU_INIT``)
    and every register the VMM saves is written back in ascending id order:
    with the values read at that moment (QEMU's ``kvm_arm_reset_vcpu``), or
    with ``stale`` values the VMM cached for vCPU 1 when it created it,
    before the configuration (what a VMM that does not re-read would write).

    Parameters
    ----------
    history, strategy
        As :func:`hcsim.evaluate`.
    release : str
        The kernel the VM runs on.
    vmm : str or Vmm
        Which registers it writes back (those it saves).
    off : sequence of str
        Services the configuration turns off.
    stale, after_run : bool
        Write cached values; run vCPU 0 first.

    Returns
    -------
    dict
        ``error`` (errno name of the first failing ``SET_ONE_REG`` and the
        register, or ""), ``view_before`` and ``view_after`` (the guest
        view), ``undone`` (services the write-back turned back on).
    """
    st, policy = _strategy(strategy), _vmm(vmm)
    cpus = boot(Kernel(history, release, st), 2)
    cache = {rid: cpus[1].get_one_reg(rid) for rid in cpus[1].get_reg_list()
             if policy.saves(rid)}
    configure(policy, cpus, frozenset(off))
    before = cpus[0].vm.guest_view()
    if after_run:
        cpus[0].run()
    cpu = cpus[1].init()
    values = cache if stale else {rid: cpu.get_one_reg(rid) for rid in cache}
    error = ""
    for rid in sorted(values):
        try:
            cpu.set_one_reg(rid, values[rid])
        except KvmError as exc:
            error = f"{exc.name} on {short_name(rid)}"
            break
    after = cpus[0].vm.guest_view()
    return {"error": error, "view_before": before, "view_after": after,
            "undone": after - before}


def cross_vcpu_probes(directory: str | Path | None = None,
                      phase: str = "post_run_vcpu0") -> pd.DataFrame:
    """What real kernels answered to a vCPU writing the bitmaps after another vCPU ran.

    The probe's VM ``C`` runs vCPU 0, then writes every bitmap through
    vCPU 1, which never ran (``phase`` ``post_run_vcpu0``): once with the
    value it holds, once with another valid value.

    Parameters
    ----------
    directory : path, optional
        Probe directory; default the bundled ``data/kernel-probe``.
    phase : str
        The probe phase to read.

    Returns
    -------
    pandas.DataFrame
        One row per (kernel, test, answer) of the default-mode probes:
        ``kernel``, ``test``, ``answer`` (``ok`` or the errno), ``writes``.
    """
    d = _probe_dir(directory)
    counts: Counter = Counter()
    for path in sorted(d.glob("*-arm64.jsonl")):
        for r in _records(path):
            if r["t"] == "set" and r.get("phase") == phase:
                counts[(path.name.removesuffix(".jsonl"), r["test"],
                        r["errno"] or "ok")] += 1
    return pd.DataFrame([{"kernel": k, "test": t, "answer": a, "writes": n}
                         for (k, t, a), n in sorted(counts.items())],
                        columns=["kernel", "test", "answer", "writes"])


def _reset_then_restore(history: History, st: Strategy, policy: Vmm, src: int,
                        dst: int) -> str:
    """Outcome of a migration whose destination first writes back its whole list."""
    cpus, dcpus = boot(Kernel(history, src, st), 1), boot(Kernel(history, dst, st), 1)
    if unsupported(policy, cpus[0], dcpus[0]) is not None:
        return "unsupported"
    before = cpus[0].vm.guest_view()
    stream = policy.save(cpus)
    try:
        for cpu in dcpus:          # machine reset: GET every register, then SET them back
            values = {rid: cpu.get_one_reg(rid) for rid in cpu.get_reg_list()
                      if policy.saves(rid)}
            for rid in sorted(values):
                cpu.set_one_reg(rid, values[rid])
        policy.restore(dcpus, stream)
    except (Refused, KvmError):
        return "refused"
    return classify(before, dcpus[0].vm.guest_view())


def reset_before_restore(history: History, strategy: str | Strategy, vmm: str | Vmm,
                         since: str = "v5.19") -> pd.DataFrame:
    """Pairs whose outcome changes when the destination resets before the restore.

    QEMU resets every vCPU when it creates the machine, before an incoming
    migration loads, and the reset writes the list back
    (``kvm_arm_reset_vcpu``).  A strategy whose semantics depend on the
    *first* write after VM creation (invalidate-on-write) sees that
    write-back, not the restore, as the first write.  This replays every
    pair with such a write-back (of every register ``vmm`` saves) before the
    restore and counts the changes against :func:`hcsim.evaluate`.

    Parameters
    ----------
    history, strategy, vmm
        As :func:`hcsim.evaluate`.
    since : str
        First release (default the register era); ``None``: all.

    Returns
    -------
    pandas.DataFrame
        One row per (outcome without, outcome with) that differ, with
        ``pairs``; empty when nothing changes.  ``attrs["pairs"]``: pairs
        compared.
    """
    h = history.since(since) if since else history
    st, policy = _strategy(strategy), _vmm(vmm)
    o = backends.evaluate(h, st, policy)
    counts: Counter = Counter()
    for s in range(o.n):
        for d in range(o.n):
            was = OUTCOMES[int(o.codes[0, s, d])]
            now = _reset_then_restore(h, st, policy, s, d)
            if now != was:
                counts[(was, now)] += 1
    out = pd.DataFrame([{"without": a, "with_reset": b, "pairs": n}
                        for (a, b), n in sorted(counts.items())],
                       columns=["without", "with_reset", "pairs"])
    out.attrs["pairs"] = o.n * o.n
    return out


# -- 4. the QEMU series --------------------------------------------------------

class QemuTolerances(Vmm):
    """QEMU with the cpreg migration tolerances as found later (see :data:`QEMU_TOLERANCES`)."""

    name = "qemu-tolerances"
    summary = ("qemu + cpreg migration tolerances: TCR2/PIRE0/PIR_EL1 may be absent, "
               "BMAP_2 dropped only when 0")
    rule = RestoreRule(write_back="whole-list", count_check=True, tail_drop=True,
                       drop_zero_unknown_features=True,
                       tolerated=frozenset(COMPAT_SAFE_MISSING))


#: The later form of Eric Auger's series, as a QEMU commit list of April 2026
#: shows it ("target/arm/cpu: Introduce the infrastructure for cpreg
#: migration tolerances", "target/arm/machine: Handle
#: ToleranceOnlySrcTestValue migration tolerance", "target/arm/cpu64: Define
#: cpreg migration tolerance for KVM_REG_ARM_VENDOR_HYP_BMAP_2", next to
#: "Merge tag 'pull-target-arm-20260427'"; backported as RHEL-174858): on
#: ``-cpu host``, TCR2_EL1, PIRE0_EL1 and PIR_EL1 are ``ToleranceNotOnBothEnds``
#: and BMAP_2 is ``ToleranceOnlySrcTestValue`` (mask ``UINT64_MAX``, value 0:
#: dropped only while 0).  Modelled with the existing rule fields: the
#: zero-drop applies to every feature register the destination lacks, which
#: on the Linux history under default settings is BMAP_2 alone (the v5.19
#: bitmaps are non-zero at reset).  Whether this is in qemu.git master:
#: unverified.
QEMU_TOLERANCES = QemuTolerances()


def series_effect(history: History, strategy: str | Strategy = "upstream",
                  before: str | Vmm = "qemu", after: str | Vmm = "qemu-compat",
                  configs: Sequence | None = None) -> pd.DataFrame:
    """Pairs whose outcome differs between two VMM policies, by direction and change.

    Parameters
    ----------
    history, strategy
        As :func:`hcsim.evaluate`.
    before, after : str or Vmm
        The two policies (default ``qemu`` and ``qemu-compat``).
    configs : list, optional
        As :func:`hcsim.evaluate` (e.g. a :class:`~hcsim.model.config.Setting`
        turning opt-in services on); default the reset values.

    Returns
    -------
    pandas.DataFrame
        ``direction``, ``before``, ``after`` (outcomes), ``blame`` (of the
        refusal before, "" otherwise), ``pairs``; only changed pairs.
    """
    st = _strategy(strategy)
    a = backends.evaluate(history, st, _vmm(before), configs)
    b = backends.evaluate(history, st, _vmm(after), configs)
    blames = a.blame_codes()
    rows: Counter = Counter()
    for direction in ("forward", "backward"):
        mask = pair_mask(a.n, direction)
        for c in range(a.codes.shape[0]):
            for s, d in zip(*mask.nonzero()):
                x, y = int(a.codes[c, s, d]), int(b.codes[c, s, d])
                if x != y:
                    blame = BLAMES[int(blames[c, s, d])]
                    rows[(direction, OUTCOMES[x], OUTCOMES[y], blame)] += 1
    return pd.DataFrame([{"direction": k[0], "before": k[1], "after": k[2], "blame": k[3],
                          "pairs": n} for k, n in sorted(rows.items())],
                        columns=["direction", "before", "after", "blame", "pairs"])


# -- 5. ID registers -------------------------------------------------------------

def is_feature_id(rid: int) -> bool:
    """Is ``rid`` in ``KVM_ARM_FEATURE_ID_RANGE``, the range of ``KVM_ARM_GET_REG_WRITABLE_MASKS``?

    op0 = 3, op1 in {0, 1, 3}, CRn = 0, CRm 0..7, op2 0..7 of class 0x13
    (3f9cd0ca8484, v6.7; ``Documentation/virt/kvm/api.rst``
    ``KVM_ARM_GET_REG_WRITABLE_MASKS``, ``KVM_ARM_FEATURE_ID_RANGE_SIZE`` =
    3 * 8 * 8).

    Parameters
    ----------
    rid : int
        A ``KVM_{GET,SET}_ONE_REG`` id.

    Returns
    -------
    bool
        Inside the range (a U64 class 0x13 id with those fields).
    """
    if coproc_of(rid) != KVM_REG_ARM64_SYSREG or rid >> 52 & 0xF != 3:
        return False
    op0, op1, crn, crm = rid >> 14 & 3, rid >> 11 & 7, rid >> 7 & 0xF, rid >> 3 & 0xF
    return op0 == 3 and op1 in (0, 1, 3) and crn == 0 and crm < 8


def _kind(rid: int) -> str:
    if is_feature(rid):
        return "bitmap"
    if coproc_of(rid) == KVM_REG_ARM_FW:
        return "firmware"
    return "feature-id" if is_feature_id(rid) else "other"


#: Kinds of :func:`list_drift`.
KINDS = ("feature-id", "bitmap", "firmware", "other")


def list_drift(history: History, strategy: str | Strategy = "upstream",
               releases: Sequence[str] | None = None) -> pd.DataFrame:
    """Ids each release adds to or drops from the previous one's list, by kind.

    Kinds: ``feature-id`` (the range writable masks describe), ``bitmap``
    (class 0x16), ``firmware`` (class 0x14), ``other``.  The lists are a
    fresh vCPU's (:func:`hcsim.registers`: the history's host and vCPU
    features).

    Parameters
    ----------
    history, strategy
        As :func:`hcsim.registers`.
    releases : sequence of str, optional
        Releases to compare in order; default all.

    Returns
    -------
    pandas.DataFrame
        One row per consecutive pair of ``releases`` (default all) with a
        change: ``release``, ``change`` (``added`` or ``dropped``), one
        count column per kind, ``listed_feature_id`` (feature-ID ids the
        release lists).
    """
    st = _strategy(strategy)
    names = list(releases or history.releases)
    lists = {r: set(boot(Kernel(history, r, st), 1)[0].get_reg_list()) for r in names}
    rows = []
    for prev, rel in zip(names, names[1:]):
        for change, ids in (("added", lists[rel] - lists[prev]),
                            ("dropped", lists[prev] - lists[rel])):
            if ids:
                kinds = Counter(_kind(r) for r in ids)
                rows.append({"release": rel, "change": change,
                             **{k: kinds[k] for k in KINDS},
                             "listed_feature_id": sum(map(is_feature_id, lists[rel]))})
    return pd.DataFrame(rows, columns=["release", "change", *KINDS, "listed_feature_id"])


def bitmap_masks(directory: str | Path | None = None) -> pd.DataFrame:
    """Reset value and writable mask of every bitmap, from the probes' bit scans.

    The writable mask is the reset value plus every bit the bit scan
    (``bitmap_bitscan``: each non-default bit set alone) saw accepted: what
    userspace learns only by trying, one ``SET_ONE_REG`` per bit, since
    ``KVM_ARM_GET_REG_WRITABLE_MASKS`` covers the feature-ID range only.

    Parameters
    ----------
    directory : path, optional
        Probe directory; default the bundled ``data/kernel-probe``.

    Returns
    -------
    pandas.DataFrame
        One row per (kernel, register) of the default-mode probes of VM
        ``A``: ``kernel``, ``register``, ``reset``, ``writable``,
        ``reset_is_mask``, ``scan_sets`` (SETs the scan needed).
    """
    d = _probe_dir(directory)
    rows = []
    for path in sorted(d.glob("*.jsonl")):
        if not path.name.removesuffix(".jsonl").endswith("-arm64"):
            continue                        # variants (.pmu, .cpu-*, .vhe, ...)
        for r in _records(path):
            if r["t"] == "bitmap_bitscan" and r["vm"] == "A":
                reset = int(r["default"], 16)
                mask = reset | int(r["extra_bits_accepted"], 16)
                rows.append({"kernel": path.name.removesuffix(".jsonl"),
                             "register": short_name(int(r["id"], 16)),
                             "reset": f"0x{reset:x}", "writable": f"0x{mask:x}",
                             "reset_is_mask": reset == mask,
                             "scan_sets": 64 - bin(reset).count("1")})
    return pd.DataFrame(rows, columns=["kernel", "register", "reset", "writable",
                                       "reset_is_mask", "scan_sets"])

