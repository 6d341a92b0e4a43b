"""HDF5 files: the feature store and the scores file.

Feature store (``wtal convert`` writes one; self-contained, no pickle)::

    /                    attrs: format="wtal-kit-feature-store", format_version, name,
                                seconds_per_segment, feature_dim, classes (JSON list), description
    /annotations/...     videos, subsets, durations, video_labels (N, C), instances/*, ambiguous/*
    /features/<video>    float32 (n_i, d), one dataset per video

Scores file (``wtal infer`` writes one next to the checkpoint; read without torch)::

    /                    attrs: format="wtal-kit-scores", format_version, name, subset,
                                seconds_per_segment, kappa, block_size, k, config (JSON), checkpoint
    /annotations/...     the annotations of the scored videos (same layout as above)
    /logits/<video>      float32 (n_i, C) raw class activations W_f u + b_f (unclipped)
    /video_probs        float32 (N, C) P(c|V) of Eq. 2-4, rows in annotation order

Both are written to a temporary file next to the target and renamed into place
(:mod:`wtal_kit.atomic`), so a rejected input or an interrupted run never leaves a
half-written file. Neither records an absolute path of the writing machine: the
annotations' ``source`` attribute keeps the last path component only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from wtal_kit.atomic import atomic_path
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.errors import InputError

STORE_FORMAT = "wtal-kit-feature-store"
SCORES_FORMAT = "wtal-kit-scores"
FORMAT_VERSION = 1
_STR = h5py.string_dtype(encoding="utf-8")


def portable_name(source) -> str:
    """What an output file may record of a path: its last component, never a machine's absolute path.

    "/home/me/data/thumos14" -> "thumos14"; a text that is not an absolute path is kept."""
    text = str(source or "")
    return Path(text).name if os.path.isabs(text) else text


def _check_video_names(annotations: Annotations, where):
    for video in annotations.videos:
        if "/" in video or video in (".", ""):
            raise InputError("video name cannot be an HDF5 dataset name", file=where, video=video, field="videoname")


# -- annotations <-> HDF5 group ------------------------------------------------
def write_annotations(group: h5py.Group, annotations: Annotations, indices=None) -> None:
    """Write ``annotations`` (restricted to the videos ``indices`` if given) into ``group``."""
    if indices is not None:
        annotations = annotations.select(indices)
    position = {v: i for i, v in enumerate(annotations.videos)}
    class_index = {c: i for i, c in enumerate(annotations.classes)}
    group.attrs["name"] = annotations.name
    group.attrs["classes"] = json.dumps(list(annotations.classes))
    # only the last component (e.g. "thumos14", "gt.json"): an absolute path of the writing machine would leak into the file
    group.attrs["source"] = portable_name(annotations.source)
    group.create_dataset("videos", data=np.array(annotations.videos, dtype=object), dtype=_STR)
    group.create_dataset("subsets", data=np.array(annotations.subsets, dtype=object), dtype=_STR)
    group.create_dataset("durations", data=annotations.durations.astype(np.float64))
    group.create_dataset("video_labels", data=annotations.video_labels.astype(np.uint8))
    inst = annotations.instances
    g = group.create_group("instances")
    g.create_dataset("video_index", data=inst["video"].map(position).to_numpy(dtype=np.int64))
    g.create_dataset("label_index", data=inst["label"].map(class_index).to_numpy(dtype=np.int64))
    g.create_dataset("t_start", data=inst["t_start"].to_numpy(dtype=np.float64))
    g.create_dataset("t_end", data=inst["t_end"].to_numpy(dtype=np.float64))
    # ambiguous intervals of videos outside the list are not kept (THUMOS14 lists 3 for the excluded video_test_0001292)
    amb = annotations.ambiguous[annotations.ambiguous["video"].isin(position)]
    g = group.create_group("ambiguous")
    g.create_dataset("video_index", data=amb["video"].map(position).to_numpy(dtype=np.int64))
    g.create_dataset("t_start", data=amb["t_start"].to_numpy(dtype=np.float64))
    g.create_dataset("t_end", data=amb["t_end"].to_numpy(dtype=np.float64))


def read_annotations(group: h5py.Group, source: str) -> Annotations:
    try:
        classes = tuple(json.loads(group.attrs["classes"]))
        videos = np.array(group["videos"].asstr()[()], dtype=object)
        inst, amb = group["instances"], group["ambiguous"]
        instances = pd.DataFrame(
            {
                "video": videos[inst["video_index"][()]],
                "label": np.array(classes, dtype=object)[inst["label_index"][()]] if len(classes) else [],
                "t_start": inst["t_start"][()],
                "t_end": inst["t_end"][()],
            }
        )
        ambiguous = pd.DataFrame({"video": videos[amb["video_index"][()]], "t_start": amb["t_start"][()], "t_end": amb["t_end"][()]})
        return Annotations(
            name=str(group.attrs["name"]),
            videos=videos,
            subsets=np.array(group["subsets"].asstr()[()], dtype=object),
            classes=classes,
            durations=group["durations"][()].astype(np.float64),
            video_labels=group["video_labels"][()].astype(bool),
            instances=instances,
            ambiguous=ambiguous,
            source=source,
        )
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"malformed annotations group ({type(exc).__name__}: {exc})", file=source) from None


def open_hdf5(path) -> h5py.File:
    """An HDF5 file opened for reading, or one InputError line (missing, or not HDF5)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"not a readable HDF5 file ({exc})", file=path) from None


