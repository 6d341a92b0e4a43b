"""The explorer's video frames (widgets.frames): the frame under the cursor and thumbnails, from files
generated here (tests/clips.py: each frame shows its own index)."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("av")

from clips import FPS, frame_index, write_clip  # noqa: E402
from widgets.frames import THUMBS, FramePanel  # noqa: E402


def shown_index(image_bytes: bytes) -> int:
    from PIL import Image

    return frame_index(np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB")))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    write_clip(folder / "walk.mp4", 2.0)
    write_clip(folder / "jump.mp4", 1.0)
    (folder / "broken.mp4").write_bytes(b"\x00\x01not a video" * 100)
    return folder


def test_the_frame_under_the_cursor_follows_the_time(folder):
    panel = FramePanel(folder, ["walk", "jump", "broken", "absent"])
    assert sorted(panel.files) == ["broken", "jump", "walk"]
    assert "3 of 4 videos have a file" in panel.caption.value
    panel.show("walk", 1.0)
    assert shown_index(panel.image.value) == round(1.0 * FPS)  # frame 30: the frame on screen at 1.0 s
    assert len(panel.strip.children) == THUMBS and panel.image.layout.display == ""
    for seconds in (0.5, 1.9, 0.1):  # scrubbing back and forth
        panel.show_time(seconds)
        assert shown_index(panel.image.value) == int(seconds * FPS)
    assert "walk at 0.10 s" in panel.caption.value


def test_a_video_without_a_file_or_a_broken_one_is_a_note(folder):
    panel = FramePanel(folder, ["walk", "absent", "broken"])
    panel.show("absent")
    assert "no video file for &#x27;absent&#x27;" in panel.caption.value
    assert panel.image.layout.display == "none" and panel.strip.children == ()
    panel.show("broken")  # one line, in red; no exception reaches the page
    assert "broken.mp4" in panel.caption.value and "#b00020" in panel.caption.value
    panel.show_time(1.0)
    panel.show("walk", 0.0)
    assert shown_index(panel.image.value) == 0


def test_in_the_background_a_stale_frame_is_dropped(folder):
    panel = FramePanel(folder, ["walk"], background=True)
    panel.show("walk", 0.0)
    for seconds in np.linspace(0.1, 1.5, 15):  # quick moves while one decodes
        panel.show_time(float(seconds))
    assert panel.wait(30)
    assert shown_index(panel.image.value) == int(1.5 * FPS)  # the last move wins
    assert panel.worker.dropped >= 1 or panel.worker.started == 16


# -- in the explorer -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def own_scores():
    """Scores of one's own two videos, without annotations (what `wtal features` + `wtal infer` make)."""
    from wtal_kit.data.annotations import Annotations
    from wtal_kit.data.hdf5 import Scores

    sps = 0.64
    annotations = Annotations.without_labels("mine", ["walk", "jump"], [2.0, 1.0]).with_classes(["A", "B"])
    rng = np.random.default_rng(0)
    logits = {"walk": rng.normal(size=(4, 2)).astype(np.float32), "jump": rng.normal(size=(2, 2)).astype(np.float32)}
    return Scores(annotations=annotations, logits=logits, video_probs=rng.random((2, 2)).astype(np.float32),
                  attrs={"seconds_per_segment": sps, "kappa": 4.0})


def test_the_explorer_shows_the_frame_under_its_cursor_and_hides_what_needs_ground_truth(own_scores, folder):
    import wtal_kit
    from widgets.explorer import Explorer

    app = Explorer(wtal_kit.Localizer(own_scores), videos=folder)
    assert app.frames.layout.display == "" and app.frames.children == (app.frame_panel.widget,)
    chosen = app.videos.value
    assert app.frame_panel.video == chosen and len(app.frame_panel.strip.children) == THUMBS
    if chosen != "walk":
        app.videos.value = "walk"
    app.cursor.value = 1.2  # the time cursor moves: the frame follows
    assert shown_index(app.frame_panel.image.value) == int(1.2 * FPS)
    app.threshold.value = 0.3  # a settings move redraws the view, not the thumbnails
    assert shown_index(app.frame_panel.image.value) == int(1.2 * FPS)
    # no ground truth: no mAP table, no charts, no evaluation controls; the page says why
    assert app.map_table.value == "" and app.charts.layout.display == "none"
    assert app.tiou.layout.display == "none" and app.eval_protocol.layout.display == "none"
    assert "no ground truth for these videos" in app.summary.value and app.message.value == ""
    assert app.video_table["detections"].sum() > 0


def test_explore_in_a_notebook_takes_the_videos_folder(own_scores, folder):
    import wtal_kit
    import widgets

    widget = widgets.explore(wtal_kit.Localizer(own_scores), videos=folder, background=False)
    assert widget.explorer.frame_panel is not None and widget.explorer.frames.layout.display == ""
    with pytest.raises(wtal_kit.InputError, match="not a folder of videos"):
        widgets.explore(wtal_kit.Localizer(own_scores), videos=folder / "walk.mp4")
