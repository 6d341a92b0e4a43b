"""From segment scores to detections: the two localization protocols.

``"paper"`` (Section 3.5 / 4.2 of the paper; docs/method.md, "Localization")
    For each class separately keep the segments with ``y_i^c >= threshold``
    (the paper discards scores *less than* 0.5); each maximal run
    ``[i_s, i_e]`` of kept segments is one detection with score
    ``q = max_{i_s..i_e} y_i^c + gamma * P(c|V)``. Times are the segment grid:
    ``t_start = start of segment i_s``, ``t_end = end of segment i_e``.

``"wsad_code"`` (the authors' released code, asrafulashiq/wsad, ``eval_detection.py``;
    read by us, facts only)
    Works on the *raw* logits ``s_i^c``. Per class the threshold is
    ``max - (max - min) * 0.5`` (the midpoint of that class's logits over the
    video, ``--thres 0.5``) and a segment is kept when ``s > threshold``
    (strictly). A run starts at grid index ``s`` (its first kept segment) and ends
    at grid index ``e`` = one past its last kept segment (exclusive end); runs
    with ``e - s >= 2`` are kept. The score is ``max(s[s:e]) + 0.7 * max over
    blocks of the top-10 mean of the raw logits`` (blocks of Eq. 2-4). Every class
    of every video gets detections (no video-level filter). The code reports
    ``[s, e]`` on the feature grid, which it compares with ground truth rounded
    to that grid (``round(seconds * 25/16)``); here they become seconds with
    :func:`wtal_kit.timegrid.feature_grid_to_seconds`, i.e. ``[s * sps, e * sps]``,
    so the evaluator's :func:`~wtal_kit.timegrid.seconds_to_feature_grid` gives
    back ``s`` and ``e`` exactly. An *Ambiguous* interval ``[a, b]`` seconds
    drops a detection when the integer grid ranges ``range(round(a/sps),
    round(b/sps))`` and ``range(s, e)`` share at least one index (the code's
    "IoU > 0" test on those two sets).

Everything is vectorized over segments and classes; no function here knows about
the model or torch. Times always go through :mod:`wtal_kit.timegrid`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from wtal_kit import checks, timegrid
# DEFAULT_MIN_LENGTH: the shortest detection kept, in segments, when min_length is not given: the
# paper keeps every run (1), the released code drops runs of one segment (2).
from wtal_kit.config import DEFAULT_MIN_LENGTH, LOCALIZATIONS, Config
from wtal_kit.data.tables import DETECTION_COLUMNS, check_detections, empty_detections
from wtal_kit.errors import InputError
from wtal_kit.timegrid import DEFAULT_SECONDS_PER_SEGMENT


_SINGLE_VIDEO_COLUMNS = ["label", "t_start", "t_end", "score"]


# ----------------------------------------------------------------------------------------------
# validation helpers


def _check_matrix(values, field: str) -> np.ndarray:
    """A finite float64 (T, C) array with T >= 1 and C >= 1, or InputError naming ``field``."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise InputError(f"must be a 2-D (segments, classes) array, got shape {array.shape}", field=field)
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(f"needs at least one segment and one class, got shape {array.shape}", field=field)
    try:
        array = array.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise InputError(f"must be numeric, got dtype {array.dtype}", field=field) from None
    if not np.isfinite(array).all():
        segment, klass = np.argwhere(~np.isfinite(array))[0]
        raise InputError(
            f"non-finite value {array[segment, klass]!r} at segment {segment}, class {klass}", field=field
        )
    return array


def _check_probabilities(array: np.ndarray, field: str) -> None:
    outside = (array < 0) | (array > 1)
    if outside.any():
        where = np.argwhere(outside)[0]
        raise InputError(
            f"probabilities must lie in [0, 1], got {array[tuple(where)]!r} at {tuple(where)}", field=field
        )


def _check_seconds_per_segment(seconds_per_segment) -> float:
    try:
        return timegrid.check_seconds_per_segment(seconds_per_segment)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), field="seconds_per_segment") from None


