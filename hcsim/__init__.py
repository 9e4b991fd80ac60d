"""hcsim: KVM/arm64 hypercall firmware registers across kernel versions.

The public surface: :func:`load` a history, :func:`parse_strategy` and :func:`parse_vmm`
by name, :func:`migrate` one guest, :func:`matrix` every release pair,
:func:`cost` per release.  The scalar spec is :mod:`hcsim.model.kvm`.
"""

from hcsim.errors import InputError
from hcsim.evaluation.measures import OUTCOMES, Migration, cost, matrix, migrate
from hcsim.model.history import History, load
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm

__all__ = ["OUTCOMES", "History", "InputError", "Migration", "cost", "load",
           "matrix", "migrate", "parse_strategy", "parse_vmm"]
