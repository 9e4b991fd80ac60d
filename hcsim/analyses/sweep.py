"""Monte Carlo sweeps: many synthetic histories x strategies x VMMs x configurations.

:func:`run` draws ``histories`` synthetic histories (:mod:`hcsim.model.synthetic`,
seeds ``seed`` .. ``seed + histories - 1``, so any row can be regenerated
with ``hcsim generate --seed``), scores every (history, strategy, VMM
policy, configuration) with the vectorised engine
(:func:`hcsim.evaluation.backends.tallies`: counts taken on epoch pairs
without the ``[n, n]`` matrix, a history's strategies and policies
together; then the scorecard of ``hcsim compare``
from the same counts, :func:`hcsim.evaluation.measures.score_counts`'s
arithmetic for a batch of rows at once: :class:`Rows`) and
returns a tidy :class:`pandas.DataFrame`, one row per combination:

* ``seed``, the generator parameters (``releases``, ``rate``, ``burst``,
  ``burst_size``, ``functions``, ``opt_in``, ``registers_from`` as a release
  index, ``firmware`` (NaN: none), ``space_std``, ``space_std_hyp``,
  ``space_vendor_hyp``) and ``services`` (how many the history has);
* ``strategy`` (canonical spec), ``vmm``, ``config`` (the spec as given);
* the scorecard measures (:meth:`hcsim.evaluation.measures.Score.flat`): outcome shares
  forward (``fwd_*``: source older) and backward (``bwd_*``), ``silent_loss``,
  ``bytes_per_vcpu`` at the last release (NaN when the VMM cannot handle a
  register), ``pickup``, ``userspace_patch``;
* ``exhaustion_index`` and ``exhaustion``: the first release after
  ``registers_from`` that lists a new feature register (NaN if none).

Configurations are ``default`` or ``random:p=P,seed=K[,n=N]``
(:mod:`hcsim.model.config`).  ``random`` is parsed against each history exactly as
``hcsim compare --config`` does, so a row is reproducible from its seed and
spec (the draw for the i-th service is the same in every history); with
``n > 1`` the row pools the matrices of the n configurations, as ``compare``
does.  ``off:NAME`` is refused: synthetic histories do not share names.

Execution: the work is cut into tasks of ``batch`` histories.  ``jobs=1``
runs them in this process; otherwise a :class:`~concurrent.futures.
ProcessPoolExecutor` of ``jobs`` workers (default: every core); with
``scheduler`` a dask.distributed cluster (an address, ``"local"`` for a
:class:`~dask.distributed.LocalCluster`, or a ``Client``/cluster object).
Rows are sorted by (seed, strategy, VMM, configuration) in the order given,
so the table is identical whatever the executor, ``jobs`` or ``batch``.
Once its rows are taken, a history is forgotten
(:func:`hcsim.evaluation.engine.forget`): what the engine built for it is
freed at once rather than by the cyclic garbage collector, histories
later, which cost about 7% of a history's CPU (README, "Speed").
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hcsim import files, limits
from hcsim.errors import InputError
from hcsim.evaluation import engine, measures
from hcsim.evaluation.backends import note, tallies
from hcsim.model import config as config_mod
from hcsim.model import strategies, synthetic
from hcsim.model import vmm as vmm_mod
from hcsim.model.history import History

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
#: ``engine`` values (as ``hcsim compare --engine``) and their backends.
ENGINES = {"auto": "auto", "strict": "engine", "scalar": "spec"}
LOCAL = "local"
#: Output formats by file extension.
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Most histories per task when the batch size is chosen automatically.
MAX_AUTO_BATCH = 16
#: Tasks of at least this many drifting histories first ask every policy about
#: every id drift can draw (:func:`_learn_drift_ids`; about 0.1 s per policy).
LEARN_FROM = 8
#: How long to try to reach a dask scheduler given by address.
CONNECT_TIMEOUT = "10s"


# --------------------------------------------------------------------------
# One task: a batch of histories, every strategy, VMM and configuration

@dataclass(frozen=True)
class Task:
    """A batch of history seeds and everything needed to score them."""

    index: int
    seeds: tuple[int, ...]
    params: synthetic.Params
    strategies: tuple[str, ...]
    vmms: tuple[str, ...]
    configs: tuple[str, ...]
    engine: str
    registers: str | None = None


def backend(engine: str) -> str:
    """The :func:`~hcsim.evaluation.backends.evaluate` backend of an ``engine`` value."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    return ENGINES[engine]