def _check_intervals(ambiguous) -> np.ndarray:
    """(m, 2) finite [start, end] seconds with end >= start; None -> (0, 2)."""
    if ambiguous is None:
        return np.zeros((0, 2))
    intervals = np.asarray(ambiguous, dtype=np.float64)
    if intervals.size == 0:
        return np.zeros((0, 2))
    if intervals.ndim != 2 or intervals.shape[1] != 2:
        raise InputError(
            f"must be an (m, 2) array of [start, end] seconds, got shape {intervals.shape}", field="ambiguous"
        )
    if not np.isfinite(intervals).all():
        raise InputError("non-finite interval bound", field="ambiguous")
    reversed_rows = np.flatnonzero(intervals[:, 1] < intervals[:, 0])
    if reversed_rows.size:
        row = int(reversed_rows[0])
        raise InputError(f"end < start ({intervals[row, 1]} < {intervals[row, 0]}, row {row})", field="ambiguous")
    return intervals


# ----------------------------------------------------------------------------------------------
# run finding (vectorized over segments and classes)


def _runs(kept: np.ndarray):
    """Maximal runs of True in each column of ``kept`` (T, C).

    Returns ``(classes, starts, ends)``, each (n,) int64, ordered by class, then
    start; ``ends`` is exclusive (one past the last kept segment).
    """
    return runs_in_rows(kept.T)


def runs_in_rows(kept_rows: np.ndarray):
    """Maximal runs of True in each row of ``kept_rows`` (R, L): ``(rows, starts, ends)``, ordered by row, then start.

    Works on the positions of the True values only (a split's kept segments are a small share of
    it), found in one row-major pass: a run breaks where positions stop being consecutive or a
    row ends.
    """
    num_rows, row_length = kept_rows.shape
    positions = np.flatnonzero(kept_rows)  # (m,) row-major: by row, then position
    if len(positions) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    row = positions // row_length  # (m,)
    breaks = np.flatnonzero((np.diff(positions) != 1) | (np.diff(row) != 0))  # (runs - 1,) last index of a run
    first = np.concatenate([[0], breaks + 1])  # (runs,) index of each run's first position
    last = np.concatenate([breaks, [len(positions) - 1]])  # (runs,) index of each run's last position
    rows = row[first].astype(np.int64)
    starts = (positions[first] - rows * row_length).astype(np.int64)
    ends = (positions[last] - rows * row_length + 1).astype(np.int64)
    return rows, starts, ends


def _run_max(values: np.ndarray, classes, starts, ends) -> np.ndarray:
    """max(values[starts[j]:ends[j], classes[j]]) for every run j; (n,)."""
    return run_max_in_rows(padded_rows(values.T), values.shape[0], classes, starts, ends)


def padded_rows(rows: np.ndarray) -> np.ndarray:
    """(R, L) -> (R * L + 1,): the rows one after another, then a -inf pad; what :func:`run_max_in_rows` reads."""
    return np.append(np.ascontiguousarray(rows).ravel(), -np.inf)


def run_max_in_rows(flat_rows: np.ndarray, row_length: int, rows, starts, ends) -> np.ndarray:
    """max over ``[starts[j], ends[j])`` of row ``rows[j]``, for rows of ``row_length`` flattened by :func:`padded_rows`; (n,)."""
    bounds = np.empty(2 * len(starts), dtype=np.int64)
    bounds[0::2] = rows * row_length + starts
    bounds[1::2] = rows * row_length + ends  # <= R * L, inside thanks to the pad
    return np.maximum.reduceat(flat_rows, bounds)[0::2]


def touches_ambiguous(starts, ends, intervals: np.ndarray, sps: float) -> np.ndarray:
    """(n,) bool: grid range ``range(starts[j], ends[j])`` shares an index with some
    ``range(round(a / sps), round(b / sps))`` of ``intervals`` (m, 2) seconds
    (the released code's "IoU > 0" test on index sets)."""
    if intervals.shape[0] == 0 or len(starts) == 0:
        return np.zeros(len(starts), dtype=bool)
    amb_start = timegrid.seconds_to_feature_grid(intervals[:, 0], sps)  # (m,)
    amb_end = timegrid.seconds_to_feature_grid(intervals[:, 1], sps)  # (m,) exclusive, like range()
    # range(s, e) and range(a, b) share an index  <=>  max(s, a) < min(e, b)
    shared = np.maximum(starts[:, None], amb_start[None, :]) < np.minimum(ends[:, None], amb_end[None, :])  # (n, m)
    return shared.any(axis=1)


