"""How bad a silent loss is: services a guest calls only at boot vs at runtime."""

from __future__ import annotations

import pytest

from hcsim.errors import InputError
from hcsim.evaluation import measures
from hcsim.evaluation.backends import evaluate
from hcsim.model.history import dumps, from_dict, loads
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm


def history(use_a="boot", use_b="runtime"):
    return from_dict({"name": "uses", "releases": ["r0", "r1", "r2"], "registers_from": "r2",
                      "firmware": [],
                      "service": [{"name": "A", "space": "vendor-hyp", "introduced": "r1",
                                   "use": use_a},
                                  {"name": "B", "space": "std-hyp", "introduced": "r2",
                                   "use": use_b}]})


@pytest.mark.parametrize("backend", ["engine", "spec"])
def test_losses_split_by_use(backend):
    """crosvm never saves the bitmaps, so a backward step loses what the newer
    kernel added: r1 -> r0 loses A (boot only), r2 -> r0 and r2 -> r1 lose B
    (runtime)."""
    o = evaluate(history(), parse_strategy("upstream"), parse_vmm("crosvm"),
                 backend=backend)
    use = measures.loss_by_use(o)
    assert use == {"runtime": 2 / 6, "boot": 1 / 6}
    assert use["runtime"] + use["boot"] == pytest.approx(measures.silent_loss(o))


def test_runtime_is_the_default_and_marks_every_loss():
    o = evaluate(history("runtime"), parse_strategy("upstream"), parse_vmm("crosvm"))
    assert measures.loss_by_use(o) == {"runtime": 3 / 6, "boot": 0.0}


def test_use_round_trips_and_bad_use_is_rejected():
    h = history()
    assert [s.use for s in loads(dumps(h)).services] == ["boot", "runtime"]
    with pytest.raises(InputError, match="use must be 'boot' or 'runtime'"):
        history(use_a="sometimes")


def test_linux_services_carry_a_cited_use(linux):
    uses = {s.name: s.use for s in linux.services}
    assert uses == {"PV_TIME": "runtime", "TRNG_V1_0": "runtime", "FUNC_FEAT": "boot",
                    "PTP": "runtime", "DISCOVER_IMPL_VER": "boot",
                    "DISCOVER_IMPL_CPUS": "boot"}
    assert all(s.use_source.startswith("Linux guest: ") for s in linux.services)