def _open(path, expected_format: str) -> h5py.File:
    path = Path(path)
    handle = open_hdf5(path)
    found = handle.attrs.get("format")
    if found != expected_format:
        handle.close()
        raise InputError(f"not a {expected_format} file (format attribute: {found!r})", file=path)
    return handle


# -- feature store --------------------------------------------------------------
def write_feature_store(path, dataset: FeatureDataset, *, progress: bool = True) -> Path:
    """Write every video of ``dataset`` into an HDF5 feature store at ``path``."""
    path = Path(path)
    annotations = dataset.annotations
    _check_video_names(annotations, dataset.description or path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as out:
            out.attrs.update(
                format=STORE_FORMAT,
                format_version=FORMAT_VERSION,
                name=annotations.name,
                seconds_per_segment=dataset.seconds_per_segment,
                feature_dim=dataset.feature_dim,
                classes=json.dumps(list(annotations.classes)),
                description=portable_name(dataset.description),
            )
            write_annotations(out.create_group("annotations"), annotations)
            features = out.create_group("features")
            for i in tqdm(range(len(dataset)), desc=f"writing {path.name}", unit="video", disable=not progress):
                features.create_dataset(annotations.videos[i], data=dataset.features(i))  # (n_i, d) float32
    return path


def open_feature_store(path) -> FeatureDataset:
    """Open an HDF5 feature store; features are read lazily, one video at a time."""
    path = Path(path)
    handle = _open(path, STORE_FORMAT)
    annotations = read_annotations(handle["annotations"], str(path))
    features = handle["features"]
    missing = [v for v in annotations.videos if v not in features]
    if missing:
        raise InputError("no features for this video", file=path, video=missing[0], field="features")

    def read_features(index: int) -> np.ndarray:
        return features[annotations.videos[index]][()]

    return FeatureDataset(
        annotations=annotations,
        seconds_per_segment=float(handle.attrs["seconds_per_segment"]),
        feature_dim=int(handle.attrs["feature_dim"]),
        read_features=read_features,
        description=str(path),
    )


# -- scores file ----------------------------------------------------------------
@dataclass(eq=False)
class Scores:
    """What inference produced for one split: raw class activations and video scores.

    logits: video -> (n_i, C) raw activations; video_probs: (N, C) P(c|V), rows in
    annotation order; attrs: kappa, block_size, k, seconds_per_segment, subset, config, ...
    """

    annotations: Annotations
    logits: dict
    video_probs: np.ndarray
    attrs: dict
    path: str = ""

    @property
    def seconds_per_segment(self) -> float:
        return float(self.attrs["seconds_per_segment"])

    @property
    def kappa(self):
        kappa = self.attrs.get("kappa")
        return None if kappa is None or (isinstance(kappa, float) and np.isnan(kappa)) else float(kappa)

    def video_probs_by_video(self) -> dict:
        return {v: self.video_probs[i] for i, v in enumerate(self.annotations.videos)}


def write_scores(path, annotations: Annotations, indices, logits: list, video_probs: np.ndarray, attrs: dict) -> Path:
    """Write a scores file for the videos ``indices`` of ``annotations`` (logits in that order)."""
    path = Path(path)
    indices = np.asarray(indices)
    video_probs = np.asarray(video_probs, dtype=np.float32)
    if len(logits) != len(indices) or video_probs.shape != (len(indices), annotations.num_classes):
        raise ValueError("logits / video_probs do not match the videos to write")
    _check_video_names(annotations, path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as out:
            out.attrs.update(format=SCORES_FORMAT, format_version=FORMAT_VERSION)
            for key, value in attrs.items():
                out.attrs[key] = np.nan if value is None else (json.dumps(value) if isinstance(value, (dict, list)) else value)
            write_annotations(out.create_group("annotations"), annotations, indices)
            group = out.create_group("logits")
            for video, array in zip(annotations.videos[indices], logits):
                group.create_dataset(video, data=np.asarray(array, dtype=np.float32))  # (n_i, C)
            out.create_dataset("video_probs", data=video_probs)  # (N, C)
    return path


def read_scores(path) -> Scores:
    """Read a scores file written by :func:`write_scores` (no torch needed)."""
    path = Path(path)
    with _open(path, SCORES_FORMAT) as handle:
        annotations = read_annotations(handle["annotations"], str(path))
        group = handle["logits"]
        logits = {}
        for video in annotations.videos:
            if video not in group:
                raise InputError("no class activations for this video", file=path, video=video, field="logits")
            array = group[video][()]
            if array.ndim != 2 or array.shape[1] != annotations.num_classes or not np.isfinite(array).all():
                raise InputError(f"logits must be finite (n, {annotations.num_classes}), got {array.shape}", file=path, video=video, field="logits")
            logits[video] = array
        # "video_scores": the name format version 1 files of wtal-kit 0.1 used for the same array
        video_probs = handle["video_probs" if "video_probs" in handle else "video_scores"][()]
        if video_probs.shape != (annotations.num_videos, annotations.num_classes) or not np.isfinite(video_probs).all():
            raise InputError(f"video_probs must be finite {(annotations.num_videos, annotations.num_classes)}", file=path, field="video_probs")
        attrs = {}
        for key, value in handle.attrs.items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and np.isnan(value):
                value = None
            attrs[key] = value
        if isinstance(attrs.get("config"), str):
            attrs["config"] = json.loads(attrs["config"])
    return Scores(annotations=annotations, logits=logits, video_probs=video_probs, attrs=attrs, path=str(path))
