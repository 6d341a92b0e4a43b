"""Reader for the W-TALC release format (THUMOS14 reduced, ActivityNet1.2).

A release is an annotation folder of ``.npy`` files::

    videoname.npy  subset.npy  classlist.npy  segments.npy  labels.npy
    labels_all.npy  duration.npy  [original_fps.npy extracted_fps.npy]
    [Ambiguous_test.txt]

(the fps files are accepted and not needed: times are converted with
``seconds_per_segment``, 16/25 s for these releases), plus a feature file
``<Dataset>-I3D-JOINTFeatures.npy``: a pickled object array
of (n_i, 2048) float arrays in the order of ``videoname.npy``. The object arrays
were written by Python 2, so strings may arrive as ``bytes``: they are decoded.

Loading a pickle can run arbitrary code, so the feature file is only read with
an explicit ``trust_pickle=True`` (CLI: ``--trust-pickle``). Convert it once with
``wtal convert`` into an HDF5 store; afterwards nothing needs pickle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.errors import InputError
from wtal_kit.timegrid import DEFAULT_SECONDS_PER_SEGMENT

REQUIRED_FILES = ("videoname", "subset", "classlist", "segments", "labels", "labels_all", "duration")
AMBIGUOUS_FILE = "Ambiguous_test.txt"


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _load_npy(path: Path) -> np.ndarray:
    # The annotation arrays are small object arrays of lists/strings written by the
    # dataset authors; they are data facts shipped with this repository.
    try:
        return np.load(path, allow_pickle=True, encoding="bytes")
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read ({exc})", file=path) from None


def _dataset_name(folder: Path) -> str:
    name = folder.name
    for suffix in ("-Annotations", "_Annotations", "Annotations"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].rstrip("-_")
    return name


def load_wtalc_annotations(folder, name: str | None = None) -> Annotations:
    """Read a W-TALC annotation folder into :class:`Annotations`.

    ``duration`` may have shape (N, 1) or (N,). ``Ambiguous_test.txt`` (lines
    ``name  start end``) is read when present.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("annotation folder not found", file=folder)
    arrays = {}
    for key in REQUIRED_FILES:
        path = folder / f"{key}.npy"
        if not path.is_file():
            raise InputError(f"missing annotation file (a W-TALC release has {', '.join(k + '.npy' for k in REQUIRED_FILES)})", file=path)
        arrays[key] = _load_npy(path)

    videos = np.array([_text(v) for v in arrays["videoname"]], dtype=object)
    n = len(videos)
    for key in REQUIRED_FILES:
        if key == "classlist":
            continue
        length = len(arrays[key])
        if length != n:
            raise InputError(f"has {length} entries but videoname.npy has {n}", file=folder / f"{key}.npy", field=key)
    duration = np.asarray(arrays["duration"], dtype=np.float64)
    if duration.ndim == 2 and duration.shape[1] == 1:
        duration = duration[:, 0]
    if duration.shape != (n,):
        raise InputError(f"shape {duration.shape}, expected ({n},) or ({n}, 1)", file=folder / "duration.npy", field="duration")
    classes = tuple(_text(c) for c in arrays["classlist"])
    class_index = {c: i for i, c in enumerate(classes)}
    subsets = np.array([_text(s) for s in arrays["subset"]], dtype=object)

    video_labels = np.zeros((n, len(classes)), dtype=bool)
    rows_video, rows_label, rows_start, rows_end = [], [], [], []
    for i, video in enumerate(videos):
        for label in arrays["labels_all"][i]:
            label = _text(label)
            if label not in class_index:
                raise InputError(f"unknown label {label!r} (not in classlist.npy)", file=folder / "labels_all.npy", video=video, field="labels_all")
            video_labels[i, class_index[label]] = True
        segments = list(arrays["segments"][i])
        labels = [_text(x) for x in arrays["labels"][i]]
        if len(segments) != len(labels):
            raise InputError(
                f"{len(segments)} segments but {len(labels)} labels", file=folder / "segments.npy", video=video, field="segments"
            )
        for segment, label in zip(segments, labels):
            segment = np.asarray(segment, dtype=np.float64).reshape(-1)
            if segment.shape != (2,):
                raise InputError(f"a segment must be [start, end], got {segment.tolist()}", file=folder / "segments.npy", video=video, field="segments")
            if not np.isfinite(segment).all():
                raise InputError(f"non-finite segment {segment.tolist()}", file=folder / "segments.npy", video=video, field="segments")
            if segment[1] < segment[0]:
                raise InputError(f"end < start in segment {segment.tolist()}", file=folder / "segments.npy", video=video, field="segments")
            if label not in class_index:
                raise InputError(f"unknown label {label!r} (not in classlist.npy)", file=folder / "labels.npy", video=video, field="labels")
            rows_video.append(video)
            rows_label.append(label)
            rows_start.append(segment[0])
            rows_end.append(segment[1])
    instances = pd.DataFrame({"video": rows_video, "label": rows_label, "t_start": rows_start, "t_end": rows_end})
    if len(instances) == 0:
        instances = pd.DataFrame({"video": [], "label": [], "t_start": [], "t_end": []})

    ambiguous = _read_ambiguous(folder / AMBIGUOUS_FILE)
    return Annotations(
        name=name or _dataset_name(folder),
        videos=videos,
        subsets=subsets,
        classes=classes,
        durations=duration,
        video_labels=video_labels,
        instances=instances,
        ambiguous=ambiguous,
        source=str(folder),
    )


