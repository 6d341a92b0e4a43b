"""``wtal reproduce``: train the grids, execute the reproduction notebooks headless, write reports.

The notebooks (``notebooks/reproduce_<name>.ipynb``, one per artefact of
:mod:`wtal_kit.experiments`) take their inputs in a cell tagged ``parameters``, as papermill
expects; :func:`inject_parameters` adds the values after it in a cell tagged
``injected-parameters``, as papermill does, so the same notebooks run under papermill,
Jupyter or this module. Jupyter packages (nbformat, nbclient, nbconvert; the ``ui`` extra)
are imported inside the functions that execute notebooks, never when the core is imported.

What a reproduction writes under its output folder (``reports/<mode>`` by default)::

    index.html              every artefact: status, time, and links to what follows
    <name>.ipynb            the executed notebook (outputs included)
    <name>.html             the same as a page
    <name>.csv              its table (figures 2-4 too: their numbers)
    <name>.png, <name>.pdf  its figure (figures only)
    summary.json            the grid's summary and each notebook's status
"""

from __future__ import annotations

import html
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from wtal_kit import experiments
from wtal_kit.atomic import atomic_write_text
from wtal_kit.errors import InputError

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"  # the checkout's notebooks/
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
MAX_PARALLEL_NOTEBOOKS = 4  # kernels at once; most of a notebook's time is its kernel's start and imports


def notebook_path(name: str) -> Path:
    """The reproduction notebook of an artefact (it ships with the repository checkout)."""
    path = NOTEBOOKS_DIR / f"reproduce_{name}.ipynb"
    if not path.is_file():
        raise InputError(f"the notebook of {name!r} is not installed here (notebooks ship with the repository checkout)",
                         file=path)
    return path


def inject_parameters(notebook, parameters: dict):
    """Put ``name = value`` lines after the ``parameters`` cell (replacing an earlier injection)."""
    import nbformat

    cells = [cell for cell in notebook.cells if INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])]
    where = next((i for i, cell in enumerate(cells) if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])), None)
    if where is None:
        raise InputError("the notebook has no cell tagged 'parameters'", field="parameters")
    source = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    notebook.cells = cells[: where + 1] + [cell] + cells[where + 1 :]
    return notebook


@dataclass
class NotebookOutcome:
    name: str
    ok: bool
    seconds: float
    message: str = ""  # the error's one line when not ok
    files: list = field(default_factory=list)  # what it wrote, names relative to the output folder


