"""``hcsim sweep``: Monte Carlo over synthetic histories (options, output)."""

from __future__ import annotations

import argparse
import sys

from hcsim import limits
from hcsim.analyses.sweep import (
    ENGINES,
    LOCAL,
    MAX_AUTO_BATCH,
    check_output,
    check_scheduler,
    run,
    write,
)
from hcsim.frontends import generate_cmd


def add_sweep(p: argparse.ArgumentParser) -> None:
    p.add_argument("--histories", type=limits.argtype("histories", 1, limits.HISTORIES),
                   default=100, metavar="K",
                   help=f"number of synthetic histories (default 100; cap {limits.HISTORIES:,})")
    p.add_argument("--seed", type=generate_cmd.seed, default=0, metavar="S",
                   help="seed of the first history; history i has seed S+i (default 0; "
                        "S+K-1 <= 2**63-1)")
    generate_cmd.add_params(p)
    p.add_argument("--strategy", action="append", metavar="S",
                   help="NAME[:k=v,...]; repeat; default: every strategy")
    p.add_argument("--vmm", action="append", metavar="V",
                   help="VMM policy; repeat; default: every policy")
    p.add_argument("--config", action="append", metavar="C",
                   help="default | random:p=P,seed=K[,n=N]; repeat (default: default)")
    p.add_argument("--jobs", type=limits.argtype("jobs", 1, limits.JOBS), default=None,
                   metavar="N", help="worker processes (default: every core; 1: no pool; "
                                     f"cap {limits.JOBS})")
    p.add_argument("--batch", type=limits.argtype("batch", 1, limits.BATCH), default=None,
                   metavar="N", help=f"histories per task (default: auto, at most "
                                     f"{MAX_AUTO_BATCH}; cap {limits.BATCH:,})")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", type=scheduler,
                       help="run on a dask.distributed scheduler: tls://host:8786 "
                            "(TLS, configured through dask's tls settings), "
                            "tcp://host:8786 or host:8786 (plain TCP: only on a trusted "
                            "network or localhost, see README 'Distributed safety')")
    where.add_argument("--dask", action="store_true",
                       help="run on a dask LocalCluster of --jobs workers")
    p.add_argument("--registers", choices=("all", "hypercall"), default=None,
                   help="all (default): other-register drift (--drift) counts; "
                        "hypercall: other registers taken as identical on both sides")
    p.add_argument("--engine", default="auto", choices=tuple(ENGINES),
                   help="auto (the engine where it applies, else the spec, with a "
                        "warning), strict (the engine or an error), scalar (the spec, slow)")
    p.add_argument("--output", metavar="FILE",
                   help="FILE.csv or FILE.parquet, written atomically (default: csv "
                        "on stdout)")
    p.set_defaults(func=run_sweep)


def scheduler(text: str) -> str:
    """argparse type: a dask scheduler address (:func:`check_scheduler`)."""
    try:
        return check_scheduler(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_sweep(args: argparse.Namespace) -> int:
    if args.output is not None:
        check_output(args.output)
    scheduler = LOCAL if args.dask else args.scheduler
    df = run(args.histories, args.seed, args.strategy, args.vmm, args.config or ["default"],
             params=generate_cmd.params_from_args(args), jobs=args.jobs, batch=args.batch,
             scheduler=scheduler, engine=args.engine, registers=args.registers)
    if args.output is None:
        df.to_csv(sys.stdout, index=False)
    else:
        write(df, args.output)
    return 0
