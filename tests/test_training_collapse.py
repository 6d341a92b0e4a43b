"""Issue 12: training on the ActivityNet1.2 layout collapsed (every embedding unit dead, P(c|V) constant).

The mechanism (docs/method.md, "Why training collapsed on the ActivityNet layout"): the
features are non-negative and uncentred, so the gradient on a row of W_e, sum_i g_i x_i^T,
has one sign across the whole row whenever the unit's gradient g_i has one sign over the
batch; Adam then moves every weight of the row by about lr, which shifts the unit's
pre-activation by lr * |x|_1 (about 0.09 at d = 256, lr 1e-3) per step. The negative half of
the balanced BCE, summed over 99 negative classes, pushes every active unit down on every
batch, and within a few dozen steps most units are negative on every input: dead, for good.
Centring the embedding on the training-feature mean (``Config.center_features``, the default)
takes the common sign out of the weight gradient; the network and its initial function are
unchanged.

These checks measure the embedding directly (dead units after a few dozen steps) rather than
an mAP, which would need a long run and an 18-s evaluation.
"""

import numpy as np
import pytest
import torch

from wtal_kit.config import Config
from wtal_kit.data.catalog import load_dataset
from wtal_kit.training import TrainingData, TrainState


def train_and_probe(config: Config, iterations: int, dataset=None) -> dict:
    """Train ``iterations`` steps through the public step, as train() takes them; return the
    dead-unit fraction and the losses."""
    dataset = dataset or load_dataset(config)
    data = TrainingData(dataset, config.replace(iterations=iterations), torch.device("cpu"))
    state = TrainState.fresh(config, data.num_classes, data.device, data.input_mean())
    state.model.train()
    terms = [{name: float(value) for name, value in state.step(data.batch(state.rng)).items()} for _ in range(iterations)]
    # probe: the first 100 segments of 40 training videos spread over the split
    train_indices = data.split.train_indices
    probe = train_indices[np.linspace(0, len(train_indices) - 1, 40).round().astype(int)]
    x = torch.from_numpy(np.concatenate([np.asarray(data.features(int(i)))[:100] for i in probe]))  # (N, d)
    with torch.no_grad():
        h = state.model.embed(x)  # (N, d): pre-activations W_e (x - mu) + b_e
    active = (h > 0).double().mean(dim=0)  # (d,): how often each unit fires
    return {
        "dead": float((active == 0).double().mean()),  # units that fire on no probe segment
        "active": float(active.mean()),
        "first": terms[0]["classification"],
        "last": float(np.mean([t["classification"] for t in terms[-10:]])),
    }


@pytest.fixture(scope="module")
def activitynet():
    config = Config.from_preset("quick", dataset="synthetic-activitynet12", iterations=50)
    return config, load_dataset(config)


@pytest.mark.slow
def test_activitynet_layout_embedding_survives(activitynet):
    """Quick preset (d = 256, lr 1e-3, dropout 0.7), 50 steps: measured 0.69 of the units dead
    without centring (and 0.00% of the probe pre-activations positive), 0.01 with it."""
    config, dataset = activitynet
    centred = train_and_probe(config, 50, dataset)
    assert centred["dead"] < 0.1 and centred["active"] > 0.3
    assert centred["last"] < centred["first"] - 0.5  # and the classification loss goes down


@pytest.mark.slow
def test_activitynet_layout_collapses_without_centring(activitynet):
    """The failure the fix removes, kept as a check that the test above measures something."""
    config, dataset = activitynet
    plain = train_and_probe(config.replace(center_features=False), 50, dataset)
    assert plain["dead"] > 0.5 and plain["active"] < 0.05


@pytest.mark.slow
def test_wide_embedding_at_a_high_learning_rate_survives():
    """THUMOS14 layout, d = 1024, lr 1e-3: the per-step shift lr * |x|_1 grows with d (about 0.36 here),
    so without centring most units die within 20 steps even on the 20-class layout."""
    config = Config.from_preset("quick", feature_dim=1024, iterations=20)
    dataset = load_dataset(config)
    centred = train_and_probe(config, 20, dataset)
    plain = train_and_probe(config.replace(center_features=False), 20, dataset)
    assert centred["dead"] < 0.1
    assert plain["dead"] > 0.4
