"""``hcsim report``: rerun a design-report notebook on a reader's inputs, as HTML.

``hcsim report NOTEBOOK [-p NAME VALUE ...] --output FILE.html`` executes the
notebook with papermill, which injects the ``-p`` values in a new cell right
after the cell tagged ``parameters``, then exports the executed notebook to a
self-contained HTML file (figures embedded) with nbconvert::

    hcsim report notebooks/03-save-restore-cost.ipynb -p history my.toml \\
        --output report.html

Choices where the task was silent:

* **Kernel.**  The notebook runs in a Jupyter kernel of *this* Python
  (``sys.executable -m ipykernel_launcher``), whatever kernelspecs are
  installed: a ``python3`` spec of another interpreter could lack hcsim.
  Only ipykernel (a dependency through ``jupyter``) is needed.
* **Parameter values** are given as text and converted to the type of the
  default in the ``parameters`` cell (``int``, ``float``, ``bool``, ``str``);
  a name that cell does not assign is bad input.  A ``history`` value is
  loaded first, so a bad history file fails in one line before any kernel
  starts.  Relative paths are resolved from the current directory, which is
  also the notebook's working directory.
* **Exit codes.**  Bad input (missing notebook, unknown parameter, a value of
  the wrong type, a bad history, an output that cannot be written): one line
  ``hcsim: error: ...``, exit 2.  A notebook that fails while running (an
  inline ``assert`` that does not hold on the given history): one line naming
  the cell and the exception, exit 1.  Either way no output file is written:
  the HTML is written to a temporary file in the target directory and renamed
  over the target only once complete.
"""

from __future__ import annotations

import argparse
import ast
import signal
import sys
import tempfile
import threading
from pathlib import Path

from hcsim import files
from hcsim.errors import InputError
from hcsim.files import atomic_file, check_output

#: Seconds a cell may run before the report gives up (the notebooks take < 60 s).
CELL_TIMEOUT = 600


class NotebookFailed(Exception):
    """The notebook raised while executing (not bad input)."""


def add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebook", metavar="NOTEBOOK", help="path of a .ipynb notebook")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("NAME", "VALUE"),
                   help="set a parameter of the notebook's 'parameters' cell; repeat")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="HTML file to write (atomically)")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    try:
        html = render(args.notebook, dict(_pairs(args.parameter)), args.output)
    except NotebookFailed as exc:
        print(f"hcsim: error: {exc}", file=sys.stderr)
        return 1
    with atomic_file(args.output, "wb") as fh:
        fh.write(html.encode("utf-8"))
    return 0


def _pairs(pairs: list[list[str]]) -> list[tuple[str, str]]:
    seen = set()
    for name, _ in pairs:
        if name in seen:
            raise InputError(f"parameter {name!r} given twice")
        seen.add(name)
    return [(name, value) for name, value in pairs]


def parameters(notebook: str | Path) -> dict[str, dict]:
    """The parameters a notebook's ``parameters`` cell assigns, with their defaults."""
    import nbformat
    import papermill

    if not str(notebook):
        raise InputError("notebook: empty path")
    path = Path(notebook)
    text = files.read_text(path, "notebook")        # regular, <= 16 MiB
    files.loads_json(text, str(notebook))           # JSON, not nested too deep
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types
        raise InputError(f"{notebook}: not a readable notebook ({exc.__class__.__name__})") \
            from None
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise InputError(f"{notebook}: no cell tagged 'parameters'")
    return papermill.inspect_notebook(str(path))


def coerce(name: str, text: str, param: dict) -> object:
    """Convert a ``-p`` value to the type of the parameter's default."""
    kind = param.get("inferred_type_name", "None")
    try:
        default = ast.literal_eval(param.get("default", "None"))
    except (ValueError, SyntaxError):
        default = None
    kind = type(default).__name__ if default is not None else kind
    try:
        if kind == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if kind == "int":
            return int(text, 0)
        if kind == "float":
            return float(text)
    except ValueError:
        raise InputError(f"parameter {name!r}: expected {kind}, got {text!r}") from None
    return text


