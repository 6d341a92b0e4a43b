"""The detection explorer served by Voila and driven in headless chromium (Debian's, through Playwright).

The server is always stopped, also when the test fails (``voila_app`` is a context manager).
Set WTAL_SCREENSHOT=path to also save the screenshot there (docs/explorer.png is made this way).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from browser import TRACEBACK_SIGNS, VOILA_CELL_ERROR, chromium_page, require_browser, require_ui, voila_app, wait_for_widgets

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explorer.ipynb"
TABLE = ".wtal-map"
TITLE = "() => document.querySelector('.js-plotly-plot')?.layout?.title?.text || ''"


def map_text(page) -> str:
    return page.inner_text(TABLE)


@pytest.mark.slow
def test_explorer_in_chromium(trained_quick_run, tmp_path):
    require_ui()
    require_browser()
    run_dir = trained_quick_run.run_dir
    with voila_app(NOTEBOOK, {"run": run_dir, "roots": run_dir}, log_path=tmp_path / "voila.log") as url:
        with chromium_page(viewport={"width": 1400, "height": 1500}) as page:
            page.goto(url)
            wait_for_widgets(page, timeout=120)
            page.wait_for_selector(TABLE, timeout=120_000)
            page.wait_for_function(f"() => ({TITLE})().includes('P(c|V)')", timeout=60_000)
            before_table, before_title = map_text(page), page.evaluate(TITLE)
            assert "@0.5" in before_table and "avg 0.1:0.1:0.9" in before_table and "the paper's" in before_table

            # the threshold slider (the first one) moved with the keyboard: the mAP shown changes
            page.focus(".widget-slider .noUi-handle")
            for _ in range(15):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(f"(old) => document.querySelector('{TABLE}').innerText !== old", arg=before_table, timeout=60_000)
            assert map_text(page) != before_table

            # another video from the list: the figure is redrawn for it
            options = page.locator("select[size]").first.locator("option")
            other = options.nth(3).get_attribute("value")
            page.locator("select[size]").first.select_option(index=3)
            page.wait_for_function(f"(old) => ({TITLE})() !== old && ({TITLE})() !== ''", arg=page.evaluate(TITLE), timeout=60_000)
            assert page.evaluate(TITLE) != before_title

            # a click on the figure moves the time cursor there, and the page says what lies under it
            box = page.locator(".js-plotly-plot").first.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.45)
            page.wait_for_function("() => /t = [1-9][0-9.]* s · segment [0-9]+/.test(document.body.innerText)", timeout=60_000)

            # a path outside the configured folders is refused, in one line, and the app keeps working
            page.get_by_placeholder("run folder or scores file").fill("/etc")
            page.get_by_role("button", name="open").click()
            page.get_by_text("outside the folders this explorer may open").wait_for(timeout=30_000)

            text = page.inner_text("body")
            assert not any(sign in text for sign in TRACEBACK_SIGNS) and VOILA_CELL_ERROR not in text
            assert page.blocked_requests == []  # works offline
            screenshot = tmp_path / "explorer.png"
            page.screenshot(path=str(screenshot), full_page=False)
            assert screenshot.stat().st_size > 20_000
            if os.environ.get("WTAL_SCREENSHOT"):
                shutil.copy(screenshot, os.environ["WTAL_SCREENSHOT"])
        assert other is not None
    assert url.process.poll() is not None  # the server is gone


@pytest.mark.slow
def test_explorer_on_an_activitynet_layout_run(tmp_path):
    """Issue #12: the explorer opens a run of the ActivityNet1.2 layout (2383 videos, 100 classes) and a threshold move works."""
    require_ui()
    require_browser()
    import wtal_kit

    run_dir = tmp_path / "anet"
    config = wtal_kit.Config.from_preset("quick", dataset="synthetic-activitynet12", feature_dim=16, iterations=6, eval_every=6)
    wtal_kit.train(config, run_dir, quiet=True)
    from widgets.explorer_views import evaluated_thresholds, map_column, table_keys

    threshold = 0.5 - 15 * 0.01  # where fifteen ArrowLeft presses take the threshold slider (step 0.01)
    evaluation = wtal_kit.load_run(run_dir).localizer().evaluate(threshold=threshold, iou_thresholds=evaluated_thresholds(True))
    column = map_column(evaluation.per_class.mean(axis=0), activitynet=True)  # with avg 0.5:0.05:0.95, labelled
    expected = [f"{100 * float(column[key]):.1f}" for key in table_keys(True)]
    with voila_app(NOTEBOOK, {"run": run_dir, "roots": run_dir}, log_path=tmp_path / "voila.log") as url:
        with chromium_page(viewport={"width": 1400, "height": 1500}) as page:
            page.goto(url)
            wait_for_widgets(page, timeout=180)
            page.wait_for_selector(TABLE, timeout=180_000)
            before = map_text(page)
            assert "@0.5" in before and "avg 0.5:0.05:0.95" in before
            assert page.locator("select[size]").first.locator("option").count() > 100  # the validation videos are listed
            page.focus(".widget-slider .noUi-handle")
            for _ in range(15):
                page.keyboard.press("ArrowLeft")  # a lower threshold: more of this barely trained model's segments kept
            page.wait_for_function(f"(old) => document.querySelector('{TABLE}').innerText !== old", arg=before, timeout=120_000)
            # fifteen quick moves: stale recomputes are dropped, and the table settles on the last value's numbers
            cells = f"() => JSON.stringify(Array.from(document.querySelectorAll('{TABLE} td'), td => td.innerText))"
            try:
                page.wait_for_function(f"(want) => ({cells})() === want", arg=json.dumps(expected, separators=(",", ":")), timeout=120_000)
            except Exception:
                readout = page.locator(".widget-readout").first.inner_text()
                raise AssertionError(f"threshold {readout}: the table shows {page.evaluate(cells)}, expected {expected}") from None
            text = page.inner_text("body")
            assert not any(sign in text for sign in TRACEBACK_SIGNS) and VOILA_CELL_ERROR not in text
    assert url.process.poll() is not None
