"""Tests of wtal_kit.model: shapes, clipping (Eq. 1), dropout, gradients, seeding, and a full-size batch."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import wtal_kit.relu_dropout as relu_dropout_module
from wtal_kit.relu_dropout import relu_dropout, relu_dropout_
from wtal_kit.config import Config
from wtal_kit.losses import balanced_bce, metric_loss, video_probs
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


def test_centring_keeps_the_function_and_centres_the_weight_gradient():
    # center_inputs(mu): h = W_e (x - mu) + b_e with b_e += W_e mu, so the outputs are unchanged; the
    # gradient on W_e becomes sum_i g_i (x_i - mu)^T (docs/method.md, "Why training collapsed ...").
    torch.manual_seed(0)
    x = torch.rand(2, 9, 6, dtype=torch.float64) + 0.5  # non-negative, uncentred
    mu = x.reshape(-1, 6).mean(0)
    plain = WtalModel(feature_dim=6, num_classes=3, generator=torch.Generator().manual_seed(4)).double().eval()
    centred = WtalModel(feature_dim=6, num_classes=3, generator=torch.Generator().manual_seed(4)).double().eval()
    assert centred.center_inputs(mu) is centred
    torch.testing.assert_close(centred.input_mean, mu)
    for a, b in zip(plain(x), centred(x)):
        torch.testing.assert_close(a, b)  # the same initial network
    for model in (plain, centred):
        u, cas, _ = model(x)
        (u.square().sum() + cas.sum()).backward()
    h_grad = plain.embedding[0].bias.grad  # sum_i g_i: the same in both
    torch.testing.assert_close(centred.embedding[0].bias.grad, h_grad)
    expected = plain.embedding[0].weight.grad - torch.outer(h_grad, mu)  # sum_i g_i x_i^T - (sum_i g_i) mu^T
    torch.testing.assert_close(centred.embedding[0].weight.grad, expected)
    # re-centring on another mean, or back to 0, still keeps the function
    for again in (mu / 2, torch.zeros(6, dtype=torch.float64)):
        centred.center_inputs(again)
        torch.testing.assert_close(centred(x)[2], plain(x)[2])
    assert not centred.centered  # mu = 0: the plain W_e x + b_e path


def test_centring_travels_in_the_state_dict_and_old_checkpoints_load():
    torch.manual_seed(1)
    x = torch.rand(1, 5, 6)
    model = WtalModel(feature_dim=6, num_classes=3).center_inputs(torch.full((6,), 0.4)).eval()
    copy = WtalModel(feature_dim=6, num_classes=3).eval()
    copy.load_state_dict(model.state_dict())
    assert copy.centered and torch.equal(copy(x)[2], model(x)[2])
    old = {k: v for k, v in WtalModel(feature_dim=6, num_classes=3).state_dict().items() if k != "input_mean"}
    copy.load_state_dict(old)  # a checkpoint from before centring: strict loading still works, mu = 0
    assert not copy.centered and torch.count_nonzero(copy.input_mean) == 0
    with pytest.raises(ValueError, match="shape"):
        model.center_inputs(torch.zeros(5))


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


@pytest.mark.slow
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
    probs = video_probs(cas, lengths)
    loss = balanced_bce(probs, labels) + metric_loss(u, cas, labels, lengths, model.classifier_weight)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# the fused CPU ReLU + dropout of training mode (wtal_kit.relu_dropout)


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_train_mode_dropout_rate_and_scale_on_many_elements(chunk_rows, monkeypatch):
    # 200 000 positive pre-activations: each is dropped with probability 0.7, so the dropped
    # fraction has standard deviation sqrt(0.7 * 0.3 / 200000) = 0.001; 0.7 +- 0.005 is 5 sigma.
    # chunk_rows=7: the mask is drawn 7 rows (of d = 100) at a time, 286 chunks.
    if chunk_rows is not None:
        monkeypatch.setattr(relu_dropout_module, "MASK_CHUNK_BYTES", 4 * 100 * chunk_rows)
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
    monkeypatch.setattr(relu_dropout_module, "MASK_CHUNK_BYTES", 4 * 6 * 7)  # 7 rows of d = 6 per chunk
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


# ---------------------------------------------------------------------------------------------
# an explicit torch.Generator: the same numbers as the global seed, and the global RNG untouched


def global_seed_model(seed, **kwargs):
    torch.manual_seed(seed)
    return WtalModel(**kwargs)


@pytest.mark.parametrize("sizes", [dict(feature_dim=6, num_classes=3), dict(feature_dim=100, num_classes=7)])
def test_generator_initialisation_equals_global_seed(sizes):
    expected = global_seed_model(11, **sizes)
    torch.manual_seed(12345)
    state = torch.get_rng_state()
    model = WtalModel(**sizes, generator=torch.Generator().manual_seed(11))
    assert torch.equal(torch.get_rng_state(), state)  # no draw from the global RNG
    for (name, got), want in zip(model.named_parameters(), expected.parameters()):
        assert torch.equal(got, want), name  # bit-identical


def test_initialisation_replays_linear_default_draws():
    # Earlier versions let nn.Linear draw its default (Kaiming-uniform weight, uniform bias) for both
    # layers before Xavier re-initialised the weights: the generator path must consume the same draws.
    torch.manual_seed(3)
    embedding, classifier = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)
    for layer in (embedding, classifier):
        torch.nn.init.xavier_uniform_(layer.weight)
    model = WtalModel(feature_dim=8, num_classes=4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(model.embedding[0].weight, embedding.weight)
    assert torch.equal(model.classifier.weight, classifier.weight)
    assert torch.count_nonzero(model.embedding[0].bias) == 0 and torch.count_nonzero(model.classifier.bias) == 0


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_generator_dropout_equals_global_seed(chunk_rows, monkeypatch):
    if chunk_rows is not None:
        monkeypatch.setattr(relu_dropout_module, "MASK_CHUNK_BYTES", 4 * 16 * chunk_rows)
    model = WtalModel(feature_dim=16, num_classes=3, generator=torch.Generator().manual_seed(0)).train()
    x = torch.randn(2, 30, 16, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    expected = model(x)
    torch.manual_seed(777)
    state = torch.get_rng_state()
    generator = torch.Generator().manual_seed(5)
    got = model(x, generator=generator)
    assert torch.equal(torch.get_rng_state(), state)  # the mask came from the generator only
    for a, b in zip(got, expected):
        assert torch.equal(a, b)  # bit-identical to the global seed
    again = model(x, generator=generator)
    assert not torch.equal(again[0], got[0])  # the generator advances: a fresh mask every call
    # eval mode draws nothing, whatever is passed
    model.eval()
    state = generator.get_state()
    assert torch.equal(model(x, generator=generator)[0], model(x)[0])
    assert torch.equal(generator.get_state(), state)


def test_generator_training_step_leaves_global_rng_untouched():
    # a whole training step (construction, forward, losses, backward) with explicit generators
    torch.manual_seed(42)
    state = torch.get_rng_state()
    model = WtalModel(feature_dim=12, num_classes=3, generator=torch.Generator().manual_seed(0)).train()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 20, 12, generator=generator)
    labels = torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0]])
    lengths = torch.tensor([20, 15, 9, 20])
    u, cas, _ = model(x, generator=generator)
    loss = balanced_bce(video_probs(cas, lengths), labels) + metric_loss(u, cas, labels, lengths, model.classifier_weight)
    loss.backward()
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generator_on_cuda():
    # CUDA: the mask comes from a CUDA generator (out-of-place relu_dropout); a CPU generator is refused
    model = WtalModel(feature_dim=64, num_classes=3, generator=torch.Generator().manual_seed(0)).cuda().train()
    x = torch.rand(2, 50, 64, device="cuda") + 1
    state = torch.cuda.get_rng_state()
    u1, _, _ = model(x, generator=torch.Generator(device="cuda").manual_seed(4))
    u2, _, _ = model(x, generator=torch.Generator(device="cuda").manual_seed(4))
    assert torch.equal(torch.cuda.get_rng_state(), state)
    assert torch.equal(u1, u2)
    assert 0.6 < (u1 == 0).double().mean().item() < 0.8
    with pytest.raises(ValueError, match="generator"):
        model(x, generator=torch.Generator().manual_seed(4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_refused_for_cpu_features():
    model = WtalModel(feature_dim=6, num_classes=2).train()
    with pytest.raises(ValueError, match="generator"):
        model(torch.randn(1, 3, 6), generator=torch.Generator(device="cuda"))


@pytest.mark.parametrize("p", [0.7, 0.5, 0.1])
def test_out_of_place_relu_dropout_equals_fused(p, monkeypatch):
    # relu_dropout (the path for CUDA with a generator) and the fused CPU relu_dropout_ draw the same
    # bits from the same generator, so they agree exactly, whatever the chunking; gradients too.
    monkeypatch.setattr(relu_dropout_module, "MASK_CHUNK_BYTES", 4 * 10 * 3)  # 3 rows of d = 10 per chunk
    h = torch.randn(25, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h_fused = h.clone().requires_grad_(True)
    h_plain = h.clone().requires_grad_(True)
    u_fused = relu_dropout_(h_fused * 1.0, p, torch.Generator().manual_seed(9))  # * 1.0: a fresh non-leaf tensor
    u_plain = relu_dropout(h_plain, p, torch.Generator().manual_seed(9))
    assert torch.equal(u_fused, u_plain)
    weight = torch.randn(25, 10, dtype=torch.float64)
    (u_fused * weight).sum().backward()
    (u_plain * weight).sum().backward()
    assert torch.equal(h_fused.grad, h_plain.grad)
    assert torch.count_nonzero(u_plain[h <= 0]) == 0  # ReLU first
    kept = u_plain != 0
    torch.testing.assert_close(u_plain[kept], h[kept] / (1 - p))


def test_out_of_place_relu_dropout_rate():
    # 200 000 positive elements, p = 0.7: the dropped fraction is 0.7 +- 0.005 (5 sigma)
    generator = torch.Generator().manual_seed(0)
    u = relu_dropout(torch.full((2000, 100), 2.0), 0.7, generator)
    assert abs((u == 0).double().mean().item() - 0.7) < 0.005
    torch.testing.assert_close(u[u != 0], torch.full_like(u[u != 0], 2.0 / 0.3))


def test_model_defaults_are_the_configs():
    model = WtalModel()
    assert model.feature_dim == Config.feature_dim == 2048
    assert model.embedding[2].p == Config.dropout and model.kappa == Config.kappa == 4.0
