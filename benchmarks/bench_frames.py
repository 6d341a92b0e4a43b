"""The frame under the explorer's time cursor: how long a cursor move takes to give its frame.

    python benchmarks/bench_frames.py            # library: wtal_kit.video.decode.frame_at
    python benchmarks/bench_frames.py --browser  # and in a real browser: the explorer served by Voila

The clip is generated here (PyAV + libx264 at its default keyframe interval of 250 frames, the
worst common case for seeking): 60 s of 640 x 360 at 25 fps with moving content, the size of
THUMOS14's larger videos. Two kinds of move, each timed from a cold cache (first visit of a time):

- scrub: the cursor dragged forward in 0.4 s steps, then back;
- jump: random times anywhere in the video.

Library figures are the median and the 90th percentile of ``frame_at(path, t, width=320)``. The
browser figure (``--browser``): the explorer served by Voila as ``wtal explore SCORES --videos DIR``
does, on scores of the clip (one video, no annotations), in Debian's chromium through Playwright;
the time cursor moved forward by ten ArrowRight presses (0.1 s) at a time, ``--pause`` seconds
apart, each timed in the page from the last key press to the frame image's new ``src``; median
over the moves (target: <= 100 ms, issue 19).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the browser helpers of the test suite (--browser)
sys.path.insert(0, str(REPO_ROOT))

SECONDS, FPS, SIZE = 60, 25, (640, 360)


def write_clip(path: Path) -> Path:
    import av

    width, height = SIZE
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}  # keyint stays x264's default, 250
        for i in range(SECONDS * FPS):
            image = np.roll(background, 4 * i, axis=1)
            image[20:60, (8 * i) % (width - 40):(8 * i) % (width - 40) + 40] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def percentile(values, q: float) -> float:
    return float(np.percentile(values, q))


def library(path: Path) -> dict:
    from wtal_kit.video.decode import clear_frame_cache, frame_at

    clear_frame_cache()
    frame_at(path, 0.0, width=320)  # opens the file once (the page does this when a video is chosen)
    scrub = list(np.arange(0.4, 20.0, 0.4)) + list(np.arange(19.8, 10.0, -0.4))
    jumps = list(np.random.default_rng(1).uniform(0, SECONDS, 40))
    times = {}
    for name, moves in (("scrub", scrub), ("jump", jumps)):
        clear_frame_cache()
        took = []
        for t in moves:
            started = time.perf_counter()
            frame_at(path, float(t), width=320)
            took.append(1000 * (time.perf_counter() - started))
        times[name] = took
    return times


WATCH = """() => {
  window.wtalFrameAt = null;
  const image = document.querySelector('.wtal-frame');
  new MutationObserver(() => { window.wtalFrameAt = performance.now(); })
    .observe(image, {attributes: true, attributeFilter: ['src']});
  document.addEventListener('keydown', () => { window.wtalKeyAt = performance.now(); }, true);
}"""


def browser_moves(clip: Path, moves: int = 30, pause: float = 0.4) -> list[float]:
    """Milliseconds from the last of ten cursor key presses to the frame image's new src, per move."""
    import numpy as np

    from browser import chromium_page, voila_app, wait_for_widgets
    from wtal_kit.data.annotations import Annotations
    from wtal_kit.data.hdf5 import write_scores
    from wtal_kit.video.decode import probe

    folder = clip.parent
    duration = probe(clip).duration
    segments = int(np.ceil(duration / 0.64))
    annotations = Annotations.without_labels("bench", [clip.stem], [duration]).with_classes(["A"])
    rng = np.random.default_rng(0)
    scores = write_scores(folder / "scores.h5", annotations, [0], [rng.normal(size=(segments, 1)).astype(np.float32)],
                          rng.random((1, 1)).astype(np.float32), {"seconds_per_segment": 0.64, "kappa": 4.0, "subset": "test"})
    took = []
    with voila_app(REPO_ROOT / "notebooks" / "explorer.ipynb", {"run": scores, "roots": folder, "videos": folder}) as url:
        with chromium_page(viewport={"width": 1400, "height": 1400}) as page:
            page.goto(url)
            wait_for_widgets(page, timeout=180)
            page.wait_for_function("() => document.querySelector('.wtal-frame')?.getAttribute('src')", timeout=120_000)
            page.evaluate(WATCH)
            page.focus(".wtal-cursor .noUi-handle")
            for _ in range(moves):
                page.evaluate("() => { window.wtalFrameAt = null; }")
                for _ in range(10):
                    page.keyboard.press("ArrowRight")
                page.wait_for_function("() => window.wtalFrameAt !== null && window.wtalFrameAt > window.wtalKeyAt",
                                       timeout=30_000)
                took.append(page.evaluate("() => window.wtalFrameAt - window.wtalKeyAt"))
                time.sleep(pause)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--browser", action="store_true", help="also time the explorer page in headless chromium")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        clip = write_clip(Path(folder) / "clip.mp4")
        print(f"bench_frames: a {SECONDS} s clip, {SIZE[0]}x{SIZE[1]} at {FPS} fps, libx264 keyint 250; "
              f"{os.cpu_count()} CPUs, load average {load:.1f} at the start")
        for name, took in library(clip).items():
            print(f"  library frame_at, {name:5s}: median {statistics.median(took):6.1f} ms, "
                  f"90th percentile {percentile(took, 90):6.1f} ms, max {max(took):6.1f} ms ({len(took)} moves)")
        if args.browser:
            took = browser_moves(clip)
            print(f"  browser cursor -> frame: median {statistics.median(took):6.1f} ms, "
                  f"max {max(took):6.1f} ms ({len(took)} moves; target <= 100 ms median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
