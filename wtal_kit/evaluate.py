"""Detection evaluation: per-class average precision (AP) and mAP at tIoU thresholds.

Inputs are the tables of :mod:`wtal_kit.data.tables` (seconds, class names):
ground truth ``video, label, t_start, t_end`` and detections with an extra ``score``.
The evaluator knows nothing about models or torch.

Two protocols (docs/method.md, "Evaluation protocols")
------------------------------------------------------
Both rank the detections of a class by score, descending, with a *stable* sort
(equal scores keep their input order), and both average over the classes present
in the ground truth (a class with ground truth and no detections has AP 0;
detection labels absent from the ground truth are ignored with one warning).
A detection is a true positive at threshold θ when it is matched to a ground-truth
instance of the same video and class with tIoU >= θ that no higher-ranked detection
took (one-to-one per threshold); otherwise it is a false positive.

``"activitynet"`` (default; the ActivityNet evaluator, used by the authors' code)
    *Best match*: among the unmatched instances with tIoU >= θ the one with the
    highest tIoU (on equal tIoU, the one that comes first in input order).
    *All-points interpolated AP*: with precision p_i and recall r_i after the i-th
    ranked detection and r_0 = 0,
    ``AP = Σ_i (r_i − r_{i−1}) · max_{j >= i} p_j``.

``"wtalc"`` (W-TALC's evaluator, the base code of many weakly supervised papers)
    *First match*: the first unmatched instance in input order with tIoU >= θ,
    not the best one. *Non-interpolated AP*:
    ``AP = (Σ over true positives of the precision at that rank) / #ground truth``.
    W-TALC also drops the classes whose video-level score is <= 0 before
    evaluating; that is a localizer decision and is not done here.

The envelope makes interpolated AP >= non-interpolated AP, and first match can
lose matches that best match keeps, so **numbers from different protocols are not
comparable**: always report the protocol next to an mAP.

tIoU of two intervals is intersection / union with union = len1 + len2 − intersection;
when the union is 0 (two identical zero-length intervals) tIoU is defined as 0, so
a zero-length ground-truth segment (ActivityNet1.2 has 10) can never be matched.

How the matching is vectorized (exact, not an approximation)
------------------------------------------------------------
The greedy matching is sequential only among detections that can compete for the
same ground truth. Within one (class, video) the intervals (ground truth and
detections that reach the lowest threshold) are split into *overlap components*:
maximal chains of overlapping intervals. Detections in different components never
share a candidate, so the r-th ranked detection of every component is processed at
once, for all thresholds together; the Python loop runs over r only (the size of
the largest component), not over detections × thresholds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wtal_kit import checks
from wtal_kit.config import EVAL_PROTOCOLS, PAPER_TIOUS
from wtal_kit.data.tables import check_detections, check_ground_truth
from wtal_kit.errors import InputError



@dataclass(frozen=True)
class Evaluation:
    """mAP per tIoU threshold (fractions, with "avg") and the per-class AP table (index: class name)."""

    mean_ap: pd.Series
    per_class: pd.DataFrame

    @classmethod
    def from_per_class(cls, per_class: pd.DataFrame) -> "Evaluation":
        """The evaluation of a per-class AP table (index: class, columns: tIoU thresholds): its mean over
        the classes per threshold, with the averages of :func:`with_average`."""
        return cls(with_average(per_class.mean(axis=0).rename("mAP")), per_class)


# ----------------------------------------------------------------------------- public API


def segment_iou(segments_a, segments_b) -> np.ndarray:
    """tIoU of intervals ``(..., 2)`` = ``[start, end]`` (seconds); shapes broadcast.

    ``segment_iou(gt[:, None], det[None, :])`` gives the (n_gt, n_det) matrix.
    union = len_a + len_b − intersection; a zero union (two identical zero-length
    intervals) gives 0.
    """
    a = np.asarray(segments_a, dtype=np.float64)
    b = np.asarray(segments_b, dtype=np.float64)
    if a.shape[-1:] != (2,) or b.shape[-1:] != (2,):
        raise ValueError(f"segments must have shape (..., 2) = [start, end], got {a.shape} and {b.shape}")
    return _iou(a[..., 0], a[..., 1], b[..., 0], b[..., 1])


def per_class_ap(
    ground_truth: pd.DataFrame,
    detections: pd.DataFrame,
    iou_thresholds=PAPER_TIOUS,
    protocol: str = "activitynet",
) -> pd.DataFrame:
    """AP of every ground-truth class at every threshold.

    Returns a DataFrame: index ``label`` (the class names of the ground truth, sorted),
    columns the thresholds (float, in the given order), values in [0, 1].
    See the module docstring for the two protocols.
    """
    protocol = checks.one_of(protocol, EVAL_PROTOCOLS, "protocol")
    thresholds = checks.tiou_thresholds(iou_thresholds)  # (T,)
    gt = check_ground_truth(ground_truth)
    det = check_detections(detections)
    if len(gt) == 0:
        raise InputError("ground truth is empty: there is no class to evaluate", field="label")

    classes = np.unique(gt["label"].to_numpy())  # (C,) sorted class names
    det = _drop_unknown_labels(det, classes)
    ap = _per_class_ap_arrays(gt, det, classes, thresholds, protocol)  # (C, T)
    return pd.DataFrame(
        ap,
        index=pd.Index(classes, name="label", dtype=object),
        columns=pd.Index(thresholds, name="tiou"),
    )


def detection_map(
    ground_truth: pd.DataFrame,
    detections: pd.DataFrame,
    iou_thresholds=PAPER_TIOUS,
    protocol: str = "activitynet",
) -> pd.Series:
    """mAP (mean of :func:`per_class_ap` over the ground-truth classes) per threshold.

    Returns a Series indexed by the thresholds (float), values in [0, 1].
    """
    ap = per_class_ap(ground_truth, detections, iou_thresholds, protocol)
    out = ap.mean(axis=0)
    out.name = "mAP"
    return out


def evaluate_detections(ground_truth: pd.DataFrame, detections: pd.DataFrame, iou_thresholds=PAPER_TIOUS,
                        protocol: str = "activitynet") -> "Evaluation":
    """mAP per tIoU threshold (with "avg") and per-class AP of a detections table against ground truth.

    Warns (once) when detections name videos that have no ground-truth instance: their detections
    all count as false positives, which usually means the wrong subset or the wrong ground truth.
    """
    outside = set(detections["video"]) - set(ground_truth["video"])
    if outside:
        warnings.warn(f"{len(outside)} of the {detections['video'].nunique()} videos with detections have no ground-truth "
                      f"instance (their detections all count as false positives); wrong --subset or ground truth?")
    per_class = per_class_ap(ground_truth, detections, iou_thresholds, protocol)
    return Evaluation.from_per_class(per_class)


AVERAGE = "avg"  # the paper's average: the mean mAP over tIoU 0.1, 0.3, 0.5 and 0.7 (PAPER_TIOUS), and no other


def average_label(thresholds) -> str:
    """The name of the mean mAP over ``thresholds``: "avg" for the paper's 0.1, 0.3, 0.5, 0.7 only.

    Any other set is named with it, so that two different averages never share a name: an evenly
    spaced set of three or more reads start:step:stop ("avg 0.1:0.1:0.9", "avg 0.5:0.05:0.95"), any
    other lists its thresholds ("avg 0.3,0.5").
    """
    values = sorted({round(float(t), 6) for t in thresholds})
    if not values:
        raise ValueError("average_label: no threshold to average over")
    if values == sorted(PAPER_TIOUS):
        return AVERAGE
    steps = np.round(np.diff(values), 6)
    if len(values) >= 3 and np.all(steps == steps[0]):
        return f"{AVERAGE} {values[0]:g}:{steps[0]:g}:{values[-1]:g}"
    return f"{AVERAGE} " + ",".join(f"{v:g}" for v in values)


def is_average(key) -> bool:
    """True for the key of an average in an mAP series ("avg", "avg 0.1:0.1:0.9", ...), False for a threshold."""
    return isinstance(key, str) and key.split(" ", 1)[0] == AVERAGE


def main_average(map_series: pd.Series) -> str:
    """The key of the average to quote for ``map_series``: "avg" when it has the paper's, else its first labelled one."""
    keys = [key for key in map_series.index if is_average(key)]
    if not keys:
        raise ValueError("main_average: the Series has no average (see with_average)")
    return AVERAGE if AVERAGE in keys else keys[0]


