"""An strace-like record of the register ioctls a migration makes.

:func:`record` wraps the ioctl methods of :class:`hcsim.model.kvm.VCPU`
(``KVM_GET_REG_LIST``, ``KVM_GET_ONE_REG``, ``KVM_SET_ONE_REG``,
``KVM_RUN``) for the duration of a ``with`` block and appends one
:class:`Call` per ioctl, including the ones that fail, so a migration can be
told as the sequence of calls a VMM made and the errno that ended it::

    with trace.record() as calls:
        m = hcsim.migrate(history, strategy, vmm, src, dst)
    print(trace.format_calls(calls))

The wrapping is done on the class, so it sees every vCPU that
:func:`hcsim.evaluation.spec.migrate` creates without changing the spec; it is
undone when the block exits and is not thread-safe.
"""

from __future__ import annotations

import errno as _errno
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hcsim.model.kvm import VCPU, KvmError
from hcsim.model.regs import short_name

#: The wrapped methods and the ioctl each one is.
IOCTLS = {
    "get_reg_list": "KVM_GET_REG_LIST",
    "get_one_reg": "KVM_GET_ONE_REG",
    "set_one_reg": "KVM_SET_ONE_REG",
    "run": "KVM_RUN",
}


@dataclass(frozen=True)
class Call:
    """One ioctl on one vCPU.

    ``vm`` numbers VMs in order of their first traced call (0 is normally
    the source); ``release`` is the kernel's release name; ``reg`` and
    ``value`` are the register id and the value read or written (for
    ``KVM_GET_REG_LIST``, ``value`` is the number of ids returned);
    ``errno`` is 0 on success, else the positive errno.
    """

    vm: int
    release: str
    vcpu: int
    ioctl: str
    reg: int | None = None
    value: int | None = None
    errno: int = 0

    @property
    def result(self) -> str:
        """``0`` or ``-1 EINVAL``, as strace shows it."""
        return "0" if self.errno == 0 else f"-1 {_errno.errorcode[self.errno]}"

    def text(self) -> str:
        """One strace-style line: ``ioctl(vcpu, KVM_SET_ONE_REG, NAME = 0x1) = 0``."""
        if self.ioctl == "KVM_GET_REG_LIST":
            arg = f"n = {self.value}" if self.value is not None else ""
        elif self.reg is None:
            arg = ""
        else:
            name = short_name(self.reg)
            arg = name if self.value is None else f"{name} = 0x{self.value:x}"
        sep = ", " if arg else ""
        return (f"{self.release} vcpu{self.vcpu}: ioctl({self.ioctl}{sep}{arg}) "
                f"= {self.result}")


def _vm_number(vms: dict[int, int], vcpu: VCPU) -> int:
    return vms.setdefault(id(vcpu.vm), len(vms))


@contextmanager
def record() -> Iterator[list[Call]]:
    """Record every register ioctl made inside the block (see the module doc)."""
    calls: list[Call] = []
    vms: dict[int, int] = {}
    keep = []   # the traced VMs, so their ids are not reused inside the block
    originals = {name: getattr(VCPU, name) for name in IOCTLS}

    def wrap(name, method):
        @functools.wraps(method)
        def traced(self, *args, **kwargs):
            keep.append(self.vm)
            kernel = self.vm.kernel
            base = dict(vm=_vm_number(vms, self),
                        release=kernel.history.releases[kernel.release],
                        vcpu=self.index, ioctl=IOCTLS[name])
            reg = args[0] if name in ("get_one_reg", "set_one_reg") else None
            value = args[1] if name == "set_one_reg" else None
            try:
                result = method(self, *args, **kwargs)
            except KvmError as exc:
                calls.append(Call(reg=reg, value=value, errno=exc.errno, **base))
                raise
            if name == "get_one_reg":
                value = result
            elif name == "get_reg_list":
                value = len(result)
            calls.append(Call(reg=reg, value=value, **base))
            return result
        return traced

    for name, method in originals.items():
        setattr(VCPU, name, wrap(name, method))
    try:
        yield calls
    finally:
        for name, method in originals.items():
            setattr(VCPU, name, method)


def format_calls(calls: list[Call]) -> str:
    """The calls as strace-style lines, one per ioctl."""
    return "\n".join(c.text() for c in calls)


def last_error(calls: list[Call]) -> Call | None:
    """The last failing call, or None if every ioctl succeeded."""
    return next((c for c in reversed(calls) if c.errno), None)
