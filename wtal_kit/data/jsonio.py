"""ActivityNet-style JSON for ground truth and detections.

Ground truth::

    {"database": {"<video>": {"subset": "test", "duration": 169.8,
                              "annotations": [{"segment": [67.5, 75.9], "label": "Billiards"}, ...]}}}

Detections (results)::

    {"version": "...", "results": {"<video>": [{"label": "Billiards", "score": 0.93,
                                                "segment": [66.6, 76.2]}, ...]},
     "external_data": {...}}

Any tool of this field (the official ActivityNet evaluator included) reads these.
Files are written atomically; a rejected input writes nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from wtal_kit.atomic import atomic_write_text
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.tables import check_detections
from wtal_kit.errors import InputError


def read_json_object(path) -> dict:
    """A JSON file whose top level is an object; anything else is one InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:  # unreadable (permissions, a folder's race)
        raise InputError(f"cannot read ({exc.strerror or type(exc).__name__})", file=path) from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits, deep nesting
        raise InputError(f"not valid JSON ({type(exc).__name__}: {str(exc)[:120]})", file=path) from None
    if not isinstance(data, dict):
        raise InputError("top level must be a JSON object", file=path)
    return data


def _write_json(path, payload: dict) -> Path:
    # compact: with an indent, json falls back to its pure-Python encoder (minutes for millions of detections)
    return atomic_write_text(path, json.dumps(payload, separators=(",", ":"), allow_nan=False))


