"""Batches for training: which videos, which windows, and where their features live.

A batch is drawn in two steps from the run's own numpy generator: :class:`BatchSampler` picks
videos that share classes (the metric loss needs pairs of one class), then :func:`draw_windows`
cuts each video's training window of at most ``max_segments`` segments. :class:`TrainingData`
holds everything the loop draws from: the split, the sampler, the labels and the features:

- a :class:`FeatureStore` (the training split in one flat tensor on the training device, read
  once) when the run draws at least as many videos as the split holds and the split fits in
  ``Config.feature_cache_mb``; the held-out split joins it when what is left fits, and every
  evaluation then runs on it;
- else a host :class:`FeatureCache`, batches padded in numpy (:func:`make_batch`) and copied.

Both paths draw the same windows from the same generator state, so they give the same batch
and the same numbers (tests/test_batching.py).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from wtal_kit.config import Config
from wtal_kit.data.catalog import split_subsets
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.errors import InputError


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


# -- what the loop draws from -------------------------------------------------------------------
class Batch(NamedTuple):
    """One training batch on the training device."""

    features: torch.Tensor  # (B, T, d) float32, zero-padded windows
    lengths: torch.Tensor  # (B,) int64, segments of each window
    labels: torch.Tensor  # (B, C) float32, video-level labels


@dataclass
class Split:
    """The subsets a run trains and tests on, and their videos (dataset indices)."""

    train_subset: str
    test_subset: str
    train_indices: np.ndarray
    test_indices: np.ndarray

    @classmethod
    def of(cls, config: Config, dataset: FeatureDataset) -> "Split":
        annotations = dataset.annotations
        train_subset, test_subset = split_subsets(config, annotations)
        return cls(train_subset, test_subset, annotations.indices(train_subset), annotations.indices(test_subset))


class TrainingData:
    """The split, the batch sampler, the labels and the features a run draws its batches from.

    features: a :class:`FeatureStore` on ``device`` or a host :class:`FeatureCache` (see the module's
    docstring); test_features: the held-out split's :class:`FeatureStore` on ``device``, or None
    (evaluations then read the held-out videos from the dataset again).
    """

    def __init__(self, dataset: FeatureDataset, config: Config, device: torch.device):
        self.dataset, self.config, self.device = dataset, config, device
        annotations = dataset.annotations
        self.split = Split.of(config, dataset)
        self.sampler = BatchSampler(annotations.video_labels[self.split.train_indices], config)
        self.features, self.test_features = self._load_features()
        labels = torch.from_numpy(annotations.video_labels.astype(np.float32))  # (N, C)
        self.labels = labels.to(device) if isinstance(self.features, FeatureStore) else labels

    @property
    def num_classes(self) -> int:
        return self.dataset.annotations.num_classes

    def _load_features(self) -> tuple["FeatureStore | FeatureCache", "FeatureStore | None"]:
        """(training features, held-out features or None) within ``config.feature_cache_mb``.

        A run that draws fewer videos than the training split holds (iterations x batch size) reads
        only what it draws, into a host cache; otherwise the split goes to the device if it fits.
        """
        config, split = self.config, self.split
        if config.iterations * self.sampler.batch_videos < len(split.train_indices):
            return FeatureCache(self.dataset, config.feature_cache_mb), None
        features = load_training_features(self.dataset, split.train_indices, self.device, config.feature_cache_mb)
        if not isinstance(features, FeatureStore):
            return features, None
        limit = config.feature_cache_mb * 2**20 - features.nbytes
        test_features, _ = FeatureStore.load(self.dataset.features, split.test_indices, self.device, limit)
        return features, test_features

    def input_mean(self) -> np.ndarray | None:
        """mu of ``Config.center_features`` (None when it is off)."""
        if not self.config.center_features:
            return None
        return training_feature_mean(self.features, self.split.train_indices)

    def batch(self, rng: np.random.Generator) -> Batch:
        """The next batch: videos from the sampler, then their windows, both drawn from ``rng``.

        From a :class:`FeatureStore` the batch is gathered on the device (one small index copy);
        from a :class:`FeatureCache` it is padded in numpy and copied. Same draws, same batch.
        """
        videos = self.split.train_indices[self.sampler.sample(rng)]  # (B,) dataset indices
        if isinstance(self.features, FeatureStore):
            features, lengths, rows = self.features.batch(videos, self.config.max_segments, rng)  # (B, T, d), (B,), (B,)
            return Batch(features, lengths, self.labels.index_select(0, rows))
        features, lengths = make_batch([self.features(i) for i in videos], self.config.max_segments, rng)
        features = torch.from_numpy(features)
        if self.device.type == "cuda":
            features = features.pin_memory()  # lets the copy below overlap with GPU work
        return Batch(features.to(self.device, non_blocking=True),  # (B, T, d)
                     torch.from_numpy(lengths).to(self.device, non_blocking=True),  # (B,)
                     self.labels[videos].to(self.device, non_blocking=True))  # (B, C)
