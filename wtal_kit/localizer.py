"""From a scores file to detections, mAP and per-video views, prepared once: :class:`Localizer`.

``wtal localize``, ``wtal evaluate``, training's periodic evaluation and the
dashboards go through here; nothing here needs torch or a model.

A :class:`Localizer` is built once per scores file (and per kappa). It keeps every
video's activations stacked into one array, with their sigmoid probabilities and
P(c|V), and the ground truth as integer codes, so that

- a threshold move finds the runs of the whole split in one vectorized pass
  (runs are cached per threshold and minimum length),
- a gamma move only rescores the cached runs (``score = max + gamma * P(c|V)``,
  docs/method.md, "Localization"), and
- evaluation works on integer codes, without building a detections table.

Results are identical to :func:`wtal_kit.localization.localize_videos` followed by
:func:`wtal_kit.evaluate.per_class_ap` (the tests compare them exactly).
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wtal_kit import checks, timegrid
from wtal_kit.config import EVAL_PROTOCOLS, LOCALIZATION_FIELDS, PAPER_TIOUS, VIEW_TIOU, Config, LocalizationSettings
from wtal_kit.data.hdf5 import Scores
from wtal_kit.data.tables import DETECTION_COLUMNS
from wtal_kit.errors import InputError
from wtal_kit.evaluate import (
    CodedIntervals,
    Evaluation,
    average_precision_codes,
    ranked_average_precision,
    true_positives_codes,
)
from wtal_kit.localization import (
    block_topk_mean,
    run_max_in_rows,
    runs_in_rows,
    sigmoid,
    top_per_video,
    touches_ambiguous,
)

CACHED_RUN_SETS = 16  # run sets kept per Localizer (one per threshold / minimum length seen)


@dataclass(frozen=True)
class VideoView:
    """What a figure of one video and one class needs; plain arrays and tables, no plotting.

    segment, t_start, t_end: (T,) segment index and its interval in seconds.
    probs: (T,) y = sigmoid(clip(s)) of the class (the paper localizes on it); logits: (T,) raw s.
    curve / curve_threshold: what the chosen localization thresholds and where (probs and the
    threshold for "paper"; logits and the video's midpoint for "wsad_code").
    video_prob: P(c|V). detections: label, t_start, t_end, score, true_positive (at ``tiou``).
    ground_truth: label, t_start, t_end, matched (at ``tiou``). ambiguous: t_start, t_end.
    """

    video: str
    label: str
    duration: float
    seconds_per_segment: float
    segment: np.ndarray
    t_start: np.ndarray
    t_end: np.ndarray
    probs: np.ndarray
    logits: np.ndarray
    curve: np.ndarray
    curve_threshold: float
    video_prob: float
    detections: pd.DataFrame
    ground_truth: pd.DataFrame
    ambiguous: pd.DataFrame
    localization: str
    threshold: float
    gamma: float
    tiou: float


@dataclass(frozen=True)
class _Runs:
    """Runs of kept segments of the whole split, in the order localize_videos gives (video, class, start)."""

    video: np.ndarray  # (n,) video index
    label: np.ndarray  # (n,) class index
    start: np.ndarray  # (n,) first segment, local to the video
    end: np.ndarray  # (n,) one past the last segment
    peak: np.ndarray  # (n,) max of the thresholded curve over the run


def _old_positional(lead: int = 0, after: tuple[str, ...] = ()):
    """Accept 0.1's positional settings (threshold, gamma, localization, min_length, max_per_video, then
    ``after``) where ``settings`` now stands, ``lead`` arguments in, with a FutureWarning (until 0.3):
    ``localizer.evaluate(0.5, 0.7)`` is ``localizer.evaluate(threshold=0.5, gamma=0.7)``."""
    names = LOCALIZATION_FIELDS + after

    def wrap(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            old = args[lead:]
            if not old or old[0] is None or isinstance(old[0], LocalizationSettings):
                return method(self, *args, **kwargs)
            if len(old) > len(names):
                raise TypeError(f"{method.__name__}() takes at most {lead + len(names)} positional arguments")
            given = dict(zip(names, old))
            twice = sorted(set(given) & set(kwargs))
            if twice:
                raise TypeError(f"{method.__name__}() got multiple values for {twice}")
            warnings.warn(f"Localizer.{method.__name__}: settings as positional arguments ({', '.join(given)}) go "
                          "away in 0.3; pass a LocalizationSettings or keywords", FutureWarning, stacklevel=2)
            return method(self, *args[:lead], **given, **kwargs)

        return call

    return wrap


class Localizer:
    """Detections, mAP and per-video views of one scores file, for any threshold, gamma and protocol.

    ``Localizer(run.scores("test"))``; ``kappa`` (the clipping bound of Eq. 1) defaults
    to the one the scores were made with.
    """

    def __init__(self, scores: Scores, kappa: float | None | str = "from scores"):
        self.scores = scores
        self.annotations = scores.annotations
        self.kappa = scores.kappa if kappa == "from scores" else kappa
        self.seconds_per_segment = scores.seconds_per_segment
        self.classes = np.asarray(self.annotations.classes, dtype=object)  # (C,)
        self.videos = np.asarray(self.annotations.videos, dtype=object)  # (N,)
        self.num_classes = len(self.classes)
        block_size = scores.attrs.get("block_size")
        self.block_size = Config.block_size if block_size is None else int(block_size)
        k = scores.attrs.get("k")
        self.k = Config.k if k is None else int(k)

        lengths = np.array([len(scores.logits[video]) for video in self.videos], dtype=np.int64)  # (N,)
        # Videos stacked along time, each followed by one separator position that is never kept,
        # so that a run can never cross from one video into the next.
        self.lengths = lengths
        self.video_start = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])  # (N,) first position of each video
        total = int((lengths + 1).sum())
        rows = self.num_classes * total
        # The scores' own precision (float32 from a scores file): converting up is exact, and
        # every comparison and sum below is done in float64, so the numbers equal localize_videos'.
        dtype = np.result_type(np.float32, *(np.asarray(scores.logits[video]).dtype for video in self.videos))
        # Classes as rows, rows one after another, then one -inf pad: the layout run_max_in_rows reads.
        self._logits_flat = np.full(rows + 1, -np.inf, dtype=dtype)  # (C * total + 1,)
        self._logits_rows = self._logits_flat[:-1].reshape(self.num_classes, total)  # (C, total), a view
        self._probs_flat = np.zeros(rows + 1)  # (C * total + 1,) float64; separators hold 0
        self._probs_flat[-1] = -np.inf
        self._probs_rows = self._probs_flat[:-1].reshape(self.num_classes, total)  # (C, total), a view
        for i, video in enumerate(self.videos):  # one video at a time: no split-sized temporaries
            start, stop = self.video_start[i], self.video_start[i] + lengths[i]
            logits = np.asarray(scores.logits[video]).T  # (C, T)
            self._logits_rows[:, start:stop] = logits
            logits = logits.astype(np.float64)
            clipped = logits if self.kappa is None else np.clip(logits, -self.kappa, self.kappa)  # phi_kappa (Eq. 1)
            self._probs_rows[:, start:stop] = sigmoid(clipped)
        self.separator = np.isneginf(self._logits_rows[0]) if self.num_classes else np.zeros(total, dtype=bool)  # (total,)
        self.video_probs = np.asarray(scores.video_probs, dtype=np.float64)  # (N, C) P(c|V)
        self._wsad_video_score = None  # (N, C), built on first wsad_code use
        self._run_cache: OrderedDict = OrderedDict()
        # A dashboard may ask from two threads at once (a background refresh and a video pick): the
        # caches are filled under this lock; everything else only reads arrays that never change.
        self._cache_lock = threading.RLock()

        ground_truth = self.annotations.ground_truth()
        self.ground_truth = ground_truth
        video_index = {video: i for i, video in enumerate(self.videos)}
        class_index = {name: c for c, name in enumerate(self.classes)}
        self._gt_video = ground_truth["video"].map(video_index).to_numpy(dtype=np.int64)  # (G,)
        self._gt_label = ground_truth["label"].map(class_index).to_numpy(dtype=np.int64)  # (G,)
        self._gt_start = ground_truth["t_start"].to_numpy(dtype=np.float64)
        self._gt_end = ground_truth["t_end"].to_numpy(dtype=np.float64)
        # Evaluation averages over the classes with ground truth, in sorted name order (as per_class_ap).
        self.eval_classes = np.unique(ground_truth["label"].to_numpy()) if len(ground_truth) else np.zeros(0, dtype=object)
        self._eval_code = np.full(self.num_classes, -1, dtype=np.int64)  # (C,) class index -> evaluation code
        self._eval_code[[class_index[name] for name in self.eval_classes]] = np.arange(len(self.eval_classes))
        ambiguous = self.annotations.ambiguous
        ambiguous = ambiguous[ambiguous["video"].isin(video_index)]
        self._ambiguous_video = ambiguous["video"].map(video_index).to_numpy(dtype=np.int64)
        self._ambiguous_bounds = ambiguous[["t_start", "t_end"]].to_numpy(dtype=np.float64).reshape(-1, 2)

    @property
    def has_ground_truth(self) -> bool:
        """False for one's own videos without annotations: detections, views and the per-video table
        work, evaluation (mAP, true / false positives against ground truth) has nothing to count."""
        return len(self.eval_classes) > 0

    # -- settings ---------------------------------------------------------------------------
    @staticmethod
    def _settings(settings: LocalizationSettings | None, changes: dict) -> LocalizationSettings:
        """``settings`` (default: the paper's) with keyword ``changes`` (threshold=..., gamma=...)."""
        settings = LocalizationSettings() if settings is None else settings
        if not isinstance(settings, LocalizationSettings):
            raise InputError(f"settings must be a LocalizationSettings, got {type(settings).__name__}", field="settings")
        unknown = sorted(set(changes) - set(LOCALIZATION_FIELDS))
        if unknown:
            raise InputError(f"unknown localization setting(s) {unknown}", field="settings")
        return settings.replace(**changes) if changes else settings

    # -- runs (cached) ------------------------------------------------------------------------
    def _runs(self, threshold: float, localization: str, min_length: int) -> _Runs:
        key = (localization, threshold if localization == "paper" else None, min_length)
        with self._cache_lock:
            runs = self._run_cache.get(key)
            if runs is None:
                runs = self._paper_runs(threshold, min_length) if localization == "paper" else self._wsad_runs(min_length)
                self._run_cache[key] = runs
                if len(self._run_cache) > CACHED_RUN_SETS:
                    self._run_cache.popitem(last=False)
            else:
                self._run_cache.move_to_end(key)
            return runs

    def _order(self, label, start, end, flat, min_length):
        """Runs (rows = classes) -> _Runs in (video, class, start) order, with their peaks."""
        keep = end - start >= min_length
        label, start, end = label[keep], start[keep], end[keep]
        peak = run_max_in_rows(flat, len(self.separator), label, start, end).astype(np.float64) if len(label) else np.zeros(0)
        video = np.searchsorted(self.video_start, start, side="right") - 1  # (n,)
        order = np.lexsort((start, label, video))  # localize_videos: by video, then class, then start
        local = start - self.video_start[video]
        return _Runs(video[order], label[order], local[order], (end - start)[order] + local[order], peak[order])

    def _paper_runs(self, threshold: float, min_length: int) -> _Runs:
        kept = self._probs_rows >= threshold  # (C, total); separators hold 0 < threshold
        label, start, end = runs_in_rows(kept)
        return self._order(label, start, end, self._probs_flat, min_length)

    def _wsad_prepare(self):
        with self._cache_lock:
            self._wsad_fill()

    def _wsad_fill(self):
        if self._wsad_video_score is None:
            self._wsad_video_score = np.stack(
                [
                    block_topk_mean(self._logits_rows[:, s : s + n].T.astype(np.float64), self.block_size, self.k).max(axis=0)  # (C,) max over blocks
                    for s, n in zip(self.video_start, self.lengths)
                ]
            ) if len(self.videos) else np.zeros((0, self.num_classes))
            masked_high = np.where(self.separator, -np.inf, self._logits_rows)
            masked_low = np.where(self.separator, np.inf, self._logits_rows)
            highest = np.maximum.reduceat(masked_high, self.video_start, axis=1).astype(np.float64)  # (C, N)
            lowest = np.minimum.reduceat(masked_low, self.video_start, axis=1).astype(np.float64)  # (C, N)
            self._wsad_threshold = highest - (highest - lowest) * 0.5  # (C, N) the code's midpoint per video

    def _wsad_runs(self, min_length: int) -> _Runs:
        self._wsad_prepare()
        video_of_position = np.repeat(np.arange(len(self.videos)), self.lengths + 1)  # (total,)
        kept = self._logits_rows > self._wsad_threshold[:, video_of_position]  # (C, total); separators: -inf
        label, start, end = runs_in_rows(kept)
        runs = self._order(label, start, end, self._logits_flat, min_length)
        if len(self._ambiguous_video) and len(runs.video):
            touched = np.zeros(len(runs.video), dtype=bool)
            for video in np.unique(self._ambiguous_video):  # the released code's test, per video (localize_videos' too)
                mine = runs.video == video
                intervals = self._ambiguous_bounds[self._ambiguous_video == video]
                touched[mine] = touches_ambiguous(runs.start[mine], runs.end[mine], intervals, self.seconds_per_segment)
            runs = _Runs(*(array[~touched] for array in (runs.video, runs.label, runs.start, runs.end, runs.peak)))
        return runs

    def _detection_arrays(self, settings: LocalizationSettings):
        """(runs, t_start, t_end, score) of the whole split (each video's top ``max_per_video`` by score, if set)."""
        runs = self._runs(settings.threshold, settings.localization, settings.resolved_min_length)
        sps = self.seconds_per_segment
        if settings.localization == "paper":
            t_start = timegrid.segment_start_seconds(runs.start, sps)
            t_end = timegrid.segment_end_seconds(runs.end - 1, sps)  # end - 1 = i_e, the last kept segment
            score = runs.peak + settings.gamma * self.video_probs[runs.video, runs.label]  # max y + gamma * P(c|V)
        else:
            t_start = timegrid.feature_grid_to_seconds(runs.start, sps)
            t_end = timegrid.feature_grid_to_seconds(runs.end, sps)  # exclusive grid end e -> e * sps
            score = runs.peak + settings.gamma * self._wsad_video_score[runs.video, runs.label]
        if settings.max_per_video is not None:  # the cap depends on gamma (through the score): applied after scoring
            kept = top_per_video(runs.video, score, settings.max_per_video)
            runs = _Runs(*(array[kept] for array in (runs.video, runs.label, runs.start, runs.end, runs.peak)))
            t_start, t_end, score = t_start[kept], t_end[kept], score[kept]
        return runs, t_start, t_end, score

    # -- public -----------------------------------------------------------------------------
    # Each method takes a LocalizationSettings (default: the paper's), and keyword changes of it:
    # ``localizer.evaluate(gamma=0.5)`` is ``localizer.evaluate(LocalizationSettings(gamma=0.5))``.
    @_old_positional()
    def detections(self, settings: LocalizationSettings | None = None, **changes) -> pd.DataFrame:
        """The whole split's detections (columns video, label, t_start, t_end, score).

        localization "paper": sigmoid >= threshold (Sec. 3.5); "wsad_code": the released code's
        midpoint threshold on raw logits (``threshold`` is not used). See :class:`LocalizationSettings`.
        """
        settings = self._settings(settings, changes)
        runs, t_start, t_end, score = self._detection_arrays(settings)
        return pd.DataFrame(
            {
                "video": self.videos[runs.video],
                "label": self.classes[runs.label],
                "t_start": t_start,
                "t_end": t_end,
                "score": score,
            },
            columns=DETECTION_COLUMNS,
        )

    def _coded(self, settings: LocalizationSettings):
        """Ground truth and detections as evaluation codes (detections of classes without ground truth dropped)."""
        runs, t_start, t_end, score = self._detection_arrays(settings)
        code = self._eval_code[runs.label]
        has_gt = code >= 0
        detections = CodedIntervals(code[has_gt], runs.video[has_gt], t_start[has_gt], t_end[has_gt], score[has_gt])
        ground_truth = CodedIntervals(self._eval_code[self._gt_label], self._gt_video, self._gt_start, self._gt_end)
        return ground_truth, detections, runs, has_gt

    @_old_positional(after=("iou_thresholds", "eval_protocol"))
    def evaluate(self, settings: LocalizationSettings | None = None, *, iou_thresholds=PAPER_TIOUS,
                 eval_protocol: str = Config.eval_protocol, **changes) -> Evaluation:
        """mAP per tIoU threshold (with "avg") and per-class AP of the whole split."""
        settings = self._settings(settings, changes)
        thresholds = checks.tiou_thresholds(iou_thresholds)
        checks.one_of(eval_protocol, EVAL_PROTOCOLS, "eval_protocol")
        if len(self.eval_classes) == 0:
            raise InputError("ground truth is empty: there is no class to evaluate", file=self.scores.path or None, field="label")
        ground_truth, detections, _, _ = self._coded(settings)
        ap = average_precision_codes(ground_truth, detections, len(self.eval_classes), thresholds, eval_protocol)
        per_class = pd.DataFrame(
            ap, index=pd.Index(self.eval_classes, name="label", dtype=object), columns=pd.Index(thresholds, name="tiou")
        )
        return Evaluation.from_per_class(per_class)

    def _matches(self, settings: LocalizationSettings, tiou: float, eval_protocol: str):
        """Per detection of the split: (runs, t_start, t_end, score, true positive); per ground truth: matched."""
        ground_truth, detections, runs, has_gt = self._coded(settings)
        is_tp, gt_matched = true_positives_codes(ground_truth, detections, len(self.eval_classes), [tiou], eval_protocol)
        true_positive = np.zeros(len(runs.video), dtype=bool)
        true_positive[has_gt] = is_tp[:, 0]
        return runs, detections, has_gt, true_positive, gt_matched[:, 0]

    @_old_positional(after=("tiou", "eval_protocol"))
    def video_table(self, settings: LocalizationSettings | None = None, *, tiou: float = VIEW_TIOU,
                    eval_protocol: str = Config.eval_protocol, **changes) -> pd.DataFrame:
        """One row per video, for a sortable list: duration, ground truth, detections, true and false
        positives and missed ground truth at ``tiou``, and the video's AP (mean over its ground-truth
        classes of the AP of its own detections; NaN without ground truth)."""
        settings = self._settings(settings, changes)
        tiou = float(checks.tiou_thresholds([tiou], "tiou")[0])
        runs, detections, has_gt, true_positive, gt_matched = self._matches(settings, tiou, eval_protocol)
        n = len(self.videos)
        table = pd.DataFrame(
            {
                "video": self.videos,
                "duration": self.annotations.durations,
                "ground_truth": np.bincount(self._gt_video, minlength=n),
                "detections": np.bincount(runs.video, minlength=n),
                "true_positives": np.bincount(runs.video, weights=true_positive, minlength=n).astype(np.int64),
                "missed": np.bincount(self._gt_video, weights=~gt_matched, minlength=n).astype(np.int64),
            }
        )
        table["false_positives"] = table["detections"] - table["true_positives"]
        table["ap"] = self._video_ap(detections, true_positive[has_gt], eval_protocol)
        return table

    def _video_ap(self, detections: CodedIntervals, is_tp: np.ndarray, eval_protocol: str) -> np.ndarray:
        """(N,) mean over each video's ground-truth classes of the AP of that (video, class) alone."""
        n_classes = max(1, len(self.eval_classes))
        gt_group = self._gt_video * n_classes + self._eval_code[self._gt_label]  # (G,)
        groups, gt_group_code = np.unique(gt_group, return_inverse=True)  # dense ids of (video, class) with ground truth
        det_group = detections.video * n_classes + detections.label  # (D,)
        with_gt = np.isin(det_group, groups)  # detections of a (video, class) without ground truth enter no AP
        det_code = np.searchsorted(groups, det_group[with_gt])
        # Ranked inside each group by score, descending; ties keep input order (as the evaluator).
        order = np.lexsort((-detections.score[with_gt], det_code))
        ap = ranked_average_precision(
            is_tp[with_gt][order][:, None], det_code[order], np.bincount(gt_group_code, minlength=len(groups)), eval_protocol
        )[:, 0]  # (groups,)
        group_video = groups // n_classes
        total = np.bincount(group_video, weights=ap, minlength=len(self.videos))
        count = np.bincount(group_video, minlength=len(self.videos))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def top_classes(self, video: str) -> list[str]:
        """The video's classes for a picker: its ground-truth classes, then the others by P(c|V)."""
        i = self.video_index(video)
        truth = list(dict.fromkeys(self.classes[self._gt_label[self._gt_video == i]]))
        rest = [self.classes[c] for c in np.argsort(-self.video_probs[i], kind="stable") if self.classes[c] not in truth]
        return truth + rest

    def video_index(self, video: str) -> int:
        """The position of ``video`` in :attr:`videos`; an unknown video is an InputError."""
        hits = np.flatnonzero(self.videos == video)
        if len(hits) == 0:
            raise InputError("no such video in these scores", file=self.scores.path or None, video=video)
        return int(hits[0])

    def duration(self, video: str) -> float:
        """The video's duration in seconds."""
        return float(self.annotations.durations[self.video_index(video)])

    @_old_positional(lead=2, after=("tiou", "eval_protocol"))
    def view(self, video: str, label: str | None = None, settings: LocalizationSettings | None = None, *,
             tiou: float = VIEW_TIOU, eval_protocol: str = Config.eval_protocol, **changes) -> VideoView:
        """One video and one class (default: its first ground-truth class, else its top P(c|V))."""
        settings = self._settings(settings, changes)
        tiou = float(checks.tiou_thresholds([tiou], "tiou")[0])
        i = self.video_index(video)
        label = self.top_classes(video)[0] if label is None else label
        hits = np.flatnonzero(self.classes == label)
        if len(hits) == 0:
            raise InputError(f"unknown class {label!r}", file=self.scores.path or None, field="label")
        c = int(hits[0])
        sps = self.seconds_per_segment
        n, s = int(self.lengths[i]), int(self.video_start[i])
        segment = np.arange(n)
        logits = self._logits_rows[c, s : s + n].astype(np.float64)
        probs = self._probs_rows[c, s : s + n].copy()
        if settings.localization == "paper":
            curve, curve_threshold = probs, settings.threshold
        else:
            self._wsad_prepare()
            curve, curve_threshold = logits, float(self._wsad_threshold[c, i])

        # True / false positives: matching is independent per (video, class), so this video's
        # detections of class c against its ground truth of class c give the split's answer.
        runs, t_start, t_end, score = self._detection_arrays(settings)
        mine = (runs.video == i) & (runs.label == c)
        gt_mine = (self._gt_video == i) & (self._gt_label == c)
        detections = CodedIntervals(np.zeros(mine.sum(), np.int64), np.zeros(mine.sum(), np.int64), t_start[mine], t_end[mine], score[mine])
        ground_truth = CodedIntervals(np.zeros(gt_mine.sum(), np.int64), np.zeros(gt_mine.sum(), np.int64), self._gt_start[gt_mine], self._gt_end[gt_mine])
        is_tp, gt_matched = true_positives_codes(ground_truth, detections, 1, [tiou], eval_protocol)
        ambiguous = self._ambiguous_bounds[self._ambiguous_video == i]
        return VideoView(
            video=str(video),
            label=str(label),
            duration=float(self.annotations.durations[i]),
            seconds_per_segment=sps,
            segment=segment,
            t_start=timegrid.segment_start_seconds(segment, sps),
            t_end=timegrid.segment_end_seconds(segment, sps),
            probs=probs,
            logits=logits,
            curve=curve,
            curve_threshold=float(curve_threshold),
            video_prob=float(self.video_probs[i, c]),
            detections=pd.DataFrame(
                {"label": str(label), "t_start": t_start[mine], "t_end": t_end[mine], "score": score[mine], "true_positive": is_tp[:, 0]}
            ),
            ground_truth=pd.DataFrame(
                {"label": str(label), "t_start": self._gt_start[gt_mine], "t_end": self._gt_end[gt_mine], "matched": gt_matched[:, 0]}
            ),
            ambiguous=pd.DataFrame({"t_start": ambiguous[:, 0], "t_end": ambiguous[:, 1]}),
            localization=settings.localization,
            threshold=settings.threshold,
            gamma=settings.gamma,
            tiou=tiou,
        )
