"""Video files -> a feature store on the paper's time grid (``wtal features``).

Every video is resampled to 25 fps (:func:`~wtal_kit.video.decode.iter_frames_25fps`) and cut
into segments of 16 frames, 16 / 25 = 0.64 s each: the grid of the I3D features the paper uses
(:mod:`wtal_kit.timegrid`). A video of D seconds gets ``num_segments(D)`` = ceil(D / 0.64)
segments; the last one is filled up by repeating its last frame. Each segment is one clip
through a Kinetics-400 VideoResNet (:mod:`wtal_kit.video.backbone`), whose pooled 512-d output
is the segment's feature.

**RGB only.** The paper's I3D features join an RGB and an optical-flow stream. Flow needs TV-L1
or RAFT on every pair of frames, which costs more than the RGB network itself on a CPU, and
torchvision's RAFT is not available beside the torch this project pins; so the feature is the
RGB stream's 512-d. A model trained on W-TALC's I3D features needs those same features: train
on a store made here (``wtal train --dataset STORE.h5 --feature-dim 512``).

**Resumable per video.** Each finished video is written at once, atomically, into a scratch
folder beside the output (``.<store name>.parts/<video>.npz``, features and duration); the
store is assembled from it at the end (:func:`wtal_kit.data.hdf5.write_feature_store`, renamed
into place) and the folder removed. A killed run keeps the videos it finished, and a rerun
skips them, as it skips the videos of an existing store made with the same backbone, weights
and input size (recorded in its ``extractor`` attribute); any other existing file at the output
is refused, never overwritten. Scratch of other settings is discarded. A video is known by its name (the file's stem): delete the store to recompute a
changed file. Two runs must not write the same store at once.

A damaged or unreadable video is one line on stderr naming the file; the others go on, and
the store holds the videos that could be read.
"""

from __future__ import annotations

import json
import queue
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from wtal_kit import checks
from wtal_kit.atomic import atomic_path, atomic_write_text
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.hdf5 import feature_store_attrs, open_feature_store, write_feature_store
from wtal_kit.errors import InputError
from wtal_kit.timegrid import DEFAULT_SECONDS_PER_SEGMENT, num_segments
from wtal_kit.video import backbone as bb
from wtal_kit.video.decode import VIDEO_EXTENSIONS, iter_frames_25fps, probe, video_files

FRAMES_PER_SEGMENT = 16  # frames of one clip
FRAME_RATE = 25.0  # frames per second after resampling: 16 / 25 = 0.64 s, timegrid's DEFAULT_SECONDS_PER_SEGMENT
SECONDS_PER_SEGMENT = DEFAULT_SECONDS_PER_SEGMENT
STORE_SUFFIXES = (".h5", ".hdf5")
DEFAULT_BATCH_SIZE = 16  # clips per forward pass
PREFETCH = 2  # clip batches decoded ahead while the network runs


@dataclass
class ExtractionSummary:
    """What a run did. written: videos computed now; skipped: found finished (scratch or an earlier store);
    failed: video -> its one-line error; video_seconds / compute_seconds: the videos computed now and the
    wall time spent decoding and running the network on them."""

    path: Path
    videos: int = 0  # in the store
    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    video_seconds: float = 0.0
    compute_seconds: float = 0.0
    device: str = "cpu"

    @property
    def throughput(self) -> float:
        """Seconds of video per second of extraction (0 when nothing was computed)."""
        return self.video_seconds / self.compute_seconds if self.compute_seconds > 0 else 0.0

    def line(self) -> str:
        return (f"{self.path}: {self.videos} videos; {len(self.written)} written now, {len(self.skipped)} skipped (done before), "
                f"{len(self.failed)} failed; {self.video_seconds:.1f} s of video in {self.compute_seconds:.1f} s = "
                f"{self.throughput:.2f} s of video per second ({self.device})")


