"""Tests of wtal_kit.evaluate: hand-computed AP, properties, agreement with the loop reference."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtal_kit.reference import reference_per_class_ap  # the readable oracle, shipped in the package
from wtal_kit.errors import InputError
from wtal_kit.config import ACTIVITYNET_TIOUS, EVAL_PROTOCOLS, FINE_TIOUS, PAPER_TIOUS
from wtal_kit.evaluate import (
    average_label,
    detection_map,
    is_average,
    main_average,
    per_class_ap,
    segment_iou,
    with_average,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def gt_table(rows):
    """rows: (video, label, t_start, t_end)."""
    return pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end"])


def det_table(rows):
    """rows: (video, label, t_start, t_end, score)."""
    return pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end", "score"])


def ap_of(gt, det, threshold, protocol, label="x"):
    return per_class_ap(gt, det, [threshold], protocol).loc[label, threshold]


# ----------------------------------------------------------------------------- constants, segment_iou


def test_constants():
    assert PAPER_TIOUS == (0.1, 0.3, 0.5, 0.7)
    assert EVAL_PROTOCOLS == ("activitynet", "wtalc")
    np.testing.assert_allclose(ACTIVITYNET_TIOUS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_segment_iou_hand_values():
    # [0,10] vs [5,15]: intersection 5, union 10 + 10 - 5 = 15 -> 1/3
    # [0,10] vs [2,4]: contained, 2 / 10 = 0.2
    # [0,10] vs [10,20]: touching, intersection 0 -> 0
    # [0,10] vs [30,40]: disjoint -> 0
    # [3,3] vs [3,3]: two identical zero-length intervals, union 0 -> defined as 0
    # [0,10] vs [5,5]: zero-length inside, intersection 0, union 10 -> 0
    a = np.array([[0, 10], [0, 10], [0, 10], [0, 10], [3, 3], [0, 10]])
    b = np.array([[5, 15], [2, 4], [10, 20], [30, 40], [3, 3], [5, 5]])
    np.testing.assert_allclose(segment_iou(a, b), [1 / 3, 0.2, 0.0, 0.0, 0.0, 0.0])


def test_segment_iou_broadcasts_to_a_matrix():
    gt = np.array([[0.0, 10.0], [20.0, 30.0]])  # (2, 2)
    det = np.array([[0.0, 5.0], [20.0, 30.0], [5.0, 25.0]])  # (3, 2)
    matrix = segment_iou(gt[:, None], det[None, :])  # (2, 3)
    # row 0: [0,10]&[0,5] = 5/10; &[20,30] = 0; &[5,25] = 5 / (10 + 20 - 5) = 0.2
    # row 1: [20,30]&[0,5] = 0; &[20,30] = 1; &[5,25] = 5 / 25 = 0.2
    np.testing.assert_allclose(matrix, [[0.5, 0.0, 0.2], [0.0, 1.0, 0.2]])


def test_segment_iou_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        segment_iou(np.zeros((3, 3)), np.zeros((3, 2)))


# ----------------------------------------------------------------------------- hand-computed AP


def test_interpolated_envelope_differs_from_non_interpolated():
    # 3 ground truths; ranked detections: TP, FP, FP, TP, TP
    gt = gt_table([("v", "x", 0, 10), ("v", "x", 20, 30), ("v", "x", 40, 50)])
    det = det_table(
        [
            ("v", "x", 0, 10, 0.9),  # TP  p = 1/1, r = 1/3
            ("v", "x", 60, 70, 0.8),  # FP  p = 1/2
            ("v", "x", 80, 90, 0.7),  # FP  p = 1/3
            ("v", "x", 20, 30, 0.6),  # TP  p = 2/4, r = 2/3
            ("v", "x", 40, 50, 0.5),  # TP  p = 3/5, r = 3/3
        ]
    )
    # activitynet: envelope at the TPs = 1, max(2/4, 3/5) = 0.6, 0.6
    #   AP = 1/3 * 1 + 1/3 * 0.6 + 1/3 * 0.6 = 2.2 / 3
    assert ap_of(gt, det, 0.5, "activitynet") == pytest.approx(2.2 / 3, abs=1e-12)
    # wtalc: (1 + 2/4 + 3/5) / 3 = 2.1 / 3
    assert ap_of(gt, det, 0.5, "wtalc") == pytest.approx(2.1 / 3, abs=1e-12)


def test_best_match_and_first_match_differ():
    # Ground truth (input order) A = [0,10], B = [3,10], C = [5,12]; detections are exact copies
    # ranked B, C, A. tIoU: A-B = 7/10 = 0.7; B-C = 5/(7+7-5) = 0.556; A-C = 5/(10+7-5) = 0.417.
    gt = gt_table([("v", "x", 0, 10), ("v", "x", 3, 10), ("v", "x", 5, 12)])
    det = det_table([("v", "x", 3, 10, 0.9), ("v", "x", 5, 12, 0.8), ("v", "x", 0, 10, 0.7)])
    # activitynet at 0.5 (best match): each copy takes its own instance (tIoU 1) -> AP 1
    assert ap_of(gt, det, 0.5, "activitynet") == pytest.approx(1.0, abs=1e-12)
    # wtalc at 0.5 (first match): copy of B takes A (first with tIoU 0.7 >= 0.5); copy of C takes B
    # (A taken, 0.556 >= 0.5); copy of A finds only C (0.417 < 0.5) -> FP.
    #   tp = [1, 1, 0], AP = (1/1 + 2/2) / 3 = 2/3
    assert ap_of(gt, det, 0.5, "wtalc") == pytest.approx(2 / 3, abs=1e-12)
    # at 0.4 the copy of A may take C (0.417 >= 0.4): all three match under both protocols
    assert ap_of(gt, det, 0.4, "wtalc") == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
@pytest.mark.parametrize(
    "gt_rows, expected",
    [
        # the long detection [0,12] has tIoU 2/12 with both 2-s instances; it takes the one
        # that comes first in input order.
        # first [10,12]: the long one takes it, the short [10,12] detection is a FP:
        #   tp = [1, 0], AP = 1/2 * 1 = 0.5 (both protocols)
        ([("v", "x", 10, 12), ("v", "x", 0, 2)], 0.5),
        # first [0,2]: the long one takes [0,2], the short one takes [10,12]: AP = 1
        ([("v", "x", 0, 2), ("v", "x", 10, 12)], 1.0),
    ],
)
def test_equal_tiou_goes_to_the_ground_truth_first_in_input_order(protocol, gt_rows, expected):
    det = det_table([("v", "x", 0, 12, 0.9), ("v", "x", 10, 12, 0.8)])
    assert ap_of(gt_table(gt_rows), det, 0.1, protocol) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_score_ties_keep_input_order(protocol):
    gt = gt_table([("v", "x", 0, 10)])
    true_positive = ("v", "x", 0, 10, 0.5)
    false_positive = ("v", "x", 50, 60, 0.5)  # same score
    # FP ranked first: p = [0/1, 1/2], TP at rank 2 -> AP = 1 * 1/2 = 0.5
    assert ap_of(gt, det_table([false_positive, true_positive]), 0.5, protocol) == pytest.approx(0.5, abs=1e-12)
    # TP ranked first: AP = 1
    assert ap_of(gt, det_table([true_positive, false_positive]), 0.5, protocol) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_detection_in_a_video_without_ground_truth_of_its_class_is_a_false_positive(protocol):
    gt = gt_table([("a", "x", 0, 10), ("b", "y", 0, 10)])
    det = det_table(
        [
            ("b", "x", 0, 10, 0.9),  # video b has no x: FP although the times match b's y
            ("c", "x", 0, 10, 0.85),  # video c has no ground truth at all: FP
            ("a", "x", 0, 10, 0.8),  # TP at rank 3: p = 1/3
            ("b", "y", 0, 10, 0.7),  # y: TP at rank 1
        ]
    )
    ap = per_class_ap(gt, det, [0.5], protocol)
    # x: AP = 1 * 1/3 (one recall step of 1 at precision 1/3); y: AP = 1
    assert ap.loc["x", 0.5] == pytest.approx(1 / 3, abs=1e-12)
    assert ap.loc["y", 0.5] == pytest.approx(1.0, abs=1e-12)
    assert detection_map(gt, det, [0.5], protocol)[0.5] == pytest.approx((1 / 3 + 1) / 2, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_class_with_ground_truth_and_no_detections_has_ap_zero(protocol):
    gt = gt_table([("a", "x", 0, 10), ("a", "y", 20, 30)])
    det = det_table([("a", "x", 0, 10, 0.9)])
    ap = per_class_ap(gt, det, [0.3, 0.7], protocol)
    assert list(ap.index) == ["x", "y"]
    np.testing.assert_array_equal(ap.to_numpy(), [[1.0, 1.0], [0.0, 0.0]])
    # mAP = (1 + 0) / 2 at both thresholds
    np.testing.assert_allclose(detection_map(gt, det, [0.3, 0.7], protocol).to_numpy(), [0.5, 0.5])


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_unknown_detection_label_warns_once_and_is_ignored(protocol):
    gt = gt_table([("a", "x", 0, 10), ("a", "x", 20, 30)])
    det = det_table(
        [
            ("a", "zebra", 0, 10, 0.99),
            ("a", "x", 0, 10, 0.9),  # TP p = 1
            ("a", "yak", 5, 6, 0.95),
            ("a", "x", 40, 50, 0.8),  # FP p = 1/2
        ]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ap = per_class_ap(gt, det, [0.5], protocol)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "yak" in messages[0] and "zebra" in messages[0]
    assert list(ap.index) == ["x"]
    # x: one TP of two instances at precision 1 -> 0.5 (the unknown rows did not lower precision)
    assert ap.loc["x", 0.5] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_threshold_is_inclusive_and_one_is_allowed(protocol):
    gt = gt_table([("a", "x", 0, 10), ("a", "x", 20, 30)])
    det = det_table([("a", "x", 0, 5, 0.9), ("a", "x", 20, 30, 0.8)])
    # [0,5] vs [0,10]: tIoU exactly 0.5 -> TP at 0.5, FP at 0.6; [20,30] exact copy -> tIoU 1.0
    ap = per_class_ap(gt, det, [0.5, 0.6, 1.0], protocol)
    assert ap.loc["x", 0.5] == pytest.approx(1.0, abs=1e-12)
    # at 0.6 and 1.0: FP then TP -> AP = 1/2 * 1/2 = 0.25
    assert ap.loc["x", 0.6] == pytest.approx(0.25, abs=1e-12)
    assert ap.loc["x", 1.0] == pytest.approx(0.25, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_zero_length_ground_truth_can_never_be_matched(protocol):
    gt = gt_table([("a", "x", 5, 5), ("a", "x", 20, 30)])
    det = det_table([("a", "x", 5, 5, 0.9), ("a", "x", 20, 30, 0.8)])
    # the identical zero-length pair has tIoU 0 -> FP; second is a TP at p = 1/2, recall 1/2
    #   AP = 1/2 * 1/2 = 0.25 (both protocols)
    assert ap_of(gt, det, 0.1, protocol) == pytest.approx(0.25, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_one_to_one_matching_per_threshold(protocol):
    gt = gt_table([("a", "x", 0, 10)])
    det = det_table([("a", "x", 0, 8, 0.9), ("a", "x", 0, 10, 0.8)])
    # at 0.7: [0,8] has tIoU 0.8 -> takes the instance; the exact copy is then a duplicate FP
    #   tp = [1, 0] -> AP 1. At 0.9: [0,8] is a FP (0.8 < 0.9), the copy a TP at p = 1/2 -> 0.5
    ap = per_class_ap(gt, det, [0.7, 0.9], protocol)
    assert ap.loc["x", 0.7] == pytest.approx(1.0, abs=1e-12)
    assert ap.loc["x", 0.9] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("protocol", EVAL_PROTOCOLS)
def test_empty_detections_give_zero(protocol):
    gt = gt_table([("a", "x", 0, 10), ("b", "y", 0, 10)])
    ap = per_class_ap(gt, det_table([]), PAPER_TIOUS, protocol)
    assert ap.shape == (2, 4)
    assert (ap.to_numpy() == 0).all()


def test_result_layout():
    gt = gt_table([("a", "b_class", 0, 10), ("a", "a_class", 20, 30)])
    det = det_table([("a", "b_class", 0, 10, 0.9)])
    ap = per_class_ap(gt, det, ACTIVITYNET_TIOUS)
    assert list(ap.index) == ["a_class", "b_class"]  # sorted class names
    assert list(ap.columns) == list(ACTIVITYNET_TIOUS)
    m = detection_map(gt, det, (0.7, 0.1))  # thresholds keep the given order
    assert list(m.index) == [0.7, 0.1]
    assert isinstance(m.index[0], float)
    np.testing.assert_allclose(m.to_numpy(), [0.5, 0.5])  # (0 + 1) / 2


def test_with_average_names_every_average_by_its_set():
    # another set than the paper's: its mean is labelled with the set, never "avg"
    series = pd.Series([0.2, 0.4, 0.9], index=[0.1, 0.3, 0.5])
    out = with_average(series)
    assert list(out.index) == [0.1, 0.3, 0.5, "avg 0.1:0.2:0.5"]
    assert out["avg 0.1:0.2:0.5"] == pytest.approx((0.2 + 0.4 + 0.9) / 3)  # 0.5
    assert out[0.3] == pytest.approx(0.4)
    # the paper's set: exactly one entry, "avg", as before
    paper = with_average(pd.Series([0.6, 0.4, 0.3, 0.1], index=list(PAPER_TIOUS)))
    assert list(paper.index) == [*PAPER_TIOUS, "avg"] and paper["avg"] == pytest.approx(0.35)  # 1.4 / 4
    # 0.1:0.1:0.9 holds the paper's four: "avg" is theirs, the nine's mean is labelled
    fine = with_average(pd.Series(np.arange(1, 10) / 10, index=list(FINE_TIOUS)))
    assert fine["avg"] == pytest.approx((0.1 + 0.3 + 0.5 + 0.7) / 4)  # 0.4
    assert fine["avg 0.1:0.1:0.9"] == pytest.approx(0.5)  # 4.5 / 9
    # more sets, each labelled; a set the series does not hold is left out
    union = sorted(set(FINE_TIOUS) | set(ACTIVITYNET_TIOUS))
    both = with_average(pd.Series(union, index=union), sets=[FINE_TIOUS, ACTIVITYNET_TIOUS, (0.05,)])
    assert [k for k in both.index if isinstance(k, str)] == ["avg", "avg 0.1:0.1:0.9", "avg 0.5:0.05:0.95"]
    assert both["avg 0.5:0.05:0.95"] == pytest.approx(0.725)  # (0.5 + 0.95) / 2
    assert [average_label(s) for s in ((0.5,), (0.5, 0.3), PAPER_TIOUS[::-1])] == ["avg 0.5", "avg 0.3,0.5", "avg"]
    assert is_average("avg") and is_average("avg 0.5") and not is_average(0.5) and not is_average("average")
    assert main_average(fine) == "avg" and main_average(out) == "avg 0.1:0.2:0.5"
    with pytest.raises(ValueError, match="empty"):
        with_average(pd.Series([], dtype=float))
    with pytest.raises(ValueError, match="already"):
        with_average(paper)
    with pytest.raises(TypeError):
        with_average([0.1, 0.2])


# ----------------------------------------------------------------------------- bad input


GOOD_GT = gt_table([("a", "x", 0, 10)])
GOOD_DET = det_table([("a", "x", 0, 10, 0.9)])


@pytest.mark.parametrize(
    "gt, det",
    [
        (GOOD_GT.drop(columns="t_end"), GOOD_DET),
        (GOOD_GT, GOOD_DET.drop(columns="score")),
        (GOOD_GT, GOOD_DET.assign(score=np.nan)),
        (GOOD_GT.assign(t_end=-1.0), GOOD_DET),
        (GOOD_GT, GOOD_DET.assign(t_start=20.0)),
        (gt_table([]), GOOD_DET),
    ],
    ids=["gt-missing-column", "det-missing-score", "nan-score", "gt-end-before-start", "det-end-before-start", "empty-gt"],
)
def test_bad_tables_raise_input_error(gt, det):
    with pytest.raises(InputError):
        per_class_ap(gt, det)


@pytest.mark.parametrize("thresholds", [[], [0.0], [1.5], [-0.1], [np.nan], [0.5, 0.5], [[0.5]], ["a"]])
def test_bad_thresholds_raise_input_error(thresholds):
    with pytest.raises(InputError, match="threshold"):
        detection_map(GOOD_GT, GOOD_DET, thresholds)


def test_unknown_protocol_raises_input_error():
    with pytest.raises(InputError, match="protocol"):
        detection_map(GOOD_GT, GOOD_DET, protocol="thumos")


def test_evaluator_does_not_import_torch():
    code = "import sys, wtal_kit.evaluate; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


# ----------------------------------------------------------------------------- hypothesis strategies

VIDEOS = ["v1", "v2", "v3"]
LABELS = ["x", "y", "z"]
# times on a 0.5 s grid, so that tIoU often hits a threshold exactly and ties happen
gt_rows = st.lists(
    st.tuples(st.sampled_from(VIDEOS), st.sampled_from(LABELS), st.integers(0, 30), st.integers(1, 12)),
    min_size=1,
    max_size=25,
).map(lambda rows: gt_table([(v, c, s / 2, (s + n) / 2) for v, c, s, n in rows]))
det_rows = st.lists(
    st.tuples(
        st.sampled_from(VIDEOS + ["v4"]),
        st.sampled_from(LABELS),
        st.integers(0, 30),
        st.integers(0, 12),
        st.integers(0, 6),  # few score levels: ties
    ),
    max_size=40,
).map(lambda rows: det_table([(v, c, s / 2, (s + n) / 2, q / 6) for v, c, s, n, q in rows]))
thresholds_st = st.lists(
    st.sampled_from([0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 2 / 3, 0.7, 0.75, 0.8, 0.9, 1.0]),
    min_size=1,
    max_size=5,
    unique=True,
)
protocols_st = st.sampled_from(EVAL_PROTOCOLS)


def per_class_quietly(gt, det, thresholds, protocol):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels of the detections may be absent from the ground truth
        return per_class_ap(gt, det, thresholds, protocol)


def with_distinct_scores(det, seed):
    rng = np.random.default_rng(seed)
    return det.assign(score=rng.permutation(len(det)) / max(len(det), 1))


# ----------------------------------------------------------------------------- agreement with the loop reference


@settings(max_examples=150, deadline=None)
@given(gt=gt_rows, det=det_rows, thresholds=thresholds_st, protocol=protocols_st)
def test_equals_loop_reference(gt, det, thresholds, protocol):
    fast = per_class_quietly(gt, det, thresholds, protocol)
    reference = reference_per_class_ap(gt, det, thresholds, protocol)
    assert list(fast.index) == list(reference.index)
    np.testing.assert_allclose(fast.to_numpy(), reference.to_numpy(), atol=1e-9, rtol=0)


@pytest.mark.parametrize("seed", range(6))
def test_equals_loop_reference_on_dense_random_tables(seed):
    # larger, crowded tables: long overlap chains, many ranks per component, many ties
    rng = np.random.default_rng(seed)
    n_gt, n_det = 60, 400
    start = rng.integers(0, 100, n_gt) / 2
    gt = gt_table(
        list(zip(rng.choice(["a", "b"], n_gt), rng.choice(["x", "y"], n_gt), start, start + rng.integers(0, 20, n_gt) / 2))
    )
    start = rng.integers(0, 100, n_det) / 2
    det = det_table(
        list(
            zip(
                rng.choice(["a", "b", "c"], n_det),
                rng.choice(["x", "y"], n_det),
                start,
                start + rng.integers(0, 30, n_det) / 2,
                rng.integers(0, 20, n_det) / 20,
            )
        )
    )
    thresholds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    for protocol in EVAL_PROTOCOLS:
        fast = per_class_ap(gt, det, thresholds, protocol)
        reference = reference_per_class_ap(gt, det, thresholds, protocol)
        np.testing.assert_allclose(fast.to_numpy(), reference.to_numpy(), atol=1e-9, rtol=0)


# ----------------------------------------------------------------------------- properties


@settings(max_examples=80, deadline=None)
@given(gt=gt_rows, det=det_rows, thresholds=thresholds_st, protocol=protocols_st)
def test_ap_lies_in_unit_interval(gt, det, thresholds, protocol):
    ap = per_class_quietly(gt, det, thresholds, protocol).to_numpy()
    assert ((ap >= 0) & (ap <= 1 + 1e-12)).all()


@settings(max_examples=60, deadline=None)
@given(gt=gt_rows, seed=st.integers(0, 2**16), thresholds=thresholds_st)
def test_perfect_detections_score_one_activitynet(gt, seed, thresholds):
    # any positive-length ground truth, overlapping or duplicated, any scores (ties included)
    scores = np.random.default_rng(seed).integers(0, 3, len(gt)) / 3
    det = gt.assign(score=scores)
    ap = per_class_ap(gt, det, thresholds, "activitynet")
    np.testing.assert_allclose(ap.to_numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(detection_map(gt, det, thresholds, "activitynet").to_numpy(), 1.0, atol=1e-12)


# disjoint instances per (video, class): instance k lies inside [10k, 10k + 9]
disjoint_gt_rows = st.lists(
    st.tuples(st.sampled_from(VIDEOS), st.sampled_from(LABELS), st.integers(0, 8), st.integers(0, 2), st.integers(1, 7)),
    min_size=1,
    max_size=25,
    unique_by=lambda row: row[:3],
).map(lambda rows: gt_table([(v, c, 10 * k + a, 10 * k + a + n) for v, c, k, a, n in rows]))


@settings(max_examples=60, deadline=None)
@given(gt=disjoint_gt_rows, seed=st.integers(0, 2**16), thresholds=thresholds_st, protocol=protocols_st)
def test_perfect_detections_score_one_both_protocols(gt, seed, thresholds, protocol):
    # With first match, overlapping instances of one class can steal each other's detection
    # (see test_best_match_and_first_match_differ); with disjoint instances both protocols give 1.
    scores = np.random.default_rng(seed).integers(0, 3, len(gt)) / 3
    ap = per_class_ap(gt, gt.assign(score=scores), thresholds, protocol)
    np.testing.assert_allclose(ap.to_numpy(), 1.0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(gt=gt_rows, det=det_rows, thresholds=thresholds_st, protocol=protocols_st, seed=st.integers(0, 2**16))
def test_permuting_detection_rows_and_video_order_changes_nothing(gt, det, thresholds, protocol, seed):
    rng = np.random.default_rng(seed)
    det = with_distinct_scores(det, seed)
    expected = per_class_quietly(gt, det, thresholds, protocol)

    shuffled_det = det.iloc[rng.permutation(len(det))]
    # reorder the videos of the ground truth, keeping the input order inside each video
    video_rank = dict(zip(VIDEOS, rng.permutation(len(VIDEOS))))
    reordered_gt = gt.iloc[np.argsort(gt["video"].map(video_rank).to_numpy(), kind="stable")]
    got = per_class_quietly(reordered_gt, shuffled_det, thresholds, protocol)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, atol=1e-12, rtol=0)


@settings(max_examples=60, deadline=None)
@given(gt=gt_rows, det=det_rows, thresholds=thresholds_st, protocol=protocols_st, label=st.sampled_from(LABELS))
def test_a_lowest_scored_false_positive_never_raises_ap(gt, det, thresholds, protocol, label):
    before = per_class_quietly(gt, det, thresholds, protocol)
    lowest = det["score"].min() - 1 if len(det) else 0.0
    extra = det_table([("video_without_ground_truth", label, 0.0, 5.0, lowest)])
    after = per_class_quietly(gt, pd.concat([det, extra], ignore_index=True), thresholds, protocol)
    assert (after.to_numpy() <= before.to_numpy() + 1e-12).all()
    # it cannot lower AP either: precision at every earlier true positive is unchanged, and the
    # new last point (tp/(n+1)) is below the last precision, so the envelope is unchanged too
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    gt=gt_rows,
    det=det_rows,
    thresholds=thresholds_st,
    protocol=protocols_st,
    label=st.sampled_from(LABELS),
    score=st.floats(-1, 2),
)
def test_a_false_positive_at_any_score_never_raises_ap(gt, det, thresholds, protocol, label, score):
    before = per_class_quietly(gt, det, thresholds, protocol)
    extra = det_table([("video_without_ground_truth", label, 0.0, 5.0, score)])
    after = per_class_quietly(gt, pd.concat([extra, det], ignore_index=True), thresholds, protocol)
    assert (after.to_numpy() <= before.to_numpy() + 1e-12).all()


# ----------------------------------------------------------------------------- benchmark smoke test


@pytest.mark.slow
def test_benchmark_quick_runs_and_agrees():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_eval.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("-> agree") == len(EVAL_PROTOCOLS), result.stdout
