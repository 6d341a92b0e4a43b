"""The reproduction notebooks: committed clean, parameterised, and executed end to end by `wtal reproduce --mode smoke`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from wtal_kit import experiments as E
from wtal_kit.experiments.notebooks import INJECTED_TAG, PARAMETERS_TAG, inject_parameters, notebook_path

REPO = Path(__file__).resolve().parents[1]
PARAMETERS = {"mode", "seeds", "store", "workers", "device", "features", "activitynet_features", "output_dir"}


def _parameters_cell(notebook):
    cells = [c for c in notebook.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1
    return cells[0]


@pytest.mark.parametrize("name", E.ALL_NAMES)
def test_each_notebook_is_committed_without_outputs_and_takes_the_documented_parameters(name):
    notebook = nbformat.read(notebook_path(name), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: committed with outputs"
    namespace = {}
    exec(_parameters_cell(notebook).source, namespace)
    assert PARAMETERS <= set(namespace)
    assert namespace["mode"] == "small" and namespace["seeds"] == [0, 1, 2]
    imports = [line.strip() for cell in notebook.cells if cell.cell_type == "code"
               for line in cell.source.splitlines() if line.strip().startswith(("import ", "from "))]
    project = [line for line in imports if "wtal_kit" in line or "widgets" in line]
    assert set(project) <= {"import wtal_kit", "import widgets"}, project


def test_parameters_are_injected_after_the_parameters_cell_once():
    notebook = nbformat.read(notebook_path("table1"), as_version=4)
    where = notebook.cells.index(_parameters_cell(notebook))
    inject_parameters(notebook, {"mode": "smoke", "seeds": [0, 1]})
    inject_parameters(notebook, {"mode": "smoke", "seeds": [3]})  # a second injection replaces the first
    injected = [c for c in notebook.cells if INJECTED_TAG in c.metadata.get("tags", [])]
    assert len(injected) == 1 and notebook.cells.index(injected[0]) == where + 1
    namespace = {}
    exec(notebook.cells[where].source + "\n" + injected[0].source, namespace)
    assert namespace["mode"] == "smoke" and namespace["seeds"] == [3]


def _wtal(*args, cwd):
    return subprocess.run([sys.executable, "-m", "wtal_kit.apps.cli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def smoke_reports(tmp_path_factory):
    """`wtal reproduce --mode smoke` over every artefact, run once for this module."""
    root = tmp_path_factory.mktemp("reproduce")
    store, out = root / "store", root / "reports"
    done = _wtal("reproduce", "--mode", "smoke", "--workers", "2", "--store", str(store), "--out", str(out),
                 "--no-progress", "--device", "cpu", cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return store, out, done


@pytest.mark.slow
def test_smoke_reproduction_writes_every_artefact(smoke_reports):
    store, out, done = smoke_reports
    summary = json.loads((out / "summary.json").read_text())
    assert [item["name"] for item in summary["notebooks"]] == list(E.ALL_NAMES)
    assert all(item["ok"] for item in summary["notebooks"]), summary["notebooks"]
    jobs = E.grid(None, "smoke", E.SMOKE_SEEDS, device="cpu")
    assert summary["grid"]["trained"] + summary["grid"]["cached"] == len(jobs)
    assert summary["grid"]["failed"] == []
    assert set(E.ResultsStore(store).keys()) == {job.key for job in jobs}
    index = (out / "index.html").read_text()
    for name in E.ALL_NAMES:
        assert (out / f"{name}.ipynb").is_file() and (out / f"{name}.html").is_file()
        assert f'href="{name}.html"' in index
        assert (out / f"{name}.csv").is_file(), name
    for name in ("figure2", "figure3", "figure4a", "figure4b", "figure5"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.pdf").is_file()
    assert "grid:" in done.stdout and "notebooks: 12 of 12 executed" in done.stdout


def test_smoke_tables_have_our_rows_beside_the_published_ones(smoke_reports):
    _, out, _ = smoke_reports
    for name in ("table1", "table2", "table3", "table4", "table5"):
        table = pd.read_csv(out / f"{name}.csv")
        text = table.to_csv()
        for variant in E.ARTEFACTS[name].variants:
            assert variant.label in text, (name, variant.label)
        assert "published" in text and "synthetic" in text, name
    claims = pd.read_csv(out / "claims.csv")
    assert len(claims) >= 11
    assert set(claims["verdict"]) <= {"agrees", "disagrees", "cannot tell", "not run"}
    audit = pd.read_csv(out / "audit.csv")
    assert len(audit) >= 4


@pytest.mark.slow
def test_a_second_reproduction_trains_nothing(smoke_reports):
    store, out, _ = smoke_reports
    again = _wtal("reproduce", "--mode", "smoke", "--only", "table3", "claims", "--workers", "1", "--store", str(store),
                  "--out", str(out.parent / "again"), "--no-progress", "--device", "cpu", cwd=REPO)
    assert again.returncode == 0, again.stderr
    summary = json.loads((out.parent / "again" / "summary.json").read_text())
    assert summary["grid"]["trained"] == 0 and summary["grid"]["cached"] > 0
    assert [item["name"] for item in summary["notebooks"]] == ["table3", "claims"]


@pytest.mark.slow
@pytest.mark.parametrize("args, words", [
    (["--mode", "small", "--features", "x.h5"], "--mode paper"),
    (["--mode", "paper", "--features", "missing.h5"], "no such feature store"),
    (["--workers", "0"], "--workers"),
    (["--seeds", "1", "1"], "seeds repeat"),
])
def test_bad_requests_give_one_line(tmp_path, args, words):
    done = _wtal("reproduce", *args, "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
    assert not (tmp_path / "s").exists()
