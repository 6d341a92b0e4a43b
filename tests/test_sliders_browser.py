"""The live hyperparameter sliders served by Voila and driven in headless chromium (the explorer's machinery).

One tiny run (the smoke preset: d=16) is started from the page and its row appears; a longer one
shows that a control is checked while it trains, and Stop ends it with its row marked stopped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import TRACEBACK_SIGNS, VOILA_CELL_ERROR, chromium_page, require_browser, require_ui, voila_app, wait_for_widgets

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "sliders.ipynb"
ROWS = "table.wtal-runs"


def wait_for(page, expression: str, timeout: float = 120) -> None:
    """page.wait_for_function, failing with the page's text (what the app said instead)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(expression, timeout=timeout * 1000)
    except PlaywrightTimeout:
        raise AssertionError(f"not seen within {timeout:g} s: {expression}\n--- page ---\n{page.inner_text('body')[-3000:]}"
                             f"\n--- console errors ---\n{page.console_errors}") from None


def set_text(page, label: str, value: str) -> None:
    """Type into an ipywidgets text box (found by its description) and commit it with Enter."""
    box = page.locator(".widget-inline-hbox", has=page.get_by_text(label, exact=True)).locator("input").first
    box.fill(value)
    box.press("Enter")


@pytest.mark.slow
def test_sliders_in_chromium(tmp_path):
    require_ui()
    require_browser()
    from playwright.sync_api import expect
    store = tmp_path / "store"
    with voila_app(NOTEBOOK, {"store": store, "preset": "smoke", "workers": 1}, log_path=tmp_path / "voila.log") as url:
        with chromium_page(viewport={"width": 1400, "height": 1600}) as page:
            page.goto(url)
            wait_for_widgets(page, timeout=120)
            page.get_by_text("Cost: seconds").wait_for(timeout=60_000)  # the cost, said before starting

            # a tiny run: its row appears, with its numbers and the paper's row of the same setting
            page.get_by_role("button", name="train").click()
            wait_for(page, f"() => /#1\\s+trained/.test(document.querySelector('{ROWS}').innerText)")
            table = page.inner_text(ROWS)
            assert "Table 1 · full method" in table and "62.3" in table  # the published row beside ours
            assert list((store).glob("*/entry.json"))  # it joined the results store

            # a longer run: while it trains, a negative margin is refused next to its control
            set_text(page, "iterations", "100000")
            page.get_by_role("button", name="train").click()
            wait_for(page, "() => /run #2 .*: [1-9][0-9]* \\/ 100000 iterations/.test(document.body.innerText)")
            set_text(page, "margin α", "-1")
            page.get_by_text("must be >= 0, got -1.0").wait_for(timeout=30_000)
            expect(page.get_by_role("button", name="train")).to_be_disabled(timeout=30_000)
            assert "training (" in page.inner_text(ROWS)  # still running while the control was checked

            # Stop ends it cleanly: its row says where it stopped; its checkpoint is kept outside the store's entries
            page.get_by_role("button", name="stop").click()
            wait_for(page, f"() => /stopped at iteration [0-9]+/.test(document.querySelector('{ROWS}').innerText)")
            assert list((store / ".stopped").glob("*/checkpoint.pt"))

            # the mAP-vs-tIoU panel drew both runs' lines and the paper's points
            lines = ("() => [...document.querySelectorAll('.js-plotly-plot')].map(p => (p.data || [])"
                     ".filter(t => t.visible !== false).map(t => t.name).join('|'))")
            wait_for(page, f"() => ({lines})().join('|').includes('#1 full method|paper: Table 1 · full method|"
                           "#2 full method (stopped)')", timeout=60)

            text = page.inner_text("body")
            assert not any(sign in text for sign in TRACEBACK_SIGNS) and VOILA_CELL_ERROR not in text
            assert page.blocked_requests == [] and page.console_errors == []  # works offline; every figure started
    assert url.process.poll() is not None  # the server is gone
