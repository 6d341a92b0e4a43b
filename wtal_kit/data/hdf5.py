"""HDF5 files: the feature store and the scores file.

Feature store (``wtal convert`` writes one; self-contained, no pickle)::

    /                    attrs: format="wtal-kit-feature-store", format_version, name,
                                seconds_per_segment, feature_dim, classes (JSON list), description,
                                and any extra ones of the writer (``wtal features``: extractor)
    /annotations/...     videos, subsets, durations, video_labels (N, C), instances/*, ambiguous/*
    /features/<video>    float32 (n_i, d), one dataset per video

C may be 0 (classes "[]", video_labels (N, 0), no instances): a store of one's own videos
without annotations, for inference only.

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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from wtal_kit import checks
from wtal_kit.atomic import atomic_path
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.errors import InputError
from wtal_kit.timegrid import num_segments

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


# -- reading untrusted files ----------------------------------------------------------
# Every object is looked up through these helpers: a missing name, a group where a dataset
# belongs, a link into another file, data stored outside the file, a wrong dtype or shape,
# non-finite numbers: one InputError naming the file, the video and the field.
def _member(group: h5py.Group, name: str, kind, source, *, video=None, field=None):
    field = field or name
    link = group.get(name, getlink=True)
    if link is None:
        raise InputError(f"missing {'group' if kind is h5py.Group else 'dataset'} {group.name.rstrip('/')}/{name}", file=source, video=video, field=field)
    if not isinstance(link, h5py.HardLink):
        raise InputError(f"{group.name.rstrip('/')}/{name} is a link to another place or file (refused)", file=source, video=video, field=field)
    obj = group[name]
    if not isinstance(obj, kind):
        raise InputError(f"{obj.name} is not an HDF5 {kind.__name__.lower()}", file=source, video=video, field=field)
    if kind is h5py.Dataset and (obj.external or obj.is_virtual):
        raise InputError(f"{obj.name} keeps its data outside this file (refused)", file=source, video=video, field=field)
    return obj


def _numbers(group, name, source, *, ndim: int, kinds: str = "iuf", video=None, field=None, finite=True) -> np.ndarray:
    """A numeric dataset read whole, checked for dtype, number of dimensions and finiteness."""
    dataset = _member(group, name, h5py.Dataset, source, video=video, field=field)
    field = field or name
    if dataset.dtype.kind not in kinds:
        raise InputError(f"{dataset.name} must be numeric, got dtype {dataset.dtype}", file=source, video=video, field=field)
    if dataset.ndim != ndim:
        raise InputError(f"{dataset.name} must be {ndim}-D, got shape {dataset.shape}", file=source, video=video, field=field)
    array = dataset[()]
    if finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{dataset.name} holds NaN or inf", file=source, video=video, field=field)
    return array


def _strings(group, name, source, *, field=None) -> np.ndarray:
    dataset = _member(group, name, h5py.Dataset, source, field=field)
    if dataset.dtype.kind not in "OS" or dataset.ndim != 1:
        raise InputError(f"{dataset.name} must be a 1-D string dataset, got {dataset.dtype} {dataset.shape}", file=source, field=field or name)
    return np.array(dataset.asstr()[()], dtype=object)


def _indices(group, name, source, size: int, *, field: str) -> np.ndarray:
    index = _numbers(group, name, source, ndim=1, kinds="iu", field=field)
    if len(index) and (index.min() < 0 or index.max() >= size):
        raise InputError(f"{group.name}/{name} holds an index outside [0, {size})", file=source, field=field)
    return index


def _attr(handle, name: str, source, *, field=None):
    if name not in handle.attrs:
        raise InputError(f"missing attribute {name!r}", file=source, field=field or name)
    value = handle.attrs[name]
    return value.item() if isinstance(value, np.generic) else value


def _positive_number(handle, name: str, source) -> float:
    value = _attr(handle, name, source)
    return checks.number(value, name, above=0, file=source)


def _positive_int(handle, name: str, source) -> int:
    value = _attr(handle, name, source)
    return checks.integer(value, name, minimum=1, maximum=None, file=source)


def _text_attr(handle, name: str, source) -> str:
    value = _attr(handle, name, source)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise InputError(f"attribute {name!r} must be text, got {value!r:.60}", file=source, field=name)
    return value


def _json_attr(handle, name: str, source, kind):
    text = _text_attr(handle, name, source)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise InputError(f"attribute {name!r} is not valid JSON", file=source, field=name) from None
    if not isinstance(value, kind):
        raise InputError(f"attribute {name!r} must be a JSON {kind.__name__}, got {type(value).__name__}", file=source, field=name)
    return value


def read_annotations(group: h5py.Group, source: str) -> Annotations:
    """The annotations group of a feature store or scores file, validated."""
    with _malformed(source):
        return _read_annotations(group, source)


def _read_annotations(group: h5py.Group, source: str) -> Annotations:
    classes = _json_attr(group, "classes", source, list)
    if not all(isinstance(c, str) for c in classes):
        raise InputError("attribute 'classes' must be a JSON list of names", file=source, field="classes")
    classes = tuple(classes)
    videos = _strings(group, "videos", source, field="videoname")
    inst = _member(group, "instances", h5py.Group, source)
    amb = _member(group, "ambiguous", h5py.Group, source)
    inst_video = _indices(inst, "video_index", source, len(videos), field="segments")
    inst_label = _indices(inst, "label_index", source, len(classes), field="labels")
    amb_video = _indices(amb, "video_index", source, len(videos), field="ambiguous")
    columns = {}
    for name, where, count in (("t_start", inst, len(inst_video)), ("t_end", inst, len(inst_video)),
                               ("a_start", amb, len(amb_video)), ("a_end", amb, len(amb_video))):
        values = _numbers(where, name.replace("a_", "t_"), source, ndim=1, field="segments" if where is inst else "ambiguous")
        if len(values) != count:
            raise InputError(f"{where.name}/{name.replace('a_', 't_')} has {len(values)} rows, video_index {count}", file=source,
                             field="segments" if where is inst else "ambiguous")
        columns[name] = values.astype(np.float64)
    instances = pd.DataFrame(
        {
            "video": videos[inst_video],
            "label": np.array(classes, dtype=object)[inst_label] if len(classes) else np.array([], dtype=object),
            "t_start": columns["t_start"],
            "t_end": columns["t_end"],
        }
    )
    if (columns["a_end"] < columns["a_start"]).any():
        raise InputError("an ambiguous interval ends before it starts", file=source, field="ambiguous")
    ambiguous = pd.DataFrame({"video": videos[amb_video], "t_start": columns["a_start"], "t_end": columns["a_end"]})
    return Annotations(
        name=_text_attr(group, "name", source),
        videos=videos,
        subsets=_strings(group, "subsets", source, field="subset"),
        classes=classes,
        durations=_numbers(group, "durations", source, ndim=1, field="duration", finite=False).astype(np.float64),
        video_labels=_numbers(group, "video_labels", source, ndim=2, kinds="iub", field="labels_all").astype(bool),
        instances=instances,
        ambiguous=ambiguous,
        source=source,
    )


@contextmanager
def _malformed(source):
    """Whatever else a damaged file raises inside h5py (a truncated chunk, a bad filter) as one InputError."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:  # h5py and the HDF5 library raise OSError, KeyError, ValueError, RuntimeError, ...
        text = str(exc).strip().splitlines()
        raise InputError(f"malformed HDF5 content ({type(exc).__name__}: {text[0] if text else ''})", file=source) from None