def with_average(map_series: pd.Series, sets=None) -> pd.Series:
    """``map_series`` (mAP per tIoU threshold) plus its averages, for tables.

    - ``"avg"``: the paper's average, the mean over 0.1, 0.3, 0.5 and 0.7, when all four are in the series;
    - for each set of ``sets`` (default: the series' own thresholds) that is not the paper's and whose
      thresholds are all in the series: the mean over it, named by :func:`average_label` ("avg 0.1:0.1:0.9").

    A series of the paper's four thresholds gets exactly one entry, "avg", as it always had.
    """
    if not isinstance(map_series, pd.Series):
        raise TypeError(f"with_average expects a pandas Series, got {type(map_series).__name__}")
    if len(map_series) == 0:
        raise ValueError("with_average: the Series is empty, there is nothing to average")
    if any(is_average(key) for key in map_series.index):
        raise ValueError("with_average: the Series already has an average")
    values = map_series.astype(np.float64)
    by_threshold = {round(float(t), 6): t for t in values.index}
    averages = {}
    if all(round(t, 6) in by_threshold for t in PAPER_TIOUS):
        averages[AVERAGE] = values[[by_threshold[round(t, 6)] for t in PAPER_TIOUS]].mean()
    for chosen in ([list(values.index)] if sets is None else sets):
        keys = [by_threshold.get(round(float(t), 6)) for t in chosen]
        label = average_label(chosen)
        if label != AVERAGE and None not in keys:
            averages[label] = values[keys].mean()
    out = pd.concat([values, pd.Series(list(averages.values()), index=list(averages), name=map_series.name, dtype=np.float64)])
    out.index.name = map_series.index.name
    return out