def _number(value) -> float:
    """A JSON number (or a numeric string) as a float; TypeError, ValueError or OverflowError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)  # OverflowError for an integer beyond float range


def _segment(entry, path, video, field="segment"):
    if not isinstance(entry, dict):
        raise InputError("each entry must be an object", file=path, video=video, field=field)
    segment = entry.get("segment")
    if not isinstance(segment, (list, tuple)) or len(segment) != 2:
        raise InputError(f"'segment' must be [start, end], got {segment!r}", file=path, video=video, field=field)
    try:
        start, end = _number(segment[0]), _number(segment[1])
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"'segment' must hold numbers, got {segment!r}", file=path, video=video, field=field) from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InputError(f"non-finite segment {segment!r}", file=path, video=video, field=field)
    if end < start:
        raise InputError(f"end < start in segment {segment!r}", file=path, video=video, field=field)
    label = entry.get("label")
    if not isinstance(label, str):
        raise InputError(f"'label' must be a string, got {label!r}", file=path, video=video, field="label")
    return label, start, end


# -- ground truth ---------------------------------------------------------------
def write_ground_truth_json(path, annotations: Annotations, subset: str | None = None) -> Path:
    """Write the ground truth of ``subset`` (all videos when None) as ActivityNet-style JSON."""
    database = {}
    for i in annotations.indices(subset):
        database[annotations.videos[i]] = {
            "subset": annotations.subsets[i],
            "duration": float(annotations.durations[i]),
            "annotations": [],
        }
    gt = annotations.ground_truth(subset)
    for video, label, start, end in zip(*(gt[c].tolist() for c in ("video", "label", "t_start", "t_end"))):
        database[video]["annotations"].append({"segment": [float(start), float(end)], "label": label})
    return _write_json(path, {"database": database})


def read_ground_truth_json(path, subset: str | None = None, classes=None, name: str | None = None) -> Annotations:
    """Read ActivityNet-style ground truth into :class:`Annotations`.

    Video-level labels are the labels of each video's instances. ``classes``
    fixes the class list (and its order); by default the sorted labels found.
    ``subset`` keeps only the videos of that subset.
    """
    path = Path(path)
    data = read_json_object(path)
    database = data.get("database")
    if not isinstance(database, dict):
        raise InputError("no 'database' object (ActivityNet ground-truth format)", file=path, field="database")
    videos, subsets, durations, rows = [], [], [], []
    for video, info in database.items():
        if not isinstance(info, dict):
            raise InputError("entry must be an object", file=path, video=video)
        if subset is not None and info.get("subset") != subset:
            continue
        try:
            duration = _number(info.get("duration"))
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"'duration' must be a number, got {info.get('duration')!r}", file=path, video=video, field="duration") from None
        if not math.isfinite(duration) or duration <= 0:
            raise InputError(f"duration must be > 0, got {duration!r}", file=path, video=video, field="duration")
        annotations = info.get("annotations", [])
        if not isinstance(annotations, list):
            raise InputError("'annotations' must be a list", file=path, video=video, field="annotations")
        videos.append(video)
        subsets.append(str(info.get("subset", "")))
        durations.append(duration)
        for entry in annotations:
            label, start, end = _segment(entry, path, video)
            rows.append((video, label, start, end))
    if not videos:
        raise InputError(f"no videos{'' if subset is None else f' in subset {subset!r}'}", file=path, field="database")
    instances = pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end"])
    found = sorted(set(instances["label"]))
    if classes is None:
        classes = found
    classes = tuple(classes)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        row = int(np.flatnonzero(instances["label"].to_numpy() == unknown[0])[0])
        raise InputError(f"unknown label {unknown[0]!r}", file=path, video=instances["video"].iat[row], field="label")
    index = {c: i for i, c in enumerate(classes)}
    position = {v: i for i, v in enumerate(videos)}
    video_labels = np.zeros((len(videos), len(classes)), dtype=bool)
    if len(instances):
        video_labels[instances["video"].map(position).to_numpy(), instances["label"].map(index).to_numpy()] = True
    return Annotations(
        name=name or path.stem,
        videos=np.array(videos, dtype=object),
        subsets=np.array(subsets, dtype=object),
        classes=classes,
        durations=np.array(durations, dtype=np.float64),
        video_labels=video_labels,
        instances=instances,
        source=str(path),
    )


# -- detections -----------------------------------------------------------------
def write_detections_json(path, detections: pd.DataFrame, *, videos=None, external_data: dict | None = None) -> Path:
    """Write a detections table as ActivityNet-style results JSON.

    ``videos`` lists videos to include even without detections (they get []).
    ``external_data`` records what produced the results (config, protocol, ...).
    """
    detections = check_detections(detections, source=path)
    results = {str(v): [] for v in (videos if videos is not None else [])}
    columns = [detections[c].tolist() for c in ("video", "label", "t_start", "t_end", "score")]
    for video, label, start, end, score in zip(*columns):
        results.setdefault(video, []).append({"label": label, "score": float(score), "segment": [float(start), float(end)]})
    payload = {"version": "wtal-kit 0.1", "results": results, "external_data": external_data or {}}
    return _write_json(path, payload)


def read_detections_json(path, classes=None) -> pd.DataFrame:
    """Read ActivityNet-style results JSON into a detections table.

    With ``classes`` given, a label outside it is an error (a typo in a results
    file would otherwise silently score 0).
    """
    path = Path(path)
    data = read_json_object(path)
    results = data.get("results")
    if not isinstance(results, dict):
        raise InputError("no 'results' object (ActivityNet results format)", file=path, field="results")
    known = None if classes is None else set(classes)
    rows = []
    for video, entries in results.items():
        if not isinstance(entries, list):
            raise InputError("results of a video must be a list", file=path, video=video, field="results")
        for entry in entries:
            label, start, end = _segment(entry, path, video)
            if known is not None and label not in known:
                raise InputError(f"unknown label {label!r} (not in the class list)", file=path, video=video, field="label")
            score = entry.get("score")
            if isinstance(score, (int, float)) and not isinstance(score, bool):
                try:
                    score = float(score)
                except OverflowError:
                    pass
            if not isinstance(score, float) or not math.isfinite(score):
                raise InputError(f"score must be a finite number, got {score!r}", file=path, video=video, field="score")
            rows.append((video, label, start, end, float(score)))
    table = pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end", "score"])
    return check_detections(table, source=path)
