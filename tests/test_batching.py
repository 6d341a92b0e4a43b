"""Training batches gathered from a FeatureStore on the device equal the numpy batches of make_batch."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wtal_kit import training
from wtal_kit.config import Config
from wtal_kit.data.catalog import load_dataset
from wtal_kit.training.inference import infer
from wtal_kit.training.runs import load_checkpoint
from wtal_kit.training import (
    FeatureCache,
    FeatureStore,
    Split,
    TrainingData,
    TrainState,
    infer_stored,
    load_training_features,
    make_batch,
    train,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def numbered_videos(lengths, dim=2):
    """Video v's segment t holds v * 100 + t in every column: a row tells where it came from."""
    return [np.repeat((v * 100 + np.arange(n, dtype=np.float32))[:, None], dim, axis=1) for v, n in enumerate(lengths)]


def store_of(arrays, device="cpu", indices=None):
    indices = list(range(len(arrays))) if indices is None else list(indices)
    by_index = dict(zip(indices, arrays))
    store, rest = FeatureStore.load(lambda i: by_index[i], indices, torch.device(device), 2**30)
    assert store is not None and rest == []
    return store


def test_store_layout_by_hand():
    arrays = numbered_videos([2, 5, 3])
    store = store_of(arrays, indices=[7, 3, 9])  # dataset indices need not be 0..N-1
    assert store.offsets.tolist() == [0, 2, 7] and store.lengths.tolist() == [2, 5, 3]
    assert store.features.shape == (11, 2) and store.zero_row == 10
    assert store.features[:, 0].tolist() == [0, 1, 100, 101, 102, 103, 104, 200, 201, 202, 0]
    np.testing.assert_array_equal(store(3), arrays[1])  # by dataset index


@pytest.mark.parametrize("device", DEVICES)
def test_device_batch_by_hand(device):
    """Max 3 segments: the 5-segment video is cut at a drawn start, the 2-segment one padded with zeros."""
    arrays = numbered_videos([2, 5, 3])
    store = store_of(arrays, device)
    draws = np.random.default_rng(4)  # one draw per appearance of video 1, the only one longer than 3
    start, second = int(draws.integers(0, 5 - 3 + 1)), int(draws.integers(0, 5 - 3 + 1))
    rng = np.random.default_rng(4)
    features, lengths, rows = store.batch([1, 0, 2, 1], 3, rng)
    assert lengths.tolist() == [3, 2, 3, 3] and rows.tolist() == [1, 0, 2, 1]
    expected = np.array([
        [100 + start, 101 + start, 102 + start],
        [0, 1, 0],  # padding
        [200, 201, 202],
        [100 + second, 101 + second, 102 + second],
    ], dtype=np.float32)
    np.testing.assert_array_equal(features[:, :, 0].cpu().numpy(), expected)
    np.testing.assert_array_equal(features[:, :, 1].cpu().numpy(), expected)
    assert features.device.type == device and features.dtype == torch.float32


def test_batch_of_short_videos_is_as_long_as_the_longest():
    store = store_of(numbered_videos([2, 4]))
    features, lengths, _ = store.batch([0, 0], 300, np.random.default_rng(0))
    assert features.shape == (2, 2, 2) and lengths.tolist() == [2, 2]  # T = longest window, not max_segments


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    picks=st.lists(st.integers(0, 5), min_size=1, max_size=8),
    max_segments=st.integers(1, 10),
    dim=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_device_batch_equals_make_batch(lengths, picks, max_segments, dim, seed):
    arrays = [np.random.default_rng(seed + v).standard_normal((n, dim), dtype=np.float32) for v, n in enumerate(lengths)]
    batch = [p % len(lengths) for p in picks]
    store = store_of(arrays)
    rng_numpy, rng_store = np.random.default_rng(seed), np.random.default_rng(seed)
    expected, expected_lengths = make_batch([arrays[i] for i in batch], max_segments, rng_numpy)
    features, lengths_t, rows = store.batch(batch, max_segments, rng_store)
    np.testing.assert_array_equal(features.numpy(), expected)  # bit for bit, padding included
    np.testing.assert_array_equal(lengths_t.numpy(), expected_lengths)
    assert rows.tolist() == batch
    assert rng_store.bit_generator.state == rng_numpy.bit_generator.state  # the same draws, no more, no fewer


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    windows=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 8), st.integers(1, 9)), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_gather_kernel_equals_block_copies(lengths, windows, seed):
    """The GPU's index_select and the CPU's block copies give the same batch (run here on the CPU)."""
    arrays = [np.random.default_rng(seed + v).standard_normal((n, 3), dtype=np.float32) for v, n in enumerate(lengths)]
    store = store_of(arrays)
    starts, counts = [], []
    for video, skip, count in windows:  # a window inside video `video`
        video %= len(lengths)
        skip = skip % lengths[video]
        starts.append(int(store.offsets[video]) + skip)
        counts.append(min(count, lengths[video] - skip))
    starts, counts = torch.tensor(starts), torch.tensor(counts)
    steps = int(counts.max())
    by_copies = store.copy_windows(starts.numpy(), counts.numpy(), steps)
    by_kernel = store.gather_rows(starts, counts, steps)
    assert by_copies.shape == (len(windows), steps, 3)
    np.testing.assert_array_equal(by_kernel.numpy(), by_copies.numpy())
    for b, (start, n) in enumerate(zip(starts.tolist(), counts.tolist())):  # and both are what they should be
        np.testing.assert_array_equal(by_copies[b, :n].numpy(), store.features[start : start + n].numpy())
        assert not by_copies[b, n:].any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batch_equals_make_batch():
    arrays = [np.random.default_rng(v).standard_normal((n, 16), dtype=np.float32) for v, n in enumerate([5, 400, 301, 1])]
    store = store_of(arrays, "cuda")
    expected, expected_lengths = make_batch([arrays[i] for i in [1, 3, 2, 1, 0]], 300, np.random.default_rng(2))
    features, lengths, _ = store.batch([1, 3, 2, 1, 0], 300, np.random.default_rng(2))
    np.testing.assert_array_equal(features.cpu().numpy(), expected)
    np.testing.assert_array_equal(lengths.cpu().numpy(), expected_lengths)


