"""SIGTERM (and SIGINT, SIGKILL) sent to a running ``hcsim``, in a subprocess.

SIGTERM: exit 143, exactly ``hcsim: terminated`` on stderr, the previous
output unchanged, no temporary file, and no process left: sweep's worker
pool, bench's isolated size runs, report's Jupyter kernel.  SIGINT: the
same with 130 and ``hcsim: interrupted``.  SIGKILL of a sweep: the workers
end by themselves (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hc_contract import FLEET, REPO, Snapshot, children, python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


def wait_for(predicate, timeout=30.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pids) -> set[int]:
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.add(pid)
        except OSError:
            pass
    return out


def default_signals() -> None:
    """In the child: SIGINT and SIGTERM at their defaults, whatever pytest inherited.

    A shell starts a background job with SIGINT ignored, and Python keeps an
    ignored SIGINT ignored (as hcsim keeps SIGHUP under nohup): run that
    way, hcsim would rightly finish its work, and the test would not test
    the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def interrupt(tmp_path, argv, ready, sig=signal.SIGTERM, code=143, message="hcsim: terminated"):
    """Start ``hcsim ARGV``, wait until ``ready(pid)``, send ``sig``; assert the contract."""
    target = tmp_path / "out.csv"
    target.write_text("previous output\n")
    target.chmod(0o640)
    snap = Snapshot(tmp_path)
    proc = subprocess.Popen([*python(), *argv, "--output", str(target)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    try:
        assert wait_for(lambda: ready(proc.pid) or proc.poll() is not None), "never ready"
        assert proc.poll() is None, f"finished before the signal: {proc.stderr.read()}"
        seen = {p: cmdline(p) for p in children(proc.pid)}     # pid -> command line
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, (proc.returncode, err[-3000:])
    assert err == message + "\n", err[-3000:]
    assert wait_for(lambda: not alive(seen), timeout=10), \
        [cmdline(p) for p in alive(seen)]
    snap.assert_unchanged()
    return seen


def workers(n):
    return lambda pid: len(children(pid)) >= n and children(pid)


SWEEP = ["sweep", "--histories", "5000", "--releases", "60", "--strategy", "upstream",
         "--vmm", "qemu", "--jobs", "2"]


def test_sigterm_sweep_takes_its_workers(tmp_path):
    seen = interrupt(tmp_path, SWEEP, workers(2))
    assert len(seen) >= 2


def test_sigterm_sweep_on_a_local_dask_cluster(tmp_path):
    pytest.importorskip("distributed")

    def nannies(pid):
        return sum("spawn_main" in cmdline(c) for c in children(pid)) >= 2

    interrupt(tmp_path, [*SWEEP[:-2], "--dask", "--jobs", "2"], nannies)


def test_sighup_sweep(tmp_path):
    interrupt(tmp_path, SWEEP, workers(2), signal.SIGHUP, 129, "hcsim: hangup")


def test_sigint_sweep(tmp_path):
    interrupt(tmp_path, SWEEP, workers(2), signal.SIGINT, 130, "hcsim: interrupted")


def test_sigkill_sweep_workers_follow(tmp_path):
    """A parent killed outright cannot clean up: its workers end themselves."""
    proc = subprocess.Popen([*python(), *SWEEP], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        pool = wait_for(lambda: workers(2)(proc.pid))
        assert pool
        time.sleep(0.3)             # past the workers' initializer
        proc.kill()
        proc.wait(timeout=30)
        assert wait_for(lambda: not alive(pool), timeout=10), [cmdline(p) for p in alive(pool)]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_bench_takes_its_isolated_runs(tmp_path):
    interrupt(tmp_path, ["bench", "--quick"], workers(1))


def test_sigterm_fleet(tmp_path):
    started = time.monotonic()
    interrupt(tmp_path, ["fleet", "--history", "linux", "--inventory",
                         str(FLEET / "inventory.toml"), "--plan", str(FLEET / "plan.toml")],
              lambda pid: time.monotonic() - started > 2.5)


def test_sigterm_report_takes_the_kernel(tmp_path):
    nb = REPO / "notebooks" / "03-save-restore-cost.ipynb"

    def kernel(pid):
        return any("ipykernel" in cmdline(c) for c in children(pid))

    seen = interrupt(tmp_path, ["report", str(nb)], kernel)
    assert any("ipykernel" in line for line in seen.values()), seen


def test_sigterm_while_writing_removes_the_temp_file(tmp_path):
    """SIGTERM while the temporary file exists: removed, the old output kept."""
    target = tmp_path / "out.txt"
    target.write_text("previous output\n")
    snap = Snapshot(tmp_path)
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from hcsim import files
        from hcsim.frontends import cli, commands

        def slow_emit(text, output):
            with files.atomic_file(output) as fh:
                fh.write(text[:10])
                fh.flush()
                print("writing", flush=True)
                time.sleep(30)
                fh.write(text[10:])

        commands.emit = slow_emit
        sys.exit(cli.main(["vmms", "--output", {str(target)!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        assert any(p.name.startswith(".out.txt.") for p in tmp_path.iterdir())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and err == "hcsim: terminated\n", err
    snap.assert_unchanged()


def test_handler_is_restored_after_main():
    """In-process callers (notebooks, tests) get their own SIGTERM handler back."""
    from hc_contract import run
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    run(["vmms"])
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before
    assert os.getpid()
