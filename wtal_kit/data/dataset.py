"""A dataset = annotations + a way to get the features of one video.

Three sources fill :class:`FeatureDataset`: a W-TALC release held in memory
(:mod:`wtal_kit.data.wtalc`), an HDF5 feature store read lazily
(:mod:`wtal_kit.data.hdf5`), and the embedded synthetic benchmark, which
generates a video's features on demand (:mod:`wtal_kit.data.synthetic`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from wtal_kit import checks
from wtal_kit.data.annotations import Annotations
from wtal_kit.errors import InputError
from wtal_kit.timegrid import check_seconds_per_segment


@dataclass(eq=False)
class FeatureDataset:
    """annotations: the videos and their labels;
    seconds_per_segment: duration of one feature segment (16 frames at 25 fps for I3D: wtal_kit.timegrid);
    feature_dim: d;
    read_features: index -> (n_i, d) array of video ``index``;
    description: where the features come from (shown in reports)."""

    annotations: Annotations
    seconds_per_segment: float
    feature_dim: int
    read_features: Callable[[int], np.ndarray]
    description: str = ""

    def __post_init__(self):
        try:
            self.seconds_per_segment = check_seconds_per_segment(self.seconds_per_segment)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), file=self.description or None, field="seconds_per_segment") from None
        self.feature_dim = checks.integer(self.feature_dim, "feature_dim", minimum=1, file=self.description or None)

    def __len__(self) -> int:
        return self.annotations.num_videos

    def features(self, index: int) -> np.ndarray:
        """(n_i, d) float32 features of video ``index``, validated."""
        video = self.annotations.videos[int(index)]
        try:
            array = np.asarray(self.read_features(int(index)), dtype=np.float32)
        except InputError:
            raise
        except (TypeError, ValueError):
            raise InputError("features must be numbers", file=self.description, video=video, field="features") from None
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != self.feature_dim:
            raise InputError(
                f"features must have shape (n > 0, {self.feature_dim}), got {array.shape}", file=self.description, video=video, field="features"
            )
        if not np.isfinite(array).all():
            raise InputError("features contain NaN or inf", file=self.description, video=video, field="features")
        return array
