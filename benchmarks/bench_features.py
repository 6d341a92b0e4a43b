"""Benchmark: `wtal features` throughput, in seconds of video per second of extraction.

    python benchmarks/bench_features.py                       # a 60 s clip, r2plus1d_18, on CPU (and CUDA when present)
    python benchmarks/bench_features.py --backbone r3d_18 --seconds 20 --device cpu

Generates a clip (320x240, 30 fps, H.264 where PyAV has libx264, else MPEG-4 part 2; a moving
square on a moving gradient), then runs :func:`wtal_kit.video.extract.run_extraction` on it with
the backbone at random weights: the same FLOPs as the pretrained ones, and nothing to download.
The real input size (frames resized to 128x171, 112x112 crops, 16 frames per 0.64 s segment)
and the default batch size are used. The time counted is decoding + the network for the video
(``ExtractionSummary.compute_seconds``); building the network and writing the store are not.
The number of CPU cores and the load average before and after are printed beside the figure:
other jobs on the machine slow it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wtal_kit.timegrid import num_segments  # noqa: E402
from wtal_kit.video import extract  # noqa: E402
from wtal_kit.video.decode import import_av  # noqa: E402


def write_test_clip(path: Path, seconds: float, fps: int = 30, width: int = 320, height: int = 240) -> str:
    """A synthetic clip; returns the codec used."""
    av = import_av()
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    ys, xs = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(round(seconds * fps))):
            image = np.empty((height, width, 3), np.uint8)
            image[..., 0] = (xs + 3 * i) % 256
            image[..., 1] = (ys + i) % 256
            image[..., 2] = (xs + ys) // 4 % 256
            x, y = (5 * i) % (width - 40), (3 * i) % (height - 40)
            image[y: y + 40, x: x + 40] = (255, 255, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the generated clip (default: %(default)s)")
    parser.add_argument("--backbone", default="r2plus1d_18", choices=extract.bb.BACKBONES, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=extract.DEFAULT_BATCH_SIZE, help="(default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CPU, and CUDA too when present (default: %(default)s)")
    args = parser.parse_args(argv)
    import torch

    devices = [args.device] if args.device != "auto" else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        codec = write_test_clip(clip, args.seconds)
        print(f"bench_features: {args.backbone} (random weights), a {args.seconds:g} s clip, 320x240, 30 fps, {codec}; "
              f"batch size {args.batch_size}; {os.cpu_count()} CPU cores, torch {torch.__version__}, "
              f"{torch.get_num_threads()} torch threads")
        for device in devices:
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            summary = extract.run_extraction([clip], Path(folder) / f"{device}.h5", backbone=args.backbone, weights="random",
                                             device=device, batch_size=args.batch_size, progress=False)
            total = time.perf_counter() - started
            name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
            print(f"  {device} ({name}): {summary.throughput:.2f} s of video per second "
                  f"({summary.video_seconds:.1f} s of video, {num_segments(summary.video_seconds)} segments, "
                  f"in {summary.compute_seconds:.1f} s; {total:.1f} s with building the network and writing the store); "
                  f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
