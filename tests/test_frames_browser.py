"""Issue 19 in a real browser: the explorer served with --videos shows the frame under the time cursor, and
moving the cursor changes the frame shown (headless chromium through Playwright, Voila as `wtal explore`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from browser import TRACEBACK_SIGNS, VOILA_CELL_ERROR, chromium_page, require_browser, require_ui, voila_app, wait_for_widgets

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explorer.ipynb"
FRAME_SRC = "() => document.querySelector('.wtal-frame')?.getAttribute('src') || ''"


def test_moving_the_time_cursor_changes_the_frame(tmp_path):
    require_ui()
    require_browser()
    pytest.importorskip("av")
    from clips import write_clip
    from wtal_kit.data.annotations import Annotations
    from wtal_kit.data.hdf5 import write_scores

    videos = tmp_path / "videos"
    videos.mkdir()
    write_clip(videos / "walk.mp4", 3.0)
    write_clip(videos / "jump.mp4", 2.0)
    annotations = Annotations.without_labels("mine", ["walk", "jump"], [3.0, 2.0]).with_classes(["A", "B"])
    rng = np.random.default_rng(0)
    scores = write_scores(tmp_path / "scores_mine.h5", annotations, [0, 1],
                          [rng.normal(size=(5, 2)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)],
                          rng.random((2, 2)).astype(np.float32), {"seconds_per_segment": 0.64, "kappa": 4.0, "subset": "test"})
    with voila_app(NOTEBOOK, {"run": scores, "roots": tmp_path, "videos": videos}, log_path=tmp_path / "voila.log") as url:
        with chromium_page(viewport={"width": 1400, "height": 1400}) as page:
            page.goto(url)
            wait_for_widgets(page, timeout=120)
            page.wait_for_function(f"() => ({FRAME_SRC})() !== ''", timeout=60_000)
            assert page.locator(".wtal-frame").is_visible()
            assert "no ground truth for these videos" in page.inner_text("body")
            before = page.evaluate(FRAME_SRC)
            page.focus(".wtal-cursor .noUi-handle")
            for _ in range(20):  # 0.2 s on: six frames at 30 fps
                page.keyboard.press("ArrowRight")
            page.wait_for_function(f"(old) => ({FRAME_SRC})() !== old", arg=before, timeout=60_000)
            text = page.inner_text("body")
            assert not any(sign in text for sign in TRACEBACK_SIGNS) and VOILA_CELL_ERROR not in text
    assert url.process.poll() is not None
