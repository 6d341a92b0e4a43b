"""Data layer: annotations, feature sources, table form, interchange formats."""

from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.ground_truth import load_ground_truth
from wtal_kit.data.tables import (
    DETECTION_COLUMNS,
    GROUND_TRUTH_COLUMNS,
    check_detections,
    check_ground_truth,
)
from wtal_kit.data.wtalc import load_wtalc_annotations, load_wtalc_features, load_wtalc_release

__all__ = [
    "Annotations",
    "FeatureDataset",
    "DETECTION_COLUMNS",
    "GROUND_TRUTH_COLUMNS",
    "check_detections",
    "check_ground_truth",
    "load_ground_truth",
    "load_wtalc_annotations",
    "load_wtalc_features",
    "load_wtalc_release",
]
