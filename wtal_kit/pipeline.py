"""Torch-free steps from a scores file to detections and mAP.

``wtal localize``, ``wtal evaluate`` and the dashboards go through here: they
read an HDF5 scores file (:func:`wtal_kit.data.hdf5.read_scores`), never a model.
"""

from __future__ import annotations

from wtal_kit import evaluate as evaluation
from wtal_kit.data.hdf5 import Scores
from wtal_kit.localize import localize_videos

DEFAULT_BLOCK_SIZE = 60
DEFAULT_K = 10


def detections_from_scores(
    scores: Scores,
    protocol: str = "paper",
    *,
    threshold: float = 0.5,
    gamma: float = 0.7,
    min_length: int = 2,
):
    """Localize every video of a scores file; returns the detections table.

    ``paper``: sigmoid of the clipped activations (kappa from the file) and the
    stored video scores P(c|V). ``wsad_code``: raw logits, blocks and k from the
    file, the annotations' ambiguous intervals dropped.
    """
    block_size = scores.attrs.get("block_size")
    block_size = DEFAULT_BLOCK_SIZE if block_size is None else int(block_size)
    k = scores.attrs.get("k")
    k = DEFAULT_K if k is None else int(k)
    return localize_videos(
        scores.logits,
        scores.video_scores_by_video(),
        list(scores.annotations.classes),
        protocol=protocol,
        kappa=scores.kappa,
        threshold=threshold,
        gamma=gamma,
        seconds_per_segment=scores.seconds_per_segment,
        block_size=block_size,
        k=k,
        min_length=min_length,
        ambiguous=scores.annotations.ambiguous if protocol == "wsad_code" else None,
    )


def evaluate_detections(ground_truth, detections, iou_thresholds=evaluation.DEFAULT_IOU_THRESHOLDS, protocol="activitynet"):
    """mAP per threshold (with "avg") and the per-class AP table."""
    per_class = evaluation.per_class_ap(ground_truth, detections, iou_thresholds=iou_thresholds, protocol=protocol)
    # detection_map is this mean over the ground-truth classes; computing it from the table evaluates once.
    mean_ap = per_class.mean(axis=0).rename("mAP")
    return evaluation.with_average(mean_ap), per_class