def _read_ambiguous(path: Path) -> pd.DataFrame:
    rows = {"video": [], "t_start": [], "t_end": []}
    if path.is_file():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                start, end = float(parts[1]), float(parts[2])
            except (IndexError, ValueError):
                raise InputError(f"line {number} is not 'name start end': {line!r}", file=path) from None
            if end < start:
                raise InputError(f"line {number}: end < start", file=path, video=parts[0], field="segment")
            rows["video"].append(parts[0])
            rows["t_start"].append(start)
            rows["t_end"].append(end)
    return pd.DataFrame(rows).astype({"video": object, "t_start": np.float64, "t_end": np.float64})


def load_wtalc_features(path, annotations: Annotations, *, trust_pickle: bool = False) -> list[np.ndarray]:
    """Read ``<Dataset>-I3D-JOINTFeatures.npy`` (a pickled object array) — opt-in only.

    Returns one float32 (n_i, d) array per video of ``annotations``, validated
    (2-D, same d for all, finite, at least one segment).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("feature file not found", file=path)
    if not trust_pickle:
        raise InputError(
            "this W-TALC feature file is a Python pickle, and loading a pickle can run arbitrary code; "
            "pass trust_pickle=True (CLI: --trust-pickle) only for a file from a source you trust, "
            "then convert it once to HDF5 with `wtal convert`",
            file=path,
        )
    try:
        raw = np.load(path, allow_pickle=True, encoding="bytes")
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise InputError(f"cannot read feature file ({type(exc).__name__}: {exc})", file=path) from None
    if raw.ndim != 1 and raw.dtype == object:
        raw = raw.reshape(-1)
    if len(raw) != annotations.num_videos:
        raise InputError(
            f"has {len(raw)} videos but the annotations ({annotations.source}) have {annotations.num_videos}", file=path
        )
    features, dim = [], None
    for video, array in zip(annotations.videos, raw):
        array = np.asarray(array)
        if array.ndim != 2 or array.shape[0] == 0:
            raise InputError(f"features must be a non-empty (n, d) array, got shape {array.shape}", file=path, video=video, field="features")
        if dim is None:
            dim = array.shape[1]
        elif array.shape[1] != dim:
            raise InputError(f"feature dimension {array.shape[1]} differs from the first video's {dim}", file=path, video=video, field="features")
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise InputError("features contain NaN or inf", file=path, video=video, field="features")
        features.append(array)
    return features


def load_wtalc_release(
    annotation_folder,
    features_path,
    *,
    trust_pickle: bool = False,
    seconds_per_segment: float = DEFAULT_SECONDS_PER_SEGMENT,
    name: str | None = None,
) -> FeatureDataset:
    """Annotations + pickled features of a W-TALC release as an in-memory :class:`FeatureDataset`."""
    annotations = load_wtalc_annotations(annotation_folder, name=name)
    features = load_wtalc_features(features_path, annotations, trust_pickle=trust_pickle)
    return FeatureDataset(
        annotations=annotations,
        seconds_per_segment=seconds_per_segment,
        feature_dim=features[0].shape[1],
        read_features=features.__getitem__,
        description=f"W-TALC release {Path(features_path).name}",  # no absolute path: it is stored by write_feature_store
    )
