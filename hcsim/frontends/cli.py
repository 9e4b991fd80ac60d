"""The ``hcsim`` command (DESIGN.md section 7).

Every command renders its whole output in memory before writing anything,
so bad input (``InputError``) leaves no partial output: one line
``hcsim: error: ...`` on stderr and exit code 2.

Every subcommand is implemented by a front-end module (``hcsim.frontends.*``)
named in :data:`COMMANDS`.  For subcommand ``<name>`` (``-`` spelled ``_``)
the module provides ``add_<name>(parser)``, which declares the options and
sets ``func=run_<name>`` with ``parser.set_defaults``, and ``run_<name>(args)
-> int``, which returns the exit code.  :func:`build` imports every module
in :data:`COMMANDS` to build the parser, so heavy imports (numpy, pandas,
matplotlib) stay inside ``run_<name>``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from hcsim import files, limits
from hcsim.errors import InputError

#: Subcommand name -> (module, one-line help).
COMMANDS = {
    "strategies": ("hcsim.frontends.commands", "list register strategies and their parameters"),
    "vmms": ("hcsim.frontends.commands", "list VMM save/restore policies"),
    "matrix": ("hcsim.frontends.commands", "outcome of every ordered release pair"),
    "cost": ("hcsim.frontends.commands", "save/restore cost per release"),
    "compare": ("hcsim.frontends.commands", "scorecard: one row per strategy"),
    "probe-replay": ("hcsim.frontends.probe_cmd", "replay a real-kernel probe file against the model"),
    "generate": ("hcsim.frontends.generate_cmd", "synthetic history TOML (seeded)"),
    "sweep": ("hcsim.frontends.sweep_cmd", "Monte Carlo over synthetic histories, in parallel"),
    "report": ("hcsim.frontends.report", "rerun a notebook with parameters, export HTML"),
    "baseline": ("hcsim.frontends.baseline_cmd", "one VM configuration every host of a fleet can keep"),
    "fleet": ("hcsim.frontends.fleet_cmd", "simulate kernel rollouts and guest evacuations over a fleet"),
    "what-if": ("hcsim.frontends.whatif_cmd", "migrations a hypothetical release changes (patch review)"),
    "compat": ("hcsim.frontends.compat_cmd", "QEMU machine-type compat lists for a range of kernels"),
    "bench": ("hcsim.frontends.bench", "scalar spec vs vectorised engine: pairs/s, speedup, memory"),
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise InputError(message)


def build() -> Parser:
    parser = Parser(prog="hcsim", description=__doc__.splitlines()[0],
                    epilog=limits.epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        getattr(importlib.import_module(module), "add_" + name.replace("-", "_"))(p)
    return parser


def _one_line(message: str, limit: int = 2000) -> str:
    """``message`` as one printable line (control characters escaped, capped)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
    return text if len(text) <= limit else text[:limit] + "..."


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit code (0, 1, 2, 130 on SIGINT, 143 on SIGTERM).

    SIGTERM is handled as SIGINT is: the command unwinds (temporary files
    removed, worker processes and Jupyter kernels ended, the previous output
    kept), ``hcsim: terminated`` on stderr, exit 128 + 15.  SIGHUP (a closed
    terminal) likewise: ``hcsim: hangup``, exit 129; under ``nohup`` it stays
    ignored.  Every OSError that reaches here (an input or output path, a
    full disk) is one line.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            # A signal the caller ignores (nohup) stays ignored.
            if signal.getsignal(sig) is signal.SIG_DFL:
                previous[sig] = signal.signal(sig, files.on_sigterm)
    try:
        args = build().parse_args(argv)
        if args.command is None:
            raise InputError("missing command (try hcsim --help)")
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"hcsim: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hcsim: interrupted", file=sys.stderr)
        return 130
    except files.Terminated as exc:
        print("hcsim: hangup" if exc.signum == signal.SIGHUP else "hcsim: terminated",
              file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except OSError as exc:
        print(f"hcsim: error: {_one_line(files.os_error(None, exc))}", file=sys.stderr)
        try:
            sys.stdout.flush()
        except (OSError, ValueError):       # it was stdout that failed
            _quiet_stdout()
        return 2
    except MemoryError:
        print("hcsim: error: out of memory", file=sys.stderr)
        return 2
    finally:
        files.cleanup()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _quiet_stdout() -> None:
    """After stdout failed (closed pipe, full disk): no second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