# ----------------------------------------------------------------------------- tables


def _drop_unknown_labels(det: pd.DataFrame, classes: np.ndarray) -> pd.DataFrame:
    known = det["label"].isin(classes).to_numpy()
    if known.all():
        return det
    unknown = sorted(set(det["label"].to_numpy()[~known]))
    warnings.warn(
        f"{int((~known).sum())} detection(s) with label(s) absent from the ground truth are ignored: {unknown}",
        stacklevel=3,
    )
    return det.loc[known].reset_index(drop=True)


# ----------------------------------------------------------------------------- core


def _iou(a_start, a_end, b_start, b_end) -> np.ndarray:
    """Elementwise tIoU; the same float operations as the reference loop, so ties agree bit for bit."""
    intersection = np.maximum(np.minimum(a_end, b_end) - np.maximum(a_start, b_start), 0.0)
    union = (a_end - a_start) + (b_end - b_start) - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def _per_class_ap_arrays(gt, det, classes, thresholds, protocol) -> np.ndarray:
    gt_class = pd.Categorical(gt["label"], categories=classes).codes.astype(np.int64)  # (G,)
    video_code, _ = pd.factorize(np.concatenate([gt["video"].to_numpy(), det["video"].to_numpy()]))
    det_class = pd.Categorical(det["label"], categories=classes).codes.astype(np.int64)  # (D,)
    ground_truth = CodedIntervals(gt_class, video_code[: len(gt)], gt["t_start"].to_numpy(), gt["t_end"].to_numpy())
    detections = CodedIntervals(
        det_class, video_code[len(gt) :], det["t_start"].to_numpy(), det["t_end"].to_numpy(), det["score"].to_numpy()
    )
    return average_precision_codes(ground_truth, detections, len(classes), thresholds, protocol)


