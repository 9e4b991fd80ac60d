"""Shared fixtures: small histories written the way a reader would write them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from hcsim.model import history

# The whole suite (tests/ and the notebooks) must run in under 10 minutes on
# two cores, CI's pip install included; it aims at 6.  Property tests set
# their own example counts (at least 25 where they compare the engine with
# the spec; ``HCSIM_DIFF_EXAMPLES`` multiplies those of the differential
# tests).  This profile gives every test what the explicit settings do not
# say: no deadline (the scalar spec's time per example varies tenfold with
# the drawn history, and a loaded CI machine must not fail a test on time)
# and no health check failing a test for a slow or large draw.  Select
# another with ``pytest --hypothesis-profile NAME``.
settings.register_profile("hcsim", deadline=None, max_examples=50,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("hcsim")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def four() -> history.History:
    """r0..r3; registers from r1; PV_LOCK joins std-hyp at r2, PTP opens vendor-hyp at r3."""
    return history.load(DATA / "four.toml")


@pytest.fixture(scope="session")
def linux() -> history.History:
    """The Linux history in the hypercall view: other registers taken as
    identical on both sides (the thread's question alone; the tests of the
    whole register list are in test_whole_list.py and use ``linux_whole``)."""
    return history.load("linux").with_registers("hypercall")


@pytest.fixture(scope="session")
def linux_whole() -> history.History:
    """The Linux history as loaded: the whole register list (DESIGN.md 9)."""
    return history.load("linux")


def make(text: str) -> history.History:
    """A history from TOML text."""
    return history.loads(text, origin="test.toml")
