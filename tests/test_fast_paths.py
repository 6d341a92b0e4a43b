"""The GPU-minded paths of training, held equal to the plain ones on CPU (issue 20).

- the loss terms are summed on the device and read back only every ``log_every`` iterations: the
  sums (metrics.csv) are bit-identical to adding floats in Python, and callbacks get the terms
  on the iterations that read them;
- the losses' ``check_values=False`` (no value read, no host sync) gives the same numbers;
- the fast step (``Config.fast_step``: batches padded to ``max_segments``, on CUDA one graph replay)
  gives the plain step's losses, gradients and weights to float tolerance, and exactly the plain
  step's numbers where a batch already spans ``max_segments``;
- ``fast_step`` changes no results-store key.

What only a GPU can check (the graph capture, no sync per step) is in tests/test_gpu.py.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from wtal_kit import losses
from wtal_kit.config import Config
from wtal_kit.experiments.store import config_key
from wtal_kit.training import Batch, Callback, TrainState, train
from wtal_kit.training.log import LossWindow
from wtal_kit.training.runs import load_checkpoint

# -- the loss window: sums on the device, the same bits as Python's floats -------------------------


def test_loss_window_sums_like_python_floats():
    """float32 terms summed in float64 on the device, in order: exactly Python's sum of float(term)."""
    rng = np.random.default_rng(0)
    steps = [{"classification": np.float32(a), "total": np.float32(b)} for a, b in rng.random((50, 2)) * 7]
    window, python = LossWindow(), {}
    for terms in steps:
        window.add({name: torch.tensor(value) for name, value in terms.items()})  # 0-d float32 tensors
        for name, value in terms.items():
            python[name] = python.get(name, 0.0) + float(value)
    assert window.state() == {"sums": python, "count": 50}  # == on floats: the same bits
    assert window.take() == {name: value / 50 for name, value in python.items()}
    assert window.take() == {} and window.count == 0  # a fresh window


def test_loss_window_resumes_exactly():
    """A window saved between two evaluations (JSON floats) and restored continues the same sums."""
    terms = [{"total": torch.tensor(v, dtype=torch.float32)} for v in (0.1, 2.5, 1e-3, 3.25)]
    whole = LossWindow()
    for t in terms:
        whole.add(t)
    first = LossWindow()
    for t in terms[:2]:
        first.add(t)
    resumed = LossWindow()
    resumed.restore(first.state())
    assert resumed.state() == first.state()  # before any add, from the restored floats
    for t in terms[2:]:
        resumed.add(t)
    assert resumed.take() == whole.take()


# -- the loop: reads every log_every iterations --------------------------------------------------------


class Recorder(Callback):
    def __init__(self):
        self.losses = []

    def on_iteration(self, event):
        self.losses.append((event.iteration, event.losses))


def test_log_every_reads_every_kth_iteration_and_changes_no_number(tmp_path, small_config, small_dataset):
    """log_every=4 over 6 iterations, evaluations at 3 and 6: terms read at 3 (evaluation), 4 and 6
    (evaluation, last), None elsewhere; the read values and metrics.csv equal log_every=1's to the bit."""
    every, sparse = Recorder(), Recorder()
    a = train(small_config, tmp_path / "a", quiet=True, callbacks=[every], dataset=small_dataset, log_every=1)
    b = train(small_config, tmp_path / "b", quiet=True, callbacks=[sparse], dataset=small_dataset, log_every=4)
    assert [i for i, terms in sparse.losses if terms is not None] == [3, 4, 6]
    assert [i for i, terms in sparse.losses if terms is None] == [1, 2, 5]
    assert all(terms is not None for _, terms in every.losses)  # the CPU default reads every iteration
    read = dict(every.losses)
    assert all(terms == read[i] for i, terms in sparse.losses if terms is not None)
    pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)


def test_log_every_must_be_positive(tmp_path, small_config, small_dataset):
    from wtal_kit.errors import InputError

    with pytest.raises(InputError, match="log_every"):
        train(small_config, tmp_path, quiet=True, dataset=small_dataset, log_every=0)


# -- the losses without their value checks ---------------------------------------------------------------