def open_hdf5(path) -> h5py.File:
    """An HDF5 file opened for reading, or one InputError line (missing, or not HDF5)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"not a readable HDF5 file ({exc})", file=path) from None


def read_file_annotations(path) -> Annotations:
    """The annotations of any wtal-kit HDF5 file (a feature store or a scores file)."""
    with open_hdf5(path) as handle, _malformed(path):
        if handle.get("annotations", getlink=True) is None:
            raise InputError("no 'annotations' group in this HDF5 file (a wtal-kit feature store or scores file has one)", file=path)
        return read_annotations(_member(handle, "annotations", h5py.Group, path), str(path))


def _open(path, expected_format: str) -> h5py.File:
    path = Path(path)
    handle = open_hdf5(path)
    try:
        with _malformed(path):
            found = handle.attrs.get("format")
    except InputError:
        handle.close()
        raise
    if found != expected_format:
        handle.close()
        raise InputError(f"not a {expected_format} file (format attribute: {found!r:.60})", file=path)
    return handle


# -- feature store --------------------------------------------------------------
def write_feature_store(path, dataset: FeatureDataset, *, progress: bool = True, attrs: dict | None = None) -> Path:
    """Write every video of ``dataset`` into an HDF5 feature store at ``path``.

    ``attrs``: more root attributes (text or numbers), e.g. what extracted the features
    (``wtal features`` records its backbone and weights); they cannot replace the format's own.
    """
    path = Path(path)
    annotations = dataset.annotations
    own = dict(
        format=STORE_FORMAT,
        format_version=FORMAT_VERSION,
        name=annotations.name,
        seconds_per_segment=dataset.seconds_per_segment,
        feature_dim=dataset.feature_dim,
        classes=json.dumps(list(annotations.classes)),
        description=portable_name(dataset.description),
    )
    attrs = dict(attrs or {})
    reserved = sorted(set(attrs) & set(own))
    if reserved:
        raise ValueError(f"attrs cannot replace the store's own attribute(s) {reserved}")
    _check_video_names(annotations, dataset.description or path)
    # refuse at once where the features cannot fit: HDF5 does not fail cleanly when the disk fills under it
    expected_bytes = int(num_segments(annotations.durations, dataset.seconds_per_segment).sum()) * dataset.feature_dim * 4
    with atomic_path(path, expected_bytes=expected_bytes) as tmp:
        with h5py.File(tmp, "w") as out:
            out.attrs.update(own)
            out.attrs.update(attrs)
            write_annotations(out.create_group("annotations"), annotations)
            features = out.create_group("features")
            for i in tqdm(range(len(dataset)), desc=f"writing {path.name}", unit="video", disable=not progress):
                features.create_dataset(annotations.videos[i], data=dataset.features(i))  # (n_i, d) float32
    return path


def open_feature_store(path) -> FeatureDataset:
    """Open an HDF5 feature store; features are read lazily, one video at a time."""
    path = Path(path)
    handle = _open(path, STORE_FORMAT)
    try:
        with _malformed(path):
            annotations = read_annotations(_member(handle, "annotations", h5py.Group, path), str(path))
            features = _member(handle, "features", h5py.Group, path)
            missing = [v for v in annotations.videos if features.get(v, getlink=True) is None]
            if missing:
                raise InputError("no features for this video", file=path, video=missing[0], field="features")
            seconds_per_segment = _positive_number(handle, "seconds_per_segment", path)
            feature_dim = _positive_int(handle, "feature_dim", path)
    except InputError:
        handle.close()
        raise

    def read_features(index: int) -> np.ndarray:
        video = annotations.videos[index]
        with _malformed(path):
            return _numbers(features, video, path, ndim=2, video=video, field="features")

    return FeatureDataset(
        annotations=annotations,
        seconds_per_segment=seconds_per_segment,
        feature_dim=feature_dim,
        read_features=read_features,
        description=str(path),
    )


def feature_store_attrs(path) -> dict:
    """The root attributes of a feature store (NumPy scalars as Python numbers), or one InputError line."""
    path = Path(path)
    with _open(path, STORE_FORMAT) as handle, _malformed(path):
        return {key: value.item() if isinstance(value, np.generic) else value for key, value in handle.attrs.items()}


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
    expected_bytes = sum(np.asarray(array).size for array in logits) * 4 + video_probs.nbytes
    with atomic_path(path, expected_bytes=expected_bytes) as tmp:
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
    with _open(path, SCORES_FORMAT) as handle, _malformed(path):
        annotations = read_annotations(_member(handle, "annotations", h5py.Group, path), str(path))
        group = _member(handle, "logits", h5py.Group, path)
        logits = {}
        for video in annotations.videos:
            if group.get(video, getlink=True) is None:
                raise InputError("no class activations for this video", file=path, video=video, field="logits")
            array = _numbers(group, video, path, ndim=2, kinds="f", video=video, field="logits")
            if array.shape[0] == 0 or array.shape[1] != annotations.num_classes:
                raise InputError(f"logits must be (n > 0, {annotations.num_classes}), got {array.shape}", file=path, video=video, field="logits")
            logits[video] = array
        # "video_scores": the name format version 1 files of wtal-kit 0.1 used for the same array
        name = "video_probs" if "video_probs" in handle or "video_scores" not in handle else "video_scores"
        video_probs = _numbers(handle, name, path, ndim=2, kinds="f", field="video_probs")
        if video_probs.shape != (annotations.num_videos, annotations.num_classes):
            raise InputError(f"video_probs must be {(annotations.num_videos, annotations.num_classes)}, got {video_probs.shape}",
                             file=path, field="video_probs")
        attrs = {}
        for key, value in handle.attrs.items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and np.isnan(value):
                value = None
            attrs[key] = value
        attrs["seconds_per_segment"] = _positive_number(handle, "seconds_per_segment", path)
        if attrs.get("kappa") is not None:
            attrs["kappa"] = _positive_number(handle, "kappa", path)
        for key in ("block_size", "k"):
            if attrs.get(key) is not None:
                attrs[key] = _positive_int(handle, key, path)
        if "config" in attrs:
            attrs["config"] = _json_attr(handle, "config", path, dict)
    return Scores(annotations=annotations, logits=logits, video_probs=video_probs, attrs=attrs, path=str(path))