class Rows:
    """A batch's rows as the sweep makes them, (seed, strategy, VMM,
    configuration) innermost last: :meth:`history` once per history, then
    :meth:`add` the counts of each row, then :meth:`columns`.

    What depends on the history and strategy alone (pickup, exhaustion) is
    asked once per strategy, the cost at the last release once per history
    (:func:`~hcsim.evaluation.measures.last_costs`; the new VMs' lists and
    guest views read off the engine's arrays, :func:`~hcsim.evaluation.engine.fresh`,
    not booted), and the shares of every
    row at the end, from the stacked counts
    (:func:`~hcsim.evaluation.measures.flat_columns`).
    """

    def __init__(self, chosen: Sequence[strategies.Strategy], vmms: Sequence[vmm_mod.Vmm],
                 configs: int, backend: str = "auto"):
        self.chosen, self.vmms, self.configs = chosen, vmms, configs
        self.backend = backend
        self.seeds: list[int] = []
        self.services: list[int] = []
        self.ex_index: list[int] = []
        self.pickup: list[float] = []
        self.cost: list[np.ndarray] = []
        self.list_cost: list[np.ndarray] = []
        self.counted: list[np.ndarray] = []
        self.refused: list[np.ndarray] = []

    def history(self, seed: int, history: History) -> None:
        """Start the rows of ``history``."""
        self.seeds.append(seed)
        self.services.append(len(history.services))
        new_vms = self._new_vms(history)
        cost, list_cost = measures.last_costs(history, self.chosen, self.vmms,
                                              None if new_vms is None else new_vms[0])
        self.cost.append(cost)
        self.list_cost.append(list_cost)
        for k, strategy in enumerate(self.chosen):
            ex = measures.exhaustion(history, strategy)
            self.ex_index.append(history.index(ex) if ex else -1)
            self.pickup.append(measures.new_vm_pickup(
                history, strategy, None if new_vms is None else new_vms[1][k]))

    def _new_vms(self, history: History) -> tuple[list, list] | None:
        """Each strategy's new VM at the last release off the engine's arrays
        (:func:`~hcsim.evaluation.engine.fresh`: its list and how many
        services it sees), or None where the spec is to boot one: under the
        ``scalar`` engine, or when the engine does not model a layout (its
        counts then come from the spec too, with a logged warning)."""
        if self.backend == "spec":
            return None
        try:
            got = [engine.fresh(history, s, len(history.releases) - 1) for s in self.chosen]
        except engine.EngineUnsupported:
            if self.backend == "engine":
                raise
            return None
        return [ids for ids, _ in got], [seen for _, seen in got]

    def add(self, counted: np.ndarray, refused: np.ndarray) -> None:
        """The next row's counts (:func:`~hcsim.evaluation.backends.tallies`)."""
        self.counted.append(counted)
        self.refused.append(refused)

    def columns(self) -> dict[str, np.ndarray]:
        """Every row so far: the key columns, then the scorecard's."""
        H, S, V, C = len(self.seeds), len(self.chosen), len(self.vmms), self.configs
        if len(self.counted) != H * S * V * C:
            raise ValueError(f"{len(self.counted)} rows for {H} x {S} x {V} x {C}")
        per_history, per_strategy = S * V * C, V * C
        out = {"seed": np.repeat(np.asarray(self.seeds, np.int64), per_history),
               "services": np.repeat(np.asarray(self.services, np.int64), per_history),
               "strategy": np.tile(np.repeat(np.arange(S), per_strategy), H),
               "vmm": np.tile(np.repeat(np.arange(V), C), H * S),
               "config": np.tile(np.arange(C), H * S * V),
               "exhaustion_index": np.repeat(np.asarray(self.ex_index, np.int64), per_strategy)}
        out.update(measures.flat_columns(
            np.stack(self.counted), np.stack(self.refused),
            bytes_per_vcpu=np.repeat(np.concatenate(self.cost, axis=None), C),
            pickup=np.repeat(np.asarray(self.pickup, np.float64), per_strategy),
            list_bytes_per_vcpu=np.repeat(np.concatenate(self.list_cost, axis=None), C)))
        return out


#: Policies this process has asked about every id drift can draw.
_LEARNED: set = set()


