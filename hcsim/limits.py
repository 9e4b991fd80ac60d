"""Caps on every size a user can give: one place, documented, checked at parsing.

Every count that makes hcsim allocate memory or spend time in proportion
to it has a cap here.  A value past its cap is bad input: one line
``hcsim: error: ...`` naming the option or the file and field, exit 2,
before any work.  The caps are shown in ``hcsim COMMAND --help`` and in the
README ("Limits").  Where the kernel has a limit of its own, the cap is the
kernel's:

* :data:`VCPUS` = 512 is ``KVM_MAX_VCPUS`` on arm64:
  ``arch/arm64/include/asm/kvm_host.h`` defines it as ``VGIC_V3_MAX_CPUS``,
  512 in ``include/kvm/arm_vgic.h`` (GICv3 affinity routing as KVM implements
  it); ``KVM_CREATE_VCPU`` fails with ``EINVAL`` past it.
* Register ids and values are 64-bit (``struct kvm_one_reg`` has ``__u64
  id``; every register hcsim models is ``KVM_REG_SIZE_U64``):
  :data:`U64_MAX`.
* Seeds are ``0 .. 2**63 - 1`` (:data:`SEED_MAX`): numpy accepts larger
  ones, but a sweep stores seeds as int64 and pandas/parquet columns are
  int64, so every command accepts the same range.

The other caps are generous multiples of what the bundled examples and the
notebooks use; they exist so that a typing error or a hostile file cannot
make hcsim allocate without bound.
"""

from __future__ import annotations

from hcsim.errors import InputError

#: KVM_MAX_VCPUS on arm64 (VGIC_V3_MAX_CPUS).
VCPUS = 512
#: ``random:...,n=N`` configurations per spec.
RANDOM_CONFIGS = 10_000
#: ``sweep --histories``.
HISTORIES = 10_000_000
#: Rows of a sweep (histories x strategies x VMMs x configurations): the
#: table is built in memory, about 250 bytes a row (5 GB at the cap).
SWEEP_ROWS = 20_000_000
#: ``sweep --jobs`` (worker processes or LocalCluster workers).
JOBS = 256
#: ``sweep --batch`` (histories per task).
BATCH = 100_000
#: ``fleet --guests`` and a plan's ``[guests] count``.
GUESTS = 10_000_000
#: Hosts of one inventory group.
HOSTS_PER_GROUP = 1_000_000
#: Hosts of a whole inventory.
HOSTS = 10_000_000
#: Groups of an inventory, rollouts of a plan.
GROUPS = 10_000
ROLLOUTS = 10_000
#: A rollout's ``waves`` and ``every`` (days): a year of daily waves.
WAVES = 366
EVERY = 366
#: Releases of a history file (``generate --releases`` has its own cap,
#: :data:`hcsim.model.synthetic.MAX_RELEASES`).
RELEASES = 100_000
#: Services and firmware entries of a history file.
SERVICES = 1_000_000
#: Rows of ``hcsim matrix`` (ordered release pairs x configurations): each
#: row is evaluated on the scalar spec and kept in memory until rendered.
MATRIX_ROWS = 1_000_000
#: Bytes of any input file (history, inventory, plan, probe record, notebook).
FILE_BYTES = 16 * 1024 * 1024
#: Nesting depth of a TOML or JSON document (tables, arrays, objects).
DEPTH = 32
#: Register ids and values.
U64_MAX = (1 << 64) - 1
#: Seeds.
SEED_MAX = (1 << 63) - 1
#: ``bench --repeat`` and ``--scalar-pairs``.
REPEAT = 1_000
SCALAR_PAIRS = 10_000_000

#: The caps as shown by ``--help`` and the README: (what, cap, why).
TABLE = (
    ("--vcpus, plan [guests] vcpus", VCPUS, "KVM_MAX_VCPUS on arm64"),
    ("register ids and values", U64_MAX, "struct kvm_one_reg, U64"),
    ("seeds", SEED_MAX, "stored as int64"),
    ("random:n=", RANDOM_CONFIGS, "configurations per --config"),
    ("matrix rows", MATRIX_ROWS, "release pairs x configurations"),
    ("sweep --histories", HISTORIES, ""),
    ("sweep rows", SWEEP_ROWS, "histories x strategies x VMMs x configs"),
    ("sweep --jobs", JOBS, "worker processes"),
    ("sweep --batch", BATCH, "histories per task"),
    ("--guests, plan [guests] count", GUESTS, "fleet"),
    ("inventory hosts per group", HOSTS_PER_GROUP, ""),
    ("inventory hosts in total", HOSTS, ""),
    ("inventory groups, plan rollouts", GROUPS, "each"),
    ("plan waves, every (days)", WAVES, "a year"),
    ("history releases", RELEASES, ""),
    ("history service/firmware/stable", SERVICES, "entries"),
    ("bench --repeat", REPEAT, ""),
    ("bench --scalar-pairs", SCALAR_PAIRS, ""),
    ("input file size (bytes)", FILE_BYTES, "16 MiB, regular files only"),
    ("TOML/JSON nesting depth", DEPTH, "levels"),
)


def epilog() -> str:
    """The caps as the text ``hcsim --help`` ends with."""
    lines = ["limits (hcsim.limits; README 'Limits'):"]
    for what, cap, why in TABLE:
        shown = {U64_MAX: "2**64-1", SEED_MAX: "2**63-1"}.get(cap, f"{cap:,}")
        lines.append(f"  {what:<34} {shown:>14}" + (f"  {why}" if why else ""))
    return "\n".join(lines)


def check_int(name: str, value: object, low: int, high: int) -> int:
    """An int in ``low..high``; InputError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np
            if isinstance(value, np.integer):
                value = int(value)
        except ImportError:     # pragma: no cover - numpy is a dependency
            pass
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer in {low}..{high:,}, got {value!r}")
    if value < low:
        raise InputError(f"{name} must be at least {low}, got {value:,}")
    if value > high:
        raise InputError(f"{name} must be at most {high:,} (the cap), got {value:,}")
    return value


def argtype(name: str, low: int, high: int):
    """argparse type: an integer in ``low..high`` (the error names the option)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,} (the cap), "
                                             f"got {value:,}")
        return value
    parse.__name__ = name
    return parse