@dataclass(frozen=True)
class CodedIntervals:
    """Ground truth or detections as integer codes and float arrays (the evaluator's inner form).

    label: (n,) class code in [0, num_classes); video: (n,) any non-negative integer
    video code (equal codes = same video); t_start, t_end: (n,) seconds; score: (n,)
    for detections, None for ground truth. Row order is input order (ties keep it).
    """

    label: np.ndarray
    video: np.ndarray
    t_start: np.ndarray
    t_end: np.ndarray
    score: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.label)


def _ranked(ground_truth: CodedIntervals, detections: CodedIntervals, num_classes: int):
    """Group ids (class, video) and the detections' rank order: by class, then score descending."""
    n_videos = int(max(ground_truth.video.max(initial=-1), detections.video.max(initial=-1))) + 1
    gt_group = ground_truth.label * n_videos + ground_truth.video  # (G,) one id per (class, video)
    # Rank: by class, then score descending; lexsort is stable, so ties keep input order.
    ranked = np.lexsort((-detections.score, detections.label))  # (D,)
    det_group = detections.label[ranked] * n_videos + detections.video[ranked]  # (D,)
    return gt_group, det_group, ranked


def true_positives_codes(ground_truth: CodedIntervals, detections: CodedIntervals, num_classes: int, thresholds, protocol):
    """The one-to-one matching at each threshold (see the module docstring).

    Returns is_tp (D, T), in the detections' input order, and matched (G, T): whether
    each ground-truth instance was matched.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    is_tp = np.zeros((len(detections), len(thresholds)), dtype=bool)
    if len(detections) == 0 or len(ground_truth) == 0:
        return is_tp, np.zeros((len(ground_truth), len(thresholds)), dtype=bool)
    gt_group, det_group, ranked = _ranked(ground_truth, detections, num_classes)
    is_tp[ranked], matched = _match(
        gt_group, ground_truth.t_start, ground_truth.t_end, det_group,
        detections.t_start[ranked], detections.t_end[ranked], thresholds, protocol,
    )
    return is_tp, matched


def average_precision_codes(ground_truth: CodedIntervals, detections: CodedIntervals, num_classes: int, thresholds, protocol) -> np.ndarray:
    """AP (num_classes, T) of coded inputs; every class must have ground truth and every
    detection's class must be one of them (:func:`per_class_ap` drops the others first)."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    gt_count = np.bincount(ground_truth.label, minlength=num_classes)  # (C,) instances per class
    if len(detections) == 0:
        return np.zeros((num_classes, len(thresholds)))
    gt_group, det_group, ranked = _ranked(ground_truth, detections, num_classes)
    is_tp, _ = _match(
        gt_group, ground_truth.t_start, ground_truth.t_end, det_group,
        detections.t_start[ranked], detections.t_end[ranked], thresholds, protocol,
    )  # (D, T) in ranked order
    return ranked_average_precision(is_tp, detections.label[ranked], gt_count, protocol)


