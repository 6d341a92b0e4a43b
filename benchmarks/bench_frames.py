"""The frame under the explorer's time cursor: how long a cursor move takes to give its frame.

    python benchmarks/bench_frames.py            # library: wtal_kit.video.decode.frame_at
    python benchmarks/bench_frames.py --browser  # and in a real browser: the explorer served by Voila

The clip is generated here (PyAV + libx264 at its default keyframe interval of 250 frames, the
worst common case for seeking): 60 s of 640 x 360 at 25 fps with moving content, the size of
THUMOS14's larger videos. Two kinds of move, each timed from a cold cache (first visit of a time):

- scrub: the cursor dragged forward in 0.4 s steps, then back;
- jump: random times anywhere in the video.

Library figures are the median and the 90th percentile of ``frame_at(path, t, width=320)``. The
browser figure is from a threshold-free page action: the cursor slider moved by one step, until
the page's frame image changes (its ``src``), median over the moves (target: <= 100 ms, issue 19).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
            from bench_frames_browser import browser_moves  # noqa: PLC0415 (only with --browser)

            took = browser_moves(clip)
            print(f"  browser cursor -> frame: median {statistics.median(took):6.1f} ms, "
                  f"max {max(took):6.1f} ms ({len(took)} moves; target <= 100 ms median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