def test_check_values_off_gives_the_same_numbers_and_skips_only_the_value_checks():
    rng = torch.Generator().manual_seed(0)
    cas = torch.randn(4, 9, 3, generator=rng)  # (B, T, C)
    u = torch.randn(4, 9, 5, generator=rng)  # (B, T, d)
    lengths = torch.tensor([9, 4, 1, 7])
    labels = torch.tensor([[1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 1, 1]], dtype=torch.float32)
    weight = torch.randn(3, 5, generator=rng)
    for check in (True, False):
        probs = losses.video_probs(cas, lengths, block_size=3, k=2, check_values=check)
        values = [probs, losses.balanced_bce(probs, labels, check_values=check), losses.bce(probs, labels, check_values=check),
                  losses.softmax_mil(cas, lengths, labels, check_values=check),
                  losses.metric_loss(u, cas, labels, lengths, weight, check_values=check)]
        if check:
            expected = values
        else:
            assert all(torch.equal(a, b) for a, b in zip(values, expected))
    bad_lengths, bad_labels = torch.tensor([9, 4, 0, 7]), labels * 2  # a zero length; labels 0/2
    with pytest.raises(ValueError, match="lengths"):
        losses.video_probs(cas, bad_lengths)
    with pytest.raises(ValueError, match="0 and 1"):
        losses.balanced_bce(losses.video_probs(cas, lengths), bad_labels)
    losses.video_probs(cas, bad_lengths, check_values=False)  # not read: no error (the caller vouches)
    losses.balanced_bce(losses.video_probs(cas, lengths), bad_labels, check_values=False)
    with pytest.raises(ValueError, match="shape"):  # the shape checks stay: they read no value
        losses.balanced_bce(probs, labels[:2], check_values=False)


# -- the fast step against the plain step ---------------------------------------------------------------
B, T, D, C = 8, 60, 32, 6  # the hand-made batches: windows of at most T = 60 segments, padded by the fast step to 100


def short_batches(count: int, seed: int = 0) -> list:
    """Batches like the trainer's (zero padding after each window, the first window full), T = 60 < max_segments."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        lengths = rng.integers(1, T + 1, size=B)  # (B,)
        lengths[0] = T
        features = rng.random((B, T, D), dtype=np.float32)  # (B, T, d), non-negative like I3D features
        features[np.arange(T)[None, :] >= lengths[:, None]] = 0
        labels = np.zeros((B, C), dtype=np.float32)  # (B, C): classes 0-2 twice or more, class 4 on every 4th
        labels[np.arange(B), np.arange(B) % 3] = 1
        labels[::4, 4] = 1
        batches.append(Batch(torch.from_numpy(features), torch.from_numpy(lengths), torch.from_numpy(labels)))
    return batches


def fast_config(**changes) -> Config:
    """d = 32, windows padded to 100 segments, blocks of 20 (so padding adds blocks), dropout 0 unless asked."""
    return Config.from_preset("quick", **{"feature_dim": D, "max_segments": 100, "block_size": 20, "k": 4, "seed": 1,
                                          "dropout": 0.0, **changes})


def run_steps(config: Config, batches) -> tuple[TrainState, list, list]:
    """The state after one step per batch, the terms of each step (floats) and the gradients of the first."""
    state = TrainState.fresh(config, C, torch.device("cpu"), np.full(D, 0.5, dtype=np.float32))
    state.model.train()
    terms, first_grads = [], None
    for batch in batches:
        terms.append({name: float(value) for name, value in state.step(batch).items()})
        if first_grads is None:
            first_grads = [p.grad.clone() for p in state.model.parameters()]
    return state, terms, first_grads


# Tolerances, measured (CPU, torch 2.13) and held with margin. Padding to max_segments adds zero rows to
# the sums over segments (the GEMMs over B x T rows, the attention pooling, softmax): the same terms in
# float32 but other blockings, so the results differ by rounding only.
LOSS_REL = 1e-5  # measured <= 1.6e-7 relative over 10 steps and the 4 variants (one or two float32 ulps)
GRAD_REL = 1e-5  # of the largest gradient entry; measured <= 5.8e-7 here, 1.0e-6 on other random batches
# Adam moves each weight by at most about lr per step whatever the gradient's size, and divides by
# sqrt(v): an entry whose gradient is near zero turns a rounding difference into a visible one. The
# weights are held to 1% of the most they could have moved (N steps x lr); measured 6e-6 of it here,
# 1.1e-3 on other random batches.
WEIGHT_SHARE_OF_MOVE = 0.01

VARIANTS = [
    dict(),  # the paper's losses: balanced BCE over blocks + triplet loss, class distance
    dict(classification_loss="softmax_mil", metric_loss="contrastive", distance="cosine"),
    dict(classification_loss="bce", block_processing=False, distance="euclidean"),
    dict(distance="custom", custom_rank=4, kappa=None),
]


@pytest.mark.parametrize("changes", VARIANTS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "paper")
def test_fast_step_equals_plain_step(changes):
    """10 steps on batches 40 segments shorter than max_segments: same losses, gradients and weights."""
    batches, config = short_batches(10), fast_config(**changes)
    plain, plain_terms, plain_grads = run_steps(config, batches)
    fast, fast_terms, fast_grads = run_steps(config.replace(fast_step=True), batches)
    assert fast.fast is not None and fast.fast.inputs.features.shape == (B, 100, D)  # padded: static shapes
    for a, b in zip(plain_terms, fast_terms):
        assert a.keys() == b.keys() and all(b[name] == pytest.approx(a[name], rel=LOSS_REL) for name in a)
    for a, b in zip(plain_grads, fast_grads):
        assert (a - b).abs().max() <= GRAD_REL * a.abs().max()
    most = len(batches) * config.lr
    for a, b in zip(plain.model.parameters(), fast.model.parameters()):
        assert (a - b).abs().max() <= WEIGHT_SHARE_OF_MOVE * most
    if plain.custom_factors is not None:
        assert (plain.custom_factors - fast.custom_factors).abs().max() <= WEIGHT_SHARE_OF_MOVE * most


def test_fast_step_is_the_plain_step_where_no_padding_is_added():
    """Batches that already span max_segments: nothing to pad, the same kernels, the same dropout
    masks (drawn over the same grid, from the same generator): the same numbers to the last bit."""
    batches = [Batch(b.features, torch.full((B,), T), b.labels) for b in short_batches(5)]  # every window T long
    config = fast_config(max_segments=T, dropout=0.7)
    plain, plain_terms, _ = run_steps(config, batches)
    fast, fast_terms, _ = run_steps(config.replace(fast_step=True), batches)
    assert plain_terms == fast_terms
    assert all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), fast.model.parameters()))
    assert torch.equal(plain.generator.get_state(), fast.generator.get_state())


def test_fast_step_with_dropout_draws_masks_over_the_padded_grid():
    """With dropout and padding the fast step draws B x max_segments x d mask bits (the plain step B x T x d):
    another random stream of the same keep rate, so the losses differ, by the size of dropout's own noise."""
    batches, config = short_batches(3), fast_config(dropout=0.7)
    plain, plain_terms, _ = run_steps(config, batches)
    fast, fast_terms, _ = run_steps(config.replace(fast_step=True), batches)
    assert plain_terms[0]["total"] != fast_terms[0]["total"]
    assert all(math.isfinite(t["total"]) for t in fast_terms)
    assert not torch.equal(plain.generator.get_state(), fast.generator.get_state())  # more bits drawn


