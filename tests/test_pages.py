"""The explorer's page opened again and again, as people use it (headless chromium, Voila as `wtal explore` serves it).

- twenty page views in a row: no uncaught error, every figure drawn, and alive (a threshold step
  redraws the figure: a figure whose model anywidget gave up on still draws once, but never again);
  each navigation runs the page's beforeunload, whose shutdown beacon must be accepted (a refused one
  is a console error);
- fifty page views opened and closed: afterwards the server holds its preheated pool and no more
  kernels, and about the memory it held before. The tabs are closed without beforeunload (as a
  crashed tab), so this is the server's own shutdown of a kernel whose page went away.

Both are bounded in count and in time (each wait has a timeout; the soak a deadline of its own).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from browser import (TRACEBACK_SIGNS, chromium_page, kernel_pids, require_browser, require_ui, tree_rss_mb, voila_app,
                     wait_for_widgets, wait_until_kernels_quiet)
from conftest import make_scores

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explorer.ipynb"
THRESHOLD_LINE = "() => document.querySelector('.js-plotly-plot')?.data?.[1]?.y?.[0]"
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(p => p.data && p.data.some(t => t.x && t.x.length) && p._fullLayout).length"""


@pytest.fixture(scope="module")
def scores_file(thumos_annotations, tmp_path_factory):
    from wtal_kit.data.hdf5 import write_scores

    split = thumos_annotations.select(thumos_annotations.indices("test"))
    scores = make_scores(split, seed=5)
    path = tmp_path_factory.mktemp("pages") / "scores_test.h5"
    write_scores(path, split, np.arange(split.num_videos), [scores.logits[v] for v in split.videos], scores.video_probs,
                 {**scores.attrs, "name": "pages", "subset": "test"})
    return path


@pytest.mark.slow
def test_twenty_page_views_every_figure_starts_and_stays_alive(scores_file, tmp_path):
    require_ui()
    require_browser()
    params = {"run": scores_file, "roots": scores_file.parent}
    with voila_app(NOTEBOOK, params, log_path=tmp_path / "voila.log") as url:
        with chromium_page(viewport={"width": 1400, "height": 1500}) as page:
            for view in range(20):
                page.console_errors.clear()
                page.goto(url)
                wait_for_widgets(page, timeout=120)
                page.wait_for_function(f"() => ({DRAWN})() === 3", timeout=60_000)
                before = page.evaluate(THRESHOLD_LINE)
                page.focus(".widget-slider .noUi-handle")
                page.keyboard.press("ArrowRight" if view % 2 == 0 else "ArrowLeft")
                step = 0.01 if view % 2 == 0 else -0.01
                page.wait_for_function(f"() => Math.abs(({THRESHOLD_LINE})() - ({before + step})) < 1e-6", timeout=60_000)
                text = page.inner_text("body")
                assert not any(sign in text for sign in TRACEBACK_SIGNS)
                assert page.console_errors == [], f"page view {view + 1}: {page.console_errors}"
            assert page.blocked_requests == []


@pytest.mark.slow
def test_fifty_closed_pages_leave_the_pool_and_no_more(scores_file, tmp_path):
    require_ui()
    require_browser()
    deadline = time.monotonic() + 600  # the whole soak, start to settled
    params = {"run": scores_file, "roots": scores_file.parent}
    with voila_app(NOTEBOOK, params, log_path=tmp_path / "voila.log", pool_size=1) as url:
        server = url.process.pid
        with chromium_page() as page:
            browser = page.context.browser
            wait_until_kernels_quiet(server, count=1, timeout=180)  # the preheated pool, quiet
            rss_before = tree_rss_mb(server)
            most = 1
            for _ in range(50):
                context = browser.new_context()
                view = context.new_page()
                view.goto(url)
                wait_for_widgets(view, timeout=120)
                context.close()  # the tab closed; no beforeunload runs
                most = max(most, len(kernel_pids(server)))
                assert time.monotonic() < deadline, "the soak took more than 10 minutes"
            # a closed page's kernel is shut down 5 s after its websocket closed; the pool refills once
            wait_until_kernels_quiet(server, count=1, timeout=max(30.0, deadline - time.monotonic()))
            kernels, rss_after = kernel_pids(server), tree_rss_mb(server)
    print(f"soak: 50 page views; kernels 1 before, {most} at the most, {len(kernels)} after; "
          f"server tree {rss_before:.0f} MB before, {rss_after:.0f} MB after")
    assert len(kernels) == 1
    assert most <= 8  # pages closed every few seconds: a handful in their 5 s of grace, never fifty
    assert rss_after < rss_before * 1.25 + 100  # the pool's kernel and the server, not fifty pages' worth
