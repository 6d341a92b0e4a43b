"""Annotations of a dataset: videos, subsets, classes, durations, instances.

:class:`Annotations` is what every reader (W-TALC folder, HDF5 store, ActivityNet
JSON) produces and what the synthetic benchmark lays its features on. Ground
truth comes out in the table form of :mod:`wtal_kit.data.tables`.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wtal_kit.data.tables import check_ground_truth
from wtal_kit.errors import InputError


@dataclass(frozen=True, eq=False)
class Annotations:
    """Video-level and segment-level annotations of one dataset.

    name: dataset name, e.g. "Thumos14reduced".
    videos: (N,) video names, in the release's order (features follow it).
    subsets: (N,) subset of each video ("validation", "test", "training", ...).
    classes: the C class names; a class index is a position in this tuple. C may be 0: videos
        without labels, whose features are for inference only (:meth:`without_labels`).
    durations: (N,) seconds, all > 0.
    video_labels: (N, C) bool, the video-level labels used for training
        (W-TALC's ``labels_all``; it can differ from the instance labels).
    instances: ground truth in table form (video, label, t_start, t_end), input order.
    ambiguous: (video, t_start, t_end) intervals to ignore (THUMOS14 "Ambiguous"), maybe empty.
    source: where the annotations were read from (for error messages and reports).
    """

    name: str
    videos: np.ndarray
    subsets: np.ndarray
    classes: tuple
    durations: np.ndarray
    video_labels: np.ndarray
    instances: pd.DataFrame
    ambiguous: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"video": [], "t_start": [], "t_end": []}))
    source: str = ""

    def __post_init__(self):
        n, c = len(self.videos), len(self.classes)
        where = self.source or self.name
        for label, array, shape in (
            ("subsets", self.subsets, (n,)),
            ("durations", self.durations, (n,)),
            ("video_labels", self.video_labels, (n, c)),
        ):
            if np.shape(array) != shape:
                raise InputError(f"shape {np.shape(array)} does not match {shape} (videos: {n}, classes: {c})", file=where, field=label)
        if len(set(self.videos)) != n:
            raise InputError("duplicate video names", file=where, field="videoname")
        if len(set(self.classes)) != c:
            raise InputError("duplicate class names", file=where, field="classlist")
        bad = ~(np.isfinite(self.durations) & (self.durations > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"duration must be > 0, got {self.durations[i]!r}", file=where, video=self.videos[i], field="duration")
        instances = check_ground_truth(self.instances, source=where)
        unknown_videos = sorted(set(instances["video"]) - set(self.videos))
        if unknown_videos:
            raise InputError("instance of a video not in the video list", file=where, video=unknown_videos[0], field="segments")
        unknown_labels = sorted(set(instances["label"]) - set(self.classes))
        if unknown_labels:
            row = int(np.flatnonzero(instances["label"].to_numpy() == unknown_labels[0])[0])
            raise InputError(
                f"unknown label {unknown_labels[0]!r} (not in the class list)", file=where, video=instances["video"].iat[row], field="labels"
            )
        object.__setattr__(self, "instances", instances)

    @classmethod
    def without_labels(cls, name: str, videos, durations, subset: str = "test", source: str = "") -> "Annotations":
        """Videos with names and durations only: no classes, labels or instances (features for inference).

        Every video is in ``subset``; ``video_labels`` is (N, 0).
        """
        videos = np.array([str(v) for v in videos], dtype=object)
        return cls(
            name=name,
            videos=videos,
            subsets=np.full(len(videos), subset, dtype=object),
            classes=(),
            durations=np.asarray(durations, dtype=np.float64),
            video_labels=np.zeros((len(videos), 0), dtype=bool),
            instances=pd.DataFrame({"video": [], "label": [], "t_start": [], "t_end": []}),
            source=source,
        )

    def with_classes(self, classes) -> "Annotations":
        """Videos without labels (C = 0) under a model's class list, still without labels: what a
        store of one's own videos becomes when a model trained on those classes scores it."""
        if self.num_classes:
            raise InputError(f"these videos have classes already ({self.num_classes})", file=self.source or self.name,
                             field="classes")
        classes = tuple(str(name) for name in classes)
        return dataclasses.replace(self, classes=classes, video_labels=np.zeros((self.num_videos, len(classes)), dtype=bool))

    # -- lookups -----------------------------------------------------------------
    @property
    def num_videos(self) -> int:
        return len(self.videos)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def index_of(self, video: str) -> int:
        hits = np.flatnonzero(self.videos == video)
        if len(hits) == 0:
            raise InputError("no such video", file=self.source or self.name, video=video)
        return int(hits[0])

    def indices(self, subset: str | None = None) -> np.ndarray:
        """Indices of the videos of ``subset`` (all videos when None), in release order."""
        if subset is None:
            return np.arange(self.num_videos)
        if subset not in set(self.subsets):
            raise InputError(
                f"no subset {subset!r}; the annotations have {sorted(set(self.subsets))}", file=self.source or self.name, field="subset"
            )
        return np.flatnonzero(self.subsets == subset)

    def select(self, indices) -> "Annotations":
        """The annotations of the videos ``indices`` only (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        keep = set(self.videos[indices])
        return Annotations(
            name=self.name,
            videos=self.videos[indices],
            subsets=self.subsets[indices],
            classes=self.classes,
            durations=self.durations[indices],
            video_labels=self.video_labels[indices],
            instances=self.instances[self.instances["video"].isin(keep)].reset_index(drop=True),
            ambiguous=self.ambiguous[self.ambiguous["video"].isin(keep)].reset_index(drop=True),
            source=self.source,
        )

    def ground_truth(self, subset: str | None = None) -> pd.DataFrame:
        """Instances of the videos of ``subset`` (all when None) in table form."""
        if subset is None:
            return self.instances.copy()
        keep = set(self.videos[self.indices(subset)])
        return self.instances[self.instances["video"].isin(keep)].reset_index(drop=True)

    def summary(self) -> dict:
        """Counts per subset: videos and instances."""
        out = {}
        for subset in dict.fromkeys(self.subsets):
            idx = self.indices(subset)
            out[subset] = {"videos": int(len(idx)), "instances": int(len(self.ground_truth(subset)))}
        return out