def execute_notebook(name: str, parameters: dict, out_dir: Path, *, timeout: int = 3600) -> NotebookOutcome:
    """Execute one reproduction notebook; write the executed copy and its HTML page; never raises on a cell error."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out_dir = Path(out_dir)
    notebook = inject_parameters(nbformat.read(notebook_path(name), as_version=4), parameters)
    started = time.perf_counter()
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path.cwd())}})
    ok, message = True, ""
    try:
        with open(out_dir / f".{name}.kernel.log", "w") as log:  # the kernel's own chatter stays out of the terminal
            client.execute(stderr=log)
    except CellExecutionError as error:
        ok = False
        message = _last_line(getattr(error, "evalue", "") or str(error), getattr(error, "ename", "error"))
    except Exception as error:  # the kernel died or timed out
        ok = False
        message = f"{type(error).__name__}: {_last_line(str(error))}"
    seconds = time.perf_counter() - started
    atomic_write_text(out_dir / f"{name}.ipynb", nbformat.writes(notebook))
    atomic_write_text(out_dir / f"{name}.html", _html_page(notebook))
    written = sorted(p.name for p in out_dir.iterdir() if p.name.startswith((f"{name}.", f"{name}_")))
    return NotebookOutcome(name, ok, seconds, message, written)


def _last_line(text: str, prefix: str | None = None) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return f"{prefix}: {line}" if prefix else line


def _html_page(notebook) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="classic").from_notebook_node(notebook)
    return body


def reproduce(names=None, mode: str = experiments.DEFAULT_MODE, seeds=None, *, store=experiments.DEFAULT_STORE, out_dir=None,
              features=None, activitynet_features=None, device: str = "auto", workers: int = 1,
              progress: bool = True, executor: str = "local", address: str | None = None,
              gpus_per_task: float | None = None, echo=print) -> dict:
    """Train what the named artefacts lack (one progress bar over the grid), execute their notebooks, write the index.

    ``executor``, ``address``, ``gpus_per_task``: where the trainings run
    (:func:`wtal_kit.experiments.run_jobs`; "ray" needs the ``[cluster]`` extra).
    Returns the summary also written to ``summary.json``: the grid's counts, and each notebook's status.
    """
    from tqdm.auto import tqdm

    names = experiments.artefact_names(names)
    mode = experiments.mode_name(mode)  # an unknown mode fails here, before anything is written
    seeds = experiments.check_seeds(seeds) if seeds else (experiments.SMOKE_SEEDS if mode == "smoke" else experiments.DEFAULT_SEEDS)
    if executor == "ray":
        from wtal_kit.experiments.ray_runner import import_ray

        import_ray()  # so does a missing Ray
    out_dir = Path(out_dir or Path("reports") / mode).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        notebook_path(name)  # every notebook exists before anything is trained
    started = time.perf_counter()
    grid = experiments.run_artefacts(names, mode, seeds, store, features=features, activitynet_features=activitynet_features,
                                     device=device, workers=workers, progress=progress, executor=executor,
                                     address=address, gpus_per_task=gpus_per_task)
    echo(f"grid: {grid.line()}")
    parameters = {
        "mode": mode, "seeds": list(seeds), "store": str(Path(store).resolve()), "workers": 1, "device": device,
        "features": None if features is None else str(Path(features).resolve()),
        "activitynet_features": None if activitynet_features is None else str(Path(activitynet_features).resolve()),
        "output_dir": str(out_dir),
    }
    outcomes = {}
    parallel = max(1, min(len(names), os.cpu_count() or 1, MAX_PARALLEL_NOTEBOOKS))
    bar = tqdm(total=len(names), desc="notebooks", unit="notebook", disable=not progress)
    with ThreadPoolExecutor(parallel) as pool:  # each notebook runs in its own kernel process
        futures = {pool.submit(execute_notebook, name, parameters, out_dir): name for name in names}
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[outcome.name] = outcome
            bar.update(1)
            if not outcome.ok:
                bar.write(f"notebook {outcome.name} failed: {outcome.message} (see {out_dir / (outcome.name + '.html')})")
    bar.close()
    outcomes = [outcomes[name] for name in names]
    summary = {
        "mode": mode, "seeds": list(seeds), "store": parameters["store"], "device": device, "executor": executor,
        "grid": {"trained": len(grid.trained), "cached": len(grid.cached), "failed": grid.failed, "seconds": grid.seconds},
        "notebooks": [outcome.__dict__ for outcome in outcomes],
        "seconds": time.perf_counter() - started,
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    atomic_write_text(out_dir / "index.html", index_page(summary))
    good = sum(outcome.ok for outcome in outcomes)
    echo(f"notebooks: {good} of {len(outcomes)} executed; reports in {out_dir}/index.html "
         f"({summary['seconds']:.0f} s in all)")
    return summary


def index_page(summary: dict) -> str:
    """A self-contained page listing every artefact of a reproduction with links to its outputs."""
    rows = []
    for item in summary["notebooks"]:
        name = item["name"]
        title = (experiments.ARTEFACTS[name].title if name in experiments.ARTEFACTS
                 else experiments.REPORT_TITLES.get(name, name))
        links = " ".join(f'<a href="{html.escape(f)}">{html.escape(Path(f).suffix[1:])}</a>'
                         for f in item["files"] if Path(f).suffix in (".html", ".csv", ".png", ".pdf", ".ipynb"))
        status = "ok" if item["ok"] else f"FAILED: {html.escape(item['message'])}"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(title)}</td><td>{status}</td>"
                    f"<td>{item['seconds']:.1f} s</td><td>{links}</td></tr>")
    grid = summary["grid"]
    failed = "".join(f"<li>{html.escape(key)}: {html.escape(message)}</li>" for key, message in grid["failed"])
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>wtal-kit reproduction ({html.escape(summary['mode'])} mode)</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}</style>
</head><body>
<h1>wtal-kit: reproduction of Islam &amp; Radke (WACV 2020), {html.escape(summary['mode'])} mode</h1>
<p>Seeds {html.escape(str(summary['seeds']))}; device {html.escape(summary['device'])}; results store
<code>{html.escape(summary['store'])}</code>. Grid: {grid['trained']} runs trained, {grid['cached']} from the store,
{len(grid['failed'])} failed ({grid['seconds']:.0f} s); {summary['seconds']:.0f} s in all.</p>
<p>Numbers measured on the embedded synthetic benchmark are synthetic-benchmark numbers, not THUMOS14 or
ActivityNet1.2 results; published numbers are labelled "published" in every table.</p>
{f'<p>Failed runs:</p><ul>{failed}</ul>' if failed else ''}
<table><tr><th>artefact</th><th>what</th><th>status</th><th>notebook time</th><th>outputs</th></tr>
{''.join(rows)}
</table></body></html>
"""