@pytest.mark.parametrize("workers", [1, 2])
def test_store_that_does_not_fit_falls_back(workers):
    arrays = numbered_videos([2, 5, 3], dim=4)  # 32, 80 and 48 bytes; the padding row 16
    store, read = FeatureStore.load(lambda i: arrays[i], [0, 1, 2], torch.device("cpu"), 32 + 80 + 48 + 16, workers)
    assert store is not None and store.nbytes == 176 and read == []
    assert store.features[:, 0].tolist() == [0, 1, 100, 101, 102, 103, 104, 200, 201, 202, 0]  # in order, threads or not
    store, read = FeatureStore.load(lambda i: arrays[i], [0, 1, 2], torch.device("cpu"), 32 + 80 + 48 + 15, workers)
    assert store is None and [index for index, _ in read] == [0, 1]  # stopped at video 2, the first that does not fit
    np.testing.assert_array_equal(read[1][1], arrays[1])


def test_training_features_fall_back_to_the_cache():
    config = Config.from_preset("quick", feature_dim=32)
    dataset = load_dataset(config)
    split = Split.of(config, dataset)
    store = load_training_features(dataset, split.train_indices, torch.device("cpu"), 64)  # 200 videos, 8 MB
    assert isinstance(store, FeatureStore) and store.indices.tolist() == split.train_indices.tolist()
    first = int(split.train_indices[0])
    np.testing.assert_array_equal(store(first), dataset.features(first))
    cache = load_training_features(dataset, split.train_indices, torch.device("cpu"), 1)
    assert isinstance(cache, FeatureCache)
    assert 0 < cache.used_bytes <= 2**20 and first in cache.arrays  # what was read within the budget is kept
    np.testing.assert_array_equal(cache(first), dataset.features(first))


def test_infer_stored_equals_infer():
    config = Config.from_preset("quick", feature_dim=16, seed=1)
    dataset = load_dataset(config)
    indices = dataset.annotations.indices("test")[:12]
    mean = training.training_feature_mean(dataset.features, indices)
    state = TrainState.fresh(config, dataset.annotations.num_classes, torch.device("cpu"), mean)
    store = store_of([dataset.features(i) for i in indices], indices=indices)
    for max_batch_segments in (1000, 16384):  # several padded batches, or one
        expected_logits, expected_probs = infer(state.model, dataset, indices, config, max_batch_segments=max_batch_segments)
        logits, probs = infer_stored(state.model, store, dataset.annotations.num_classes, config, max_batch_segments)
        np.testing.assert_array_equal(probs, expected_probs)
        for got, want in zip(logits, expected_logits, strict=True):
            np.testing.assert_array_equal(got, want)


class StepSpy:
    """Wraps TrainingData.batch and records which kind of feature source each batch came from."""

    def __init__(self, monkeypatch):
        self.kinds = []
        original = TrainingData.batch

        def spy(data, rng):
            self.kinds.append(type(data.features).__name__)
            return original(data, rng)

        monkeypatch.setattr(TrainingData, "batch", spy)


@pytest.mark.slow
def test_training_with_the_store_equals_the_numpy_path(tmp_path, monkeypatch):
    """The same run through the device store and through the host cache: identical metrics and weights."""
    config = Config.from_preset("quick", feature_dim=32, iterations=10, eval_every=10, seed=3)  # 10 x 20 draws >= 200 videos
    dataset = load_dataset(config)
    spy = StepSpy(monkeypatch)
    stored = train(config, tmp_path / "store", quiet=True, dataset=dataset)
    assert set(spy.kinds) == {"FeatureStore"}
    spy.kinds.clear()
    cached = train(config.replace(feature_cache_mb=1), tmp_path / "cache", quiet=True, dataset=dataset)  # 8 MB do not fit
    assert set(spy.kinds) == {"FeatureCache"}
    pd.testing.assert_frame_equal(stored.metrics, cached.metrics, check_exact=True)
    pd.testing.assert_series_equal(stored.mean_ap, cached.mean_ap, check_exact=True)
    a = load_checkpoint(tmp_path / "store" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "cache" / "checkpoint.pt")["model"]
    assert all(torch.equal(a[name], b[name]) for name in a)


@pytest.mark.slow
def test_short_run_reads_only_what_it_draws(tmp_path, monkeypatch):
    """3 iterations x 20 videos < 200 training videos: no store, the cache fills as batches ask."""
    config = Config.from_preset("quick", feature_dim=8, iterations=3, eval_every=3, center_features=False)
    reads = []
    dataset = load_dataset(config)
    original = dataset.read_features
    dataset.read_features = lambda index: reads.append(index) or original(index)
    spy = StepSpy(monkeypatch)
    train(config, tmp_path, quiet=True, dataset=dataset)
    assert set(spy.kinds) == {"FeatureCache"}
    test_videos = len(dataset.annotations.indices("test"))
    assert len(reads) - test_videos <= 3 * 20  # the training videos of 3 batches, then one evaluation
