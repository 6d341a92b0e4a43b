"""The training loop: video-level labels only, the losses of docs/method.md, periodic evaluation.

``train(config, run_dir)`` trains the model of :mod:`wtal_kit.model` with the losses
of :mod:`wtal_kit.losses`, evaluates it on the held-out split every ``eval_every``
iterations and writes the run directory described in :mod:`wtal_kit.runs`.

As a library call (notebooks, dashboards): ``callbacks`` observe every iteration
(the loss terms) and every evaluation (the mAP table); ``stop`` (a
``threading.Event``) ends the run cleanly after the current iteration, with a valid
checkpoint that ``resume=True`` continues from; ``quiet=True`` prints nothing.
Every random draw comes from generators owned by the run (numpy for the batches,
a torch ``Generator`` for initialisation and dropout), never from torch's or
numpy's global state, so a training can run in a background thread.

Data path: a run that draws at least as many videos as its training split holds reads the split
once into a :class:`FeatureStore` on the training device (one flat tensor) when it fits in
``Config.feature_cache_mb``, and the held-out split too when what is left fits; every batch is then
gathered there (same windows, same random draws as :func:`make_batch`, so the same numbers) and
every evaluation runs on the stored held-out features. Otherwise batches are padded on the host
from a :class:`FeatureCache` and copied, and evaluations read the held-out videos again.

Determinism: on CPU, a given config (seed included) gives the same numbers to the
last digit, and ``resume=True`` continues from ``checkpoint.pt`` to exactly the
result of an uninterrupted run (model, optimizer and both random streams are saved).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from wtal_kit import losses
from wtal_kit.atomic import atomic_path
from wtal_kit.config import Config
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.hdf5 import Scores, write_scores
from wtal_kit.data.jsonio import write_detections_json
from wtal_kit.datasets import dataset_label, is_synthetic, load_dataset, split_subsets
from wtal_kit.errors import InputError
from wtal_kit.inference import (
    MAX_BATCH_SEGMENTS,
    build_model,
    infer,
    infer_batches,
    resolve_device,
    scores_attrs,
    scores_in_memory,
)
from wtal_kit.pipeline import Evaluation, Localizer
from wtal_kit.runs import (
    BEST_CHECKPOINT,
    CHECKPOINT,
    CONFIG,
    METRICS,
    detections_file_name,
    load_checkpoint,
    map_to_json,
    save_checkpoint,
    scores_file_name,
    write_results,
)


# -- what callbacks see ------------------------------------------------------------------
@dataclass(frozen=True)
class IterationEvent:
    """One training iteration: ``iteration`` iterations are done out of ``iterations``; ``losses``
    holds this batch's terms (total, classification and, with a metric loss, metric)."""

    iteration: int
    iterations: int
    losses: dict


@dataclass(frozen=True)
class EvaluationEvent:
    """One evaluation on the held-out split after ``iteration`` iterations.

    losses: mean of each loss term since the previous evaluation; evaluation: mAP per
    tIoU threshold (with "avg") and per-class AP; scores: the split's activations.
    """

    iteration: int
    iterations: int
    losses: dict
    evaluation: Evaluation
    scores: Scores


class Callback:
    """Subclass and override what you need; both methods run in the training's thread."""

    def on_iteration(self, event: IterationEvent) -> None:
        pass

    def on_evaluation(self, event: EvaluationEvent) -> None:
        pass


@dataclass
class TrainResult:
    run_dir: Path
    config: Config
    mean_ap: pd.Series  # index: thresholds + "avg"
    per_class: pd.DataFrame
    checkpoint: str  # which checkpoint the reported numbers come from
    metrics: pd.DataFrame  # the metrics.csv log
    seconds: float
    iterations_done: int = 0  # < config.iterations when ``stop`` ended the run early

    @property
    def completed(self) -> bool:
        return self.iterations_done >= self.config.iterations


