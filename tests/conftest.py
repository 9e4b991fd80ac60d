"""Shared fixtures: small histories written the way a reader would write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcsim.model import history

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
