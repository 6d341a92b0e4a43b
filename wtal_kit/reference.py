"""The readable evaluator: both evaluation protocols as plain loops, a reader's oracle.

Slow on purpose: one Python loop over detections, thresholds and ground truth, so that anyone
can check it against the protocol text in :mod:`wtal_kit.evaluate`, whose vectorized evaluator
(and the :class:`~wtal_kit.localizer.Localizer`'s evaluation on integer codes) the tests and
``benchmarks/bench_eval.py`` hold equal to it. The localizer's readable counterpart is
:func:`wtal_kit.localization.localize_videos`, one video at a time, which the fast
:class:`~wtal_kit.localizer.Localizer` is tested equal to (tests/test_pipeline.py).

Inputs are clean tables (as :func:`wtal_kit.data.tables.check_ground_truth` and
:func:`~wtal_kit.data.tables.check_detections` return them)::

    wtal_kit.reference.reference_per_class_ap(ground_truth, detections, [0.5], "activitynet")
"""

from __future__ import annotations

import pandas as pd


def reference_iou(start_a, end_a, start_b, end_b) -> float:
    intersection = max(0.0, min(end_a, end_b) - max(start_a, start_b))
    union = (end_a - start_a) + (end_b - start_b) - intersection
    return intersection / union if union > 0 else 0.0


def reference_per_class_ap(ground_truth, detections, iou_thresholds, protocol="activitynet") -> pd.DataFrame:
    """AP per ground-truth class (rows, sorted by name) and threshold (columns)."""
    thresholds = [float(t) for t in iou_thresholds]
    classes = sorted(set(ground_truth["label"]))
    table = {}
    for label in classes:
        gts = [
            (row.video, row.t_start, row.t_end)
            for row in ground_truth.itertuples(index=False)
            if row.label == label
        ]
        dets = [
            (row.video, row.t_start, row.t_end, row.score)
            for row in detections.itertuples(index=False)
            if row.label == label
        ]
        dets = sorted(dets, key=lambda d: -d[3])  # Python's sort is stable: ties keep input order
        table[label] = [_class_ap(gts, dets, threshold, protocol) for threshold in thresholds]
    return pd.DataFrame.from_dict(table, orient="index", columns=thresholds)


def _class_ap(gts, dets, threshold, protocol) -> float:
    gts_of_video = {}  # video -> [(index, start, end)] in input order
    for j, (gt_video, gt_start, gt_end) in enumerate(gts):
        gts_of_video.setdefault(gt_video, []).append((j, gt_start, gt_end))
    used = [False] * len(gts)
    is_tp = []
    for video, start, end, _score in dets:
        chosen = None
        best_iou = -1.0
        for j, gt_start, gt_end in gts_of_video.get(video, []):
            if used[j]:
                continue
            iou = reference_iou(start, end, gt_start, gt_end)
            if iou < threshold:
                continue
            if protocol == "wtalc":  # first match in input order
                chosen = j
                break
            if iou > best_iou:  # best match; strict '>' keeps the first of equal tIoU
                chosen, best_iou = j, iou
        if chosen is not None:
            used[chosen] = True
        is_tp.append(chosen is not None)

    precisions, recalls = [], []
    tp_count = 0
    for i, hit in enumerate(is_tp):
        tp_count += hit
        precisions.append(tp_count / (i + 1))
        recalls.append(tp_count / len(gts))

    envelope = list(precisions)  # envelope[i] = max_{j >= i} precisions[j]
    for i in range(len(envelope) - 2, -1, -1):
        envelope[i] = max(envelope[i], envelope[i + 1])

    ap = 0.0
    previous_recall = 0.0
    for i, hit in enumerate(is_tp):
        if protocol == "wtalc":
            if hit:
                ap += precisions[i] / len(gts)
        else:  # all-points interpolation: sum of (r_i - r_{i-1}) * max_{j >= i} p_j
            ap += (recalls[i] - previous_recall) * envelope[i]
            previous_recall = recalls[i]
    return ap