def _learn_drift_ids(vmms: Sequence[vmm_mod.Vmm]) -> None:
    """Ask each policy about every id synthetic drift can draw, once per
    process (:func:`hcsim.model.vmm.facts`): one sorted insert of 32,768 ids
    instead of one per history as each brings new ones (a long sweep meets
    nearly all of them)."""
    for vmm in vmms:
        if vmm.key not in _LEARNED:
            vmm_mod.facts(vmm, synthetic.drift_ids())
            _LEARNED.add(vmm.key)


def _run_batch(task: Task) -> dict[str, np.ndarray]:
    """Score every history of a task: columns of numbers and small codes (:class:`Rows`)."""
    how = backend(task.engine)
    chosen = [strategies.parse(s) for s in task.strategies]
    vmms = [vmm_mod.parse(v) for v in task.vmms]
    if task.params.drifts and len(task.seeds) >= LEARN_FROM:
        _learn_drift_ids(vmms)
    rows = Rows(chosen, vmms, len(task.configs), how)
    for seed in task.seeds:
        history = task.params.history(seed)
        if task.registers is not None:
            history = history.with_registers(task.registers)
        configs = [config_mod.parse(c, history) for c in task.configs]
        rows.history(seed, history)
        # every strategy and policy of a configuration counted together;
        # rows by strategy, then policy, then configuration
        got = [tallies(history, chosen, vmms, configs_i, how) for configs_i in configs]
        for s in range(len(chosen)):
            for v in range(len(vmms)):
                for per_config in got:
                    counted, refused, outcomes = per_config[s][v]
                    if outcomes is not None and outcomes.reason:
                        log.warning("seed %d: %s", seed, note(outcomes))
                    rows.add(counted, refused)
        engine.forget(history, chosen)
    return rows.columns()


# --------------------------------------------------------------------------
# Executors: each yields (task index, result) as tasks finish

def _serial(tasks: list[Task]) -> Iterator[tuple[int, dict]]:
    for t in tasks:
        yield t.index, _run_batch(t)


def worker_init(parent: int | None = None) -> None:
    """Set up a worker process: die with the parent, default SIGTERM.

    A forked worker inherits the parent's Python SIGTERM handler, which
    raises :class:`hcsim.files.Terminated`: the executor would send it back
    as a task's result and the worker would live on.  Workers take SIGTERM's
    default action instead, and on Linux ask the kernel to send them SIGTERM
    when the parent dies (``PR_SET_PDEATHSIG``), so that even a parent ended
    by SIGKILL leaves no worker behind.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        if parent is not None and os.getppid() != parent:
            os._exit(1)             # the parent died before prctl: give up now


def _pool(tasks: list[Task], jobs: int) -> Iterator[tuple[int, dict]]:
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=worker_init,
                               initargs=(os.getpid(),))
    try:
        futures = {pool.submit(_run_batch, t): t.index for t in tasks}
        for f in as_completed(futures):
            yield futures[f], f.result()
    except BaseException:
        # Ctrl-C or a failed task: stop now rather than finish the running
        # batches.  The executor has no public way to end its workers.
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.terminate()
        raise
    finally:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:       # reaped: no zombie, no orphan
            process.join(timeout=5)


class _Dask:
    """A dask.distributed client: connected, or a LocalCluster started here."""

    def __init__(self, scheduler: Any, jobs: int):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise InputError("a dask scheduler needs the optional extra: "
                             "pip install 'hcsim[distributed]'") from None
        self.owned: list = []
        if isinstance(scheduler, Client):
            self.client = scheduler
            return
        try:
            if scheduler == LOCAL:
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
                self.owned.append(cluster)
                self.client = Client(cluster)
            elif isinstance(scheduler, str):
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            else:
                self.client = Client(scheduler)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise InputError(f"cannot connect to dask scheduler {scheduler!r}: "
                             f"{exc}".splitlines()[0]) from None
        self.owned.insert(0, self.client)

    @property
    def workers(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def map(self, tasks: list[Task]) -> Iterator[tuple[int, dict]]:
        from dask.distributed import as_completed as dask_completed

        futures = self.client.map(_run_batch, tasks, pure=False)
        index = {f.key: t.index for f, t in zip(futures, tasks)}
        try:
            for f in dask_completed(futures):
                yield index[f.key], f.result()
        except BaseException:
            self.client.cancel(futures)
            raise

    def close(self) -> None:
        for thing in self.owned:
            thing.close()
        self.owned = []


# --------------------------------------------------------------------------
# The library entry point

def check_specs(strategy_specs: Sequence[str] | None, vmm_names: Sequence[str] | None,
                config_specs: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Validate names up front; return canonical strategies, VMMs and configs."""
    specs = tuple(strategies.parse(s).spec for s in (
        strategies.DEFAULTS if strategy_specs is None else strategy_specs))
    names = tuple(vmm_mod.parse(v).name for v in (
        vmm_mod.REGISTRY if vmm_names is None else vmm_names))
    configs = tuple(config_specs)
    probe = History("probe", ("r0",), 0, ())
    for label, items in (("strategy", specs), ("VMM", names), ("config", configs)):
        if not items:
            raise InputError(f"no {label} to sweep")
        if len(set(items)) != len(items):
            raise InputError(f"{label} given twice: {_first_repeat(items)!r}")
    for c in configs:
        if c.startswith("off:"):
            raise InputError(f"config {c!r}: synthetic histories do not share service "
                             "names; use default or random:p=P,seed=K[,n=N]")
        config_mod.parse(c, probe)
    return specs, names, configs


def cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        return os.cpu_count() or 1


def _first_repeat(items: Sequence[str]) -> str:
    seen: set[str] = set()
    return next(x for x in items if x in seen or seen.add(x))


def _positive(name: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value > maximum:
        raise InputError(f"{name} {value:,} is past the cap of {maximum:,} (hcsim.limits)")
    return int(value)


_ADDRESS = re.compile(r"(?:(?:tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})/?")


def check_scheduler(address: Any) -> Any:
    """A dask scheduler address: ``tls://HOST:PORT``, ``tcp://HOST:PORT`` or ``HOST:PORT``.

    Anything else (a typing error, a path, an option) is refused before
    dask sees it.  A ``Client``/cluster object or :data:`LOCAL` passes as is.
    """
    if not isinstance(address, str) or address == LOCAL:
        return address
    m = _ADDRESS.fullmatch(address)
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise InputError(f"scheduler {address!r} is not an address (tls://HOST:PORT, "
                         "tcp://HOST:PORT or HOST:PORT)")
    return address


def run(histories: int = 100, seed: int = 0, strategies: Sequence[str] | None = None,
        vmms: Sequence[str] | None = None, configs: Sequence[str] = ("default",),
        params: synthetic.Params | None = None, jobs: int | None = None,
        batch: int | None = None, scheduler: Any = None, engine: str = "auto",
        progress: bool | None = None, registers: str | None = None,
        **generator: Any) -> pd.DataFrame:
    """Score ``histories`` synthetic histories; one row per combination.

    Parameters
    ----------
    histories : number of histories K (seeds ``seed`` .. ``seed + K - 1``).
    seed : first history seed.
    strategies : strategy specs (default: every strategy, :data:`DEFAULTS`).
    vmms : VMM policy names (default: every policy).
    configs : configuration specs, ``default`` or ``random:p=P,seed=K[,n=N]``.
    params : generator parameters; default :func:`hcsim.model.synthetic.params`
        ``(**generator)``, e.g. ``run(10, releases=100, rate=0.5)``.
    jobs : worker processes (default: every core; 1 = in this process), or
        LocalCluster workers with ``scheduler="local"``.
    batch : histories per task (default: about 4 tasks per worker, at most 16).
    scheduler : None, ``"local"``, a dask scheduler address, or a dask
        ``Client``/cluster to run the tasks on.
    engine : ``auto`` (the vectorised engine where it applies, else the spec,
        with a logged warning), ``strict`` (the engine or an error) or
        ``scalar`` (the spec; slow).
    progress : tqdm bar on stderr; default: only when stderr is a terminal.
    registers : ``all`` or ``hypercall`` (DESIGN.md section 9): the register
        view of histories with other-register drift (``--drift``; default
        ``all``).

    Examples
    --------
    >>> df = run(2, releases=5, strategies=["upstream"], vmms=["qemu"], jobs=1,
    ...          engine="scalar")
    >>> df[["seed", "strategy", "vmm", "config"]].values.tolist()
    [[0, 'upstream', 'qemu', 'default'], [1, 'upstream', 'qemu', 'default']]
    """
    import pandas as pd

    histories = _positive("histories", histories, 1, limits.HISTORIES)
    first = synthetic.check_seed(seed)
    if first + histories - 1 > limits.SEED_MAX:
        raise InputError(f"seeds {first}..{first + histories - 1} run past 2**63-1")
    scheduler = check_scheduler(scheduler)
    if params is None:
        params = synthetic.params(**generator)
    elif generator:
        raise InputError("give either params or generator keywords, not both")
    specs, names, config_specs = check_specs(strategies, vmms, configs)
    rows = histories * len(specs) * len(names) * len(config_specs)
    if rows > limits.SWEEP_ROWS:
        raise InputError(f"{histories:,} histories x {len(specs)} strategies x {len(names)} "
                         f"VMMs x {len(config_specs)} configs = {rows:,} rows; at most "
                         f"{limits.SWEEP_ROWS:,} (choose --strategy/--vmm, or fewer histories)")
    backend(engine)
    jobs = min(cores(), limits.JOBS) if jobs is None else _positive("jobs", jobs, 1,
                                                                        limits.JOBS)
    if batch is not None:
        batch = _positive("batch", batch, 1, limits.BATCH)
    if registers is not None and registers not in ("all", "hypercall"):
        raise InputError(f"unknown register view {registers!r} (known: all, hypercall)")
    if progress is None:
        progress = sys.stderr.isatty()

    executor = _Dask(scheduler, jobs) if scheduler is not None else None
    try:
        workers = executor.workers if executor else jobs
        size = batch or min(MAX_AUTO_BATCH, max(1, math.ceil(histories / (4 * workers))))
        seeds = range(first, first + histories)
        tasks = [Task(k, tuple(seeds[i:i + size]), params, specs, names, config_specs,
                      engine, registers) for k, i in enumerate(range(0, histories, size))]
        if executor is not None:
            results = executor.map(tasks)
        elif jobs == 1 or len(tasks) == 1:
            results = _serial(tasks)
        else:
            results = _pool(tasks, min(jobs, len(tasks)))
        done = _collect(results, tasks, progress, histories)
    finally:
        if executor is not None:
            executor.close()
    return _frame(pd, done, params, specs, names, config_specs)


def _collect(results: Iterator[tuple[int, dict]], tasks: list[Task], progress: bool,
             total: int) -> list[dict]:
    from tqdm.auto import tqdm

    done: list[dict | None] = [None] * len(tasks)
    with tqdm(total=total, unit="history", disable=not progress, file=sys.stderr,
              desc="hcsim sweep") as bar:
        for index, result in results:
            done[index] = result
            bar.update(len(tasks[index].seeds))
    return done  # type: ignore[return-value]


def _frame(pd, done: list[dict], params: synthetic.Params, specs, names,
           config_specs) -> pd.DataFrame:
    cols = {k: np.concatenate([d[k] for d in done]) for k in done[0]}
    order = np.lexsort((cols["config"], cols["vmm"], cols["strategy"], cols["seed"]))
    cols = {k: v[order] for k, v in cols.items()}
    n = len(order)
    table: dict[str, Any] = {"seed": cols.pop("seed")}
    table.update({k: np.full(n, v) for k, v in params.columns().items()})
    table["services"] = cols.pop("services")
    for key, labels in (("strategy", specs), ("vmm", names), ("config", config_specs)):
        table[key] = pd.Categorical.from_codes(cols.pop(key), categories=list(labels))
    ex = cols.pop("exhaustion_index")
    table.update(cols)
    table["exhaustion_index"] = np.where(ex < 0, np.nan, ex)
    # Synthetic releases are named r0..r{n-1} (hcsim.model.synthetic).
    table["exhaustion"] = pd.Categorical.from_codes(
        ex, categories=[f"r{k}" for k in range(params.releases)])
    return pd.DataFrame(table)


# --------------------------------------------------------------------------
# Output: csv or parquet by extension, atomically

def output_format(path: str | os.PathLike) -> str:
    """``csv`` or ``parquet`` from a file name; InputError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: unknown output extension {suffix or '(none)'!r} "
                         f"(known: {', '.join(FORMATS)})")
    if FORMATS[suffix] == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError(f"{path}: parquet output needs pyarrow: "
                             "pip install 'hcsim[parquet]'") from None
    return FORMATS[suffix]


def check_output(path: str | os.PathLike) -> str:
    """Fail now, before the sweep, if ``path`` cannot be written."""
    fmt = output_format(path)
    files.check_output(path)
    return fmt


def write(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as csv or parquet: the file appears whole or not at all."""
    fmt = output_format(path)
    with files.atomic_file(path, "wb") as fh:
        if fmt == "csv":
            df.to_csv(fh, index=False)
        else:
            df.to_parquet(fh, index=False)


# --------------------------------------------------------------------------
# Command line: hcsim sweep


