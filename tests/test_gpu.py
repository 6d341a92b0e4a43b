"""What only a CUDA device can check of issue 20's fast paths; every test skips without one.

- the fast step's CUDA graph: the same numbers as the fast step run eagerly (same kernels, same
  dropout stream: the run's generator is registered with the graph), and as the plain step within
  fp32 and bf16 tolerances;
- no host synchronisation per step: the data path, both steps and the loss window run under
  ``torch.cuda.set_sync_debug_mode("error")``, which raises on any synchronising call;
- a training run with the fast step, stopped and resumed.

Tolerances are first bounds, set from the CPU measurements (tests/test_fast_paths.py) and the formats'
precision; each test prints what it measured (``pytest -s``) so that a GPU session can record and
tighten them.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from wtal_kit.config import Config
from wtal_kit.data.catalog import load_dataset
from wtal_kit.training import Batch, Callback, TrainingData, TrainState, train
from wtal_kit.training.log import LossWindow
from wtal_kit.training.state import StaticStep

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

B, T, D, C = 20, 220, 256, 20  # windows of at most 220 segments, padded to max_segments = 300 by the fast step
FP32_LOSS_REL = 1e-5  # as on CPU: other blockings of the same float32 sums (TF32 stays off: torch's default)
BF16_LOSS_REL = 2e-2  # bf16 keeps 8 significant bits (2^-8 = 0.4 % per rounding); a loss sums many of them
FP32_WEIGHT_SHARE = 0.01  # of the most Adam can move a weight in N steps (N x lr), as on CPU
BF16_WEIGHT_SHARE = 0.25


def cuda_batches(count: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        lengths = rng.integers(1, T + 1, size=B)  # (B,)
        lengths[0] = T
        features = rng.random((B, T, D), dtype=np.float32)  # (B, T, d)
        features[np.arange(T)[None, :] >= lengths[:, None]] = 0
        labels = np.zeros((B, C), dtype=np.float32)  # (B, C): 4 classes x 5 videos, as the paper's sampler
        labels[np.arange(B), np.arange(B) // 5] = 1
        batches.append(Batch(*(torch.from_numpy(a).cuda() for a in (features, lengths, labels))))
    return batches


def config_of(**changes) -> Config:
    return Config.from_preset("quick", **{"device": "cuda", "max_segments": 300, "seed": 1, **changes})


def run_steps(config: Config, batches, capture_after=None):
    state = TrainState.fresh(config, C, torch.device("cuda"), np.full(D, 0.5, dtype=np.float32))
    state.model.train()
    if capture_after is not None:
        state.fast = StaticStep(state, capture_after=capture_after)
    terms = [{name: float(value) for name, value in state.step(batch).items()} for batch in batches]
    return state, terms


def largest_gaps(a_state, a_terms, b_state, b_terms, steps, lr):
    """(largest relative gap of a loss term over the steps, largest weight gap as a share of steps x lr)."""
    loss = max(abs(b[name] - a[name]) / abs(a[name]) for a, b in zip(a_terms, b_terms) for name in a if a[name])
    weight = max(float((p - q).abs().max()) for p, q in zip(a_state.model.parameters(), b_state.model.parameters()))
    return loss, weight / (steps * lr)


def test_the_graph_replays_the_eager_fast_step():
    """Captured after 3 eager steps vs never captured: same kernels, same dropout masks (0.7)."""
    batches, config = cuda_batches(8), config_of(fast_step=True, dropout=0.7)
    eager, eager_terms = run_steps(config, batches, capture_after=math.inf)
    graphed, graphed_terms = run_steps(config, batches)
    assert graphed.fast.graph is not None and eager.fast.graph is None
    loss, share = largest_gaps(eager, eager_terms, graphed, graphed_terms, len(batches), config.lr)
    print(f"graph vs eager, fp32, dropout 0.7: largest loss gap {loss:.2e} relative, weights {share:.2e} of N x lr")
    assert loss <= FP32_LOSS_REL and share <= FP32_WEIGHT_SHARE
    assert torch.equal(eager.generator.get_state(), graphed.generator.get_state())  # the same draws, counted alike


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_fast_step_equals_plain_step(bf16):
    """Padding 220 -> 300 segments, dropout 0 (with dropout the padded grid draws other masks: tests/test_fast_paths.py)."""
    batches, config = cuda_batches(10), config_of(dropout=0.0, bf16=bf16)
    plain, plain_terms = run_steps(config, batches)
    fast, fast_terms = run_steps(config.replace(fast_step=True), batches)
    assert fast.fast.graph is not None
    loss, share = largest_gaps(plain, plain_terms, fast, fast_terms, len(batches), config.lr)
    print(f"fast vs plain, {'bf16' if bf16 else 'fp32'}: largest loss gap {loss:.2e} relative, weights {share:.2e} of N x lr")
    assert loss <= (BF16_LOSS_REL if bf16 else FP32_LOSS_REL)
    assert share <= (BF16_WEIGHT_SHARE if bf16 else FP32_WEIGHT_SHARE)


@pytest.mark.parametrize("fast_step", [False, True], ids=["plain", "fast"])
def test_no_host_sync_per_step(fast_step):
    """Batches from the device's FeatureStore, the step and the loss window: no synchronising call."""
    config = Config.from_preset("quick", device="cuda", feature_dim=32, iterations=500, fast_step=fast_step)
    data = TrainingData(load_dataset(config), config, torch.device("cuda"))
    state = TrainState.fresh(config, data.num_classes, torch.device("cuda"), data.input_mean())
    state.model.train()
    window = LossWindow()
    for _ in range(5):  # the fast step's eager steps and its capture (which synchronises once) come first
        window.add(state.step(data.batch(state.rng)))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            window.add(state.step(data.batch(state.rng)))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert window.count == 25 and all(math.isfinite(v) for v in window.take().values())  # the read: one sync, here


def test_fast_training_run_resumes(tmp_path):
    """A run with the fast step, stopped at iteration 7 and resumed, ends where the uninterrupted one does.

    Within a tolerance: on CUDA the backward of the block gather accumulates with atomics, whose
    order varies from run to run, so two GPU runs agree to rounding, not to the bit."""
    config = Config.from_preset("quick", device="cuda", feature_dim=32, iterations=12, eval_every=6, fast_step=True)
    dataset = load_dataset(config)
    full = train(config, tmp_path / "full", quiet=True, dataset=dataset)

    class CrashAt(Callback):
        def on_iteration(self, event):
            if event.iteration == 7:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", quiet=True, callbacks=[CrashAt()], dataset=dataset)
    resumed = train(config, tmp_path / "cut", resume=True, quiet=True, dataset=dataset)
    for column in ("loss_total", "loss_classification", "loss_metric"):
        assert resumed.metrics[column].tolist() == pytest.approx(full.metrics[column].tolist(), rel=1e-4)
    pd.testing.assert_series_equal(full.metrics["iteration"], resumed.metrics["iteration"])