def test_fast_step_refuses_a_batch_longer_than_max_segments():
    state = TrainState.fresh(fast_config(fast_step=True, max_segments=40), C, torch.device("cpu"),
                             np.full(D, 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match="max_segments = 40"):
        state.step(short_batches(1)[0])  # T = 60


def test_fast_training_run_and_its_resume(tmp_path, small_config, small_dataset):
    """train() with fast_step on the THUMOS14 layout: each of this run's 8 batches holds a window of 300
    segments (as 99.7 % of the layout's batches do), so nothing is padded and the run equals the
    plain one to the bit; stopped and resumed, it equals itself uninterrupted."""
    config = small_config.replace(iterations=8, eval_every=4, fast_step=True)
    plain = train(config.replace(fast_step=False), tmp_path / "plain", quiet=True, dataset=small_dataset)
    fast = train(config, tmp_path / "fast", quiet=True, dataset=small_dataset)
    pd.testing.assert_frame_equal(plain.metrics, fast.metrics, check_exact=True)

    class CrashAt(Callback):
        def on_iteration(self, event):
            if event.iteration == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", quiet=True, callbacks=[CrashAt()], dataset=small_dataset)
    resumed = train(config, tmp_path / "cut", resume=True, quiet=True, dataset=small_dataset)
    pd.testing.assert_frame_equal(fast.metrics, resumed.metrics, check_exact=True)
    a = load_checkpoint(tmp_path / "fast" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["model"]
    assert all(torch.equal(a[name], b[name]) for name in a)


# -- the config field --------------------------------------------------------------------------------------
KEYS_BEFORE_FAST_STEP = {  # config_key of each preset's config, recorded before the field existed
    "paper": "e4480d2918f57050", "quick": "55972e24c42edb68", "small": "48d31ec71b0da392", "smoke": "e64f56dc6be77326",
}


@pytest.mark.parametrize("preset", sorted(KEYS_BEFORE_FAST_STEP))
def test_fast_step_changes_no_store_key(preset):
    config = Config.from_preset(preset)
    assert config_key(config) == KEYS_BEFORE_FAST_STEP[preset]
    assert config_key(config.replace(fast_step=True)) == KEYS_BEFORE_FAST_STEP[preset]


def test_a_config_saved_before_fast_step_loads_with_the_plain_step():
    data = Config.from_preset("quick").to_dict()
    del data["fast_step"]
    assert Config.from_dict(data).fast_step is False
    assert Config().fast_step is False  # off by default, on every device