# -- batches --------------------------------------------------------------------------
class BatchSampler:
    """Batches of videos that share classes, as the metric loss needs pairs of the same class.

    paper: ``batch_classes`` distinct classes, ``batch_videos // batch_classes`` videos
    labelled with each (the paper: 20 videos, 4 classes, >= 5 each), the rest of the
    batch (if any) random; code: 5 classes drawn with replacement x 4 videos each.
    A class with fewer videos than needed contributes all of them and the batch is
    topped up with random videos.
    """

    def __init__(self, video_labels: np.ndarray, config: Config):
        self.video_labels = np.asarray(video_labels, dtype=bool)  # (N_train, C)
        self.num_videos = len(self.video_labels)
        if config.sampler == "code":
            self.num_classes_drawn, self.per_class, self.replace_classes = 5, 4, True
        else:
            self.num_classes_drawn = config.batch_classes
            self.per_class = config.batch_videos // config.batch_classes
            self.replace_classes = False
        self.batch_videos = self.num_classes_drawn * self.per_class if config.sampler == "code" else config.batch_videos
        counts = self.video_labels.sum(axis=0)
        self.classes = np.flatnonzero(counts >= 2)  # a class with one video cannot form a pair
        if len(self.classes) == 0:
            raise InputError("no class has two training videos: the batch sampler needs pairs", field="labels")
        self.members = [np.flatnonzero(self.video_labels[:, c]) for c in range(self.video_labels.shape[1])]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        draw = min(self.num_classes_drawn, len(self.classes)) if not self.replace_classes else self.num_classes_drawn
        classes = rng.choice(self.classes, size=draw, replace=self.replace_classes)
        chosen: list[int] = []
        for c in classes:
            members = self.members[c]
            take = min(self.per_class, len(members))
            chosen.extend(rng.choice(members, size=take, replace=False).tolist())
        missing = self.batch_videos - len(chosen)
        if missing > 0:
            chosen.extend(rng.choice(self.num_videos, size=missing, replace=self.num_videos < missing).tolist())
        return np.asarray(chosen, dtype=np.int64)