def _match(gt_group, gt_start, gt_end, det_group, det_start, det_end, thresholds, protocol) -> np.ndarray:
    """Greedy one-to-one matching of ranked detections; returns is_tp (D, T) and the ground truth's matched (G, T)."""
    n_det, n_thresholds = len(det_group), len(thresholds)
    is_tp = np.zeros((n_det, n_thresholds), dtype=bool)

    # 1. Candidate pairs (detection, ground truth) of the same overlap component.
    in_gt_group = np.isin(det_group, gt_group)
    cand_det = np.flatnonzero(in_gt_group)  # (D1,) ranked positions
    pair_det, pair_gt = _pairs_within_components(
        gt_group, gt_start, gt_end, det_group[cand_det], det_start[cand_det], det_end[cand_det]
    )
    pair_det = cand_det[pair_det]  # (P,) ranked position; pairs sorted by it, then by gt input order
    pair_iou = _iou(det_start[pair_det], det_end[pair_det], gt_start[pair_gt], gt_end[pair_gt])  # (P,)
    reachable = pair_iou >= thresholds.min()  # a pair below every threshold can never match
    pair_det, pair_gt, pair_iou = pair_det[reachable], pair_gt[reachable], pair_iou[reachable]
    matched = np.zeros((len(gt_group), n_thresholds), dtype=bool)  # (G, T)
    if len(pair_det) == 0:
        return is_tp, matched

    # 2. Rank of each reachable detection inside its (finer) component of reachable intervals.
    live_det, pair_start = np.unique(pair_det, return_index=True)  # (L,), (L,) first pair of each
    pair_count = np.diff(np.append(pair_start, len(pair_det)))  # (L,)
    component = _overlap_components(
        np.concatenate([det_group[live_det], gt_group]),
        np.concatenate([det_start[live_det], gt_start]),
        np.concatenate([det_end[live_det], gt_end]),
    )[: len(live_det)]  # (L,)
    by_component = np.argsort(component, kind="stable")  # keeps the ranked order inside a component
    sorted_component = component[by_component]
    first_of_component = np.searchsorted(sorted_component, sorted_component, side="left")
    rank = np.empty(len(live_det), dtype=np.int64)
    rank[by_component] = np.arange(len(live_det)) - first_of_component  # (L,) 0 = best in its component

    # 3. Reorder the pair blocks: by rank, then ranked position (blocks stay contiguous).
    step_order = np.lexsort((live_det, rank))  # (L,)
    live_det, pair_start, pair_count, rank = (x[step_order] for x in (live_det, pair_start, pair_count, rank))
    new_start = np.concatenate([[0], np.cumsum(pair_count)[:-1]])  # (L,)
    pair_order = np.repeat(pair_start - new_start, pair_count) + np.arange(len(pair_det))  # (P,)
    pair_gt, pair_iou = pair_gt[pair_order], pair_iou[pair_order]
    det_bounds = np.searchsorted(rank, np.arange(rank[-1] + 2))  # detections of step r: [det_bounds[r], det_bounds[r+1])
    pair_bounds = np.append(new_start, len(pair_gt))[det_bounds]  # pairs of step r

    # 4. One step per rank r: the r-th detection of every component, all thresholds at once.
    for r in range(len(det_bounds) - 1):
        d0, d1 = det_bounds[r], det_bounds[r + 1]
        p0, p1 = pair_bounds[r], pair_bounds[r + 1]
        gt_index = pair_gt[p0:p1]  # (p,)
        iou = pair_iou[p0:p1, None]  # (p, 1)
        segment_starts = new_start[d0:d1] - p0  # (d,) first pair of each detection
        free = (iou >= thresholds) & ~matched[gt_index]  # (p, T) candidates
        if protocol == "activitynet":  # best match: highest tIoU among the free candidates
            value = np.where(free, iou, -1.0)  # (p, T)
            best = np.maximum.reduceat(value, segment_starts, axis=0)  # (d, T)
            free &= value == np.repeat(best, pair_count[d0:d1], axis=0)
        # first (input order) of the remaining candidates; sentinel p = none
        position = np.where(free, np.arange(p1 - p0)[:, None], p1 - p0)  # (p, T)
        chosen = np.minimum.reduceat(position, segment_starts, axis=0)  # (d, T)
        det_row, threshold_col = np.nonzero(chosen < p1 - p0)
        matched[gt_index[chosen[det_row, threshold_col]], threshold_col] = True
        is_tp[live_det[d0:d1][det_row], threshold_col] = True
    return is_tp, matched


