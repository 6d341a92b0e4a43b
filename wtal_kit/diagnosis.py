"""Error diagnosis of detections in the categories of DETAD.

Alwassel et al., ECCV 2018 (DETAD): "Diagnosing Error in Temporal Action Detectors".
Inputs are the tables of :mod:`wtal_kit.data.tables` (ground truth ``video, label,
t_start, t_end``; detections add ``score``). The true positives are those of the
evaluator (:func:`wtal_kit.evaluate.true_positives_codes`) at one tIoU threshold α
and one protocol (``"activitynet"``: best match, ``"wtalc"``: first match), so the
numbers here agree with :mod:`wtal_kit.evaluate`. No torch import.

False-positive categories (:func:`false_positive_breakdown`)
------------------------------------------------------------
Every detection gets exactly one category. Overlaps are taken with the ground-truth
instances *of the same video*, of every class; ``MIN_TIOU = 0.1`` is DETAD's
``min_tiou_thr``; both bounds are inclusive below (``tIoU >= α``, ``tIoU >= 0.1``).

``true_positive``
    matched by the evaluator at α (one-to-one, ranked by score, ties in input order).
``double_detection``
    tIoU >= α with a ground truth of the detection's class that a higher-ranked
    detection already took. (Any false positive with a same-class overlap >= α is
    one: otherwise the evaluator would have matched it.)
``wrong_label``
    tIoU >= α with a ground truth of another class.
``localization``
    the detection's class, 0.1 <= tIoU < α.
``confusion``
    another class, 0.1 <= tIoU < α.
``background``
    tIoU < 0.1 with every ground truth of the video (also: a video without ground truth).

The bands are checked in this priority order: first the band tIoU >= α (double
detection / wrong label), then 0.1 <= tIoU < α (localization / confusion), then
background. Which of the two categories of a band applies is set by ``rule``:

``rule="detad"`` (default, DETAD's reference code, ``analyze_fp_error_types``)
    the single ground truth with the highest tIoU decides: its tIoU picks the band,
    its class picks the category (same class: double detection / localization;
    other class: wrong label / confusion). Equal tIoUs: the ground truth that comes
    first in input order (``argmax``).
``rule="priority"`` (the strict order of the list above)
    double detection if any same-class tIoU >= α, else wrong label if any
    other-class tIoU >= α, else localization if any same-class tIoU >= 0.1, else
    confusion if any other-class tIoU >= 0.1, else background.

The two differ only when a same-class and an other-class instance fall in the same
band and the other class overlaps more: a detection with tIoU 0.8 with a matched
instance of its class and 1.0 with an instance of another class is a wrong label
under ``"detad"`` and a double detection under ``"priority"``.

Detections whose label has no ground truth at all (the evaluator ignores them for
mAP) are kept here: they are never true positives, so they are wrong label,
confusion or background errors.

``top_k_factor``: DETAD analyses, per class, only the ``floor(k · G_c)`` top-scored
detections, G_c = the number of ground-truth instances of class c (its false-positive
profile uses k = 10 and draws one bar per rank slice [(j−1)·G_c, j·G_c), j = 1..10).
``top_k_factor=k`` keeps the top ``floor(k · G_c)`` (cumulative); ``None`` (default)
analyses every detection. The matching of the kept detections is the same as with
all detections (greedy in rank order), so a kept detection's category does not depend
on k and DETAD's slice j is the difference of the counts at k = j and k = j − 1.
Classes without ground truth keep none.

Missed ground truth (:func:`missed_ground_truth_by_length`)
-----------------------------------------------------------
The ground truth that the evaluator leaves unmatched at α, counted per length
bucket. DETAD's buckets are right-closed, the first one includes its lower edge
(``pd.cut(..., include_lowest=True)``): on THUMOS14 XS [0, 3], S (3, 6], M (6, 12],
L (12, 18], XL (18, inf) seconds (:data:`THUMOS14_LENGTH_BINS`, the default); on
ActivityNet XS [0, 30], S (30, 60], M (60, 120], L (120, 180], XL (180, inf)
(:data:`ACTIVITYNET_LENGTH_BINS`).

Differences from DETAD's code, on purpose
-----------------------------------------
* Ranking and matching are this package's evaluator (stable sort: equal scores keep
  input order; either protocol). DETAD uses ActivityNet's matching only.
* DETAD drops zero-length ground truth; here it stays, as in the evaluator, where it
  can never be matched (tIoU 0): it is counted as missed in the first bucket and
  never makes a detection anything but background.
* DETAD's false-negative plot also discards matches made at a normalized precision
  <= 0.05; here a ground truth is missed exactly when the evaluator leaves it unmatched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wtal_kit import checks
from wtal_kit.config import EVAL_PROTOCOLS, VIEW_TIOU
from wtal_kit.data.tables import check_detections, check_ground_truth
from wtal_kit.errors import InputError
from wtal_kit.evaluate import CodedIntervals, segment_iou, true_positives_codes

CATEGORIES = ("true_positive", "double_detection", "wrong_label", "localization", "confusion", "background")
FALSE_POSITIVE_CATEGORIES = CATEGORIES[1:]
MIN_TIOU = 0.1  # DETAD's min_tiou_thr: below it (with every ground truth) a false positive is background
RULES = ("detad", "priority")

_TP, _DOUBLE, _WRONG, _LOCALIZATION, _CONFUSION, _BACKGROUND = range(len(CATEGORIES))
_MAX_PAIRS = 1 << 22  # (detection, ground truth) pairs handled at once: bounds the memory


@dataclass(frozen=True)
class LengthBins:
    """Length buckets (seconds): bucket i is (edges[i], edges[i+1]]; the first one includes edges[0]."""

    edges: tuple
    labels: tuple


THUMOS14_LENGTH_BINS = LengthBins((0.0, 3.0, 6.0, 12.0, 18.0, math.inf), ("XS", "S", "M", "L", "XL"))
ACTIVITYNET_LENGTH_BINS = LengthBins((0.0, 30.0, 60.0, 120.0, 180.0, math.inf), ("XS", "S", "M", "L", "XL"))


@dataclass(frozen=True)
class FalsePositiveBreakdown:
    """Per-detection categories and their counts.

    detections: the validated detections (input row order, input index) plus
        ``category`` (categorical over :data:`CATEGORIES`; missing for rows outside
        the top-k), ``analysed`` (bool: inside the top-k, always true without it),
        ``best_tiou`` (highest tIoU with any ground truth of the video) and
        ``best_gt`` (row position in the ground truth table of that instance, first
        in input order on ties; -1 when best_tiou is 0).
    counts: Series indexed by :data:`CATEGORIES` (fixed order, zeros included), the
        number of analysed detections in each category.
    """

    detections: pd.DataFrame
    counts: pd.Series
    tiou: float
    protocol: str
    rule: str
    top_k_factor: float | None

    @property
    def fractions(self) -> pd.Series:
        """counts / number of analysed detections (NaN when there is none)."""
        total = int(self.counts.sum())
        out = self.counts / total if total else self.counts.astype(np.float64) * np.nan
        out.name = "fraction"
        return out


@dataclass(frozen=True)
class ErrorBreakdown:
    """Both analyses of one set of detections (for a dashboard)."""

    false_positives: FalsePositiveBreakdown
    missed_by_length: pd.DataFrame


# ----------------------------------------------------------------------------- public API


def false_positive_breakdown(
    ground_truth: pd.DataFrame,
    detections: pd.DataFrame,
    tiou: float = VIEW_TIOU,
    protocol: str = "activitynet",
    top_k_factor: float | None = None,
    rule: str = "detad",
) -> FalsePositiveBreakdown:
    """Category of every detection at tIoU threshold ``tiou`` (see the module docstring).

    ``top_k_factor``: None analyses all detections; k > 0 analyses, per class, the
    ``floor(k · G_c)`` top-scored ones (DETAD's "top-kG"). ``rule``: "detad" or "priority".
    """
    tiou, protocol, top_k_factor, rule = _check_options(tiou, protocol, top_k_factor, rule)
    coded = _Coded(check_ground_truth(ground_truth), check_detections(detections))
    return _false_positive_breakdown(coded, detections, tiou, protocol, top_k_factor, rule)[0]


def missed_ground_truth_by_length(
    ground_truth: pd.DataFrame,
    detections: pd.DataFrame,
    tiou: float = VIEW_TIOU,
    protocol: str = "activitynet",
    bins: LengthBins | tuple | list = THUMOS14_LENGTH_BINS,
) -> pd.DataFrame:
    """Ground truth left unmatched at ``tiou``, per length bucket.

    ``bins``: a :class:`LengthBins` or a plain increasing sequence of edges (seconds;
    labels then read "(a, b]"). Every ground-truth length must lie in
    [edges[0], edges[-1]]. Returns one row per bucket, in order: ``bucket`` (label),
    ``ground_truth`` (instances in the bucket), ``missed`` (unmatched ones) and
    ``missed_fraction`` (missed / ground_truth, NaN for an empty bucket).
    """
    tiou, protocol, _, _ = _check_options(tiou, protocol, None, "detad")
    bins = _check_bins(bins)
    coded = _Coded(check_ground_truth(ground_truth), check_detections(detections))
    _, matched = coded.true_positives(np.ones(len(coded.det), dtype=bool), tiou, protocol)
    return _missed_by_length(coded.gt, matched, bins)


def error_breakdown(
    ground_truth: pd.DataFrame,
    detections: pd.DataFrame,
    tiou: float = VIEW_TIOU,
    protocol: str = "activitynet",
    top_k_factor: float | None = None,
    bins: LengthBins | tuple | list = THUMOS14_LENGTH_BINS,
    rule: str = "detad",
) -> ErrorBreakdown:
    """:func:`false_positive_breakdown` and :func:`missed_ground_truth_by_length` in one call.

    ``top_k_factor`` applies to the false-positive analysis only (as in DETAD, the
    missed ground truth is that of all detections).
    """
    tiou, protocol, top_k_factor, rule = _check_options(tiou, protocol, top_k_factor, rule)
    bins = _check_bins(bins)
    coded = _Coded(check_ground_truth(ground_truth), check_detections(detections))
    false_positives, matched = _false_positive_breakdown(coded, detections, tiou, protocol, top_k_factor, rule)
    if top_k_factor is not None:  # the missed ground truth is that of all detections
        _, matched = coded.true_positives(np.ones(len(coded.det), dtype=bool), tiou, protocol)
    return ErrorBreakdown(false_positives, _missed_by_length(coded.gt, matched, bins))


# ----------------------------------------------------------------------------- validation


def _check_options(tiou, protocol, top_k_factor, rule):
    tiou = checks.number(tiou, "tiou", above=0, maximum=1)
    checks.one_of(protocol, EVAL_PROTOCOLS, "protocol")
    if top_k_factor is not None:
        top_k_factor = checks.number(top_k_factor, "top_k_factor", above=0)
    checks.one_of(rule, RULES, "rule")
    return tiou, protocol, top_k_factor, rule


def _check_bins(bins) -> LengthBins:
    if isinstance(bins, LengthBins):
        edges, labels = bins.edges, bins.labels
    else:
        edges, labels = bins, None
    try:
        edges = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"length bins must be numbers, got {bins!r}", field="bins") from None
    if edges.ndim != 1 or edges.size < 2:
        raise InputError(f"length bins need at least two edges, got {edges.tolist()}", field="bins")
    if np.isnan(edges).any() or not (np.diff(edges) > 0).all():
        raise InputError(f"length bin edges must increase strictly, got {edges.tolist()}", field="bins")
    if labels is None:
        labels = tuple(f"({a:g}, {b:g}]" for a, b in zip(edges[:-1], edges[1:]))
    labels = tuple(str(label) for label in labels)
    if len(labels) != edges.size - 1:
        raise InputError(f"{edges.size} length bin edges need {edges.size - 1} labels, got {len(labels)}", field="bins")
    if len(set(labels)) != len(labels):
        raise InputError(f"length bin labels must be distinct, got {list(labels)}", field="bins")
    return LengthBins(tuple(edges.tolist()), labels)


# ----------------------------------------------------------------------------- core


class _Coded:
    """Clean tables as codes: ground-truth classes 0..C-1, detections of other labels -1."""

    def __init__(self, gt: pd.DataFrame, det: pd.DataFrame):
        self.gt, self.det = gt, det
        self.classes = np.unique(gt["label"].to_numpy())  # (C,) sorted names
        self.gt_class = pd.Categorical(gt["label"], categories=self.classes).codes.astype(np.int64)  # (G,)
        self.det_class = pd.Index(self.classes).get_indexer(det["label"].to_numpy()).astype(np.int64)  # (D,) -1: no GT class
        video, _ = pd.factorize(np.concatenate([gt["video"].to_numpy(), det["video"].to_numpy()]))
        self.gt_video, self.det_video = video[: len(gt)].astype(np.int64), video[len(gt) :].astype(np.int64)
        self.gt_start, self.gt_end = gt["t_start"].to_numpy(), gt["t_end"].to_numpy()
        self.det_start, self.det_end = det["t_start"].to_numpy(), det["t_end"].to_numpy()
        self.det_score = det["score"].to_numpy()

    def true_positives(self, keep: np.ndarray, tiou: float, protocol: str):
        """is_tp (D,) of the kept detections (never for a label without ground truth) and matched (G,)."""
        use = np.flatnonzero(keep & (self.det_class >= 0))  # (D1,)
        ground_truth = CodedIntervals(self.gt_class, self.gt_video, self.gt_start, self.gt_end)
        detections = CodedIntervals(
            self.det_class[use], self.det_video[use], self.det_start[use], self.det_end[use], self.det_score[use]
        )
        is_tp_used, matched = true_positives_codes(ground_truth, detections, len(self.classes), [tiou], protocol)
        is_tp = np.zeros(len(self.det), dtype=bool)
        is_tp[use] = is_tp_used[:, 0]
        return is_tp, matched[:, 0]

    def top_k(self, factor: float | None) -> np.ndarray:
        """(D,) bool: among the floor(factor · G_c) top-ranked detections of its class (all when None)."""
        n = len(self.det)
        if factor is None:
            return np.ones(n, dtype=bool)
        # The evaluator's rank: score descending, ties in input order (lexsort is stable).
        order = np.lexsort((-self.det_score, self.det_class))  # (D,)
        sorted_class = self.det_class[order]
        first = np.searchsorted(sorted_class, sorted_class, side="left")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - first  # (D,) 0 = best of its class
        gt_count = np.bincount(self.gt_class, minlength=len(self.classes))  # (C,)
        limit = np.concatenate([[0], np.floor(gt_count * factor).astype(np.int64)])  # index 0: labels without GT
        return rank < limit[self.det_class + 1]

    def overlaps(self):
        """Per detection, with the ground truth of its video: best same-class tIoU, best
        other-class tIoU (0 when none), and the row of the best instance overall (first
        in input order on ties; -1 without any ground truth in the video)."""
        n = len(self.det)
        best_same, best_other = np.zeros(n), np.zeros(n)
        best_gt = np.full(n, -1, dtype=np.int64)
        gt_order = np.argsort(self.gt_video, kind="stable")  # (G,) by video, input order inside
        sorted_video = self.gt_video[gt_order]
        first = np.searchsorted(sorted_video, self.det_video, side="left")  # (D,)
        count = np.searchsorted(sorted_video, self.det_video, side="right") - first  # (D,) GT in the video
        dets = np.flatnonzero(count > 0)
        if len(dets) == 0:
            return best_same, best_other, best_gt
        pairs_before = np.cumsum(count[dets]) - count[dets]  # (n1,)
        # Blocks of detections with at most _MAX_PAIRS pairs (one block for any usual input).
        block_starts = [0]
        while True:
            nxt = int(np.searchsorted(pairs_before, pairs_before[block_starts[-1]] + _MAX_PAIRS, side="left"))
            if nxt >= len(dets):
                break
            block_starts.append(max(nxt, block_starts[-1] + 1))
        block_starts.append(len(dets))
        for b0, b1 in zip(block_starts[:-1], block_starts[1:]):
            d = dets[b0:b1]
            n_pairs = count[d]
            seg = np.cumsum(n_pairs) - n_pairs  # (m,) first pair of each detection
            pair_det = np.repeat(d, n_pairs)  # (P,)
            pair_gt = gt_order[np.repeat(first[d] - seg, n_pairs) + np.arange(n_pairs.sum())]  # (P,)
            iou = segment_iou(
                np.stack([self.det_start[pair_det], self.det_end[pair_det]], axis=-1),
                np.stack([self.gt_start[pair_gt], self.gt_end[pair_gt]], axis=-1),
            )  # (P,) the evaluator's float operations
            same = self.gt_class[pair_gt] == self.det_class[pair_det]
            best_same[d] = np.maximum.reduceat(np.where(same, iou, 0.0), seg)
            best_other[d] = np.maximum.reduceat(np.where(same, 0.0, iou), seg)
            best_any = np.maximum(best_same[d], best_other[d])
            position = np.where(iou == np.repeat(best_any, n_pairs), np.arange(len(iou)), len(iou))
            best_gt[d] = pair_gt[np.minimum.reduceat(position, seg)]
        return best_same, best_other, best_gt


def _classify(is_tp, best_same, best_other, best_gt_same_class, tiou, rule) -> np.ndarray:
    """Category codes (D,) in CATEGORIES order."""
    if rule == "detad":
        best = np.maximum(best_same, best_other)
        same = best_gt_same_class
        high = best >= tiou
        mid = ~high & (best >= MIN_TIOU)
        codes = np.select(
            [high & same, high, mid & same, mid],
            [_DOUBLE, _WRONG, _LOCALIZATION, _CONFUSION],
            default=_BACKGROUND,
        )
    else:
        codes = np.select(
            [best_same >= tiou, best_other >= tiou, best_same >= MIN_TIOU, best_other >= MIN_TIOU],
            [_DOUBLE, _WRONG, _LOCALIZATION, _CONFUSION],
            default=_BACKGROUND,
        )
    return np.where(is_tp, _TP, codes)


def _false_positive_breakdown(coded: _Coded, raw_detections, tiou, protocol, top_k_factor, rule):
    """The breakdown and the evaluator's matched (G,) of the analysed detections."""
    analysed = coded.top_k(top_k_factor)  # (D,)
    is_tp, matched = coded.true_positives(analysed, tiou, protocol)
    best_same, best_other, best_gt = coded.overlaps()
    best_tiou = np.maximum(best_same, best_other)
    has_best = best_gt >= 0
    best_gt_same_class = np.zeros(len(best_gt), dtype=bool)
    best_gt_same_class[has_best] = coded.gt_class[best_gt[has_best]] == coded.det_class[has_best]
    codes = _classify(is_tp, best_same, best_other, best_gt_same_class, tiou, rule)
    codes = np.where(analysed, codes, -1)  # -1: missing category

    out = coded.det.copy()
    if isinstance(raw_detections, pd.DataFrame) and len(raw_detections.index) == len(out):
        out.index = raw_detections.index
    out["category"] = pd.Categorical.from_codes(codes, categories=list(CATEGORIES))
    out["analysed"] = analysed
    out["best_tiou"] = best_tiou
    out["best_gt"] = np.where(best_tiou > 0, best_gt, -1)
    counts = pd.Series(
        np.bincount(codes[analysed], minlength=len(CATEGORIES)).astype(np.int64),
        index=pd.Index(CATEGORIES, name="category"),
        name="count",
    )
    return FalsePositiveBreakdown(out, counts, tiou, protocol, rule, top_k_factor), matched


def _missed_by_length(gt: pd.DataFrame, matched: np.ndarray, bins: LengthBins) -> pd.DataFrame:
    edges = np.asarray(bins.edges, dtype=np.float64)
    length = gt["t_end"].to_numpy() - gt["t_start"].to_numpy()  # (G,) >= 0 (checked)
    outside = (length < edges[0]) | (length > edges[-1])
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"ground-truth length {length[row]:g} s (row {row}) lies outside the length bins "
            f"[{edges[0]:g}, {edges[-1]:g}]",
            video=gt["video"].iat[row],
            field="bins",
        )
    bucket = np.maximum(np.searchsorted(edges, length, side="left") - 1, 0)  # (a, b]; the first includes a
    n_buckets = len(bins.labels)
    total = np.bincount(bucket, minlength=n_buckets).astype(np.int64)
    missed = np.bincount(bucket[~matched], minlength=n_buckets).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(total > 0, missed / np.maximum(total, 1), np.nan)
    return pd.DataFrame(
        {
            "bucket": list(bins.labels),
            "ground_truth": total,
            "missed": missed,
            "missed_fraction": fraction,
        }
    )
