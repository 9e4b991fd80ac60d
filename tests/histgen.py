"""Hypothesis strategies for random histories (valid by construction)."""

from __future__ import annotations

from hypothesis import strategies as st

from hcsim.model.history import from_dict

SPACE_NAMES = ("std", "std-hyp", "vendor-hyp")


#: Other-register ids random histories draw from: DEMUX (U32) and SYSREG
#: (U64) ids, all sorting before the firmware registers.
OTHER_IDS = ("0x6020000000110000", "0x6020000000110001", "0x603000000013c100",
             "0x603000000013c103", "0x603000000013c512", "0x603000000013df7f")


@st.composite
def histories(draw, max_releases: int = 5, max_services: int = 8,
              firmware: bool = True, drift: bool = False):
    n = draw(st.integers(1, max_releases))
    releases = [f"r{k}" for k in range(n)]
    doc = {"name": "random", "releases": releases,
           "registers_from": releases[draw(st.integers(0, n - 1))],
           "service": [], "firmware": []}
    for k in range(draw(st.integers(0, max_services))):
        doc["service"].append({
            "name": f"S{k}",
            "space": draw(st.sampled_from(SPACE_NAMES)),
            "functions": draw(st.integers(1, 3)),
            "introduced": releases[draw(st.integers(0, n - 1))],
            "default": draw(st.sampled_from(["on", "on", "off"])),
        })
    if firmware and draw(st.booleans()):
        first = draw(st.integers(0, n - 1))
        entry = {"name": "PSCI_VERSION", "id": "0x6030000000140000",
                 "introduced": releases[first], "reset": "0x10000",
                 "accepts": ["0x2", "0x10000"]}
        if first + 1 < n and draw(st.booleans()):
            entry["changes"] = [{"release": releases[draw(st.integers(first + 1, n - 1))],
                                 "reset": "0x10001",
                                 "accepts": ["0x2", "0x10000", "0x10001"]}]
        doc["firmware"].append(entry)
    if drift:
        doc["other"] = []
        for rid in OTHER_IDS:
            if not draw(st.booleans()):
                continue
            first = draw(st.integers(0, n - 1))
            entry = {"id": rid, "introduced": releases[first]}
            if first + 1 < n and draw(st.booleans()):
                entry["removed"] = releases[draw(st.integers(first + 1, n - 1))]
            doc["other"].append(entry)
    return from_dict(doc, origin="hypothesis")
