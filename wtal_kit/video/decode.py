"""Reading a user's own video files: probe, 25 fps frame stream, frames at a time cursor, thumbnails.

Decoding uses **PyAV** (``pip install 'wtal-kit[video]'``), not torchcodec or torchvision.io:
PyAV's pip wheel bundles FFmpeg (nothing to install with apt, no system FFmpeg version to
match), it runs on the CPU-only torch this project pins, and it does not depend on torch at
all, so no torch upgrade can break it (torchcodec and torchvision are each built against one
torch version; PyPI's torchvision does not import beside torch 2.13). ``import av`` happens
on first use, so ``wtal_kit.video`` imports without it.

Times are seconds from the start of the video stream (its ``start_time``). Two rules pick a
frame for a time ``t``:

* :func:`iter_frames_25fps` resamples to a fixed rate: output frame ``k`` (time ``k / fps``)
  is the decoded frame whose timestamp is **nearest** to ``k / fps`` (the earlier one on a tie);
  30 fps input gives source frames 0, 1, 2, 4, 5, 6, ... (round(1.2 k)).
* :func:`frame_at` returns the frame **on screen** at ``t``: the last frame whose timestamp is
  ``<= t``, as a player shows it (at 30 fps, t = 0.99 s gives frame 29, t = 1.0 s frame 30).

Every unreadable or damaged file raises :class:`~wtal_kit.errors.InputError` whose one line
names the file.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from wtal_kit import checks
from wtal_kit.errors import InputError, WtalError

PYAV_MISSING = "reading video files needs PyAV: pip install 'wtal-kit[video]' (or pip install av)"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")  # find_videos' preference order
CACHE_FRAMES = 64  # frames frame_at keeps per video (and width)
CACHE_VIDEOS = 8  # videos (and widths) frame_at keeps frames of
_NEIGHBOURS = 8  # frames decoded just before the target that frame_at also caches (scrubbing back)
_EPS = 1e-6  # seconds: timestamps closer than this are the same time


def import_av():
    """The ``av`` module, or a one-line :class:`WtalError` saying how to install it."""
    try:
        import av
    except ImportError:
        raise WtalError(PYAV_MISSING) from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads from a file's header (no frame is decoded).

    duration: seconds (the video stream's, else the container's); fps: the stream's average
    frame rate; frame_count: frames as the header says (estimated as duration * fps where it
    says nothing); width, height: pixels of a decoded frame.
    """

    path: Path
    duration: float
    fps: float
    frame_count: int
    width: int
    height: int


def _problem(exc: BaseException) -> str:
    """FFmpeg's reason without the file name PyAV appends (the InputError names the file itself)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _open(path: Path):
    """(container, video stream) of ``path``; any failure is one InputError naming the file."""
    av = import_av()
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", file=path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable video ({_problem(exc)})", file=path) from None
    if not container.streams.video:
        container.close()
        raise InputError("no video stream", file=path)
    return container, container.streams.video[0]


def _origin(stream) -> float:
    """Seconds of the stream's first timestamp: times are counted from it."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0


def _rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe(path) -> VideoInfo:
    """Duration, frame rate, frame count and size of a video file, from its header."""
    path = Path(path)
    container, stream = _open(path)
    with container:
        fps = _rate(stream)
        duration = 0.0
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        if not duration > 0 and container.duration is not None:
            duration = container.duration / 1_000_000  # av.time_base: microseconds
        if not duration > 0 and stream.frames and fps > 0:
            duration = stream.frames / fps
        width, height = stream.codec_context.width, stream.codec_context.height
    if not (math.isfinite(duration) and duration > 0):
        raise InputError("the file states no duration", file=path, field="duration")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError("the file states no frame rate", file=path, field="fps")
    if not (width > 0 and height > 0):
        raise InputError(f"frames of {width}x{height} pixels", file=path, field="size")
    frame_count = int(stream.frames) if stream.frames else int(round(duration * fps))
    return VideoInfo(path=path, duration=duration, fps=fps, frame_count=frame_count, width=width, height=height)


