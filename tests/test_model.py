"""Tests of wtal_kit.model: shapes, clipping (Eq. 1), dropout, gradients, and a full-size batch."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wtal_kit.losses import balanced_bce, metric_loss, video_scores
from wtal_kit.model import WtalModel, clip_activations


def small_model(**kwargs):
    torch.manual_seed(0)
    return WtalModel(feature_dim=6, num_classes=3, **kwargs)


def test_forward_shapes_and_outputs():
    model = small_model().eval()
    x = torch.randn(2, 5, 6)
    u, cas, logits = model(x)
    assert u.shape == (2, 5, 6) and cas.shape == (2, 5, 3) and logits.shape == (2, 5, 3)
    # u = ReLU(W_e x + b_e) in eval mode (no dropout); logits = W_f u + b_f
    embedding = model.embedding[0]
    torch.testing.assert_close(u, torch.relu(x @ embedding.weight.T + embedding.bias))
    torch.testing.assert_close(logits, u @ model.classifier_weight.T + model.classifier.bias)
    assert (u >= 0).all()


def test_classifier_weight_is_w_f():
    model = small_model()
    assert model.classifier_weight is model.classifier.weight
    assert model.classifier_weight.shape == (3, 6)  # (C, d)


def test_initialisation_matches_authors_code():
    # Xavier-uniform weights: bound sqrt(6 / (fan_in + fan_out)); zero biases
    model = WtalModel(feature_dim=8, num_classes=4)
    assert model.embedding[0].weight.abs().max() <= (6 / (8 + 8)) ** 0.5
    assert model.classifier.weight.abs().max() <= (6 / (8 + 4)) ** 0.5
    assert torch.count_nonzero(model.embedding[0].bias) == 0 and torch.count_nonzero(model.classifier.bias) == 0


def test_clipping_bounds_activations():
    model = small_model(kappa=4.0).eval()
    x = 100 * torch.randn(3, 7, 6)  # large inputs push many logits beyond +-4
    _, cas, logits = model(x)
    assert logits.abs().max() > 4  # the test input does reach the bound
    assert cas.min() >= -4 and cas.max() <= 4
    torch.testing.assert_close(cas, logits.clamp(-4, 4))
    inside = logits.abs() < 4
    assert torch.equal(cas[inside], logits[inside])


def test_kappa_none_leaves_activations_unclipped():
    model = small_model(kappa=None).eval()
    _, cas, logits = model(100 * torch.randn(3, 7, 6))
    assert logits.abs().max() > 4
    assert torch.equal(cas, logits)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20),
    kappa=st.floats(0.01, 100),
)
def test_clip_activations_property(values, kappa):
    logits = torch.tensor(values, dtype=torch.float64)
    clipped = clip_activations(logits, kappa)
    assert (clipped.abs() <= kappa).all()
    # values inside the band are unchanged, values outside land on the nearer bound
    expected = [min(max(v, -kappa), kappa) for v in values]
    assert clipped.tolist() == pytest.approx(expected)
    assert clip_activations(logits, None) is logits


def test_dropout_default_and_modes():
    model = WtalModel(feature_dim=64, num_classes=2)
    assert model.embedding[2].p == 0.7
    x = torch.rand(1, 50, 64) + 1
    model.eval()
    u1, _, _ = model(x)
    u2, _, _ = model(x)
    assert torch.equal(u1, u2)  # deterministic in eval mode
    model.train()
    torch.manual_seed(1)
    u_train, _, _ = model(x)
    dropped = (u_train == 0) & (u1 > 0)
    # about 70 % of the positive entries are zeroed, the kept ones scaled by 1 / (1 - 0.7)
    assert 0.6 < dropped.sum() / (u1 > 0).sum() < 0.8
    kept = u_train > 0
    torch.testing.assert_close(u_train[kept], u1[kept] / 0.3)


def test_gradient_reaches_classifier_weight_from_metric_loss():
    model = small_model().eval()
    x = torch.randn(3, 5, 6)
    labels = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 1, 1]])
    lengths = torch.tensor([5, 4, 3])
    u, cas, _ = model(x)
    loss = metric_loss(u, cas, labels, lengths, model.classifier_weight, margin=3.0, distance="class")
    assert loss.item() > 0
    loss.backward()
    grad = model.classifier_weight.grad
    assert grad is not None and torch.count_nonzero(grad) > 0
    # the distance path alone (activations detached) also reaches W_f (Eq. 10-11)
    model.zero_grad()
    loss = metric_loss(u.detach(), cas.detach(), labels, lengths, model.classifier_weight, distance="class")
    loss.backward()
    assert torch.count_nonzero(model.classifier_weight.grad) > 0
    assert model.classifier.bias.grad is None or torch.count_nonzero(model.classifier.bias.grad) == 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="kappa"):
        WtalModel(kappa=0.0)
    with pytest.raises(ValueError, match="dropout"):
        WtalModel(dropout=1.0)
    with pytest.raises(ValueError, match="feature_dim"):
        WtalModel(feature_dim=0)
    with pytest.raises(ValueError, match="num_classes"):
        WtalModel(num_classes=0)
    model = small_model()
    with pytest.raises(ValueError, match="dimension"):
        model(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="batch, time"):
        model(torch.randn(5, 6))


def test_full_size_batch_runs():
    # Vectorization sanity at the paper's training size: B=20, T=300, d=2048, C=20 (no timing assert).
    torch.manual_seed(0)
    model = WtalModel()
    x = torch.randn(20, 300, 2048)
    lengths = torch.randint(30, 301, (20,))
    lengths[0] = 300
    labels = torch.zeros(20, 20)
    labels[torch.arange(20), torch.arange(20).repeat_interleave(4)[:20] % 20] = 1  # 5 classes x 4 videos
    labels[torch.arange(0, 20, 3), 7] = 1  # some videos carry two labels
    u, cas, _ = model(x)
    probs = video_scores(cas, lengths)
    loss = balanced_bce(probs, labels) + metric_loss(u, cas, labels, lengths, model.classifier_weight)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# the fused CPU ReLU + dropout of training mode (wtal_kit.model._ReluDropout)


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_train_mode_dropout_rate_and_scale_on_many_elements(chunk_rows, monkeypatch):
    # 200 000 positive pre-activations: each is dropped with probability 0.7, so the dropped
    # fraction has standard deviation sqrt(0.7 * 0.3 / 200000) = 0.001; 0.7 +- 0.005 is 5 sigma.
    # chunk_rows=7: the mask is drawn 7 rows (of d = 100) at a time, 286 chunks.
    import wtal_kit.model as model_module

    if chunk_rows is not None:
        monkeypatch.setattr(model_module, "MASK_CHUNK_BYTES", 4 * 100 * chunk_rows)
    torch.manual_seed(0)
    model = WtalModel(feature_dim=100, num_classes=2)
    with torch.no_grad():
        model.embedding[0].weight.copy_(torch.eye(100))  # h = x
    x = torch.full((4, 500, 100), 2.0)  # all > 0 and all equal: only the mask varies
    u, _, _ = model.train()(x)
    dropped = (u == 0).double().mean().item()
    assert abs(dropped - 0.7) < 0.005
    kept = u != 0
    torch.testing.assert_close(u[kept], torch.full_like(u[kept], 2.0 / 0.3))  # scaled by 1 / (1 - 0.7)
    assert u.shape == (4, 500, 100) and u.is_contiguous()
    rows = kept.reshape(2000, 100)
    assert not torch.equal(rows[:7], rows[7:14])  # each chunk draws fresh bits


def test_train_mode_relu_still_applies():
    # h = x with negative entries: ReLU zeroes them whatever the mask; positives are 0 or x / (1 - p)
    torch.manual_seed(3)
    model = WtalModel(feature_dim=8, num_classes=2, dropout=0.5)
    with torch.no_grad():
        model.embedding[0].weight.copy_(torch.eye(8))
    x = torch.randn(3, 40, 8)
    u, _, _ = model.train()(x)
    assert torch.count_nonzero(u[x <= 0]) == 0
    positive = x > 0
    assert torch.all((u[positive] == 0) | torch.isclose(u[positive], 2 * x[positive]))  # 1 / (1 - 0.5) = 2


def test_train_mode_same_seed_same_mask_and_mask_varies():
    model = WtalModel(feature_dim=16, num_classes=3)
    x = torch.rand(2, 30, 16)
    torch.manual_seed(5)
    u1, _, _ = model.train()(x)
    torch.manual_seed(5)
    u2, _, _ = model(x)
    u3, _, _ = model(x)
    assert torch.equal(u1, u2)  # reproducible from the torch seed (train.py's determinism)
    assert not torch.equal(u2, u3)  # a fresh mask every call


def test_train_mode_gradient_matches_explicit_mask(monkeypatch):
    # The fused op's gradient must equal that of ReLU(h) * m / (1 - p) with the mask m it drew
    # (read back from the output: m = 1 where u > 0). Tiny chunks force several mask chunks.
    import wtal_kit.model as model_module

    monkeypatch.setattr(model_module, "MASK_CHUNK_BYTES", 4 * 6 * 7)  # 7 rows of d = 6 per chunk
    torch.manual_seed(1)
    model = WtalModel(feature_dim=6, num_classes=3, dropout=0.6).train()
    x = torch.randn(3, 10, 6)  # 30 rows: chunks of 7, 7, 7, 7, 2
    u, cas, _ = model(x)
    (u.square().sum() + cas.sum()).backward()
    fused_grads = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    embedding, classifier = model.embedding[0], model.classifier
    h = embedding(x)  # (B, T, d)
    mask = (u > 0).detach().to(h.dtype)
    u_ref = torch.relu(h) * mask / 0.4  # 1 / (1 - 0.6)
    torch.testing.assert_close(u_ref, u)  # the same forward values
    cas_ref = classifier(u_ref).clamp(-4, 4)
    (u_ref.square().sum() + cas_ref.sum()).backward()
    for fused, parameter in zip(fused_grads, model.parameters()):
        torch.testing.assert_close(fused, parameter.grad)
