"""The scalar executable spec: a kernel's ``KVM_*_ONE_REG`` ioctls.

This is the definition of right that the vectorised engine is checked
against.  It models one arm64 KVM kernel of a history release: the firmware
registers (class 0x14, ``[[firmware]]``) and the strategy's feature registers
(class 0x16), with the errno of every failing call as the kernel returns it
(``arch/arm64/kvm/hypercalls.c``, ``guest.c``, ``arm.c``) and as real
kernels answered in ``data/kernel-probe/``.

Choices where DESIGN.md is silent, taken from the kernel:

* Check order of ``KVM_SET_ONE_REG``: uninitialised vCPU ``-ENOEXEC``; a
  size the class does not use ``-ENOENT``; a bad user address ``-EFAULT``
  (SET copies the value in before looking the id up, so a nonexistent U64
  id gives ``-EFAULT``); unknown id ``-ENOENT``; invalid value ``-EINVAL``;
  after a run, a different bitmap value ``-EBUSY``.  GET looks the id up
  before copying out, so a nonexistent id gives ``-ENOENT``.  The copy
  comes first only in the kernel's firmware-register code
  (``kvm_arm_set_fw_reg``): for class 0x14 once the kernel has a firmware
  register, for class 0x16 from ``registers_from``.  Before that a class
  0x16 id goes to the system-register code, which looks it up first:
  Debian 5.10 answers ``-ENOENT`` to a NULL-address SET of
  ``KVM_REG_ARM_STD_BMAP`` (``data/kernel-probe/5.10.0-32-arm64.jsonl``).
* Unknown class 0x14 ids before the history's ``fw_enoent_from`` (Linux
  v5.3): from the first firmware register (PSCI_VERSION, v4.17) to v5.2,
  ``kvm_arm_{get,set}_fw_reg`` (``virt/kvm/arm/psci.c``) compared the id
  with ``KVM_REG_ARM_PSCI_VERSION`` and returned ``-EINVAL`` for anything
  else, copying the value in only inside that branch.  So on those kernels
  every other class 0x14 id (an unknown index, or PSCI_VERSION's index with
  another size) gets ``-EINVAL`` from GET and SET, checked right after
  ``-ENOEXEC`` and before the user address (a NULL-address SET of an
  unknown id: ``-EINVAL``, of PSCI_VERSION: ``-EFAULT``).  99adb567632b
  (v5.3) turned both into a ``switch`` with ``default: return -ENOENT`` and
  moved the SET copy first, which is the order above.  Check order pinned
  here: ENOEXEC, then EINVAL (unknown or wrong-size id, old ABI) / ENOENT
  (size, new ABI), EFAULT, ENOENT (unknown id), EINVAL (value), EBUSY.
* Firmware values with ``stores`` bits (WORKAROUND_2's ENABLED on
  v5.3..v5.9, :class:`hcsim.model.history.Firmware`) are per vCPU, like the
  kernel's ``vcpu->arch.workaround_flags``.
* Feature registers and stored firmware values (``PSCI_VERSION``) are per
  VM: a write through one vCPU is seen by all, including later vCPUs.
* The has-run lock is per VM and covers feature registers only.  Any
  ``KVM_RUN`` of an initialised vCPU locks, even with ``immediate_exit``
  (``-EINTR``); a run of an uninitialised vCPU (``-ENOEXEC``) does not;
  re-running ``KVM_ARM_VCPU_INIT`` neither unlocks nor resets.
* vCPUs: ``VM.create_vcpu(index)`` is ``KVM_CREATE_VCPU`` with the id
  userspace chose (the probe creates vCPU 5 before vCPUs 0 and 1); without
  an index it takes the lowest unused id, which is the creation order for a
  VMM that creates vCPUs 0, 1, 2, ...  ``VM.vcpus`` keeps creation order
  (the kernel's ``vcpu_idx``), ``VCPU.index`` is the id (``vcpu_id``).  No
  register of the model depends on the id: every firmware and feature
  register is per VM, so ids only name vCPUs.  Creating a vCPU after a run
  is allowed (no in-kernel VGIC is modelled; with an initialised VGIC the
  kernel answers ``-EBUSY``).
* RAZ/WI registers drop unassigned bits before the lock compares values.
* ``invalidate-on-write`` clears the bitmaps on the first successful write
  after VM creation, if the VM has not run (after a run the bitmaps are
  frozen and a same-value write changes nothing).
* Other registers (DESIGN.md section 9, :mod:`hcsim.model.other`): in the
  ``all`` view of a history with other-register data, ``KVM_GET_REG_LIST``
  also lists the other ids the release lists for the vCPU's features
  (``VCPU.init(features=...)``, default the history's), in ascending id
  order with the rest.  Their values are opaque and the same on every kernel
  (:data:`hcsim.model.other.OPAQUE_VALUE`): a GET of a listed one reads it,
  a SET of a listed one succeeds (whatever the value: the register's own
  checks are not modelled), and a GET or SET of an other id the vCPU does
  not list gives ``-ENOENT`` (the system-register code looks the id up
  first, so a NULL address does not matter).
"""