def ranked_average_precision(is_tp, det_class, gt_count, protocol) -> np.ndarray:
    """AP (C, T) from is_tp (D, T) of detections sorted by class then rank."""
    n_classes, n_thresholds = len(gt_count), is_tp.shape[1]
    class_start = np.searchsorted(det_class, np.arange(n_classes))  # (C,)
    rank_in_class = np.arange(len(det_class)) - class_start[det_class]  # (D,)
    tp_so_far = np.cumsum(is_tp, axis=0)  # (D, T) running over all classes
    tp_before_class = np.vstack([np.zeros((1, n_thresholds), dtype=tp_so_far.dtype), tp_so_far])[class_start[det_class]]
    tp_so_far = tp_so_far - tp_before_class  # (D, T) running inside the class
    precision = tp_so_far / (rank_in_class + 1.0)[:, None]  # (D, T)

    if protocol == "activitynet":
        # Precision envelope max_{j >= i} p_j inside each class: a running max from the right.
        # Subtracting 2·class keeps a later class (met first when reversed) from leaking into
        # an earlier one, since every precision lies in [0, 1]; error ~1e-13.
        offset = 2.0 * det_class[:, None]  # (D, 1)
        weight = np.maximum.accumulate((precision - offset)[::-1], axis=0)[::-1] + offset
    else:
        weight = precision
    # AP_c = Σ_i (r_i − r_{i−1}) · weight_i = Σ_{i true positive} weight_i / #GT_c
    flat_index = (det_class[:, None] * n_thresholds + np.arange(n_thresholds)).ravel()
    total = np.bincount(flat_index, weights=(is_tp * weight).ravel(), minlength=n_classes * n_thresholds)
    return total.reshape(n_classes, n_thresholds) / gt_count[:, None]


def _overlap_components(group, start, end) -> np.ndarray:
    """Component id (n,) of each interval: maximal chains of overlapping intervals of one group.

    Two intervals that share only an end point (or a zero-length one) have tIoU 0, so a new
    component starts when an interval starts at or after the furthest end seen so far.
    Times are replaced by their integer ranks so that the group offset stays exact.
    """
    n = len(group)
    times, time_rank = np.unique(np.concatenate([start, end]), return_inverse=True)
    span = len(times)
    start_key = group * span + time_rank[:n]  # (n,) int64, ordered by (group, start)
    end_key = group * span + time_rank[n:]
    order = np.argsort(start_key, kind="stable")
    furthest_end = np.maximum.accumulate(end_key[order])  # (n,)
    opens = np.ones(n, dtype=bool)
    opens[1:] = start_key[order][1:] >= furthest_end[:-1]  # also true at every new group
    component = np.empty(n, dtype=np.int64)
    component[order] = np.cumsum(opens) - 1
    return component


def _pairs_within_components(gt_group, gt_start, gt_end, det_group, det_start, det_end):
    """All (detection, ground truth) index pairs in the same overlap component.

    Returns pair_det (P,) ascending and pair_gt (P,), ground truth in input order per detection.
    """
    n_det = len(det_group)
    component = _overlap_components(
        np.concatenate([det_group, gt_group]),
        np.concatenate([det_start, gt_start]),
        np.concatenate([det_end, gt_end]),
    )
    det_component, gt_component = component[:n_det], component[n_det:]
    gt_by_component = np.argsort(gt_component, kind="stable")  # (G,) input order inside a component
    sorted_gt_component = gt_component[gt_by_component]
    first = np.searchsorted(sorted_gt_component, det_component, side="left")  # (D,)
    count = np.searchsorted(sorted_gt_component, det_component, side="right") - first  # (D,)
    pair_det = np.repeat(np.arange(n_det), count)  # (P,)
    block_start = np.cumsum(count) - count  # (D,)
    pair_gt = gt_by_component[np.repeat(first - block_start, count) + np.arange(len(pair_det))]
    return pair_det, pair_gt


# 0.1's names of this module that moved (wtal_kit/legacy.py): they warn, and go away in 0.3
from wtal_kit import legacy  # noqa: E402

__getattr__ = legacy.old_names("wtal_kit.evaluate")  # its own name, also when run as __main__
