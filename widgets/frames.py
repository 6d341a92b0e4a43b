"""The video frame under the explorer's time cursor, and a strip of thumbnails along the video.

``FramePanel(folder, run_videos)`` matches the run's video names to the files of ``folder`` by
file name (``wtal_kit.video.decode.find_videos``: .mp4 .avi .mkv .mov .webm .m4v); a video
without a file is a note in the panel, not an error. Frames are decoded on demand with PyAV:
``frame_at`` seeks to the keyframe before the time and decodes forward, and keeps the last frames
it decoded, so scrubbing back and forth decodes little; a video is never held whole in memory.
The frames go to the page as JPEG (a few kB each).

In the app (``background=True``) decoding runs in a :class:`~widgets.background.LatestOnly`
thread: a cursor that moves on while a frame decodes drops the stale one, and the kernel keeps
taking the page's messages.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import ipywidgets as w
import numpy as np

from wtal_kit.errors import WtalError
from widgets.background import LatestOnly

FRAME_WIDTH = 320  # pixels: the frame under the cursor is decoded at this width
THUMB_WIDTH = 96  # pixels: each thumbnail of the strip
THUMBS = 8  # thumbnails along a video
JPEG_QUALITY = 80


def jpeg(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class FramePanel:
    """The frame at a time of one video, and thumbnails along it (see the module's docstring).

    ``show(video, seconds)`` picks a video and a time; ``show_time(seconds)`` moves the cursor.
    ``widget`` is the panel; ``files`` maps each run video that has a file to it.
    """

    def __init__(self, folder, videos, *, background: bool = False):
        from wtal_kit.video.decode import find_videos

        self.folder = Path(folder)
        self.files: dict[str, Path] = find_videos(self.folder, list(videos))
        self.video: str | None = None
        self.seconds: float | None = None
        self.worker = LatestOnly(background=background)
        self.caption = w.HTML()
        self.image = w.Image(format="jpeg", layout=w.Layout(width=f"{FRAME_WIDTH}px", max_width="100%", height="auto"))
        self.strip = w.HBox(layout=w.Layout(flex_flow="row wrap", grid_gap="2px"))
        self.widget = w.VBox([self.caption, self.image, self.strip], layout=w.Layout(min_width="0"))
        self.image.add_class("wtal-frame")  # what a browser test or benchmark watches (its src changes with the frame)
        self.image.layout.display = "none"
        self._say(f"{len(self.files)} of {len(list(videos))} videos have a file in {self.folder.name}/")

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.caption.value = f"<div style='color:{color};font-size:90%'>{html.escape(text)}</div>"

    def show(self, video: str, seconds: float = 0.0) -> None:
        """Show ``video`` at ``seconds``, with its thumbnails; a video without a file says so."""
        self.video, self.seconds = video, float(seconds)
        self.worker.submit(lambda generation: self._draw_video(video, float(seconds), generation))

    def show_time(self, seconds: float) -> None:
        """Move to ``seconds`` in the current video (the stale frame, if one is being decoded, is dropped)."""
        video = self.video
        if video is None:
            return
        self.seconds = float(seconds)
        self.worker.submit(lambda generation: self._draw_frame(video, float(seconds), generation))

    def wait(self, timeout: float | None = 30) -> bool:
        return self.worker.wait(timeout)

    def _draw_video(self, video: str, seconds: float, generation: int) -> None:
        from wtal_kit.video.decode import thumbnails

        path = self.files.get(video)
        if path is None:
            self.image.layout.display = "none"
            self.strip.children = ()
            self._say(f"no video file for {video!r} in {self.folder.name}/ (names are matched by file name)")
            return
        try:
            strip = thumbnails(path, THUMBS, THUMB_WIDTH)
        except WtalError as error:
            self.image.layout.display = "none"
            self.strip.children = ()
            self._say(str(error), error=True)
            return
        if self.worker.superseded(generation):
            return
        self.strip.children = tuple(
            w.VBox([w.Image(value=jpeg(image), format="jpeg", layout=w.Layout(width=f"{THUMB_WIDTH}px")),
                    w.HTML(f"<div style='font-size:80%;color:#555;text-align:center'>{t:.1f} s</div>")])
            for t, image in strip)
        self._draw_frame(video, seconds, generation)

    def _draw_frame(self, video: str, seconds: float, generation: int) -> None:
        from wtal_kit.video.decode import frame_at

        path = self.files.get(video)
        if path is None:
            return
        try:
            image = frame_at(path, seconds, width=FRAME_WIDTH)
        except WtalError as error:
            self._say(str(error), error=True)
            return
        if self.worker.superseded(generation):
            return
        self.image.value = jpeg(image)
        self.image.layout.display = ""
        self._say(f"{video} at {seconds:.2f} s ({path.name})")