# -- clips --------------------------------------------------------------------------------------
def segment_clips(frames: Iterable[np.ndarray], count: int, frames_per_segment: int = FRAMES_PER_SEGMENT) -> Iterator[np.ndarray]:
    """``count`` clips of ``frames_per_segment`` consecutive frames: (F, H, W, 3) each.

    Clip ``i`` holds frames ``i F .. i F + F - 1``; where the frames run out, the last frame is
    repeated (the last segment of a video is padded so). Frames beyond ``count * F`` are not read.
    """
    frames = iter(frames)
    last = None
    for _ in range(count):
        clip = list(islice(frames, frames_per_segment))
        if clip:
            last = clip[-1]
        elif last is None:
            raise ValueError("no frames")
        clip += [last] * (frames_per_segment - len(clip))
        yield np.stack(clip)  # (F, H, W, 3)


def _batches(clips: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    while batch := list(islice(clips, size)):
        yield np.stack(batch)  # (B, F, H, W, 3) uint8


def prefetch(items: Iterator, depth: int = PREFETCH) -> Iterator:
    """``items`` produced by a background thread, up to ``depth`` ahead (decoding beside the network).

    An exception of the producer is raised here, in the consumer; a consumer that stops early
    stops the producer.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", done))
        except BaseException as exc:  # handed to the consumer
            slots.put(("error", exc))

    worker = threading.Thread(target=produce, name="wtal-video-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)


def resize_size(crop: int) -> tuple[int, int]:
    """(width, height) frames are scaled to before the centre crop: torchvision's 171 x 128 for a 112 crop."""
    height, width = bb.RESIZE_HW
    return round(width * crop / bb.CROP), round(height * crop / bb.CROP)


@torch.inference_mode()
def extract_video(model: torch.nn.Module, path, duration: float, *, device, batch_size: int = DEFAULT_BATCH_SIZE,
                  crop: int = bb.CROP, progress: bool = False) -> np.ndarray:
    """(num_segments(duration), 512) float32 features of one video file."""
    count = num_segments(duration, SECONDS_PER_SEGMENT)
    frames = iter_frames_25fps(path, fps=FRAME_RATE, size=resize_size(crop))  # (H, W, 3) uint8 each
    batches = prefetch(_batches(segment_clips(frames, count), batch_size))
    features = []
    with tqdm(total=count, desc=Path(path).name, unit="segment", leave=False, disable=not progress) as bar:
        for batch in batches:  # (B, 16, H, W, 3) uint8
            clips = bb.preprocess(torch.from_numpy(batch).to(device), crop)  # (B, 3, 16, crop, crop)
            if device.type == "cpu":
                clips = clips.contiguous(memory_format=torch.channels_last_3d)  # about 25 % faster on CPU
            features.append(model(clips).float().cpu().numpy())  # (B, 512)
            bar.update(len(batch))
    return np.concatenate(features)  # (count, 512)


# -- inputs ---------------------------------------------------------------------------------------
def video_inputs(inputs) -> dict[str, Path]:
    """Video files and folders (their video files, not recursive) -> {name (file stem): path}."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    found: dict[str, Path] = {}
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files = video_files(item)
        elif item.is_file():
            files = {item.stem: item}
        else:
            raise InputError("no such file or folder", file=item)
        for name, path in files.items():
            if name in found and found[name].resolve() != path.resolve():
                raise InputError(f"two videos are named {name!r} (also {found[name]}): names must be unique", file=path)
            found[name] = path
    if not found:
        raise InputError(f"no video files ({' '.join(VIDEO_EXTENSIONS)}) found", file=", ".join(map(str, inputs)))
    return found


def _note(line: str) -> None:
    tqdm.write(f"wtal features: {line}", file=sys.stderr)


# -- scratch: finished videos of an unfinished run -------------------------------------------
class Scratch:
    """``.<store name>.parts/`` beside the store: one ``<video>.npz`` per finished video, and the settings."""

    def __init__(self, out: Path, settings: dict):
        self.folder = out.parent / f".{out.name}.parts"
        self.settings = settings
        recorded = self.folder / "settings.json"
        try:
            same = json.loads(recorded.read_text()) == settings
        except (OSError, ValueError):
            same = False
        if self.folder.exists() and not same:  # made with another backbone, weights or size: not ours to reuse
            shutil.rmtree(self.folder, ignore_errors=True)
        if not recorded.exists():
            atomic_write_text(recorded, json.dumps(settings, sort_keys=True))  # makes the folder too

    def part(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def load(self, name: str):
        """(features (n, 512), duration) of a finished video, or None (absent or unreadable: computed again)."""
        try:
            with np.load(self.part(name), allow_pickle=False) as data:
                return data["features"], float(data["duration"])
        except (OSError, ValueError, KeyError):
            return None

    def save(self, name: str, features: np.ndarray, duration: float) -> None:
        with atomic_path(self.part(name)) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, features=features.astype(np.float32), duration=np.float64(duration))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _earlier_store(out: Path, settings: dict):
    """The existing store at ``out`` (its videos are done) when ``wtal features`` made it with ``settings``; None
    where there is none. Any other file there is refused, never overwritten (it may be someone's I3D features)."""
    if not out.exists():
        return None
    try:
        recorded = feature_store_attrs(out).get("extractor")
    except InputError:
        raise InputError("exists and is not a feature store; choose another output or remove it", file=out) from None
    try:
        same = recorded is not None and json.loads(recorded) == settings
    except (TypeError, ValueError):
        same = False
    if not same:
        made = "by another tool" if recorded is None else f"with other settings ({recorded})"
        raise InputError(f"exists, made {made}; choose another output or remove it", file=out)
    return open_feature_store(out)


def _annotated(files: dict, labels: Annotations) -> list:
    """The annotated videos that have a file, in the annotations' order (the others are noted)."""
    names = [v for v in labels.videos if v in files]
    absent = [v for v in labels.videos if v not in files]
    unlabelled = sorted(set(files) - set(labels.videos))
    if absent:
        _note(f"{len(absent)} annotated videos have no file and are left out (first: {absent[0]!r})")
    if unlabelled:
        _note(f"{len(unlabelled)} video files are not in {Path(labels.source).name} and are left out (first: {unlabelled[0]!r})")
    if not names:
        raise InputError("none of the video files is in the annotations", file=labels.source)
    return names


# -- the run ------------------------------------------------------------------------------------
def run_extraction(videos, out, backbone: str = "r2plus1d_18", weights="default", annotations=None, device="auto",
                   batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True, crop: int = bb.CROP) -> ExtractionSummary:
    """:func:`extract_features`, returning what it did (:class:`ExtractionSummary`)."""
    from wtal_kit.data.jsonio import read_ground_truth_json
    from wtal_kit.training.inference import resolve_device

    out = Path(out)
    if out.suffix.lower() not in STORE_SUFFIXES:
        raise InputError("the feature store must be an HDF5 file named .h5 or .hdf5", file=out)
    checks.integer(batch_size, "batch_size", minimum=1)
    checks.integer(crop, "crop", minimum=16, maximum=bb.CROP)
    checks.one_of(backbone, bb.BACKBONES, "backbone")
    files = video_inputs(videos)
    labels = read_ground_truth_json(annotations) if annotations is not None else None
    names = sorted(files) if labels is None else _annotated(files, labels)
    device = resolve_device(device)
    settings = {"backbone": backbone, "weights": bb.weights_label(weights), "frames_per_segment": FRAMES_PER_SEGMENT,
                "fps": FRAME_RATE, "resize": list(resize_size(crop)), "crop": crop}
    summary = ExtractionSummary(path=out, device=str(device))
    earlier = _earlier_store(out, settings)
    scratch = Scratch(out, settings)
    earlier_index = {v: i for i, v in enumerate(earlier.annotations.videos)} if earlier is not None else {}
    finished = {}  # name -> ("scratch", duration) or ("store", index)
    for name in names:
        if name in earlier_index:
            finished[name] = ("store", earlier_index[name])
        elif (part := scratch.load(name)) is not None:
            finished[name] = ("scratch", part[1])
    summary.skipped = [n for n in names if n in finished]
    todo = [n for n in names if n not in finished]
    model = bb.load_backbone(backbone, weights, device=device, progress=progress) if todo else None
    started = time.perf_counter()
    for name in tqdm(todo, desc="features", unit="video", disable=not progress):
        try:
            info = probe(files[name])
            features = extract_video(model, files[name], info.duration, device=device, batch_size=batch_size, crop=crop,
                                     progress=progress)
        except InputError as exc:
            summary.failed[name] = str(exc)
            _note(f"failed: {exc}")
            continue
        scratch.save(name, features, info.duration)
        finished[name] = ("scratch", info.duration)
        summary.written.append(name)
        summary.video_seconds += info.duration
    summary.compute_seconds = time.perf_counter() - started
    kept = [n for n in names if n in finished]
    if not kept:
        scratch.remove()
        raise InputError("no video could be read; nothing written", file=out)
    _assemble(out, kept, finished, scratch, earlier, labels, settings, progress)
    scratch.remove()
    summary.videos = len(kept)
    return summary


def _assemble(out, kept, finished, scratch, earlier, labels, settings, progress) -> None:
    """Write the store of the videos ``kept`` from the scratch folder and the earlier store."""
    if labels is not None:
        position = {v: i for i, v in enumerate(labels.videos)}
        annotations = labels.select([position[n] for n in kept])  # the annotation's durations: ground truth's time axis
        for name, duration in zip(kept, annotations.durations):
            kind, value = finished[name]
            if kind == "scratch" and abs(value - duration) > SECONDS_PER_SEGMENT:
                _note(f"{name}: the file lasts {value:.2f} s, the annotations say {duration:.2f} s (features follow the file)")
    else:
        durations = [finished[n][1] if finished[n][0] == "scratch" else earlier.annotations.durations[finished[n][1]] for n in kept]
        annotations = Annotations.without_labels(out.stem, kept, durations, source=out.name)

    def read_features(index: int) -> np.ndarray:
        kind, value = finished[kept[index]]
        if kind == "store":
            return earlier.features(value)
        part = scratch.load(kept[index])
        if part is None:
            raise InputError("a finished video's scratch file disappeared", file=scratch.part(kept[index]))
        return part[0]

    dataset = FeatureDataset(annotations=annotations, seconds_per_segment=SECONDS_PER_SEGMENT, feature_dim=bb.FEATURE_DIM,
                             read_features=read_features, description=f"wtal features: {settings['backbone']} ({settings['weights']})")
    write_feature_store(out, dataset, progress=progress, attrs={"extractor": json.dumps(settings, sort_keys=True)})


def extract_features(videos, out, backbone: str = "r2plus1d_18", weights="default", annotations=None, device="auto",
                     batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True, crop: int = bb.CROP) -> Path:
    """Per-segment features of video files, written as a feature store at ``out``; returns ``out``.

    videos: video files and folders (their .mp4 .avi .mkv .mov .webm .m4v files); a video's name
        is its file's stem. backbone: r3d_18, mc3_18 or r2plus1d_18 (:mod:`wtal_kit.video.backbone`).
    weights: "default" (torchvision's Kinetics-400 file, downloaded once), "random", or a state dict file.
    annotations: an ActivityNet-style ground-truth JSON: the store holds its videos that have a
        file, with its subsets, classes, durations and instances. None: every video, in subset
        "test", without classes (features for inference only).
    device: "auto" (CUDA when present), "cpu" or "cuda". batch_size: clips per forward pass.
    crop: the clip's side in pixels, 112 (the weights' input); smaller only to make tests fast.

    The store opens with :func:`wtal_kit.data.hdf5.open_feature_store`: seconds_per_segment 0.64,
    feature_dim 512, video ``i`` with ``num_segments(duration_i)`` rows.
    """
    return run_extraction(videos, out, backbone, weights, annotations, device, batch_size, progress, crop).path
