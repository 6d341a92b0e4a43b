"""Both apps in JupyterLab 4, as a notebook user opens them (headless chromium, a 1280-px window, the file browser open).

A notebook with ``widgets.explore(scores)`` and ``widgets.sliders(store=...)`` is run cell by cell:
both render, a threshold move changes the explorer's table, one smoke training draws the sliders'
charts, every figure and the table lie inside their output (nothing hidden or overflowing), and the
console logs no error. JupyterLab runs with its own config, runtime and data-free folders, a token,
and its news announcements off (they would ask the internet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from browser import TRACEBACK_SIGNS, chromium_page, require_browser, require_ui
from conftest import make_scores
from wtal_kit.apps.serve import free_port

REPO = Path(__file__).resolve().parents[1]
TOKEN = "wtal-jupyterlab-test"
# every .js-plotly-plot and the mAP table, measured against the output area that holds it
FITS = """() => [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot, .jp-OutputArea-output .wtal-map')]
  .filter(e => e.offsetParent !== null).map(e => {
    const area = e.closest('.jp-OutputArea-output').getBoundingClientRect(), box = e.getBoundingClientRect();
    return {what: e.className.baseVal ?? e.className, left: box.left - area.left, right: area.right - box.right,
            width: box.width, area: area.width};
  })"""


def notebook(path: Path, scores: Path, store: Path) -> None:
    import nbformat

    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells = [
        nbformat.v4.new_code_cell(f"import widgets\nwidgets.explore({str(scores)!r})"),
        nbformat.v4.new_code_cell(f"widgets.sliders(store={str(store)!r}, preset='smoke', workers=1)"),
    ]
    nbformat.write(book, path)


def run_cell(page, index: int) -> None:
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


@pytest.mark.slow
def test_both_apps_in_jupyterlab(thumos_annotations, tmp_path):
    require_ui()
    require_browser()
    pytest.importorskip("jupyterlab")
    from wtal_kit.data.hdf5 import write_scores

    split = thumos_annotations.select(thumos_annotations.indices("test"))
    scores = make_scores(split, seed=6)
    root = tmp_path / "lab"
    root.mkdir()
    scores_path = root / "scores_test.h5"
    write_scores(scores_path, split, np.arange(split.num_videos), [scores.logits[v] for v in split.videos],
                 scores.video_probs, {**scores.attrs, "name": "lab", "subset": "test"})
    notebook(root / "apps.ipynb", scores_path, tmp_path / "store")
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("WTAL_FIGURE_MODULE", None)  # a notebook: plotly's module travels with the figures
    port = free_port(8900)
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", f"--port={port}",
                               "--ip=127.0.0.1", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
                               "--ServerApp.port_retries=0"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "lab.log").read_text()[-3000:]
            time.sleep(0.5)
        with chromium_page(viewport={"width": 1280, "height": 1000}, timeout=120) as page:
            page.goto(f"http://127.0.0.1:{port}/lab/tree/apps.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            accept = page.locator("dialog.jp-Dialog .jp-mod-accept, .jp-Dialog .jp-mod-accept")
            try:  # "Select Kernel": the notebook's own, Python 3
                accept.first.wait_for(timeout=15_000)
                accept.first.click()
            except Exception:  # noqa: BLE001 - the kernel started without asking
                pass
            if not page.locator("#filebrowser").is_visible():
                page.locator("[data-id='filebrowser']").first.click()  # the file browser open, as in the issue
            assert page.locator("#filebrowser").is_visible()

            # the explorer: renders, its table and three figures inside the output
            run_cell(page, 0)
            page.wait_for_selector(".jp-OutputArea-output .wtal-map", timeout=180_000)
            page.wait_for_function("() => document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot').length >= 3",
                                   timeout=120_000)
            table = page.locator(".jp-OutputArea-output .wtal-map").first
            before = table.inner_text()
            page.locator(".jp-OutputArea-output .widget-slider .noUi-handle").first.focus()
            for _ in range(10):
                page.keyboard.press("ArrowRight")
            page.wait_for_function("(old) => document.querySelector('.jp-OutputArea-output .wtal-map').innerText !== old",
                                   arg=before, timeout=60_000)

            # the sliders: render, train one smoke run, draw their two charts
            run_cell(page, 1)
            page.wait_for_selector(".jp-OutputArea-output table.wtal-runs", timeout=180_000)
            page.get_by_text("Cost: seconds").wait_for(timeout=60_000)
            page.get_by_role("button", name="train").click()
            page.wait_for_function("() => /#1\\s+trained/.test(document.querySelector('table.wtal-runs').innerText)",
                                   timeout=120_000)
            page.wait_for_function("() => document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot').length >= 5",
                                   timeout=60_000)
            time.sleep(1)  # let the last charts lay out

            fits = page.evaluate(FITS)
            assert len(fits) == 6, fits  # three explorer figures, the table, two sliders charts
            outside = [f for f in fits if f["left"] < -1 or f["right"] < -1]
            assert not outside, f"parts outside their output (px past its edges): {outside}"
            squeezed = [f for f in fits if f["what"] != "wtal-map" and f["width"] < 0.4 * f["area"]]
            assert not squeezed, f"figures that do not use their output's width: {squeezed}"
            page.screenshot(path=str(tmp_path / "jupyterlab.png"), full_page=False)
            text = page.inner_text(".jp-Notebook")
            assert not any(sign in text for sign in TRACEBACK_SIGNS)
            assert page.console_errors == [], page.console_errors
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
