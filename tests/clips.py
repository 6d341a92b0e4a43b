"""Video clips made inside the tests (PyAV), whose frames say their own index.

Frame i shows i as 8 black/white stripes across the top two thirds (bit b of i: stripe b white)
above a small square moving right, so a test reads back which source frame it got
(:func:`frame_index`). mpeg4 in .mp4, 30 fps, 64 x 48, a keyframe every 12 frames by default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FPS = 30
W, H = 64, 48


def write_clip(path, seconds: float, fps: int = FPS, size=(W, H), codec: str = "mpeg4", gop: int = 12) -> Path:
    """A clip whose frame i shows i as 8 stripes (top two thirds) above a square moving right (bottom third)."""
    width, height = size
    count = int(round(seconds * fps))
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = width, height, "yuv420p", gop
        for i in range(count):
            image = np.zeros((height, width, 3), np.uint8)
            for bit in range(8):
                if (i >> bit) & 1:
                    image[: 2 * height // 3, bit * width // 8: (bit + 1) * width // 8] = 255
            x = (2 * i) % (width - 8)
            image[2 * height // 3 + 2: 2 * height // 3 + 10, x: x + 8] = (255, 128, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def frame_index(image: np.ndarray) -> int:
    """The index a frame of write_clip shows (read from the centres of its stripes)."""
    height, width = image.shape[:2]
    top = image[: 2 * height // 3]
    stripe = width / 8
    return sum(1 << b for b in range(8) if top[:, int(stripe * b + stripe / 4): int(stripe * b + 3 * stripe / 4)].mean() > 128)