_EMPTY_ARRAYS = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))


def _table(classes, t_start, t_end, score) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": np.asarray(classes, dtype=np.int64),
            "t_start": np.asarray(t_start, dtype=np.float64),
            "t_end": np.asarray(t_end, dtype=np.float64),
            "score": np.asarray(score, dtype=np.float64),
        },
        columns=_SINGLE_VIDEO_COLUMNS,
    )


# ----------------------------------------------------------------------------------------------
# the block rule (Eq. 2-4) in numpy


def block_topk_mean(x, block_size: int = Config.block_size, k: int = Config.k) -> np.ndarray:
    """Mean of the k largest values of each class in each block; (n_B, C).

    Blocks as in Eq. 2-4: ``n_B = max(1, floor(T / l_w))``; the first ``n_B - 1``
    blocks hold ``l_w`` consecutive segments, the last holds the rest (between
    ``l_w`` and ``2 l_w - 1`` segments; all T when T < 2 l_w). In each block B
    the mean is over ``k_eff = min(k, |B|)`` values. ``x``: (T, C), T >= 1.
    """
    values = _check_matrix(x, "x")  # (T, C)
    block_size = checks.integer(block_size, "block_size", minimum=1)
    k = checks.integer(k, "k", minimum=1)
    num_segments, num_classes = values.shape
    num_blocks = max(1, num_segments // block_size)  # n_B
    head_length = (num_blocks - 1) * block_size

    head = values[:head_length].reshape(num_blocks - 1, block_size, num_classes)  # (n_B - 1, l_w, C)
    k_head = min(k, block_size)
    head_means = np.sort(head, axis=1)[:, block_size - k_head :, :].mean(axis=1)  # (n_B - 1, C)

    tail = values[head_length:]  # (|B_last|, C), l_w <= |B_last| < 2 l_w unless T < l_w
    k_tail = min(k, tail.shape[0])
    tail_mean = np.sort(tail, axis=0)[tail.shape[0] - k_tail :].mean(axis=0)  # (C,)
    return np.concatenate([head_means, tail_mean[None, :]], axis=0)  # (n_B, C)


# ----------------------------------------------------------------------------------------------
# one video


def localize(
    probs, video_probs, threshold=Config.threshold, gamma=Config.gamma, seconds_per_segment=DEFAULT_SECONDS_PER_SEGMENT
) -> pd.DataFrame:
    """The paper's localization (Section 3.5) for ONE video.

    ``probs``: (T, C) segment probabilities ``y_i^c = sigmoid(s_i^c)`` in [0, 1];
    ``video_probs``: (C,) video probabilities ``P(c|V)`` (Eq. 2) in [0, 1].
    Keeps segments with ``y >= threshold``; each maximal run ``[i_s, i_e]`` of kept
    segments of a class is one detection scored ``max_{i_s..i_e} y + gamma * P(c|V)``,
    from the start of segment ``i_s`` to the end of segment ``i_e`` (seconds, via
    :mod:`wtal_kit.timegrid`). Every class is searched (no video-level filter).

    Returns a DataFrame with columns ``label`` (int class index), ``t_start``,
    ``t_end``, ``score``; rows ordered by class, then start.
    """
    probs = _check_matrix(probs, "probs")  # (T, C)
    _check_probabilities(probs, "probs")
    video_probs = np.asarray(video_probs, dtype=np.float64)
    if video_probs.shape != (probs.shape[1],):
        raise InputError(
            f"must have shape ({probs.shape[1]},) to match the {probs.shape[1]} classes of probs, "
            f"got {video_probs.shape}",
            field="video_probs",
        )
    if not np.isfinite(video_probs).all():
        raise InputError("non-finite value", field="video_probs")
    _check_probabilities(video_probs, "video_probs")
    threshold = checks.number(threshold, "threshold", above=0, below=1)
    gamma = checks.number(gamma, "gamma")
    sps = _check_seconds_per_segment(seconds_per_segment)

    return _table(*_paper_arrays(probs, video_probs, threshold, gamma, sps))


def _paper_arrays(probs, video_probs, threshold, gamma, sps, min_length=1):
    """The paper protocol on checked inputs -> (class, t_start, t_end, score) arrays."""
    classes, starts, ends = _runs(probs >= threshold)  # paper: discard scores < threshold
    if min_length > 1:
        long_enough = ends - starts >= min_length
        classes, starts, ends = classes[long_enough], starts[long_enough], ends[long_enough]
    if classes.size == 0:
        return _EMPTY_ARRAYS
    peak = _run_max(probs, classes, starts, ends)  # max_{i_s..i_e} y_i^c
    score = peak + gamma * video_probs[classes]  # q = max y + gamma * ybar^c (Section 4.2)
    return (
        classes,
        timegrid.segment_start_seconds(starts, sps),
        timegrid.segment_end_seconds(ends - 1, sps),  # ends - 1 = i_e, the last kept segment
        score,
    )


def localize_wsad_code(
    logits,
    seconds_per_segment=DEFAULT_SECONDS_PER_SEGMENT,
    block_size=Config.block_size,
    k=Config.k,
    gamma=Config.gamma,
    min_length=DEFAULT_MIN_LENGTH["wsad_code"],
    ambiguous=None,

) -> pd.DataFrame:
    """The authors' released localization (asrafulashiq/wsad) for ONE video on raw logits.

    ``logits``: (T, C) raw class activations (no clipping, no sigmoid). Per class:
    threshold ``max - (max - min) * 0.5``; keep ``logit > threshold`` (strict, as
    the code; a constant class keeps nothing); runs of ``>= min_length``
    segments; score ``max logit in the run + gamma * max_B topk_mean_B``
    (:func:`block_topk_mean`). A run over grid indices ``s .. e-1`` becomes
    ``[s * sps, e * sps]`` seconds (:func:`wtal_kit.timegrid.feature_grid_to_seconds`).
    ``ambiguous``: optional (m, 2) [start, end] seconds of this video; a detection
    is dropped when its grid range ``range(s, e)`` shares an index with
    ``range(round(start / sps), round(end / sps))``.

    Returns columns ``label`` (int), ``t_start``, ``t_end``, ``score``; rows ordered
    by class, then start.
    """
    values = _check_matrix(logits, "logits")  # (T, C)
    sps = _check_seconds_per_segment(seconds_per_segment)
    gamma = checks.number(gamma, "gamma")
    min_length = checks.integer(min_length, "min_length", minimum=1)
    intervals = _check_intervals(ambiguous)  # (m, 2)
    return _table(*_wsad_code_arrays(values, sps, block_size, k, gamma, min_length, intervals))


def _wsad_code_arrays(values, sps, block_size, k, gamma, min_length, intervals):
    """The released code's protocol on checked inputs -> (class, t_start, t_end, score) arrays."""
    video_score = block_topk_mean(values, block_size, k).max(axis=0)  # (C,) max over blocks

    highest, lowest = values.max(axis=0), values.min(axis=0)  # (C,)
    threshold = highest - (highest - lowest) * 0.5  # the code's form of the midpoint
    classes, starts, ends = _runs(values > threshold)
    long_enough = ends - starts >= min_length
    classes, starts, ends = classes[long_enough], starts[long_enough], ends[long_enough]

    clear = ~touches_ambiguous(starts, ends, intervals, sps)
    classes, starts, ends = classes[clear], starts[clear], ends[clear]

    if classes.size == 0:
        return _EMPTY_ARRAYS
    peak = _run_max(values, classes, starts, ends)  # max raw logit in the run
    score = peak + gamma * video_score[classes]
    return (
        classes,
        timegrid.feature_grid_to_seconds(starts, sps),
        timegrid.feature_grid_to_seconds(ends, sps),  # exclusive grid end e -> e * sps
        score,
    )


# ----------------------------------------------------------------------------------------------
# many videos


def top_per_video(video: np.ndarray, score: np.ndarray, max_per_video: int | None) -> np.ndarray:
    """(n,) bool: each video's ``max_per_video`` highest-scoring detections (None keeps all).

    ``video``: (n,) any sortable video key; ``score``: (n,). Among equal scores the earlier
    detection wins, so the order detections are listed in decides ties. The ActivityNet
    challenge accepts at most 100 detections per video; the paper's protocol has no cap.
    """
    video, score = np.asarray(video), np.asarray(score, dtype=np.float64)
    keep = np.ones(len(score), dtype=bool)
    if max_per_video is None or len(score) <= max_per_video:
        return keep
    order = np.lexsort((-score, video))  # by video, then score descending; stable: ties keep list order
    grouped = video[order]
    group_start = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])  # first position of each video
    rank = np.arange(len(order)) - np.repeat(group_start, np.diff(np.r_[group_start, len(order)]))  # rank inside its video
    keep[order[rank >= max_per_video]] = False
    return keep


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _ambiguous_by_video(ambiguous) -> dict:
    if ambiguous is None:
        return {}
    if not isinstance(ambiguous, pd.DataFrame):
        raise InputError(
            f"must be a DataFrame (video, t_start, t_end) or None, got {type(ambiguous).__name__}", field="ambiguous"
        )
    missing = [c for c in ("video", "t_start", "t_end") if c not in ambiguous.columns]
    if missing:
        raise InputError(f"lacks column(s) {missing}; expected ['video', 't_start', 't_end']", field="ambiguous")
    videos = ambiguous["video"].astype(str).to_numpy()
    try:
        bounds = ambiguous[["t_start", "t_end"]].to_numpy(dtype=np.float64)  # (m, 2)
    except (TypeError, ValueError):
        raise InputError("non-numeric t_start or t_end", field="ambiguous") from None
    by_video = {}
    for video in np.unique(videos):
        try:
            by_video[video] = _check_intervals(bounds[videos == video])  # (m_v, 2)
        except InputError as exc:
            raise InputError(exc.problem, video=video, field="ambiguous") from None
    return by_video


