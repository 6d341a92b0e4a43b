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

NumPy stores object arrays as pickles, and loading a pickle can run arbitrary code.
Every ``.npy`` here is therefore read by :mod:`wtal_kit.data.npyfile`, whose
unpickler builds arrays, strings, numbers and lists only and refuses anything else.
The feature file is in addition only read with an explicit ``trust_pickle=True``
(CLI: ``--trust-pickle``). Convert it once with ``wtal convert`` into an HDF5 store;
afterwards nothing needs pickle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.npyfile import load_npy
from wtal_kit.errors import InputError
from wtal_kit.timegrid import DEFAULT_SECONDS_PER_SEGMENT

REQUIRED_FILES = ("videoname", "subset", "classlist", "segments", "labels", "labels_all", "duration")
AMBIGUOUS_FILE = "Ambiguous_test.txt"


def _text(value, path: Path, video=None) -> str:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{value[:40]!r} is not UTF-8 text", file=path, video=video, field=path.stem) from None
    if not isinstance(value, (str, np.str_)):
        raise InputError(f"expected a name, got {type(value).__name__} {value!r:.60}", file=path, video=video, field=path.stem)
    return str(value)


def _load_npy(path: Path) -> np.ndarray:
    # The annotation arrays are object arrays (lists of segments, of labels): NumPy stores them as a
    # pickle, read here with an allow-list that builds arrays and plain values only (wtal_kit.data.npyfile).
    return load_npy(path)


def _entries(array: np.ndarray, path: Path) -> np.ndarray:
    """A per-video annotation array as a 1-D sequence (an (N, 1) column is accepted)."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(f"must hold one entry per video, got an array of shape {array.shape}", file=path, field=path.stem)
    return array


def _items(value, path: Path, video) -> list:
    """The list one video has in segments.npy / labels.npy / labels_all.npy."""
    if isinstance(value, np.ndarray):
        return list(value) if value.ndim >= 1 else [value.item()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise InputError(f"expected a list, got {type(value).__name__} {value!r:.60}", file=path, video=video, field=path.stem)


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

    paths = {key: folder / f"{key}.npy" for key in REQUIRED_FILES}
    arrays = {key: (array if key == "duration" else _entries(array, paths[key])) for key, array in arrays.items()}
    videos = np.array([_text(v, paths["videoname"]) for v in arrays["videoname"]], dtype=object)
    n = len(videos)
    for key in REQUIRED_FILES:
        if key == "classlist":
            continue
        length = len(arrays[key]) if arrays[key].ndim else 1
        if length != n:
            raise InputError(f"has {length} entries but videoname.npy has {n}", file=paths[key], field=key)
    try:
        duration = np.asarray(arrays["duration"], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"durations must be numbers, got dtype {arrays['duration'].dtype}", file=paths["duration"], field="duration") from None
    if duration.ndim == 2 and duration.shape[1] == 1:
        duration = duration[:, 0]
    if duration.shape != (n,):
        raise InputError(f"shape {duration.shape}, expected ({n},) or ({n}, 1)", file=paths["duration"], field="duration")
    bad = ~(np.isfinite(duration) & (duration > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"duration must be > 0, got {duration[i]!r}", file=paths["duration"], video=videos[i], field="duration")
    classes = tuple(_text(c, paths["classlist"]) for c in arrays["classlist"])
    class_index = {c: i for i, c in enumerate(classes)}
    subsets = np.array([_text(s, paths["subset"], video) for s, video in zip(arrays["subset"], videos)], dtype=object)

    video_labels = np.zeros((n, len(classes)), dtype=bool)
    rows_video, rows_label, rows_start, rows_end = [], [], [], []
    for i, video in enumerate(videos):
        for label in _items(arrays["labels_all"][i], paths["labels_all"], video):
            label = _text(label, paths["labels_all"], video)
            if label not in class_index:
                raise InputError(f"unknown label {label!r} (not in classlist.npy)", file=paths["labels_all"], video=video, field="labels_all")
            video_labels[i, class_index[label]] = True
        segments = _items(arrays["segments"][i], paths["segments"], video)
        labels = [_text(x, paths["labels"], video) for x in _items(arrays["labels"][i], paths["labels"], video)]
        if len(segments) != len(labels):
            raise InputError(
                f"{len(segments)} segments but {len(labels)} labels", file=paths["segments"], video=video, field="segments"
            )
        for segment, label in zip(segments, labels):
            try:
                segment = np.asarray(segment, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError, OverflowError):
                raise InputError(f"a segment must be [start, end] numbers, got {segment!r:.60}", file=paths["segments"], video=video, field="segments") from None
            if segment.shape != (2,):
                raise InputError(f"a segment must be [start, end], got {segment.tolist()}", file=paths["segments"], video=video, field="segments")
            if not np.isfinite(segment).all():
                raise InputError(f"non-finite segment {segment.tolist()}", file=paths["segments"], video=video, field="segments")
            if segment[1] < segment[0]:
                raise InputError(f"end < start in segment {segment.tolist()}", file=paths["segments"], video=video, field="segments")
            if label not in class_index:
                raise InputError(f"unknown label {label!r} (not in classlist.npy)", file=paths["labels"], video=video, field="labels")
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
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read as UTF-8 text ({type(exc).__name__})", file=path) from None
        for number, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                start, end = float(parts[1]), float(parts[2])
            except (IndexError, ValueError):
                raise InputError(f"line {number} is not 'name start end': {line!r}", file=path) from None
            if not (np.isfinite(start) and np.isfinite(end)):
                raise InputError(f"line {number}: non-finite interval", file=path, video=parts[0], field="segment")
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
    # even with the opt-in, the pickle may only build arrays (wtal_kit.data.npyfile): a release holds nothing else
    raw = load_npy(path)
    if raw.ndim == 0:
        raise InputError("holds a single value, not one feature array per video", file=path)
    if raw.ndim != 1 and raw.dtype == object:
        raw = raw.reshape(-1)
    if len(raw) != annotations.num_videos:
        raise InputError(
            f"has {len(raw)} videos but the annotations ({annotations.source}) have {annotations.num_videos}", file=path
        )
    features, dim = [], None
    for video, array in zip(annotations.videos, raw):
        try:
            array = np.asarray(array, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"features must be numbers, got {type(array).__name__} {array!r:.60}", file=path, video=video, field="features") from None
        if array.ndim != 2 or array.shape[0] == 0:
            raise InputError(f"features must be a non-empty (n, d) array, got shape {array.shape}", file=path, video=video, field="features")
        if dim is None:
            dim = array.shape[1]
        elif array.shape[1] != dim:
            raise InputError(f"feature dimension {array.shape[1]} differs from the first video's {dim}", file=path, video=video, field="features")
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