from __future__ import annotations

import errno as _errno

from hcsim.model.history import History
from hcsim.model.other import OPAQUE_VALUE
from hcsim.model.regs import KVM_REG_ARM_FW, KVM_REG_ARM_FW_FEAT_BMAP, decode
from hcsim.model.strategies import Strategy

#: ``KVM_MAX_VCPUS`` on arm64 (GICv3 limit); vCPU ids must be below it
#: (``KVM_MAX_VCPU_IDS`` defaults to ``KVM_MAX_VCPUS``).
KVM_MAX_VCPUS = 512


class KvmError(Exception):
    """A failing ioctl: ``errno`` as the kernel returns it (positive)."""

    def __init__(self, err: int, what: str = ""):
        super().__init__(f"{_errno.errorcode[err]}{': ' + what if what else ''}")
        self.errno = err

    @property
    def name(self) -> str:
        return _errno.errorcode[self.errno]


class Kernel:
    """A host kernel: a release of a history, a strategy and a host CPU."""

    def __init__(self, history: History, release: int | str, strategy: Strategy,
                 host: str | None = None):
        self.history = history
        self.strategy = strategy
        self.host = host or history.host
        if isinstance(release, str):
            self.release, backports = history.kernel(release)
            self.name = release             # a release or a [[stable]] kernel
        else:
            self.release, backports = release, {}
            self.name = history.releases[release]
        self.layout = strategy.layout(history)
        self.feature_pos = self.layout.listed(self.release)
        fw = history.firmware_at(self.release, backports)
        self.firmware = {f.id: f for f, _ in fw}
        self.firmware_release = {f.id: at for f, at in fw}
        self.reg_ids = sorted([*self.firmware, *self.feature_pos])
        self._lists: dict[frozenset[str], tuple[list[int], frozenset[int]]] = {}
        # Classes the kernel routes to its firmware-register code, which
        # copies a SET's value in before looking the id up: class 0x14 once
        # it has a firmware register (PSCI_VERSION, v4.17), class 0x16 from
        # the release that added feature registers.  Other ids go to the
        # system-register code, which looks the id up first.
        # Before fw_enoent_from (Linux v5.3) the firmware code compared the
        # id with PSCI_VERSION first: unknown class 0x14 ids get EINVAL and
        # nothing is copied in before the look-up.
        self.fw_einval = bool(self.firmware) and self.release < history.fw_enoent_from
        self.fw_classes = frozenset(
            ({KVM_REG_ARM_FW} if self.firmware and not self.fw_einval else set())
            | ({KVM_REG_ARM_FW_FEAT_BMAP} if self.release >= history.registers_from
               else set()))

    def reg_name(self, rid: int) -> str:
        """Name of a register on this kernel (strategy-aware for class 0x16)."""
        return self.strategy.reg_name(rid)

    def no_such_reg(self, rid: int, what: str = "") -> KvmError:
        """The error for an id this kernel does not have (``-ENOENT``, or
        ``-EINVAL`` for class 0x14 before ``fw_enoent_from``)."""
        err = (_errno.EINVAL if self.fw_einval and decode(rid).coproc == KVM_REG_ARM_FW
               else _errno.ENOENT)
        return KvmError(err, self.reg_name(rid) + what)

    def reg_list(self, features: frozenset[str]) -> tuple[list[int], frozenset[int]]:
        """(whole sorted list, other ids) of a vCPU with ``features``."""
        hit = self._lists.get(features)
        if hit is None:
            other = self.history.other_at(self.release, self.host, features)
            ids = sorted([*self.reg_ids, *other]) if other else list(self.reg_ids)
            hit = self._lists[features] = (ids, frozenset(other))
        return hit

    def create_vm(self) -> VM:
        """``KVM_CREATE_VM``."""
        return VM(self)

    def __repr__(self) -> str:
        return (f"<Kernel {self.name} "
                f"{self.strategy.spec} host={self.host}>")