def _kernel_manager(stderr, state: dict | None = None):
    """An AsyncKernelManager that starts ipykernel in this Python, stderr to ``stderr``.

    Once the kernel runs, SIGTERM (which nbclient would take over) kills the
    kernel's process group at once and sets ``state["terminated"]``;
    :func:`execute` then raises :class:`hcsim.files.Terminated`.  The kernel also ends by
    itself if this process dies (ipykernel polls ``JPY_PARENT_PID``).
    """
    import asyncio

    state = {} if state is None else state
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec

    class CurrentPython(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                          "{connection_file}"],
                    display_name=f"Python {sys.version_info.major}."
                                 f"{sys.version_info.minor} (hcsim)",
                    language="python")
            return self._kernel_spec

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw.setdefault("stderr", stderr)
            try:        # replaces nbclient's handler (which only shuts the kernel down)
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._terminate)
            except (RuntimeError, NotImplementedError, ValueError):
                pass        # not the main thread: the caller handles signals
            info = await super()._async_launch_kernel(kernel_cmd, **kw)
            if state.get("terminated"):     # SIGTERM while the kernel was starting
                self._terminate()
            return info

        def _terminate(self) -> None:
            """Kill the kernel's process group now; nbclient then sees it dead."""
            import logging
            import os

            state["terminated"] = True
            logging.disable(logging.CRITICAL)   # no "kernel died" noise: we are ending
            pid = getattr(self.provisioner, "pid", None)
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)  # started with start_new_session
                except OSError:
                    pass

    return CurrentPython


def _last_line(log) -> str:
    """The last line the kernel wrote to stderr that is not ipykernel's TCP notice."""
    log.seek(0)
    lines = [line.strip() for line in log.read().splitlines()
             if line.strip() and "without encryption" not in line]
    return lines[-1] if lines else ""


def execute(notebook: str | Path, values: dict[str, object]):
    """Run the notebook with ``values`` injected; return the executed notebook.

    The kernel's stderr (ipykernel's notices, shutdown messages) is kept out of
    the terminal; its last line is quoted if the kernel itself fails.
    """
    import papermill

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    state: dict = {}
    with tempfile.TemporaryFile("w+") as log:
        try:
            nb = papermill.execute_notebook(
                str(notebook), None, parameters=values, kernel_name="python3",
                progress_bar=False, log_output=False, execution_timeout=CELL_TIMEOUT,
                kernel_manager_class=_kernel_manager(log, state))
            if state.get("terminated"):
                raise files.Terminated()
            return nb
        except files.Terminated:
            raise
        except Exception as exc:
            if state.get("terminated"):
                raise files.Terminated() from None
            _failed(notebook, exc, log)
        finally:
            # nbclient's asyncio signal handling leaves SIGTERM at SIG_DFL.
            if main and previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if state.get("terminated"):
                import logging
                logging.disable(logging.NOTSET)


def _failed(notebook, exc: Exception, log) -> None:
    """Raise NotebookFailed for an exception of papermill."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        raise NotebookFailed(f"{notebook}: cell {exc.cell_index} failed: "
                             f"{exc.ename}: {exc.evalue}".splitlines()[0]) from None
    # dead kernel, timeout, kernel that cannot start
    detail = _last_line(log)
    raise NotebookFailed(f"{notebook}: the kernel failed: {type(exc).__name__}"
                         + (f" ({detail})" if detail else "")) from None


def to_html(nb) -> str:
    """The executed notebook as a self-contained HTML page."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def render(notebook: str | Path, raw: dict[str, str], output: str | Path) -> str:
    """Validate the inputs, run the notebook, and return its HTML."""
    declared = parameters(notebook)
    values = {}
    for name, text in raw.items():
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise InputError(f"{notebook}: unknown parameter {name!r} (known: {known})")
        values[name] = coerce(name, text, declared[name])
    if isinstance(values.get("history"), str):
        from hcsim.model.history import BUNDLED, load

        load(values["history"])
        if values["history"] not in BUNDLED:
            values["history"] = str(Path(values["history"]).resolve())
    check_output(output)
    return to_html(execute(notebook, values))
