"""What the explorer computes for one setting of its controls, kept for the settings seen (and those ahead).

A recompute of the whole split is three library calls (:meth:`wtal_kit.Localizer.evaluate`,
:meth:`~wtal_kit.Localizer.video_table` and :func:`wtal_kit.diagnosis.error_breakdown`): 35 ms on the
THUMOS14 layout, 130 ms at ActivityNet scale on a 2-core CPU. :class:`SplitResults` keeps the last
results by their settings, so that a threshold moved back and forth, or to a value computed ahead,
costs nothing: after each drawn move the explorer (in the app) computes the thresholds a few steps
either side while the page is idle (:func:`neighbours`), and any new move stops that work at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd

import wtal_kit
from wtal_kit.config import LocalizationSettings
from wtal_kit.diagnosis import ErrorBreakdown, error_breakdown

KEPT = 24  # settings whose results are kept (a few KB each; the video table is one row per video)


@dataclass(frozen=True)
class Computed:
    evaluation: wtal_kit.Evaluation | None  # mAP and per-class AP at the table's thresholds (None: no ground truth)
    video_table: pd.DataFrame  # one row per video, at the view's tIoU
    errors: ErrorBreakdown | None  # false positives by type, missed ground truth by length (None: no ground truth)


def neighbours(threshold: float, steps: int, step: float = 0.01, low: float = 0.05, high: float = 0.95) -> list[float]:
    """Thresholds ``steps`` slider steps either side, nearest first: t+0.01, t-0.01, t+0.02, ..."""
    found = []
    for distance in range(1, steps + 1):
        for sign in (1, -1):
            value = round(threshold + sign * distance * step, 2)
            if low <= value <= high:
                found.append(value)
    return found


class SplitResults:
    """The explorer's results by settings (the localizer's, the evaluation protocol, the view's tIoU)."""

    def __init__(self, localizer: wtal_kit.Localizer, thresholds: tuple, bins):
        self.localizer, self.thresholds, self.bins = localizer, thresholds, bins
        self._kept: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(settings: LocalizationSettings, protocol: str, tiou: float) -> tuple:
        return tuple(sorted(settings.to_dict().items())) + (protocol, round(float(tiou), 6))

    def get(self, settings: LocalizationSettings, protocol: str, tiou: float, stale=lambda: False) -> Computed | None:
        """The results of a setting, computed unless kept; None when ``stale()`` says to stop between the steps."""
        key = self.key(settings, protocol, tiou)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        localizer = self.localizer
        evaluation = errors = None  # one's own videos without annotations: detections only
        if localizer.has_ground_truth:
            evaluation = localizer.evaluate(settings, iou_thresholds=self.thresholds, eval_protocol=protocol)
            if stale():
                return None
        video_table = localizer.video_table(settings, tiou=tiou, eval_protocol=protocol)
        if stale():
            return None
        if localizer.has_ground_truth:
            errors = error_breakdown(localizer.ground_truth, localizer.detections(settings), tiou=tiou, protocol=protocol,
                                     bins=self.bins)
        computed = Computed(evaluation, video_table, errors)
        with self._lock:
            self._kept[key] = computed
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return computed
