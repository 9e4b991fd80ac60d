"""What a fleet run records: the summary and timeline columns and :class:`FleetResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Configurations a guest can be created with.
CONFIGS = ("default", "baseline")


#: Label of the VMM column when each group keeps the inventory's VMM.
INVENTORY_VMM = "inventory"


SUMMARY_COLUMNS = ("strategy", "vmm", "config", "hosts", "guests", "evacuations",
                   "refused", "unsupported", "stranded", "hosts_blocked", "lost_hops",
                   "broken_guests", "broken_at_end", "gained_guests", "giving_up_guests",
                   "bytes_moved", "states", "transitions")


TIMELINE_COLUMNS = ("strategy", "vmm", "config", "wave", "date", "label", "rollback",
                    "hosts_changed", "guests", "evacuations", "refused", "unsupported",
                    "stranded", "hosts_blocked", "lost_hops", "broken_guests",
                    "broken_now", "gained_guests", "bytes_moved")


@dataclass
class FleetResult:
    """Tidy records of a fleet simulation (pandas DataFrames)."""

    summary: Any
    timeline: Any
    hosts: Any
    baselines: dict = field(default_factory=dict)