class VM:
    """A VM: per-VM bitmap values, stored firmware values, the has-run lock."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        layout, rel = kernel.layout, kernel.release
        self.features = layout.resets(rel, kernel.feature_pos.values())
        self.firmware = {rid: f.at(kernel.firmware_release[rid], kernel.host).reset
                         for rid, f in kernel.firmware.items() if f.on_write == "store"}
        self.has_run = False
        self.invalidated = False
        self.vcpus: list[VCPU] = []          # creation order (vcpu_idx)
        self._by_id: dict[int, VCPU] = {}    # by the id userspace chose (vcpu_id)

    def create_vcpu(self, index: int | None = None) -> VCPU:
        """``KVM_CREATE_VCPU(index)``: an uninitialised vCPU.

        ``index`` is the vCPU id userspace passes; ``None`` takes the lowest
        unused id (0, 1, 2, ... for a VMM that creates vCPUs in order).
        An id outside ``0..KVM_MAX_VCPUS-1``, or a VM that already has
        ``KVM_MAX_VCPUS`` vCPUs: ``-EINVAL``; an id in use: ``-EEXIST``.
        """
        if index is None:
            index = next(i for i in range(len(self.vcpus) + 1)
                         if i not in self._by_id)
        if not 0 <= index < KVM_MAX_VCPUS or len(self.vcpus) >= KVM_MAX_VCPUS:
            raise KvmError(_errno.EINVAL, f"vCPU id {index}")
        if index in self._by_id:
            raise KvmError(_errno.EEXIST, f"vCPU id {index}")
        vcpu = VCPU(self, index)
        self.vcpus.append(vcpu)
        self._by_id[index] = vcpu
        return vcpu

    def vcpu_by_id(self, index: int) -> VCPU | None:
        """The vCPU created with id ``index`` (``kvm_get_vcpu_by_id``), or None."""
        return self._by_id.get(index)

    def guest_view(self) -> frozenset[str]:
        """Services whose hypercalls answer (others return NOT_SUPPORTED)."""
        return self.kernel.layout.view(self.kernel.release, self.features)

    def invalidate(self) -> None:
        """Clear every feature register once (invalidate-on-write)."""
        if not self.invalidated and not self.has_run:
            self.features = dict.fromkeys(self.features, 0)
        self.invalidated = True


class VCPU:
    """A vCPU and its ``KVM_*`` ioctls."""

    def __init__(self, vm: VM, index: int):
        self.vm = vm
        self.index = index
        self.initialised = False
        self.psci_0_2 = True
        self.features: frozenset[str] = vm.kernel.history.features
        self.fw_stored: dict[int, int] = {}   # per-vCPU ``stores`` bits

    # -- lifecycle ---------------------------------------------------------
    def init(self, psci_0_2: bool = True, features=None) -> VCPU:
        """``KVM_ARM_VCPU_INIT``, with or without ``KVM_ARM_VCPU_PSCI_0_2``.

        ``features``: the other vCPU features (``{"pmu"}``); default the
        history's.  They only choose which other registers are listed.
        """
        features = self.vm.kernel.history.features if features is None else frozenset(features)
        if self.initialised and (psci_0_2 != self.psci_0_2 or features != self.features):
            raise KvmError(_errno.EINVAL, "vCPU features cannot change on re-init")
        if features != self.vm.kernel.history.features:
            self.vm.kernel.history.with_features(features)   # InputError if no lists
        self.initialised = True
        self.psci_0_2 = psci_0_2
        self.features = features
        self.fw_stored.clear()   # kvm_reset_vcpu sets the WORKAROUND_2 flag again
        return self

    def run(self, immediate_exit: bool = False) -> None:
        """``KVM_RUN``: locks the VM's bitmaps, even with ``immediate_exit``."""
        self._check_init()
        self.vm.has_run = True
        if immediate_exit:
            raise KvmError(_errno.EINTR, "immediate_exit")

    # -- registers ---------------------------------------------------------
    def get_reg_list(self) -> list[int]:
        """``KVM_GET_REG_LIST`` without CORE and SVE, ascending: classes 0x14
        and 0x16, plus the other registers in the ``all`` view."""
        self._check_init()
        return list(self.vm.kernel.reg_list(self.features)[0])

    def _other(self, rid: int) -> bool:
        return rid in self.vm.kernel.reg_list(self.features)[1]

    def get_one_reg(self, rid: int, bad_address: bool = False) -> int:
        """``KVM_GET_ONE_REG``."""
        self._check_init()
        kernel = self.vm.kernel
        if self._other(rid):
            if bad_address:
                raise KvmError(_errno.EFAULT, kernel.reg_name(rid))
            return OPAQUE_VALUE
        if rid in kernel.feature_pos:
            value = self.vm.features[kernel.feature_pos[rid]]
        elif rid in kernel.firmware:
            value = self._fw_read(rid)
        else:
            raise kernel.no_such_reg(rid)
        if bad_address:
            raise KvmError(_errno.EFAULT, self.vm.kernel.reg_name(rid))
        return value

    def set_one_reg(self, rid: int, value: int, bad_address: bool = False) -> None:
        """``KVM_SET_ONE_REG``."""
        self._check_init()
        kernel = self.vm.kernel
        if self._other(rid):
            if bad_address:
                raise KvmError(_errno.EFAULT, kernel.reg_name(rid))
            return
        d = decode(rid)
        expected = {KVM_REG_ARM_FW: 64,
                    KVM_REG_ARM_FW_FEAT_BMAP: kernel.strategy.width}.get(d.coproc)
        if d.width != expected:
            raise kernel.no_such_reg(rid, ": size")
        if bad_address and d.coproc in kernel.fw_classes:
            raise KvmError(_errno.EFAULT, self.vm.kernel.reg_name(rid))
        if rid not in kernel.feature_pos and rid not in kernel.firmware:
            raise kernel.no_such_reg(rid)
        if bad_address:
            raise KvmError(_errno.EFAULT, self.vm.kernel.reg_name(rid))
        if rid in kernel.feature_pos:
            self._set_feature(kernel.feature_pos[rid], value)
        else:
            self._set_firmware(rid, value)

    def _check_init(self) -> None:
        if not self.initialised:
            raise KvmError(_errno.ENOEXEC, "vCPU not initialised")

    def _fw_values(self, rid: int):
        kernel = self.vm.kernel
        return kernel.firmware[rid].at(kernel.firmware_release[rid], kernel.host,
                                       self.psci_0_2)

    def _fw_read(self, rid: int) -> int:
        fw = self.vm.kernel.firmware[rid]
        if fw.on_write == "store" and (self.psci_0_2 or fw.no_psci_0_2 is None):
            return self.vm.firmware[rid]
        vals = self._fw_values(rid)
        if vals.stores:
            return (vals.reset & ~vals.stores) | self.fw_stored.get(rid, vals.reset & vals.stores)
        return vals.reset

    def _set_firmware(self, rid: int, value: int) -> None:
        vals = self._fw_values(rid)
        if value not in vals.accepts:
            raise KvmError(_errno.EINVAL, f"{self.vm.kernel.reg_name(rid)} = 0x{value:x}")
        if self.vm.kernel.strategy.invalidates(feature=False):
            self.vm.invalidate()
        if rid in self.vm.firmware:
            self.vm.firmware[rid] = value
        if vals.stores and value & ~vals.stores == vals.reset & ~vals.stores:
            self.fw_stored[rid] = value & vals.stores

    def _set_feature(self, pos: int, value: int) -> None:
        vm, kernel = self.vm, self.vm.kernel
        reg = kernel.layout.regs[pos]
        known = kernel.layout.known_mask(pos, kernel.release)
        if value & ~known:
            if reg.strict:
                raise KvmError(_errno.EINVAL,
                               f"{kernel.reg_name(reg.id)}: unknown bits 0x{value & ~known:x}")
            value &= known
        if vm.has_run and value != vm.features[pos]:
            raise KvmError(_errno.EBUSY, kernel.reg_name(reg.id))
        if kernel.strategy.invalidates(feature=True):
            vm.invalidate()
        vm.features[pos] = value
