"""hcsim: KVM/arm64 hypercall firmware registers across kernel versions.

The public API, what the notebooks use:

* :func:`load` a history (a TOML path or a bundled name, ``"linux"``);
* :func:`evaluate` every (configuration, source, destination) of one
  strategy under one VMM policy, as :class:`Outcomes`;
* :func:`scorecard`, one row per strategy (what ``hcsim compare`` prints),
  and :func:`cost` per release; :func:`shares` and :func:`silent_loss` of
  any outcome grid, optionally of the register era only;
* :func:`migrate` one guest, optionally with its ioctl trace;
* :func:`baseline`, :func:`chain`, :func:`fleet` (with :func:`inventory`
  or :func:`scenario`) and :func:`sweep`: the analyses;
* :func:`over_seeds`: scorecard measures over many synthetic seeds, with
  intervals, and :func:`dominance`: in how many seeds one strategy is never
  worse than another;
* :func:`what_if`: the migrations a proposed patch changes, and
  :func:`compat`: QEMU machine-type compat lists for a range of kernels;
* :func:`registers` a fresh vCPU lists, :func:`generate` a synthetic
  history, :func:`loads` one from TOML text;
* the kernel's vocabulary: :mod:`hcsim.regs` (register ids, classes,
  names) and :mod:`hcsim.smccc` (function ids, owner spaces);
  :mod:`hcsim.synthetic` (the history generator and its parameters);
* for the design reports, loaded on first use: :mod:`hcsim.montecarlo`
  (intervals, register-era rates, VMM lag), :mod:`hcsim.positions` (the
  thread's claims, judged on the evidence), :mod:`hcsim.pairwise`
  (pair-by-pair dominance between strategies, the safety/pickup frontier),
  :mod:`hcsim.sensitivity` (:func:`over_seeds` tables: ``summarise``,
  ``pivot``) and :mod:`hcsim.context` (protected mode, the SMCCC filter,
  vCPUs and resets, the QEMU series, ID registers).

Strategies and VMM policies are given by name (``"raz-wi:ranges=2"``,
``"qemu"``) or as objects (:func:`parse_strategy`, :func:`parse_vmm`).

Examples
--------
>>> import hcsim
>>> h = hcsim.load("linux")
>>> card = hcsim.scorecard(h, vmm="qemu", strategies=["upstream", "raz-wi"])
>>> list(card["strategy"])
['upstream', 'raz-wi']
>>> m = hcsim.migrate(h, "upstream", "qemu", "v6.15", "v6.14")
>>> m.outcome, m.blame, m.cause.kind, m.cause.name
('refused', 'hypercall', 'count', 'KVM_REG_ARM_VENDOR_HYP_BMAP_2')
>>> hcsim.migrate(h, "upstream", "qemu", "v6.12", "v6.13").blame   # TCR2_EL1 went
'other'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hcsim.analyses.baseline import Baseline, HostSpec
from hcsim.errors import InputError
from hcsim.evaluation import backends, measures
from hcsim.evaluation import spec as _spec
from hcsim.evaluation.measures import Cost, Score, shares, silent_loss
from hcsim.evaluation.outcomes import BLAMES, DIRECTIONS, LETTERS, OUTCOMES, Migration, Outcomes
from hcsim.evaluation.trace import format_calls, last_error
from hcsim.model import config as _config
from hcsim.model import regs, smccc, synthetic
from hcsim.model.config import Config, Setting
from hcsim.model.history import History, load, loads
from hcsim.model.strategies import DEFAULTS, Strategy
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.synthetic import generate
from hcsim.model.vmm import REGISTRY as VMMS
from hcsim.model.vmm import Cause, Vmm
from hcsim.model.vmm import parse as parse_vmm

if TYPE_CHECKING:
    import pandas as pd

    from hcsim.analyses.chain import Chain
    from hcsim.analyses.fleet import FleetResult
    from hcsim.analyses.inventory import Inventory, Plan
    from hcsim.evaluation.trace import Call

#: Every strategy with default parameters, in scorecard order.
STRATEGIES = DEFAULTS


def _strategy(strategy: str | Strategy) -> Strategy:
    return parse_strategy(strategy) if isinstance(strategy, str) else strategy


def _vmm(vmm: str | Vmm) -> Vmm:
    return parse_vmm(vmm) if isinstance(vmm, str) else vmm


def _configs(history: History, configs: str | Sequence[Config | Setting] | None
             ) -> list[Config | Setting] | None:
    return _config.parse(configs, history) if isinstance(configs, str) else configs


def _release(history: History, release: int | str) -> int:
    return history.index(release) if isinstance(release, str) else release


def evaluate(history: History, strategy: str | Strategy, vmm: str | Vmm,
             configs: str | Sequence[Config | Setting] | None = None,
             backend: str = "auto") -> Outcomes:
    """Outcome, gained and lost services of every (configuration, source, destination).

    Parameters
    ----------
    history : History
        From :func:`load`.
    strategy, vmm : str or object
        A strategy spec (``"wide:width=1024"``) and a VMM policy name.
    configs : str or list, optional
        ``"default"``, ``"off:PTP+PV_TIME"``, ``"random:p=0.5,seed=1,n=3"``,
        or a list of sets of services turned off; default: reset values.
    backend : {"auto", "engine", "spec"}
        ``auto`` runs the vectorised engine where it models the evaluation
        and the scalar spec otherwise (``Outcomes.reason`` says why);
        ``engine`` raises :class:`InputError` instead.

    Returns
    -------
    Outcomes
        ``codes[c, s, d]`` indexes :data:`OUTCOMES`; :meth:`Outcomes.migration`
        gives one pair with its typed :class:`Cause`.

    Examples
    --------
    >>> o = evaluate(load("linux"), "upstream", "qemu")
    >>> o.codes.shape, o.backend
    ((1, 49, 49), 'engine')
    """
    return backends.evaluate(history, _strategy(strategy), _vmm(vmm),
                             _configs(history, configs), backend)


def scorecard(history: History, vmm: str | Vmm, strategies: Sequence[str | Strategy] | None = None,
              since: str | None = None,
              configs: str | Sequence[Config | Setting] | None = None,
              backend: str = "auto") -> pd.DataFrame:
    """One row per strategy: the scorecard of ``hcsim compare``.

    Parameters
    ----------
    history : History
    vmm : str or Vmm
    strategies : list, optional
        Strategy specs; default: every strategy (:data:`STRATEGIES`).
    since : str, optional
        Only releases from this one on (``"v5.19"``: the register era), as
        ``hcsim compare --since``.
    configs, backend
        As :func:`evaluate`.

    Returns
    -------
    pandas.DataFrame
        Columns as ``hcsim compare --format csv``: ``strategy``,
        ``fwd_<outcome>`` and ``bwd_<outcome>`` shares (forward: source
        older), ``silent_loss`` (lost or mixed, all pairs),
        ``bytes_per_vcpu`` at the last release (``<NA>``: the VMM cannot
        handle a register), ``pickup``, ``exhaustion`` (release of the first
        new register, or ""), ``userspace_patch``.

    Examples
    --------
    >>> card = scorecard(load("linux"), "qemu", ["upstream"])
    >>> float(card.loc[0, "fwd_preserved"]) < 1
    True
    """
    import pandas as pd

    if since is not None:
        history = history.since(since)
    policy = _vmm(vmm)
    cfgs = _configs(history, configs)
    rows = []
    for s in (strategies if strategies is not None else STRATEGIES):
        strategy = _strategy(s)
        counted, refused, _ = backends.tally(history, strategy, policy, cfgs, backend)
        rows.append(measures.score_counts(history, strategy, policy, counted, refused).flat())
    card = pd.DataFrame(rows)
    if len(card):
        for col in ("bytes_per_vcpu", "list_bytes_per_vcpu"):
            card[col] = card[col].astype("Int64")
    return card


def cost(history: History, strategy: str | Strategy, vmm: str | Vmm, vcpus: int = 1,
         feature_only: bool = False) -> list[Cost]:
    """Cost of a same-release save/restore at every release.

    Each :class:`~hcsim.evaluation.measures.Cost` row has ``registers``
    saved, ``bytes_per_vcpu``, ``bytes_per_vm`` (times ``vcpus``),
    ``ioctls`` (one GET and one SET per register and vCPU) and
    ``floor_bytes`` (one bit per known service); None where the VMM cannot
    handle a register.  ``feature_only`` counts the feature registers only.

    Examples
    --------
    >>> cost(load("linux"), "upstream", "qemu")[-1].bytes_per_vcpu
    128
    """
    st, policy = _strategy(strategy), _vmm(vmm)
    return [measures.cost_at(history, st, policy, r, vcpus, feature_only)
            for r in range(len(history.releases))]


def migrate(history: History, strategy: str | Strategy, vmm: str | Vmm,
            src: int | str, dst: int | str, config: Config | Setting = frozenset(),
            vcpus: int = 1, host: str | None = None, trace: bool = False
            ) -> Migration | tuple[Migration, list[Call]]:
    """Migrate one guest from ``src`` to ``dst`` (release names or indices).

    The scalar spec: create a VM on the source, configure it (``config``:
    services turned off, or a :class:`~hcsim.model.config.Setting`), save
    it, restore it on a fresh VM of the destination.  With ``trace``, also
    the ioctls made, in order (:class:`~hcsim.evaluation.trace.Call`; print
    them with :func:`hcsim.evaluation.trace.format_calls`).

    Examples
    --------
    >>> m, calls = migrate(load("linux"), "upstream", "qemu", "v6.13", "v6.12", trace=True)
    >>> m.cause.kind, m.cause.errno, calls[-1].text()
    ('errno', 'EINVAL', 'v6.12 vcpu0: ioctl(KVM_SET_ONE_REG, PSCI_VERSION = 0x10003) = -1 EINVAL')
    """
    args = (history, _strategy(strategy), _vmm(vmm), _release(history, src),
            _release(history, dst), config, vcpus, host)
    if not trace:
        return _spec.migrate(*args)
    from hcsim.evaluation import trace as _trace

    with _trace.record() as calls:
        m = _spec.migrate(*args)
    return m, calls


def registers(history: History, strategy: str | Strategy, release: int | str
              ) -> dict[int, int]:
    """What a fresh vCPU at ``release`` lists and reads: ``{id: value}`` in list order.

    ``KVM_GET_REG_LIST``, then ``KVM_GET_ONE_REG`` of every id, on a new VM
    with one initialised vCPU: the reset values.

    Examples
    --------
    >>> listed = registers(load("linux"), "upstream", "v6.15")
    >>> [(regs.short_name(r), v) for r, v in listed.items()][-1]
    ('VENDOR_HYP_BMAP_2', 0)
    """
    return measures.registers(history, _strategy(strategy), _release(history, release))


def baseline(history: History, strategy: str | Strategy, vmm: str | Vmm,
             hosts: str | Sequence[HostSpec], opt_in: bool = False) -> Baseline:
    """One VM configuration every host of a fleet can keep (``hcsim baseline``).

    ``hosts`` lists kernels, each optionally with a host CPU profile
    (``"v6.1@max,v6.12,6.1.0-56-arm64"``), or is a list of
    :class:`HostSpec`.  See :mod:`hcsim.analyses.baseline`.

    Examples
    --------
    >>> b = baseline(load("linux", registers="hypercall"), "upstream", "qemu-tolerant",
    ...              "v6.1,v6.12,v6.15")
    >>> b.safe
    True
    """
    from hcsim.analyses import baseline as _baseline

    specs = _baseline.parse_hosts(hosts, history) if isinstance(hosts, str) else list(hosts)
    return _baseline.compute(history, _strategy(strategy), _vmm(vmm), specs, opt_in)


def chain(history: History, strategy: str | Strategy, vmm: str | Vmm,
          kernels: Sequence[int | str], config: Config | Setting = frozenset()) -> Chain:
    """Boot a guest on ``kernels[0]`` and carry it through the others in turn.

    Unlike :func:`migrate` (a fresh VM each time), the guest keeps what it
    reads back from hop to hop.  See :mod:`hcsim.analyses.chain`.
    """
    from hcsim.analyses.chain import migrate_chain

    return migrate_chain(history, _strategy(strategy), _vmm(vmm), kernels, config)


def inventory(history: History, path: str | None = None,
              plan: str | None = None) -> tuple[Inventory, Plan]:
    """A fleet inventory and rollout plan (files; default: the bundled example)."""
    from hcsim.analyses import fleet as _fleet
    from hcsim.analyses import inventory as _inventory

    inv = _inventory.load_inventory(path or _fleet.EXAMPLE / "inventory.toml", history)
    return inv, _inventory.load_plan(plan or _fleet.EXAMPLE / "plan.toml", history, inv)


def scenario(history: History, kernels: Sequence[str], **kwargs: Any) -> tuple[Inventory, Plan]:
    """One pool of hosts upgraded along ``kernels``, with a rollback (a synthetic fleet).

    Keywords as :func:`hcsim.analyses.fleet.scenario` (``hosts``, ``guests``...).
    """
    from hcsim.analyses import fleet as _fleet

    return _fleet.scenario(history, kernels, **kwargs)


def fleet(history: History, inventory: Inventory | None = None, plan: Plan | None = None,
          strategies: Sequence[str] = ("upstream",), vmms: Sequence[str | None] = (None,),
          configs: Sequence[str] = ("default", "baseline"), guests: int | None = None,
          seed: int = 0) -> FleetResult:
    """A year of kernel rollouts over a fleet (``hcsim fleet``).

    ``inventory`` and ``plan`` come from :func:`inventory` or
    :func:`scenario`; default: the bundled example (10,000 hosts).
    ``vmms`` None keeps each host's own policy.  See :mod:`hcsim.analyses.fleet`.
    """
    from hcsim.analyses import fleet as _fleet

    if inventory is None or plan is None:
        inventory, plan = globals()["inventory"](history)
    return _fleet.simulate(history, inventory, plan, strategies, vmms, configs,
                           guests=guests, seed=seed)


def sweep(histories: int = 100, seed: int = 0, strategies: Sequence[str] | None = None,
          vmms: Sequence[str] | None = None, **kwargs: Any) -> pd.DataFrame:
    """Score many synthetic histories, one row per combination (``hcsim sweep``).

    Keywords as :func:`hcsim.analyses.sweep.run` (``configs``, ``jobs``,
    generator parameters such as ``releases=100``).
    """
    from hcsim.analyses import sweep as _sweep

    return _sweep.run(histories, seed, strategies, vmms, **kwargs)


def what_if(history: History, release: str, services: Sequence[str],
            strategy: str | Strategy = "upstream", vmms: Sequence[str | Vmm] | None = None,
            after: str | None = None, until: str | None = None) -> pd.DataFrame:
    """Migrations into and out of a hypothetical release against its predecessor.

    Parameters
    ----------
    history : History
        The history; ``until`` first drops the releases after that one
        (the tree a reviewer had before the patch).
    release : str
        Name of the hypothetical release, inserted after ``after`` (default:
        the last release).
    services : sequence of str
        The services the patch adds, ``NAME:SPACE[:off][:functions=N]
        [:register=ID:bit=B]`` as ``hcsim what-if --service``.
    strategy, vmms
        The strategy (default ``upstream``) and VMM policies (default: all).

    Returns
    -------
    pandas.DataFrame
        One row per (VMM, direction, partner release), the columns of
        ``hcsim what-if --format csv``.
    """
    import pandas as pd

    from hcsim.analyses import whatif as _whatif

    new = tuple(_whatif.NewService.parse(s) for s in services)
    if until is not None:
        history = _whatif.until(history, until)
    _, rows = _whatif.what_if(history, release, _strategy(strategy),
                              [_vmm(v) for v in (vmms or VMMS)], after, new)
    return pd.DataFrame(rows, columns=list(_whatif.COLUMNS))


def compat(history: History, releases: str, strategy: str | Strategy = "upstream"):
    """QEMU compat lists for a range of host kernels (``hcsim compat``).

    Parameters
    ----------
    history : History
        In the view and vCPU feature set to use (:func:`load` ``registers=``,
        ``features=``; ``History.with_host``).
    releases : str
        ``R1,R2,...`` or ranges ``A..B``.
    strategy : str or Strategy
        Default ``upstream``.

    Returns
    -------
    hcsim.analyses.compat.Compat
        ``safe_missing`` and ``hidden`` ids, ``marks`` (why an id may carry
        guest state), ``remaining`` (pairs still refused, with their causes).
    """
    from hcsim.analyses import compat as _compat

    return _compat.find(history, _strategy(strategy), _compat.parse_releases(history, releases))


def over_seeds(strategies: Sequence[str] | str | None = None,
               vmms: Sequence[str] | str | None = ("qemu",), seeds: Any = range(30),
               measures: Sequence[str] | str | None = None, level: float = 0.95,
               per_seed: bool = False, **generate_kwargs: Any) -> pd.DataFrame:
    """Scorecard measures of synthetic histories over many seeds, with intervals.

    One row per (strategy, VMM, measure): ``mean``, ``low``/``high`` (the
    Student's t interval of the mean at ``level``), ``p_low``/``p_high``
    (the central ``level`` of the per-seed values), ``min``, ``max``,
    ``seeds``; ``per_seed=True`` gives the values, one row per seed.
    Measures (:data:`hcsim.analyses.sensitivity.MEASURES`): ``fwd_*``,
    ``bwd_*`` outcome shares, ``silent_loss``, the same over the register era
    (``era_*``), ``pickup``, ``exhausted``.  ``generate_kwargs`` go to
    :func:`generate` (``releases``, ``rate``, ``space_registers``, ``bits``...).
    See :mod:`hcsim.analyses.sensitivity`.

    Examples
    --------
    >>> t = over_seeds(["upstream", "raz-einval"], "qemu", range(3), ["silent_loss"])
    >>> list(t["strategy"]), list(t["seeds"])
    (['upstream', 'raz-einval'], [3, 3])
    """
    from hcsim.analyses import sensitivity as _sensitivity

    return _sensitivity.over_seeds(strategies, vmms, seeds, measures, level, per_seed,
                                   **generate_kwargs)


def dominance(table: pd.DataFrame, a: str, b: str, vmm: str | None = None,
              measures: Sequence[str] | None = None) -> dict[str, int]:
    """Seeds of an ``over_seeds(..., per_seed=True)`` table where ``a`` is never worse than ``b``.

    Returns counts ``seeds``, ``never_worse``, ``dominates`` (never worse,
    strictly better on one measure), ``equal`` and ``worse``; measures
    default to the pair safety and availability shares
    (:data:`hcsim.analyses.sensitivity.SAFETY`).
    """
    from hcsim.analyses import sensitivity as _sensitivity

    return _sensitivity.dominance(table, a, b, vmm,
                                  _sensitivity.SAFETY if measures is None else measures)


#: Analyses the reports use, imported on first use (they load pandas).
_LAZY = {"montecarlo": "hcsim.analyses.montecarlo", "positions": "hcsim.analyses.positions",
         "pairwise": "hcsim.analyses.pairwise", "sensitivity": "hcsim.analyses.sensitivity",
         "context": "hcsim.analyses.context"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'hcsim' has no attribute {name!r}")


__all__ = ["BLAMES", "DIRECTIONS", "LETTERS", "OUTCOMES", "STRATEGIES", "VMMS", "Cause", "Cost", "History",
           "HostSpec", "InputError", "Migration", "Outcomes", "Score", "Setting", "baseline",
           "chain", "cost", "evaluate", "fleet", "format_calls", "generate", "inventory",
           "last_error", "load", "loads", "migrate", "parse_strategy", "parse_vmm", "registers",
           "regs", "scenario", "scorecard", "shares", "silent_loss", "smccc", "sweep",
           "synthetic", "what_if", "compat", "over_seeds", "dominance"]