def draw_windows(lengths, max_segments: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each video's training window: (start, length), (B,) int64 each, from video lengths (B,).

    A video longer than ``max_segments`` gets a random window of that many segments (one
    ``rng.integers`` per such video, in order); a shorter one is taken whole from 0. Both data
    paths (:func:`make_batch`, :meth:`FeatureStore.windows`) draw through here, so for the same
    ``rng`` state they cut the same windows.
    """
    lengths = np.array(lengths, dtype=np.int64)  # (B,), a copy
    starts = np.zeros(len(lengths), dtype=np.int64)  # (B,)
    for b, n in enumerate(lengths.tolist()):
        if n > max_segments:
            starts[b] = int(rng.integers(0, n - max_segments + 1))
            lengths[b] = max_segments
    return starts, lengths


def make_batch(arrays: list[np.ndarray], max_segments: int, rng: np.random.Generator):
    """Random windows of at most ``max_segments`` segments, zero-padded.

    Returns features (B, T, d) float32 and lengths (B,) int64, T = longest window.
    """
    starts, lengths = draw_windows([len(array) for array in arrays], max_segments, rng)
    windows = [array[start : start + n] for array, start, n in zip(arrays, starts, lengths)]
    batch = np.zeros((len(windows), int(lengths.max()), windows[0].shape[1]), dtype=np.float32)  # (B, T, d)
    for i, window in enumerate(windows):
        batch[i, : len(window)] = window
    return batch, lengths


class FeatureCache:
    """Keeps training features in memory up to a size limit (the synthetic ones are regenerated otherwise)."""

    def __init__(self, dataset: FeatureDataset, limit_mb: int):
        self.dataset = dataset
        self.limit_bytes = limit_mb * 2**20
        self.used_bytes = 0
        self.arrays: dict[int, np.ndarray] = {}

    def __call__(self, index: int) -> np.ndarray:
        array = self.arrays.get(index)
        if array is None:
            array = self.dataset.features(index)
            self.keep(index, array)
        return array

    def keep(self, index: int, array: np.ndarray) -> None:
        """Hold ``array`` as video ``index``'s features if it fits under the limit."""
        if index not in self.arrays and self.used_bytes + array.nbytes <= self.limit_bytes:
            self.arrays[index] = array
            self.used_bytes += array.nbytes


READ_WORKERS = min(8, os.cpu_count() or 1)  # threads reading a split into a FeatureStore (the synthetic generator's numpy work overlaps; h5py reads one at a time)


class FeatureStore:
    """Every video of a split in one flat tensor on the training device, read once.

    features: (S + 1, d) float32, the videos' segments one after the other (S in all): video
    ``indices[j]`` at rows ``offsets[j] .. offsets[j] + lengths[j] - 1``; the last row is zero and
    stands for padding. A batch is gathered from it on the device (:meth:`batch`, :meth:`gather`)
    with one small host-to-device copy (three int64 per video) instead of one copy of each video.
    """

    def __init__(self, features: torch.Tensor, indices, lengths):
        self.features = features  # (S + 1, d)
        self.indices = np.asarray(indices, dtype=np.int64)  # (N,) dataset index of each stored video
        self.lengths = np.asarray(lengths, dtype=np.int64)  # (N,) segments of each
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)  # (N,) first row of each
        self.zero_row = int(self.lengths.sum())  # index of the padding row
        if features.shape[0] != self.zero_row + 1:
            raise ValueError(f"features have {features.shape[0]} rows for {self.zero_row} segments + 1 padding row")
        self.position = {int(index): j for j, index in enumerate(self.indices)}  # dataset index -> j
        self.device = features.device
        self._steps = torch.arange(int(self.lengths.max(initial=1)), device=self.device)  # (max n_i,): 0, 1, ...

    @classmethod
    def load(cls, read, indices, device, limit_bytes: int, workers: int = READ_WORKERS) -> tuple["FeatureStore | None", list]:
        """Read every video of ``indices`` with ``read(index) -> (n_i, d) array`` and store them on ``device``.

        Returns (the store, []) when they fit in ``limit_bytes``; else (None, [(index, array), ...] of the
        videos read before the limit was passed, within it), stopping at the first video that does
        not fit. Host memory holds the arrays read, then the copy fills the store while releasing them.
        workers: threads calling ``read`` (a few videos at a time, in order; 1: one after another), so
        ``read`` must be thread-safe as the built-in sources are (synthetic, in-memory, HDF5 via h5py's lock).
        """
        indices = [int(index) for index in np.asarray(indices, dtype=np.int64)]
        arrays, used = [], 0
        workers = max(1, min(workers, len(indices)))
        with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            step = 4 * workers  # videos read ahead of the budget check
            for first in range(0, len(indices), step):
                chunk = indices[first : first + step]
                for index, array in zip(chunk, pool.map(read, chunk) if pool else map(read, chunk)):
                    if used + array.nbytes + 4 * array.shape[1] > limit_bytes:  # + the padding row
                        return None, arrays
                    arrays.append((index, array))
                    used += array.nbytes
        if not arrays:
            return None, arrays
        lengths = [len(array) for _, array in arrays]
        features = torch.empty((sum(lengths) + 1, arrays[0][1].shape[1]), dtype=torch.float32, device=device)  # (S + 1, d)
        row = 0
        stored = [index for index, _ in arrays]
        for j, (_, array) in enumerate(arrays):
            arrays[j] = None  # released once copied
            features[row : row + len(array)].copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))
            row += len(array)
        features[row].zero_()
        return cls(features, stored, lengths), []

    @property
    def nbytes(self) -> int:
        return self.features.element_size() * self.features.nelement()

    def __len__(self) -> int:
        return len(self.indices)

    def __call__(self, index: int) -> np.ndarray:
        """(n_i, d) features of video ``index`` on the host (a view on CPU, a copy from a GPU)."""
        j = self.position[int(index)]
        return self.features[self.offsets[j] : self.offsets[j] + self.lengths[j]].cpu().numpy()

    def windows(self, batch_indices, max_segments: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """First row and length of each video's training window: (B,), (B,) int64.

        The windows of :func:`make_batch`, drawn from ``rng`` exactly as it draws them (one
        ``rng.integers`` per video longer than ``max_segments``, in batch order).
        """
        positions = np.array([self.position[int(index)] for index in batch_indices], dtype=np.int64)  # (B,)
        starts, lengths = draw_windows(self.lengths[positions], max_segments, rng)  # (B,), (B,): local to each video
        return self.offsets[positions] + starts, lengths

    def gather(self, starts: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
        """Rows ``starts[b] .. starts[b] + lengths[b] - 1`` of each video b, zero-padded to ``steps``: (B, steps, d).

        starts, lengths: (B,) int64 on the store's device; steps: max(lengths), known on the host.
        On a GPU one gather kernel (:meth:`gather_rows`); on the CPU one block copy per video
        (:meth:`copy_windows`, about twice as fast there as ``index_select`` at d = 2048). Same values.
        """
        if self.device.type == "cpu":
            return self.copy_windows(starts.numpy(), lengths.numpy(), steps)
        return self.gather_rows(starts, lengths, steps)

    def copy_windows(self, starts: np.ndarray, lengths: np.ndarray, steps: int) -> torch.Tensor:
        """:meth:`gather` by block copies, for a store on the CPU: (B, steps, d)."""
        flat = self.features.numpy()  # (S + 1, d), a view
        out = np.zeros((len(starts), steps, flat.shape[1]), dtype=np.float32)  # (B, T, d)
        for b, (start, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
            out[b, :n] = flat[start : start + n]
        return torch.from_numpy(out)

    def gather_rows(self, starts: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
        """:meth:`gather` by one ``index_select`` on the store's device (padding reads the zero row): (B, steps, d)."""
        t = self._steps[:steps]  # (T,)
        rows = starts[:, None] + t[None, :]  # (B, T)
        rows = rows.masked_fill(t[None, :] >= lengths[:, None], self.zero_row)  # padding reads the zero row
        return self.features.index_select(0, rows.reshape(-1)).view(len(starts), steps, -1)  # (B, T, d)

    def batch(self, batch_indices, max_segments: int, rng: np.random.Generator):
        """The batch :func:`make_batch` gives for the same videos and ``rng`` state, assembled on the device.

        Returns features (B, T, d) float32, lengths (B,) int64 and batch_indices (B,) int64, on the
        store's device; one copy of 3 x B integers goes to the device.
        """
        starts, lengths = self.windows(batch_indices, max_segments, rng)
        meta = torch.from_numpy(np.stack([starts, lengths, np.asarray(batch_indices, dtype=np.int64)]))  # (3, B)
        if self.device.type == "cuda":
            meta = meta.pin_memory()
        meta = meta.to(self.device, non_blocking=True)
        return self.gather(meta[0], meta[1], int(lengths.max())), meta[1], meta[2]


def load_training_features(dataset: FeatureDataset, indices, device, limit_mb: int) -> "FeatureStore | FeatureCache":
    """The training split's features: a :class:`FeatureStore` on ``device`` when the split fits in
    ``limit_mb`` (``Config.feature_cache_mb``), else a host :class:`FeatureCache` of that size
    (holding the videos read while trying)."""
    store, read = FeatureStore.load(dataset.features, indices, device, limit_mb * 2**20)
    if store is not None:
        return store
    cache = FeatureCache(dataset, limit_mb)
    for index, array in read:
        cache.keep(index, array)
    return cache


CENTERING_VIDEOS = 256  # the training-feature mean of Config.center_features is taken over at most this many videos


def training_feature_mean(features, train_indices, max_videos: int = CENTERING_VIDEOS) -> np.ndarray:
    """Per-dimension mean of the training features, (d,) float32: mu of ``Config.center_features``.

    ``features``: index -> (n_i, d) array (a :class:`FeatureCache` or ``dataset.features``).
    Every segment of at most ``max_videos`` training videos, evenly spaced over the split
    (deterministic; about 0.3 s at d = 256 on the ActivityNet layout), weighs the same.
    """
    train_indices = np.asarray(train_indices)
    if len(train_indices) == 0:
        raise InputError("no training videos to take the feature mean of", field="train_subset")
    picks = np.unique(np.linspace(0, len(train_indices) - 1, min(len(train_indices), max_videos)).round().astype(np.int64))
    total, count = None, 0
    for index in train_indices[picks]:
        array = np.asarray(features(int(index)))
        part = array.sum(axis=0, dtype=np.float64)  # (d,)
        total = part if total is None else total + part
        count += len(array)
    if count == 0:
        raise InputError("the training videos have no segments", field="train_subset")
    return (total / count).astype(np.float32)


# -- one step -------------------------------------------------------------------------
def build_custom_factors(config: Config, num_classes: int) -> torch.nn.Parameter | None:
    """A_c of the learnable metric M_c = A_c^T A_c (distance "custom"), (C, r, d)."""
    if config.distance != "custom" or config.metric_loss == "none":
        return None
    generator = torch.Generator().manual_seed(config.seed + 1)
    scale = 1.0 / math.sqrt(config.feature_dim)
    return torch.nn.Parameter(torch.randn(num_classes, config.custom_rank, config.feature_dim, generator=generator) * scale)


def build_optimizer(parameters, config: Config, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused implementation where this torch has it for the device (same update, one kernel)."""
    try:
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or no fused Adam for this device
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)


def compute_losses(model, custom_factors, features, lengths, labels, config: Config, generator=None) -> dict:
    """Forward + loss terms of one batch. features (B, T, d), lengths (B,), labels (B, C)."""
    u, cas, _ = model(features, generator=generator)  # u: (B, T, d), cas: (B, T, C)
    if config.classification_loss == "softmax_mil":
        classification = losses.softmax_mil(cas, lengths, labels)
    else:
        probs = losses.video_probs(cas, lengths, block_size=config.effective_block_size, k=config.k)  # (B, C)
        loss_fn = losses.balanced_bce if config.classification_loss == "bbce" else losses.bce
        classification = loss_fn(probs, labels)
    terms = {"classification": classification}
    total = config.classification_weight * classification
    if config.metric_loss != "none":
        metric = losses.metric_loss(
            u,
            cas,
            labels,
            lengths,
            model.classifier_weight,
            margin=config.margin,
            kind=config.metric_loss,
            distance=config.distance,
            custom_factors=custom_factors,
        )
        terms["metric"] = metric
        total = total + config.metric_weight * metric
    terms["total"] = total
    return terms


# -- the pieces of a run ----------------------------------------------------------------
@dataclass
class _Split:
    """The subsets a run trains and tests on, and the held-out split's annotations."""

    train_subset: str
    test_subset: str
    train_indices: np.ndarray
    test_indices: np.ndarray

    @classmethod
    def of(cls, config: Config, dataset: FeatureDataset) -> "_Split":
        annotations = dataset.annotations
        train_subset, test_subset = split_subsets(config, annotations)
        return cls(train_subset, test_subset, annotations.indices(train_subset), annotations.indices(test_subset))


@dataclass
class _State:
    """What a checkpoint holds: the model, the optimizer and the two random streams."""

    model: torch.nn.Module
    custom_factors: torch.nn.Parameter | None
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator  # batches: which videos, which windows
    generator: torch.Generator  # initialisation, then dropout masks

    @classmethod
    def fresh(cls, config: Config, num_classes: int, device: torch.device, input_mean=None) -> "_State":
        """input_mean: mu of ``config.center_features`` (:func:`training_feature_mean`), needed when it is on."""
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        model = build_model(config, num_classes, generator=generator)
        if config.center_features:
            if input_mean is None:
                raise ValueError("center_features needs the training-feature mean")
            model.center_inputs(torch.from_numpy(np.asarray(input_mean, dtype=np.float32)))
        model = model.to(device)
        if device.type != "cpu":  # dropout masks are drawn on the device
            generator = torch.Generator(device=device).manual_seed(config.seed)
        custom_factors = build_custom_factors(config, num_classes)
        parameters = list(model.parameters())
        if custom_factors is not None:
            custom_factors = torch.nn.Parameter(custom_factors.data.to(device))
            parameters.append(custom_factors)
        return cls(model, custom_factors, build_optimizer(parameters, config, device), np.random.default_rng(config.seed), generator)

    def save(self, path: Path, iteration: int, config: Config, extra=None) -> None:
        rng_state = {"numpy": self.rng.bit_generator.state, "torch": self.generator.get_state()}
        save_checkpoint(path, self.model, self.custom_factors, self.optimizer, iteration, rng_state, config, extra)

    def restore(self, path: Path, config: Config, device: torch.device) -> tuple[int, dict]:
        """Load a checkpoint of the same config; returns (iterations done, extra)."""
        state = load_checkpoint(path, map_location=device)
        saved = Config.from_dict(json.loads(state["config"]))
        if saved != config:
            differing = sorted(k for k, v in config.to_dict().items() if saved.to_dict().get(k) != v)
            raise InputError(f"--resume with a different config (fields {differing})", file=path, field="config")
        self.model.load_state_dict(state["model"])
        if self.custom_factors is not None:
            self.custom_factors.data.copy_(state["custom_factors"].to(device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        self.generator.set_state(state["torch_rng"].cpu())
        return int(state["iteration"]), json.loads(state["extra"])


class _MetricsLog:
    """metrics.csv (and TensorBoard when installed): one row per evaluation."""

    def __init__(self, run_dir: Path, config: Config):
        self.path = run_dir / METRICS
        self.fields = ["iteration", "loss_total", "loss_classification", "loss_metric"]
        self.fields += [f"map@{t:g}" for t in config.iou_thresholds] + ["map_avg"]
        self.thresholds = config.iou_thresholds
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard is optional
            pass
        else:
            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def start(self) -> None:
        with open(self.path, "w", newline="") as handle:
            csv.writer(handle).writerow(self.fields)

    def truncate(self, iteration: int) -> None:
        """Drop rows written after the checkpoint we resume from."""
        if not self.path.is_file():
            return self.start()
        table = pd.read_csv(self.path)
        table = table[table["iteration"] <= iteration]
        with atomic_path(self.path) as tmp:
            table.to_csv(tmp, index=False)

    def append(self, iteration: int, mean_losses: dict, mean_ap: pd.Series) -> None:
        row = [iteration, mean_losses["total"], mean_losses["classification"], mean_losses.get("metric", float("nan"))]
        row += [float(mean_ap[t]) for t in self.thresholds] + [float(mean_ap["avg"])]
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow(row)
        if self.writer is not None:
            for name, value in zip(self.fields[1:], row[1:]):
                self.writer.add_scalar(name, value, iteration)

    def read(self) -> pd.DataFrame:
        return pd.read_csv(self.path)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _LossWindow:
    """Mean of each loss term since the previous evaluation."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, terms: dict) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def state(self) -> dict:
        return {"sums": dict(self.sums), "count": self.count}

    def restore(self, state: dict) -> None:
        self.sums, self.count = dict(state.get("sums", {})), int(state.get("count", 0))

    def take(self) -> dict:
        mean = {name: value / max(self.count, 1) for name, value in self.sums.items()}
        self.sums, self.count = {}, 0
        return mean


@dataclass
class _Evaluated:
    """The latest evaluation: after which iteration, on which scores, with what result."""

    iteration: int
    scores: Scores
    localizer: Localizer = field(repr=False)
    evaluation: Evaluation


def infer_stored(model, store: FeatureStore, num_classes: int, config: Config,
                 max_batch_segments: int = MAX_BATCH_SEGMENTS) -> tuple[list, np.ndarray]:
    """:func:`wtal_kit.inference.infer` of every video of ``store``, batches gathered on its device.

    The same loop and batches as ``infer`` (:func:`wtal_kit.inference.infer_batches`), hence the
    same numbers; no video is read or copied again. Returns (logits: list of (n_i, C) float32 in
    the store's order, video_probs: (N, C) float32).
    """
    def batch_of(chunk):
        meta = torch.from_numpy(np.stack([store.offsets[chunk], store.lengths[chunk]])).to(store.device)  # (2, b)
        return store.gather(meta[0], meta[1], int(store.lengths[chunk].max())), meta[1]  # (b, T, d), (b,)

    return infer_batches(model, store.lengths, batch_of, num_classes, config, store.device,
                         max_batch_segments=max_batch_segments)


def _evaluate(state: _State, dataset, split: _Split, config: Config, device, checkpoint: str, iteration: int,
              progress=False, test_store: FeatureStore | None = None) -> _Evaluated:
    """Infer the held-out split and evaluate it as the config says.

    test_store: the held-out split's features on ``device`` (in ``split.test_indices`` order), else
    they are read from ``dataset`` again.
    """
    if test_store is not None:
        logits, video_probs = infer_stored(state.model, test_store, dataset.annotations.num_classes, config)
    else:
        logits, video_probs = infer(state.model, dataset, split.test_indices, config, device, progress=progress)
    annotations = dataset.annotations
    attrs = scores_attrs(config, annotations.name, split.test_subset, checkpoint)
    scores = scores_in_memory(annotations.select(split.test_indices), logits, video_probs, attrs)
    localizer = Localizer(scores)
    evaluation = localizer.evaluate(
        threshold=config.threshold,
        gamma=config.gamma,
        localization=config.localization,
        min_length=config.min_length,
        max_per_video=config.max_per_video,
        iou_thresholds=config.iou_thresholds,
        eval_protocol=config.eval_protocol,
    )
    return _Evaluated(iteration, scores, localizer, evaluation)


def _training_step(state: _State, batch_indices, cache: FeatureStore | FeatureCache, labels_all, config: Config,
                   device) -> dict:
    """One optimisation step on one batch; returns the loss terms as floats.

    cache: a :class:`FeatureStore` on ``device`` (the batch is gathered there) or a host
    :class:`FeatureCache` (the batch is padded in numpy and copied); both draw the same windows
    from ``state.rng`` and give the same batch. labels_all: (N, C), best on ``device`` already.
    """
    if isinstance(cache, FeatureStore):
        features, lengths_t, rows = cache.batch(batch_indices, config.max_segments, state.rng)  # (B, T, d), (B,), (B,)
        labels = labels_all.to(device).index_select(0, rows)  # (B, C)
    else:
        arrays = [cache(i) for i in batch_indices]
        features, lengths = make_batch(arrays, config.max_segments, state.rng)
        features = torch.from_numpy(features)
        if device.type == "cuda":
            features = features.pin_memory()  # lets the copy below overlap with GPU work
        features = features.to(device, non_blocking=True)  # (B, T, d)
        lengths_t = torch.from_numpy(lengths).to(device, non_blocking=True)  # (B,)
        labels = labels_all[batch_indices].to(device, non_blocking=True)  # (B, C)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and config.bf16):
        terms = compute_losses(state.model, state.custom_factors, features, lengths_t, labels, config, state.generator)
    state.optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    state.optimizer.step()
    return {name: float(value.detach()) for name, value in terms.items()}


def _map_line(config: Config, mean_ap: pd.Series, iteration: int, test_subset: str) -> str:
    cells = "  ".join(f"mAP@{t:g}={100 * mean_ap[t]:.1f}" for t in config.iou_thresholds)
    return f"[{config.preset}] it {iteration}: {cells}  avg={100 * mean_ap['avg']:.1f}  (held-out split '{test_subset}', {dataset_label(config)})"


# -- the loop -------------------------------------------------------------------------
def train(
    config: Config,
    run_dir,
    *,
    resume: bool = False,
    progress: bool = True,
    quiet: bool = False,
    callbacks=(),
    stop=None,
    stop_after: int | None = None,
    dataset: FeatureDataset | None = None,
) -> TrainResult | None:
    """Train per ``config`` into ``run_dir``; returns the final evaluation.

    resume: continue from ``run_dir/checkpoint.pt`` (same config required).
    progress: tqdm progress bars; quiet: print nothing at all (no bars either).
    callbacks: :class:`Callback` objects, called after every iteration and every evaluation.
    stop: an object with ``is_set()`` (a ``threading.Event``); once set, the run saves a
    checkpoint after the current iteration, evaluates the model it reached, writes its
    results (``"completed": false``) and returns (``result.completed`` is False).
    stop_after: stop (after saving a checkpoint) once this many iterations are done,
    as an interruption would; returns None then.
    dataset: an already-opened dataset (else :func:`wtal_kit.datasets.load_dataset`).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    dataset = dataset or load_dataset(config)
    annotations = dataset.annotations
    split = _Split.of(config, dataset)
    device = resolve_device(config.device)
    sampler = BatchSampler(annotations.video_labels[split.train_indices], config)
    cache, test_store = _load_features(dataset, split, config, sampler, device)
    input_mean = training_feature_mean(cache, split.train_indices) if config.center_features else None
    state = _State.fresh(config, annotations.num_classes, device, input_mean)
    labels_all = torch.from_numpy(annotations.video_labels.astype(np.float32))  # (N, C)
    if isinstance(cache, FeatureStore):
        labels_all = labels_all.to(device)

    run_dir.mkdir(parents=True, exist_ok=True)  # only now: a dataset that cannot be opened leaves no folder behind
    log = _MetricsLog(run_dir, config)
    window = _LossWindow()
    done, best = 0, {"score": -math.inf, "iteration": None}
    if resume and (run_dir / CHECKPOINT).is_file():
        done, extra = state.restore(run_dir / CHECKPOINT, config, device)
        best = extra.get("best", best)
        window.restore(extra.get("loss_window", {}))  # a run stopped between two evaluations
        log.truncate(done)
    else:
        log.start()
    config.to_json(run_dir / CONFIG)

    bars = progress and not quiet
    bar = tqdm(total=config.iterations, initial=done, desc=f"train [{config.preset}]", unit="it", disable=not bars)
    latest: _Evaluated | None = None  # the latest evaluation
    state.model.train()
    while done < config.iterations and not (stop is not None and stop.is_set()):
        terms = _training_step(state, split.train_indices[sampler.sample(state.rng)], cache, labels_all, config, device)
        done += 1
        window.add(terms)
        bar.update(1)
        bar.set_postfix({name: f"{value:.3f}" for name, value in terms.items()})
        for callback in callbacks:
            callback.on_iteration(IterationEvent(done, config.iterations, terms))
        if done % config.eval_every == 0 or done == config.iterations:
            latest = _evaluate(state, dataset, split, config, device, "last", done, test_store=test_store)
            mean_losses = window.take()
            log.append(done, mean_losses, latest.evaluation.mean_ap)
            if not quiet:
                bar.write(_map_line(config, latest.evaluation.mean_ap, done, split.test_subset))
            for callback in callbacks:
                callback.on_evaluation(EvaluationEvent(done, config.iterations, mean_losses, latest.evaluation, latest.scores))
            if config.checkpoint_selection == "best_test_map":
                # The released code's selection: mAP@0.5 + mAP@0.7 on the TEST split (optimistic by construction).
                score = sum(float(latest.evaluation.mean_ap.get(t, 0.0)) for t in (0.5, 0.7))
                if score > best["score"]:
                    best = {"score": score, "iteration": done}
                    state.save(run_dir / BEST_CHECKPOINT, done, config)
            state.save(run_dir / CHECKPOINT, done, config, extra={"best": best})
            if stop_after is not None and stop_after <= done < config.iterations:
                bar.close()
                log.close()
                return None
    bar.close()
    log.close()
    if latest is None or latest.iteration != done:  # stopped between two evaluations
        state.save(run_dir / CHECKPOINT, done, config, extra={"best": best, "loss_window": window.state()})
    return _finish(run_dir, config, dataset, split, state, device, latest, done, best, started, progress=bars,
                   test_store=test_store)


def _load_features(dataset, split: _Split, config: Config, sampler: BatchSampler, device):
    """(training features, held-out features or None) within ``config.feature_cache_mb``.

    A run that draws at least as many videos as the training split holds (iterations x batch size)
    reads the whole split into a :class:`FeatureStore` on ``device`` if it fits, then the held-out
    split too if what is left fits; otherwise (a short run, or a split too large) a host
    :class:`FeatureCache` fills as batches ask, and evaluations read the held-out videos again.
    """
    limit = config.feature_cache_mb * 2**20
    if config.iterations * sampler.batch_videos < len(split.train_indices):  # would read fewer videos than the split holds
        return FeatureCache(dataset, config.feature_cache_mb), None
    features = load_training_features(dataset, split.train_indices, device, config.feature_cache_mb)
    if not isinstance(features, FeatureStore):
        return features, None
    test_store, _ = FeatureStore.load(dataset.features, split.test_indices, device, limit - features.nbytes)
    return features, test_store


def _finish(run_dir: Path, config: Config, dataset, split: _Split, state: _State, device, latest, done: int, best: dict,
            started: float, progress: bool, test_store: FeatureStore | None = None) -> TrainResult:
    """Write the scores, detections and results of the reported model."""
    checkpoint_used = "last"
    if config.checkpoint_selection == "best_test_map" and best["iteration"] is not None:
        saved = load_checkpoint(run_dir / BEST_CHECKPOINT, map_location=device)
        state.model.load_state_dict(saved["model"])
        checkpoint_used = f"best_test_map (iteration {best['iteration']}, selected on the test split)"
    if checkpoint_used != "last" or latest is None or latest.iteration != done:  # the latest evaluation did not see this model
        latest = _evaluate(state, dataset, split, config, device, checkpoint_used, done, progress=progress,
                           test_store=test_store)
    scores, evaluation = latest.scores, latest.evaluation
    annotations = dataset.annotations
    attrs = scores_attrs(config, annotations.name, split.test_subset, checkpoint_used)
    logits = [scores.logits[video] for video in scores.annotations.videos]
    write_scores(run_dir / scores_file_name(split.test_subset), annotations, split.test_indices, logits, scores.video_probs, attrs)
    detections = latest.localizer.detections(config.threshold, config.gamma, config.localization, config.min_length,
                                               config.max_per_video)
    write_detections_json(run_dir / detections_file_name(split.test_subset), detections, videos=scores.annotations.videos,
                          external_data={"config": config.to_dict(), "checkpoint": checkpoint_used})
    seconds = time.perf_counter() - started
    write_results(run_dir, {
        "dataset": dataset_label(config),
        "synthetic": is_synthetic(config),
        "preset": config.preset,
        "train_subset": split.train_subset,
        "test_subset": split.test_subset,
        "checkpoint": checkpoint_used,
        "localization": config.localization,
        "eval_protocol": config.eval_protocol,
        "iterations": config.iterations,
        "iterations_done": done,
        "completed": done >= config.iterations,
        "map": map_to_json(evaluation.mean_ap),
        "per_class_ap": {str(t): {str(c): float(v) for c, v in evaluation.per_class[t].items()} for t in evaluation.per_class.columns},
        "seconds": seconds,
        "device": str(device),
        "environment": _environment(device),
    })
    metrics = pd.read_csv(run_dir / METRICS)
    return TrainResult(run_dir, config, evaluation.mean_ap, evaluation.per_class, checkpoint_used, metrics, seconds, done)


def _environment(device) -> dict:
    """What the last digits of a CPU run depend on: library versions, the CPU code path, threads."""
    import platform

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else None,
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def untrained_result(config: Config, dataset: FeatureDataset | None = None) -> Evaluation:
    """mAP of the freshly initialised model (seeded like a run), for 'does training help' checks."""
    dataset = dataset or load_dataset(config)
    split = _Split.of(config, dataset)
    device = resolve_device(config.device)
    input_mean = training_feature_mean(dataset.features, split.train_indices) if config.center_features else None
    state = _State.fresh(config, dataset.annotations.num_classes, device, input_mean)
    return _evaluate(state, dataset, split, config, device, "untrained", 0).evaluation
