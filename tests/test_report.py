"""``hcsim report``: a real notebook rerun on a history the notebooks never saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcsim import load, parse_strategy, parse_vmm
from hcsim.evaluation import measures
from hcsim.frontends import cli

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: The fastest notebook; it reports bytes per vCPU of every strategy.
FAST = NOTEBOOKS / "03-save-restore-cost.ipynb"

# Five releases, registers from "b", a std-hyp service at "a", a vendor-hyp
# service at "c" and 70 std-hyp services at "d", so upstream's STD_HYP_BMAP
# overflows into a fourth register: a shape no bundled history has.
EXTRA = "\n".join(f'[[service]]\nname = "EXTRA_{k:02d}"\nspace = "std-hyp"\n'
                  f'introduced = "d"\n' for k in range(70))
TOML = f"""name = "reader-history"
releases = ["a", "b", "c", "d", "e"]
registers_from = "b"

[[service]]
name = "PV_TIME"
space = "std-hyp"
functions = 2
introduced = "a"

[[service]]
name = "PTP"
space = "vendor-hyp"
introduced = "c"

{EXTRA}
"""


@pytest.fixture
def reader_history(tmp_path: Path) -> Path:
    path = tmp_path / "reader.toml"
    path.write_text(TOML)
    return path


def test_report_reruns_notebook_on_a_new_history(reader_history, tmp_path, capsys):
    out = tmp_path / "report.html"
    rc = cli.main(["report", str(FAST), "-p", "history", str(reader_history),
                   "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    html = out.read_text(encoding="utf-8")
    # Independent reason for the numbers: std has no service, so upstream's last
    # release lists STD_HYP_BMAP, VENDOR_HYP_BMAP and one overflow register for
    # std-hyp (71 services > 64 bits): 3 registers x 16 B under QEMU.
    h = load(reader_history)
    last = measures.cost_at(h, parse_strategy("upstream"), parse_vmm("qemu"),
                            len(h.releases) - 1)
    assert (last.registers, last.bytes_per_vcpu) == (3, 48)
    assert "history reader-history: 5 releases, 72 services, last release e" in html
    assert "upstream under qemu at e: 3 registers, 48 B per vCPU" in html
    assert "<img" in html and "data:image/png;base64" in html   # figures embedded
    assert "v7.3" not in html                                    # not the Linux history


def test_unknown_parameter_is_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "r.html"
    rc = cli.main(["report", str(FAST), "-p", "no_such_name", "1", "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "unknown parameter 'no_such_name'" in err
    assert not out.exists()


def test_missing_notebook_is_one_line_exit_2(tmp_path, capsys):
    rc = cli.main(["report", str(tmp_path / "nope.ipynb"), "--output",
                   str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("hcsim: error: ") and err.count("\n") == 1


def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc = cli.main(["report", str(FAST), "--output", str(blocker / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and err.count("\n") == 1


def test_bad_history_fails_before_running(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('releases = ["a", "a"]\n')
    out = tmp_path / "r.html"
    rc = cli.main(["report", str(FAST), "-p", "history", str(bad), "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "duplicate release 'a'" in err
    assert not out.exists()


def test_wrongly_typed_value_is_bad_input(tmp_path, capsys):
    rc = cli.main(["report", str(FAST), "-p", "max_vcpus", "many", "--output",
                   str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and "expected int" in err


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_parameter_can_be_set(notebook):
    """papermill skips a parameter line it cannot parse (e.g. a comment with '=')."""
    import ast

    import nbformat

    from hcsim.frontends import report

    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                for t in node.targets]
    assert assigned and list(report.parameters(notebook)) == assigned


def test_a_failing_notebook_is_one_line_exit_1_and_no_file(tmp_path, reader_history, capsys):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('history = "linux"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('import hcsim\n'
                                          'assert len(hcsim.load(history).releases) > 10, '
                                          '"too short"')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "short.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "r.html"
    rc = cli.main(["report", str(path), "-p", "history", str(reader_history),
                   "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert "AssertionError: too short" in err
    assert not out.exists() and not list(tmp_path.glob(".r.html*"))
