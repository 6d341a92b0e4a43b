"""Tests of wtal_kit.diagnosis: DETAD's error categories (Alwassel et al., ECCV 2018).

Hand-computed tables (the tIoUs are in the comments), a plain loop oracle of the
categories, and properties against the evaluator's matching.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtal_kit.diagnosis import (
    ACTIVITYNET_LENGTH_BINS,
    CATEGORIES,
    THUMOS14_LENGTH_BINS,
    ErrorBreakdown,
    FalsePositiveBreakdown,
    LengthBins,
    error_breakdown,
    false_positive_breakdown,
    missed_ground_truth_by_length,
)
from wtal_kit.errors import InputError
from wtal_kit.evaluate import CodedIntervals, true_positives_codes


def gt_table(rows):
    """rows: (video, label, t_start, t_end)."""
    return pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end"])


def det_table(rows):
    """rows: (video, label, t_start, t_end, score)."""
    return pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end", "score"])


def categories(result: FalsePositiveBreakdown) -> list:
    return [None if pd.isna(c) else c for c in result.detections["category"]]


# One video, two classes: A on [0, 10], B on [20, 30].
GT_AB = gt_table([("v1", "A", 0, 10), ("v1", "B", 20, 30)])


# ----------------------------------------------------------------------------- hand-computed categories


def test_each_category_by_hand():
    det = det_table(
        [
            ("v1", "A", 0, 10, 0.9),  # tIoU 1 with A (free)                 -> true positive
            ("v1", "A", 1, 10, 0.8),  # tIoU 0.9 with A, taken by row 0      -> double detection
            ("v1", "B", 0, 10, 0.7),  # tIoU 1 with A (other class)          -> wrong label
            ("v1", "B", 20, 24, 0.6),  # tIoU 4/10 = 0.4 with B (own class)  -> localization
            ("v1", "A", 20, 24, 0.55),  # tIoU 0.4 with B (other class)      -> confusion
            ("v1", "A", 40, 50, 0.5),  # tIoU 0 with both                    -> background
            ("v2", "A", 0, 10, 0.4),  # a video without ground truth         -> background
        ]
    )
    result = false_positive_breakdown(GT_AB, det)
    assert categories(result) == [
        "true_positive", "double_detection", "wrong_label", "localization", "confusion", "background", "background",
    ]
    assert list(result.counts.index) == list(CATEGORIES)
    assert result.counts.tolist() == [1, 1, 1, 1, 1, 2]
    assert result.counts.dtype == np.int64
    assert result.fractions.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(result.detections["best_tiou"], [1.0, 0.9, 1.0, 0.4, 0.4, 0.0, 0.0])
    assert result.detections["best_gt"].tolist() == [0, 0, 0, 1, 1, -1, -1]
    assert result.detections["analysed"].all()
    assert (result.tiou, result.protocol, result.rule, result.top_k_factor) == (0.5, "activitynet", "detad", None)


def test_bounds_are_inclusive_below():
    gt = gt_table([("v", "A", 0, 10), ("v", "B", 100, 110)])
    det = det_table(
        [
            ("v", "A", 0, 5, 0.9),  # tIoU 5/10 = 0.5 exactly: >= α -> true positive
            ("v", "A", 0, 1, 0.8),  # tIoU 1/10 = 0.1 exactly (A already taken, but < α) -> localization
            ("v", "A", 0, 0.99, 0.7),  # tIoU 0.099 < 0.1 -> background
            ("v", "A", 100, 101, 0.6),  # tIoU 0.1 with B (other class) -> confusion
        ]
    )
    assert categories(false_positive_breakdown(gt, det)) == ["true_positive", "localization", "background", "confusion"]


def test_a_higher_threshold_turns_a_true_positive_into_a_localization_error():
    det = det_table([("v1", "A", 0, 7, 0.9)])  # tIoU 0.7 with A
    assert categories(false_positive_breakdown(GT_AB, det, tiou=0.5)) == ["true_positive"]
    assert categories(false_positive_breakdown(GT_AB, det, tiou=0.75)) == ["localization"]


# ----------------------------------------------------------------------------- priority order


def test_band_priority_double_detection_before_confusion_and_wrong_label_before_localization():
    gt = gt_table([("v", "A", 0, 10), ("v", "B", 6, 16)])
    det = det_table(
        [
            ("v", "A", 0, 10, 0.9),  # tIoU 1 with A -> true positive
            ("v", "A", 0, 11, 0.8),  # A: 10/11 = 0.91 (taken); B: 5/16 = 0.31 -> double detection (both rules)
            ("v", "B", 0, 10, 0.7),  # A: 1 (other class); B: 4/16 = 0.25 (own class) -> wrong label (both rules)
        ]
    )
    for rule in ("detad", "priority"):
        assert categories(false_positive_breakdown(gt, det, rule=rule)) == [
            "true_positive", "double_detection", "wrong_label",
        ]


def test_double_detection_that_also_overlaps_another_class():
    gt = gt_table([("v", "A", 0, 10), ("v", "B", 0, 8)])
    det = det_table(
        [
            ("v", "A", 0, 10, 0.9),  # tIoU 1 with A -> true positive
            ("v", "A", 0, 9, 0.8),  # A: 0.9 (taken), B: 8/9 = 0.89: best overlap is A -> double detection (both rules)
            ("v", "A", 0, 8, 0.7),  # A: 0.8 (taken), B: 1.0: best overlap is B
        ]
    )
    detad = false_positive_breakdown(gt, det, rule="detad")
    priority = false_positive_breakdown(gt, det, rule="priority")
    # DETAD's code: the instance with the highest tIoU (B) decides -> wrong label.
    assert categories(detad) == ["true_positive", "double_detection", "wrong_label"]
    # The strict priority list: any same-class tIoU >= α first -> double detection.
    assert categories(priority) == ["true_positive", "double_detection", "double_detection"]
    assert detad.detections["best_gt"].tolist() == [0, 0, 1]


def test_rules_differ_inside_the_low_band():
    det = det_table([("v1", "A", 7, 27, 0.9)])  # A [0, 10]: 3/27 = 0.11; B [20, 30]: 7/23 = 0.30
    assert categories(false_positive_breakdown(GT_AB, det, rule="detad")) == ["confusion"]
    assert categories(false_positive_breakdown(GT_AB, det, rule="priority")) == ["localization"]


def test_equal_tiou_ties_go_to_the_first_ground_truth_in_input_order():
    det = det_table([("v1", "A", 5, 25, 0.9)])  # A [0, 10]: 5/25 = 0.2; B [20, 30]: 5/25 = 0.2
    result = false_positive_breakdown(GT_AB, det)  # A comes first -> same class -> localization
    assert categories(result) == ["localization"]
    assert result.detections["best_gt"].tolist() == [0]
    swapped = GT_AB.iloc[::-1].reset_index(drop=True)  # now B comes first -> confusion
    assert categories(false_positive_breakdown(swapped, det)) == ["confusion"]


# ----------------------------------------------------------------------------- labels without ground truth


def test_labels_without_ground_truth_are_never_true_positives():
    det = det_table(
        [
            ("v1", "C", 0, 10, 0.9),  # class C has no ground truth; tIoU 1 with A -> wrong label
            ("v1", "C", 20, 24, 0.8),  # tIoU 0.4 with B -> confusion
            ("v1", "C", 50, 60, 0.7),  # no overlap -> background
            ("v1", "B", 1, 10, 0.6),  # B has ground truth, but not here: A 0.9 -> wrong label
            ("v9", "A", 0, 10, 0.5),  # unknown video -> background
        ]
    )
    result = false_positive_breakdown(GT_AB, det)
    assert categories(result) == ["wrong_label", "confusion", "background", "wrong_label", "background"]
    assert result.counts["true_positive"] == 0


def test_empty_ground_truth_makes_every_detection_background():
    det = det_table([("v1", "A", 0, 10, 0.9), ("v1", "B", 0, 10, 0.8)])
    result = false_positive_breakdown(gt_table([]), det)
    assert categories(result) == ["background", "background"]
    missed = missed_ground_truth_by_length(gt_table([]), det)
    assert missed["ground_truth"].sum() == 0 and missed["missed_fraction"].isna().all()


# ----------------------------------------------------------------------------- empty detections, zero-length GT


def test_empty_detections():
    result = false_positive_breakdown(GT_AB, det_table([]))
    assert len(result.detections) == 0
    assert "category" in result.detections.columns
    assert result.counts.tolist() == [0] * len(CATEGORIES)
    assert result.fractions.isna().all()
    missed = missed_ground_truth_by_length(GT_AB, det_table([]))
    # Both instances are 10 s long: M (6, 12].
    assert missed.set_index("bucket")["missed"].to_dict() == {"XS": 0, "S": 0, "M": 2, "L": 0, "XL": 0}


def test_zero_length_ground_truth_is_never_matched():
    gt = gt_table([("v", "A", 5, 5), ("v", "A", 10, 14)])
    det = det_table(
        [
            ("v", "A", 5, 5, 0.9),  # identical zero-length interval: union 0 -> tIoU 0 -> background
            ("v", "A", 10, 14, 0.8),  # tIoU 1 -> true positive
        ]
    )
    result = false_positive_breakdown(gt, det)
    assert categories(result) == ["background", "true_positive"]
    missed = missed_ground_truth_by_length(gt, det).set_index("bucket")
    # The zero-length instance is in XS [0, 3] (first bucket includes 0), missed; the 4 s one in S, matched.
    assert missed.loc["XS", "ground_truth"] == 1 and missed.loc["XS", "missed"] == 1
    assert missed.loc["S", "ground_truth"] == 1 and missed.loc["S", "missed"] == 0
    assert missed.loc["XS", "missed_fraction"] == 1.0 and missed.loc["S", "missed_fraction"] == 0.0


# ----------------------------------------------------------------------------- protocols


def test_first_match_and_best_match_give_different_categories():
    gt = gt_table([("v", "A", 0, 10), ("v", "A", 2, 12)])
    det = det_table(
        [
            # A1 [0, 10]: 8/12 = 0.67; A2 [2, 12]: 1.0.
            # activitynet (best match) takes A2; wtalc (first match in input order) takes A1.
            ("v", "A", 2, 12, 0.9),
            # A1: 7/13 = 0.54; A2: 5/15 = 0.33.
            # activitynet: A1 is free -> true positive; wtalc: A1 taken, A2 < 0.5 -> double detection.
            ("v", "A", -3, 7, 0.8),
        ]
    )
    assert categories(false_positive_breakdown(gt, det, protocol="activitynet")) == ["true_positive", "true_positive"]
    assert categories(false_positive_breakdown(gt, det, protocol="wtalc")) == ["true_positive", "double_detection"]
    # Both instances are 10 s long (bucket M): none missed with best match, A2 missed with first match.
    best = missed_ground_truth_by_length(gt, det, protocol="activitynet").set_index("bucket")
    first = missed_ground_truth_by_length(gt, det, protocol="wtalc").set_index("bucket")
    assert best.loc["M", "missed"] == 0 and first.loc["M", "missed"] == 1


# ----------------------------------------------------------------------------- top-k


def test_top_k_factor_keeps_the_top_scored_detections_of_each_class():
    gt = gt_table([("v", "A", 0, 10), ("v", "A", 20, 30), ("v", "B", 40, 50)])
    det = det_table(
        [
            ("v", "A", 0, 10, 0.5),  # A rank 2 (0.5 ties with the row below; input order first)
            ("v", "A", 20, 30, 0.5),  # A rank 3
            ("v", "A", 60, 70, 0.9),  # A rank 1: background
            ("v", "A", 1, 10, 0.1),  # A rank 4: tIoU 0.9 with the taken A1 -> double detection
            ("v", "B", 40, 50, 0.3),  # B rank 1: true positive
            ("v", "B", 80, 90, 0.2),  # B rank 2: background
            ("v", "C", 0, 10, 0.99),  # C has no ground truth: G = 0, never kept by top-k
        ]
    )
    everything = false_positive_breakdown(gt, det)
    assert categories(everything) == [
        "true_positive", "true_positive", "background", "double_detection", "true_positive", "background", "wrong_label",
    ]
    # k = 1: A keeps floor(1 · 2) = 2 (ranks 1, 2), B keeps 1, C keeps 0.
    top1 = false_positive_breakdown(gt, det, top_k_factor=1)
    assert top1.detections["analysed"].tolist() == [True, False, True, False, True, False, False]
    assert categories(top1) == ["true_positive", None, "background", None, "true_positive", None, None]
    assert top1.counts.to_dict() == {
        "true_positive": 2, "double_detection": 0, "wrong_label": 0, "localization": 0, "confusion": 0, "background": 1,
    }
    # k = 1.5: A keeps floor(3) = 3, B keeps floor(1.5) = 1.
    top15 = false_positive_breakdown(gt, det, top_k_factor=1.5)
    assert top15.detections["analysed"].tolist() == [True, True, True, False, True, False, False]
    # The kept detections keep the categories they have among all detections.
    kept = top15.detections["analysed"].to_numpy()
    assert top15.detections["category"][kept].tolist() == everything.detections["category"][kept].tolist()
    # A large k keeps everything with ground truth.
    assert false_positive_breakdown(gt, det, top_k_factor=10).counts.sum() == 6


def test_error_breakdown_combines_both_and_missed_ignores_top_k():
    det = det_table([("v1", "A", 0, 10, 0.1), ("v1", "A", 40, 50, 0.9), ("v1", "B", 20, 30, 0.5)])
    both = error_breakdown(GT_AB, det, top_k_factor=1)
    assert isinstance(both, ErrorBreakdown)
    # top-1G of A keeps only the background detection (score 0.9), so the TP of A is not analysed ...
    assert categories(both.false_positives) == [None, "background", "true_positive"]
    # ... but the missed ground truth is that of all detections: none missed.
    assert both.missed_by_length["missed"].sum() == 0
    pd.testing.assert_frame_equal(both.missed_by_length, missed_ground_truth_by_length(GT_AB, det))
    without_top_k = error_breakdown(GT_AB, det)
    pd.testing.assert_series_equal(without_top_k.false_positives.counts, false_positive_breakdown(GT_AB, det).counts)


# ----------------------------------------------------------------------------- length buckets


def test_detad_length_buckets_are_right_closed():
    lengths = [0, 3, 3.5, 6, 12, 12.5, 18, 18.5, 500]
    gt = gt_table([("v", "A", 0, length) for length in lengths])
    table = missed_ground_truth_by_length(gt, det_table([]))
    assert list(table.columns) == ["bucket", "ground_truth", "missed", "missed_fraction"]
    # XS [0, 3]: 0, 3 | S (3, 6]: 3.5, 6 | M (6, 12]: 12 | L (12, 18]: 12.5, 18 | XL (18, inf): 18.5, 500
    assert table["bucket"].tolist() == ["XS", "S", "M", "L", "XL"]
    assert table["ground_truth"].tolist() == [2, 2, 1, 2, 2]
    assert table["missed"].tolist() == [2, 2, 1, 2, 2]
    assert (table["missed_fraction"] == 1.0).all()
    activitynet = missed_ground_truth_by_length(gt, det_table([]), bins=ACTIVITYNET_LENGTH_BINS)
    assert activitynet["ground_truth"].tolist() == [8, 0, 0, 0, 1]  # XS [0, 30] ... XL (180, inf)
    assert np.isnan(activitynet["missed_fraction"].iloc[1])


def test_plain_edges_and_custom_labels():
    gt = gt_table([("v", "A", 0, 1), ("v", "A", 0, 5)])
    det = det_table([("v", "A", 0, 5, 0.9)])  # matches the 5 s instance
    table = missed_ground_truth_by_length(gt, det, bins=[0, 2, 10])
    assert table["bucket"].tolist() == ["(0, 2]", "(2, 10]"]
    assert table["missed"].tolist() == [1, 0]
    named = missed_ground_truth_by_length(gt, det, bins=LengthBins((0, 2, 10), ("short", "long")))
    assert named["bucket"].tolist() == ["short", "long"]
    assert THUMOS14_LENGTH_BINS.edges == (0, 3, 6, 12, 18, math.inf)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tiou": 0},
        {"tiou": 1.5},
        {"tiou": float("nan")},
        {"tiou": "0.5"},
        {"tiou": True},
        {"protocol": "coco"},
        {"top_k_factor": 0},
        {"top_k_factor": -1},
        {"top_k_factor": float("inf")},
        {"top_k_factor": "1"},
        {"rule": "tide"},
    ],
)
def test_bad_options_raise_input_error(kwargs):
    det = det_table([("v1", "A", 0, 10, 0.9)])
    with pytest.raises(InputError):
        false_positive_breakdown(GT_AB, det, **kwargs)
    with pytest.raises(InputError):
        error_breakdown(GT_AB, det, **kwargs)


@pytest.mark.parametrize(
    "gt, det",
    [
        ("not a table", det_table([])),
        (GT_AB, [("v1", "A", 0, 10, 0.9)]),
        (GT_AB.drop(columns="t_end"), det_table([])),
        (GT_AB, det_table([("v1", "A", 0, 10, 0.9)]).drop(columns="score")),
        (gt_table([("v", "A", 5, 1)]), det_table([])),  # end < start
        (GT_AB, det_table([("v1", "A", 0, float("nan"), 0.9)])),
        (GT_AB, det_table([("v1", "A", 0, 10, float("inf"))])),
    ],
)
def test_bad_tables_raise_input_error(gt, det):
    for function in (false_positive_breakdown, missed_ground_truth_by_length, error_breakdown):
        with pytest.raises(InputError):
            function(gt, det)


@pytest.mark.parametrize(
    "bins",
    [[0, 3, 3, 10], [0, 5, 2], [5], ["a", "b"], [0, float("nan")], LengthBins((0, 1, 2), ("x",)),
     LengthBins((0, 1, 2), ("x", "x")), [0, 5], [1, 100]],
)
def test_bad_bins_raise_input_error(bins):
    # [0, 5]: the 10 s instances are too long; [1, 100]: a 0 s instance would be too short.
    gt = pd.concat([GT_AB, gt_table([("v1", "A", 3, 3)])], ignore_index=True)
    with pytest.raises(InputError):
        missed_ground_truth_by_length(gt, det_table([]), bins=bins)


def test_module_imports_without_torch():
    code = "import sys; sys.modules['torch'] = None; import wtal_kit.diagnosis"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- oracle and properties


def _reference_iou(start_a, end_a, start_b, end_b) -> float:
    intersection = max(0.0, min(end_a, end_b) - max(start_a, start_b))
    union = (end_a - start_a) + (end_b - start_b) - intersection
    return intersection / union if union > 0 else 0.0


def reference_categories(gt, det, tiou, protocol, rule, top_k_factor=None):
    """A plain loop over the detections, straight from the definitions (None: not analysed)."""
    gts = list(gt.itertuples(index=False))
    dets = list(det.itertuples(index=False))
    classes = {row.label for row in gts}
    kept = [row.label in classes for row in dets]  # a label without ground truth is never a TP
    if top_k_factor is not None:
        kept = [False] * len(dets)
        for label in classes:
            members = sorted((i for i, d in enumerate(dets) if d.label == label), key=lambda i: -dets[i].score)
            limit = math.floor(sum(g.label == label for g in gts) * top_k_factor)
            for i in members[:limit]:
                kept[i] = True
    order = sorted(range(len(dets)), key=lambda i: -dets[i].score)  # stable: ties keep input order
    used = [False] * len(gts)
    is_tp = [False] * len(dets)
    for i in order:
        d = dets[i]
        if not kept[i] or d.label not in classes:
            continue
        chosen, best = None, -1.0
        for j, g in enumerate(gts):
            if used[j] or g.video != d.video or g.label != d.label:
                continue
            iou = _reference_iou(d.t_start, d.t_end, g.t_start, g.t_end)
            if iou < tiou:
                continue
            if protocol == "wtalc":
                chosen = j
                break
            if iou > best:
                chosen, best = j, iou
        if chosen is not None:
            used[chosen] = True
            is_tp[i] = True

    out = []
    for i, d in enumerate(dets):
        if top_k_factor is not None and not kept[i]:
            out.append(None)
            continue
        if is_tp[i]:
            out.append("true_positive")
            continue
        same = [0.0]
        other = [0.0]
        best_iou, best_label = 0.0, None
        for g in gts:
            if g.video != d.video:
                continue
            iou = _reference_iou(d.t_start, d.t_end, g.t_start, g.t_end)
            (same if g.label == d.label else other).append(iou)
            if iou > best_iou:  # strict: the first instance wins ties
                best_iou, best_label = iou, g.label
        if rule == "detad":
            own = best_label == d.label
            if best_iou >= tiou:
                out.append("double_detection" if own else "wrong_label")
            elif best_iou >= 0.1:
                out.append("localization" if own else "confusion")
            else:
                out.append("background")
        else:
            if max(same) >= tiou:
                out.append("double_detection")
            elif max(other) >= tiou:
                out.append("wrong_label")
            elif max(same) >= 0.1:
                out.append("localization")
            elif max(other) >= 0.1:
                out.append("confusion")
            else:
                out.append("background")
    return out


def _interval(draw, labels, videos):
    start = draw(st.integers(0, 12))
    length = draw(st.integers(0, 8))
    return draw(st.sampled_from(videos)), draw(st.sampled_from(labels)), float(start), float(start + length)


@st.composite
def tables(draw):
    """Small crowded tables: overlaps, equal scores, zero lengths, a label ("c") and a video ("v2") without GT."""
    videos = ["v0", "v0", "v1", "v2"]  # v0 twice: most intervals share a video
    n_gt = draw(st.integers(0, 10))
    gt_rows = [_interval(draw, ["a", "a", "b"], videos[:3]) for _ in range(n_gt)]
    n_det = draw(st.integers(0, 14))
    det_rows = [
        _interval(draw, ["a", "b", "c"], videos) + (draw(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.9])),)
        for _ in range(n_det)
    ]
    return gt_table(gt_rows), det_table(det_rows)


@st.composite
def dense_tables(draw):
    """One crowded video: same-class instances overlap often, so first and best match differ."""
    def interval():
        start = draw(st.integers(0, 6))
        return float(start), float(start + draw(st.integers(1, 8)))

    n_gt, n_det = draw(st.integers(1, 5)), draw(st.integers(1, 8))
    gt = gt_table([("v", draw(st.sampled_from(["a", "a", "b"])), *interval()) for _ in range(n_gt)])
    det = det_table(
        [("v", draw(st.sampled_from(["a", "a", "b"])), *interval(), draw(st.sampled_from([0.2, 0.5, 0.9])))
         for _ in range(n_det)]
    )
    return gt, det


def evaluator_matching(gt, det, tiou, protocol):
    """is_tp (D,) and matched (G,) straight from wtal_kit.evaluate.true_positives_codes."""
    classes = np.unique(gt["label"].to_numpy())
    known = det["label"].isin(classes).to_numpy()
    videos, _ = pd.factorize(np.concatenate([gt["video"].to_numpy(), det["video"].to_numpy()]))
    codes = lambda labels: pd.Categorical(labels, categories=classes).codes.astype(np.int64)  # noqa: E731
    ground_truth = CodedIntervals(codes(gt["label"]), videos[: len(gt)], gt["t_start"].to_numpy(float), gt["t_end"].to_numpy(float))
    sub = det[known]
    detections = CodedIntervals(
        codes(sub["label"]), videos[len(gt) :][known], sub["t_start"].to_numpy(float), sub["t_end"].to_numpy(float),
        sub["score"].to_numpy(float),
    )
    is_tp_known, matched = true_positives_codes(ground_truth, detections, len(classes), [tiou], protocol)
    is_tp = np.zeros(len(det), dtype=bool)
    is_tp[known] = is_tp_known[:, 0]
    return is_tp, matched[:, 0]


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    data=tables(),
    tiou=st.sampled_from([0.3, 0.5, 0.7]),
    protocol=st.sampled_from(["activitynet", "wtalc"]),
    rule=st.sampled_from(["detad", "priority"]),
    top_k_factor=st.sampled_from([None, 0.5, 1, 2]),
)
def test_properties(data, tiou, protocol, rule, top_k_factor):
    gt, det = data
    result = false_positive_breakdown(gt, det, tiou=tiou, protocol=protocol, rule=rule, top_k_factor=top_k_factor)
    per_detection = result.detections
    got = categories(result)

    # Agrees with the loop oracle of the definitions.
    assert got == reference_categories(gt, det, tiou, protocol, rule, top_k_factor)

    # The categories partition the analysed detections.
    analysed = per_detection["analysed"].to_numpy()
    assert len(per_detection) == len(det)
    assert per_detection["category"][analysed].notna().all()
    assert per_detection["category"][~analysed].isna().all()
    assert int(result.counts.sum()) == int(analysed.sum())
    assert result.counts.to_dict() == {c: got.count(c) for c in CATEGORIES}

    # The true positives are the evaluator's (without top-k: exactly; with it: on the kept rows).
    if top_k_factor is None:
        is_tp, matched = evaluator_matching(gt, det, tiou, protocol)
        assert analysed.all()
        np.testing.assert_array_equal(per_detection["category"].to_numpy() == "true_positive", is_tp)
        assert result.counts["true_positive"] == is_tp.sum() == matched.sum()

    # Missed + matched = ground truth, per bucket and in total.
    is_tp, matched = evaluator_matching(gt, det, tiou, protocol)
    table = missed_ground_truth_by_length(gt, det, tiou=tiou, protocol=protocol)
    assert table["ground_truth"].sum() == len(gt)
    assert table["missed"].sum() == len(gt) - matched.sum()
    lengths = (gt["t_end"] - gt["t_start"]).to_numpy()
    bucket = np.digitize(lengths, [3, 6, 12, 18], right=True)  # (a, b] buckets; 0 falls in XS
    for i in range(len(table)):
        in_bucket = bucket == i
        assert table["ground_truth"].iat[i] == in_bucket.sum()
        assert table["missed"].iat[i] + matched[in_bucket].sum() == in_bucket.sum()

    combined = error_breakdown(gt, det, tiou=tiou, protocol=protocol, top_k_factor=top_k_factor, rule=rule)
    pd.testing.assert_series_equal(combined.false_positives.counts, result.counts)
    pd.testing.assert_frame_equal(combined.missed_by_length, table)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(data=dense_tables(), tiou=st.sampled_from([0.3, 0.5, 0.7]), rule=st.sampled_from(["detad", "priority"]))
def test_dense_video_agrees_with_the_oracle_under_both_protocols(data, tiou, rule):
    gt, det = data
    for protocol in ("activitynet", "wtalc"):
        result = false_positive_breakdown(gt, det, tiou=tiou, protocol=protocol, rule=rule)
        assert categories(result) == reference_categories(gt, det, tiou, protocol, rule)
        is_tp, _ = evaluator_matching(gt, det, tiou, protocol)
        assert result.counts["true_positive"] == is_tp.sum()


@pytest.mark.parametrize("max_pairs", [97, 7])  # 97: a few detections per block; 7: fewer than one detection's 40 pairs
def test_large_input_uses_several_pair_blocks(monkeypatch, max_pairs):
    import wtal_kit.diagnosis as diagnosis

    rng = np.random.default_rng(0)
    n_gt, n_det = 40, 300
    start = rng.uniform(0, 100, n_gt)
    gt = gt_table([("v", "ab"[i % 2], s, s + rng.uniform(0, 10)) for i, s in enumerate(start)])
    det_start = rng.uniform(0, 100, n_det)
    det = det_table(
        [("v", "abc"[i % 3], s, s + rng.uniform(0, 10), rng.uniform()) for i, s in enumerate(det_start)]
    )
    whole = false_positive_breakdown(gt, det)
    monkeypatch.setattr(diagnosis, "_MAX_PAIRS", max_pairs)  # many blocks
    blocked = false_positive_breakdown(gt, det)
    pd.testing.assert_frame_equal(whole.detections, blocked.detections)
    assert categories(whole) == reference_categories(gt, det, 0.5, "activitynet", "detad")


def test_per_detection_rows_keep_the_input_order_and_index():
    det = det_table([("v1", "A", 40, 50, 0.5), ("v1", "A", 0, 10, 0.9)])  # background, true positive
    det.index = pd.Index(["x", "y"])
    result = false_positive_breakdown(GT_AB, det)
    assert list(result.detections.index) == ["x", "y"]
    assert categories(result) == ["background", "true_positive"]
    assert result.detections[["t_start", "score"]].to_numpy().tolist() == [[40.0, 0.5], [0.0, 0.9]]