def _decoded(path: Path, container, stream) -> Iterator:
    """(seconds, av.VideoFrame) in presentation order; a decoding failure is an InputError naming the file."""
    av = import_av()
    origin, step = _origin(stream), 1.0 / (_rate(stream) or 25.0)
    index = 0
    try:
        for frame in container.decode(stream):
            seconds = frame.time - origin if frame.time is not None else index * step  # a frame without timestamp: by count
            index += 1
            yield seconds, frame
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"damaged video: decoding failed after {index} frames ({_problem(exc)})", file=path) from None


def _rgb(frame, size) -> np.ndarray:
    """(H, W, 3) uint8 RGB, scaled by FFmpeg (bilinear) to ``size`` = (width, height) when given."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", width=int(size[0]), height=int(size[1]), interpolation="BILINEAR")


def iter_frames_25fps(path, fps: float = 25.0, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """The video resampled to ``fps``: (H, W, 3) uint8 RGB frames, frame ``k`` at time ``k / fps``.

    Frame ``k`` is the decoded frame nearest in time to ``k / fps`` (see the module docstring);
    frames are produced while ``k / fps`` is before the end of the last decoded frame (its
    timestamp plus one source frame). ``size``: (width, height) to scale every frame to, or
    None for the file's own size. One decoded frame (and the one before it) is held at a time.
    """
    path = Path(path)
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    container, stream = _open(path)
    stream.thread_type = "AUTO"  # FFmpeg's own decoding threads
    with container:
        source_step = 1.0 / (_rate(stream) or fps)
        k, previous, last = 0, None, None
        converted = [None, None]  # (frame, its array): a frame emitted several times (input slower than fps) is converted once

        def image(entry) -> np.ndarray:
            if converted[0] is not entry[1]:
                converted[:] = [entry[1], _rgb(entry[1], size)]
            return converted[1]

        for entry in _decoded(path, container, stream):
            seconds = entry[0]
            while k / fps <= seconds + _EPS:
                target = k / fps
                nearer_previous = previous is not None and target - previous[0] <= seconds - target
                yield image(previous if nearer_previous else entry)
                k += 1
            previous = last = entry
        if last is None:
            raise InputError("no frame could be decoded", file=path)
        end = last[0] + source_step
        while k / fps < end - _EPS:
            yield image(last)
            k += 1


# -- frames at a time cursor --------------------------------------------------------------------
class _FrameCache:
    """Recently decoded frames: per (file, width) an LRU of (start, end, array), bounded; thread-safe."""

    def __init__(self, frames: int = CACHE_FRAMES, videos: int = CACHE_VIDEOS):
        self.frames, self.videos = frames, videos
        self.lock = threading.Lock()
        self.store: OrderedDict = OrderedDict()  # key -> OrderedDict(start -> (end, array))
        self.hits = self.misses = 0

    def get(self, key, seconds: float):
        with self.lock:
            entries = self.store.get(key)
            if entries is not None:
                for start, (end, array) in entries.items():
                    if start - _EPS <= seconds < end - _EPS:
                        entries.move_to_end(start)
                        self.store.move_to_end(key)
                        self.hits += 1
                        return array
            self.misses += 1
            return None

    def put(self, key, items) -> None:
        with self.lock:
            entries = self.store.setdefault(key, OrderedDict())
            self.store.move_to_end(key)
            for start, end, array in items:
                entries[start] = (end, array)
                entries.move_to_end(start)
            while len(entries) > self.frames:
                entries.popitem(last=False)
            while len(self.store) > self.videos:
                self.store.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.store.clear()
            self.hits = self.misses = 0

    def stats(self) -> dict:
        with self.lock:
            return {"hits": self.hits, "misses": self.misses, "videos": len(self.store),
                    "frames": sum(len(entries) for entries in self.store.values())}


_CACHE = _FrameCache()


def frame_cache_stats() -> dict:
    """frame_at's cache: hits, misses, videos and frames held (at most CACHE_VIDEOS and CACHE_FRAMES each);
    and of the misses, how many sought a keyframe (``seeks``) and how many decoded on (``decoded_on``)."""
    with _READERS.lock:
        return {**_CACHE.stats(), **_READERS.counts, "open_files": len(_READERS.open)}


def clear_frame_cache() -> None:
    """Forget every cached frame and close the files frame_at keeps open."""
    _CACHE.clear()
    _READERS.close_all()


def _scaled_size(stream, width: int | None):
    if width is None:
        return None
    width = checks.integer(width, "width", minimum=1)
    source_w, source_h = stream.codec_context.width, stream.codec_context.height
    return int(width), max(1, int(round(source_h * width / source_w)))


def frame_at(path, seconds: float, width: int | None = None) -> np.ndarray:
    """The frame on screen at ``seconds``: (H, W, 3) uint8 RGB, ``width`` pixels wide if given.

    Times before the start give the first frame, times past the end the last one. The frame, the
    one after it and the few before it are kept in a small LRU cache (:data:`CACHE_FRAMES` frames
    for each of :data:`CACHE_VIDEOS` files; a changed file is a new entry), so moving a cursor back
    and forth decodes nothing twice. The file stays open between calls (:class:`_Reader`): a time a
    little ahead of the last one (within :data:`FORWARD_SECONDS`, a cursor dragged forward) decodes on
    from there; any other seeks to the keyframe at or before it and decodes forward. Safe to call
    from several threads.
    """
    path = Path(path)
    seconds = float(seconds)
    if not math.isfinite(seconds):
        raise InputError(f"time must be a finite number of seconds, got {seconds!r}", file=path, field="seconds")
    seconds = max(seconds, 0.0)
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path.resolve()), stat and stat.st_mtime_ns, stat and stat.st_size, width)
    cached = _CACHE.get(key, seconds)
    if cached is not None:
        return cached
    reader = _READERS.take(key)
    try:
        if reader is not None and reader.reaches(seconds):
            items, answer = reader.decode_on(seconds)
            _READERS.count("decoded_on")
        else:
            if reader is not None:
                reader.close()
            reader = _Reader(path, width)
            items, answer = reader.seek_to(seconds)
            _READERS.count("seeks")
    except BaseException:
        if reader is not None:
            reader.close()
        raise
    _READERS.give_back(key, reader)
    _CACHE.put(key, items)
    return answer


FORWARD_SECONDS = 3.0  # a time this far ahead of a reader's position is decoded on, not sought


class _Reader:
    """An open video decoding forward for :func:`frame_at`: where it stopped, and the frames it
    decoded past the last answer (so that a cursor moved a little forward needs no seek)."""

    def __init__(self, path: Path, width: int | None):
        self.path = path
        self.container, self.stream = _open(path)
        self.stream.thread_type = "AUTO"  # FFmpeg's own decoding threads
        self.size = _scaled_size(self.stream, width)
        self.frames: Iterator | None = None  # (start, av.VideoFrame), what follows `ahead`
        self.position = -math.inf  # the start of the frame last answered
        self.ahead: list = []  # decoded frames after it, not yet passed

    def close(self) -> None:
        self.container.close()

    def reaches(self, seconds: float) -> bool:
        return self.frames is not None and self.position - _EPS <= seconds <= self.position + FORWARD_SECONDS

    def seek_to(self, seconds: float):
        """From the keyframe at or before ``seconds``: (frames to cache as (start, end, array), the answer)."""
        av = import_av()
        for attempt in ("seek", "start"):
            try:
                if attempt == "seek" and self.stream.time_base:
                    target = int((seconds + _origin(self.stream)) / self.stream.time_base)
                    self.container.seek(target, stream=self.stream, backward=True)
                else:
                    self.container.seek(0)
            except (av.error.FFmpegError, OSError):  # a file that cannot seek: decode from its start
                if attempt == "start":
                    raise InputError("cannot seek in this video", file=self.path) from None
                continue
            self.frames, self.ahead = _decoded(self.path, self.container, self.stream), []
            first = next(self.frames, None)
            if first is None:
                raise InputError("no frame could be decoded", file=self.path)
            if first[0] > seconds + _EPS and attempt == "seek" and seconds > 0:
                continue  # the seek landed after the time asked for: decode from the start instead
            self.ahead = [first]
            return self.decode_on(seconds)
        raise InputError("no frame could be decoded", file=self.path)

    def decode_on(self, seconds: float):
        """Decode forward from where the reader stopped to the frame on screen at ``seconds``."""
        before: deque = deque(maxlen=_NEIGHBOURS + 1)  # (start, frame), the newest last
        pending = iter(self.ahead)
        for start, frame in itertools.chain(pending, self.frames):  # (a generator's `yield from` would close self.frames)
            if before and start > seconds + _EPS:  # before[-1] is on screen at `seconds`
                ends = [s for s, _ in list(before)[1:]] + [start]
                items = [(s, e, _rgb(f, self.size)) for (s, f), e in zip(before, ends)]
                following = next(pending, None) or next(self.frames, None)  # where the cursor's next step ends
                items.append((start, following[0] if following else math.inf, _rgb(frame, self.size)))
                self.position = before[-1][0]
                self.ahead = [(start, frame)] + ([following] if following else []) + list(pending)
                return items, items[-2][2]
            before.append((start, frame))
        if not before:
            raise InputError("no frame could be decoded", file=self.path)
        # the end of the video: the last frame stays on screen for any later time
        ends = [s for s, _ in list(before)[1:]] + [math.inf]
        items = [(s, e, _rgb(f, self.size)) for (s, f), e in zip(before, ends)]
        self.frames, self.ahead = None, []  # nothing left to decode on: the next miss seeks
        return items, items[-1][2]


class _Readers:
    """Open readers, one per (file, width), at most :data:`CACHE_VIDEOS`; a reader is taken out while in use."""

    def __init__(self, limit: int = CACHE_VIDEOS):
        self.limit = limit
        self.lock = threading.Lock()
        self.open: OrderedDict = OrderedDict()
        self.counts = {"seeks": 0, "decoded_on": 0}

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def take(self, key):
        with self.lock:
            return self.open.pop(key, None)

    def give_back(self, key, reader: _Reader) -> None:
        with self.lock:
            old = self.open.pop(key, None)
            self.open[key] = reader
            evicted = [old] if old is not None else []
            while len(self.open) > self.limit:
                evicted.append(self.open.popitem(last=False)[1])
        for stale in evicted:
            stale.close()

    def close_all(self) -> None:
        with self.lock:
            readers, self.open = list(self.open.values()), OrderedDict()
            self.counts = dict.fromkeys(self.counts, 0)
        for reader in readers:
            reader.close()


_READERS = _Readers()


def thumbnails(path, count: int, width: int) -> list[tuple[float, np.ndarray]]:
    """``count`` evenly spaced frames: [(seconds, (H, W, 3) uint8)], at the centres of ``count`` equal parts."""
    checks.integer(count, "count", minimum=1)
    duration = probe(path).duration
    times = [(j + 0.5) * duration / count for j in range(int(count))]
    return [(t, frame_at(path, t, width=width)) for t in times]


# -- finding the files of a run's videos --------------------------------------------------------
def video_files(folder) -> dict[str, Path]:
    """The video files directly in ``folder`` by stem (extensions of :data:`VIDEO_EXTENSIONS`, any case).

    Where two files share a stem, the extension earlier in :data:`VIDEO_EXTENSIONS` wins.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder", file=folder)
    rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
    found: dict[str, Path] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        suffix = os.path.splitext(entry.name)[1].lower()
        if suffix not in rank or not entry.is_file():
            continue
        path = Path(entry.path)
        previous = found.get(path.stem)
        if previous is None or rank[suffix] < rank[previous.suffix.lower()]:
            found[path.stem] = path
    return found


def find_videos(folder, names) -> dict[str, Path]:
    """The files of the videos ``names`` in ``folder``, matched by stem; a name without a file is absent."""
    files = video_files(folder)
    return {name: files[name] for name in names if name in files}