def localize_videos(
    logits,
    video_probs,
    class_names,
    protocol="paper",
    *,
    kappa=Config.kappa,
    threshold=Config.threshold,
    gamma=Config.gamma,
    seconds_per_segment=DEFAULT_SECONDS_PER_SEGMENT,
    block_size=Config.block_size,
    k=Config.k,
    min_length=None,
    ambiguous=None,
    max_per_video=None,
) -> pd.DataFrame:
    """Localize many videos; return the standard detections table.

    ``logits``: Mapping video name -> (T_v, C) raw class activations.
    ``video_probs``: Mapping video name -> (C,) ``P(c|V)``; used by ``"paper"``
    only (may be None for ``"wsad_code"``).
    ``class_names``: the C class names; ``label`` in the output is the name.
    ``protocol="paper"``: :func:`localize` on ``y = sigmoid(clip(logits, -kappa, kappa))``
    (``kappa=None``: no clipping), with ``threshold``, ``gamma``.
    ``protocol="wsad_code"``: :func:`localize_wsad_code` on the raw logits, with
    ``block_size``, ``k``, ``gamma``, ``min_length``.
    ``min_length``: shortest detection kept, in segments (None: 1 for ``"paper"``,
    which keeps every run, and 2 for ``"wsad_code"``, the released code's value).
    ``ambiguous``: DataFrame (video, t_start, t_end) or None; when given, a
    detection of a video overlapping one of that video's intervals (the
    released code's grid test, see the module docstring) is dropped under
    either protocol. The paper does not mention such a filter, so leave it None
    for the paper protocol proper.
    ``max_per_video``: keep only each video's this many highest-scoring detections
    (:func:`top_per_video`; the ActivityNet challenge's limit is 100); None, the
    paper's protocol, keeps every detection.

    Returns columns ``video, label, t_start, t_end, score`` (DETECTION_COLUMNS),
    ordered by video (mapping order), class, start.
    """
    checks.one_of(protocol, LOCALIZATIONS, "protocol")
    if not isinstance(logits, Mapping):
        raise InputError(f"must be a mapping video -> (T, C) array, got {type(logits).__name__}", field="logits")
    if protocol == "paper" and not isinstance(video_probs, Mapping):
        raise InputError(
            f"the paper protocol needs a mapping video -> (C,) P(c|V), got {type(video_probs).__name__}",
            field="video_probs",
        )
    names = np.asarray([str(name) for name in class_names], dtype=object)  # (C,)
    if kappa is not None:
        kappa = checks.number(kappa, "kappa", above=0)
    ambiguous_by_video = _ambiguous_by_video(ambiguous)

    sps = _check_seconds_per_segment(seconds_per_segment)
    if protocol == "paper":
        threshold = checks.number(threshold, "threshold", above=0, below=1)
    gamma = checks.number(gamma, "gamma")
    min_length = DEFAULT_MIN_LENGTH[protocol] if min_length is None else min_length
    min_length = checks.integer(min_length, "min_length", minimum=1)
    max_per_video = checks.optional_integer(max_per_video, "max_per_video", minimum=1)

    # Per video, plain arrays; one DataFrame at the end (a DataFrame per video costs
    # more than the localization itself on the 2383 ActivityNet1.2 validation videos).
    parts = {"video": [], "label": [], "t_start": [], "t_end": [], "score": []}
    for video, video_logits in logits.items():
        video = str(video)
        try:
            values = _check_matrix(video_logits, "logits")  # (T, C)
            if values.shape[1] != len(names):
                raise InputError(
                    f"has {values.shape[1]} classes but class_names has {len(names)}", field="logits"
                )
            intervals = ambiguous_by_video.get(video)
            if protocol == "paper":
                if video not in video_probs:
                    raise InputError("missing from video_probs", field="video_probs")
                probs_of_video = np.asarray(video_probs[video], dtype=np.float64)  # (C,)
                if probs_of_video.shape != (len(names),) or not np.isfinite(probs_of_video).all():
                    raise InputError(f"must be {len(names)} finite probabilities, got shape {probs_of_video.shape}", field="video_probs")
                _check_probabilities(probs_of_video, "video_probs")
                clipped = values if kappa is None else np.clip(values, -kappa, kappa)  # phi_kappa (Eq. 1)
                found = _paper_arrays(sigmoid(clipped), probs_of_video, threshold, gamma, sps, min_length)
                if intervals is not None and len(found[0]):
                    starts = timegrid.seconds_to_feature_grid(found[1], sps)  # (n,) i_s
                    ends = timegrid.seconds_to_feature_grid(found[2], sps)  # (n,) i_e + 1, exclusive
                    clear = ~touches_ambiguous(starts, ends, intervals, sps)
                    found = tuple(array[clear] for array in found)
            else:
                found = _wsad_code_arrays(
                    values, sps, block_size, k, gamma, min_length, intervals if intervals is not None else np.zeros((0, 2))
                )
        except InputError as exc:
            if exc.video is not None:
                raise
            raise InputError(exc.problem, file=exc.file, video=video, field=exc.field) from None
        if max_per_video is not None:
            kept = top_per_video(np.zeros(len(found[0]), dtype=np.int64), found[3], max_per_video)  # one video here
            found = tuple(array[kept] for array in found)
        classes, t_start, t_end, score = found
        if len(classes):
            parts["video"].append(np.full(len(classes), video, dtype=object))
            parts["label"].append(names[classes])
            parts["t_start"].append(t_start)
            parts["t_end"].append(t_end)
            parts["score"].append(score)
    if not parts["video"]:
        return empty_detections()
    table = pd.DataFrame({column: np.concatenate(arrays) for column, arrays in parts.items()}, columns=DETECTION_COLUMNS)
    return check_detections(table)


# 0.1's names of this module that moved (wtal_kit/legacy.py): they warn, and go away in 0.3
from wtal_kit import legacy  # noqa: E402

__getattr__ = legacy.old_names("wtal_kit.localization")  # its own name, also when run as __main__
