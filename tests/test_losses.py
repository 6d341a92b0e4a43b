"""Tests of wtal_kit.losses: hand-computed values, loop references, gradients, padding, invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wtal_kit.config import CLASSIFICATION_LOSSES, DISTANCES, METRIC_LOSSES
from wtal_kit.losses import balanced_bce, bce, metric_loss, softmax_mil, video_probs

LN3 = math.log(3.0)


# ---------------------------------------------------------------------------------------------
# reference implementations: plain loops over videos / blocks / classes / pairs, written from
# docs/method.md independently of the vectorized code


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def reference_video_probs(cas, lengths, block_size, k):
    cas = np.asarray(cas, dtype=np.float64)
    out = np.zeros((cas.shape[0], cas.shape[2]))
    for b, n in enumerate(lengths):
        if block_size is None:
            bounds = [(0, n)]
        else:
            num_blocks = max(1, n // block_size)
            bounds = [(i * block_size, (i + 1) * block_size) for i in range(num_blocks - 1)]
            bounds.append(((num_blocks - 1) * block_size, n))
        for c in range(cas.shape[2]):
            not_any = 1.0
            for start, end in bounds:
                values = sorted(cas[b, start:end, c], reverse=True)[: min(k, end - start)]
                not_any *= 1.0 - sigmoid(sum(values) / len(values))
            out[b, c] = 1.0 - not_any
    return out


def reference_metric_loss(features, cas, labels, lengths, weight, margin, kind, distance, factors=None):
    features, cas, labels = (np.asarray(a, dtype=np.float64) for a in (features, cas, labels))
    per_class = []
    for c in range(cas.shape[2]):
        videos = [b for b in range(cas.shape[0]) if labels[b, c] == 1]
        if len(videos) < 2:
            continue
        z_class, z_not = {}, {}
        for b in videos:
            n = lengths[b]
            scores = cas[b, :n, c]
            pi = np.exp(scores - scores.max())
            pi /= pi.sum()
            a = (pi[:, None] * features[b, :n]).sum(0)
            o = ((1 - pi)[:, None] * features[b, :n]).sum(0) / max(n - 1, 1)
            z_class[b] = a / np.linalg.norm(a) if np.linalg.norm(a) > 0 else a
            z_not[b] = o / np.linalg.norm(o) if np.linalg.norm(o) > 0 else o

        def squared(x, y):
            if distance == "class":
                return float(np.dot(weight[c], x - y)) ** 2
            if distance == "cosine":
                nx, ny = np.linalg.norm(x), np.linalg.norm(y)
                return 1.0 - (float(np.dot(x, y)) / (nx * ny) if nx > 0 and ny > 0 else 0.0)
            if distance == "euclidean":
                return float(np.sum((x - y) ** 2))
            return float(np.sum((np.asarray(factors)[c] @ (x - y)) ** 2))

        pairs = [(j, k) for j in videos for k in videos if j != k]
        d_pos = np.mean([squared(z_class[j], z_class[k]) for j, k in pairs])
        d_neg = np.mean([squared(z_class[j], z_not[k]) for j, k in pairs])
        if kind == "triplet":
            per_class.append(max(d_pos - d_neg + margin, 0.0))
        else:
            per_class.append(d_pos + max(margin - d_neg, 0.0))
    return float(np.mean(per_class)) if per_class else 0.0


def random_batch(seed, batch=4, max_len=9, dim=3, classes=3, dtype=torch.float64, min_len=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (batch,), generator=g)
    features = torch.randn(batch, max_len, dim, generator=g, dtype=dtype)
    cas = 2 * torch.randn(batch, max_len, classes, generator=g, dtype=dtype)
    labels = (torch.rand(batch, classes, generator=g) < 0.6).to(dtype)
    weight = torch.randn(classes, dim, generator=g, dtype=dtype)
    factors = torch.randn(classes, 2, dim, generator=g, dtype=dtype)
    return features, cas, labels, lengths, weight, factors


# ---------------------------------------------------------------------------------------------
# the blocks of Eq. 2-4, read back from video_probs


def blocks_seen_by_video_probs(lengths, max_len, block_size):
    """Block id of every segment, (B, T) long, -1 on padding, as :func:`video_probs` forms the blocks.

    Read back from P(c|V) alone, with probe classes and k = 1: class i holds a = logit(1/1000)
    on segments [0, i] and -60 elsewhere (sigmoid(-60) ~ 1e-26 is negligible), so
    P(c|V) = 1 - (1 - 1/1000)^m, m = the number of blocks that [0, i] touches; class T + i
    does the same for [i, T). Padding holds 100, which would make P = 1 if it counted.
    Blocks are intervals exactly when prefix + suffix counts = n_B + 1 at every segment
    (only the segment's own block lies on both sides of it); then the prefix count minus 1
    is the block id, numbered in time order.
    """
    lengths = torch.as_tensor(lengths)
    t = torch.arange(max_len)
    members = torch.cat([t[:, None] <= t[None, :], t[:, None] >= t[None, :]], dim=1)  # (T, 2T): prefixes, suffixes
    a = math.log(1 / 999)  # sigmoid(a) = 1 / 1000
    cas = torch.full(members.shape, -60.0, dtype=torch.float64).masked_fill(members, a)  # (T, 2T)
    cas = cas.expand(len(lengths), -1, -1).clone()  # (B, T, 2T)
    padding = t[None, :] >= lengths[:, None]  # (B, T)
    cas[padding] = 100.0
    probs = video_probs(cas, lengths, block_size=block_size, k=1)  # (B, 2T)
    counts = torch.log1p(-probs) / math.log1p(-1 / 1000)  # m of every probe
    assert torch.allclose(counts, counts.round(), rtol=0, atol=1e-6)
    prefix, suffix = counts.round().long().split(max_len, dim=1)  # (B, T) each
    ids = torch.full((len(lengths), max_len), -1, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        num_blocks = prefix[b, n - 1]
        assert (prefix[b, :n] + suffix[b, :n] == num_blocks + 1).all()  # every block is an interval
        assert (prefix[b, n:] == num_blocks).all() and (suffix[b, n:] == 0).all()  # padding is in no block
        ids[b, :n] = prefix[b, :n] - 1
    return ids


def test_blocks_remainder_and_short_rules():
    ids = blocks_seen_by_video_probs(torch.tensor([150, 119, 180, 179, 4]), max_len=180, block_size=60)
    # n=150: n_B = 150 // 60 = 2 -> [0, 60) is block 0, the rest [60, 150) (90 segments) is block 1
    expected_150 = [0] * 60 + [1] * 90 + [-1] * 30
    # n=119 < 2*60: n_B = max(1, 1) = 1 -> one block of 119
    expected_119 = [0] * 119 + [-1] * 61
    # n=180: n_B = 3 blocks of 60
    expected_180 = [0] * 60 + [1] * 60 + [2] * 60
    # n=179: n_B = 2 -> [0, 60) and [60, 179): the last block has 2*60 - 1 = 119 segments
    expected_179 = [0] * 60 + [1] * 119 + [-1]
    # n=4 < 60: one block
    expected_4 = [0] * 4 + [-1] * 176
    assert ids.dtype == torch.long
    assert ids.tolist() == [expected_150, expected_119, expected_180, expected_179, expected_4]


def test_blocks_without_block_processing():
    ids = blocks_seen_by_video_probs(torch.tensor([3, 5]), max_len=5, block_size=None)
    assert ids.tolist() == [[0, 0, 0, -1, -1], [0, 0, 0, 0, 0]]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 200), min_size=1, max_size=5),
    block_size=st.integers(1, 70),
    extra=st.integers(0, 10),
)
def test_blocks_properties(lengths, block_size, extra):
    max_len = max(lengths) + extra
    ids = blocks_seen_by_video_probs(torch.tensor(lengths), max_len=max_len, block_size=block_size).numpy()
    for row, n in zip(ids, lengths):
        assert (row[n:] == -1).all()
        valid = row[:n]
        num_blocks = max(1, n // block_size)
        sizes = np.bincount(valid, minlength=num_blocks)
        assert len(sizes) == num_blocks and (np.diff(valid) >= 0).all() and valid[0] == 0
        assert (sizes[:-1] == block_size).all()  # full blocks
        if n < 2 * block_size:
            assert sizes[-1] == n
        else:
            assert block_size <= sizes[-1] <= 2 * block_size - 1


# ---------------------------------------------------------------------------------------------
# video_probs (Eq. 2-4)


def test_video_probs_remainder_block():
    # n = 150, l_w = 60, k = 10: blocks [0, 60) and [60, 150). cas = 0 except segments 140..149 = ln 3.
    # block 0: top-10 mean 0 -> P = 1/2; block 1: top-10 are the ten ln 3 -> P = sigmoid(ln 3) = 3/4.
    # P(V) = 1 - (1 - 1/2)(1 - 3/4) = 1 - 1/8 = 0.875
    # (three blocks of 60/60/30 would give 1 - 1/2*1/2*1/4 = 0.9375; dropping the rest 1 - 1/4 = 0.75)
    cas = torch.zeros(1, 150, 1)
    cas[0, 140:150, 0] = LN3
    probs = video_probs(cas, torch.tensor([150]), block_size=60, k=10)
    torch.testing.assert_close(probs, torch.tensor([[0.875]]))


def test_video_probs_short_video_is_one_block():
    # n = 119 < 2 l_w: one block; ten segments at ln 3 are its top 10 -> P = 3/4
    # (two blocks [0, 60) and [60, 119) would give 1 - (1/4)(1/2) = 0.875)
    cas = torch.zeros(1, 119, 1)
    cas[0, :10, 0] = LN3
    torch.testing.assert_close(video_probs(cas, torch.tensor([119])), torch.tensor([[0.75]]))


def test_video_probs_k_larger_than_block():
    # n = 4 < k = 10: mean of all 4 values = ((ln3 + 1) + (ln3 - 1) + ln3 + ln3) / 4 = ln 3 -> P = 3/4
    # (dividing by k = 10 would give sigmoid(0.4 ln 3) = 0.6097)
    cas = torch.tensor([[[LN3 + 1], [LN3 - 1], [LN3], [LN3]]])
    torch.testing.assert_close(video_probs(cas, torch.tensor([4]), block_size=60, k=10), torch.tensor([[0.75]]))


def test_video_probs_without_blocks():
    # same input as the remainder test, one block over all 150: top-10 mean = ln 3 -> 3/4
    cas = torch.zeros(1, 150, 1)
    cas[0, 140:150, 0] = LN3
    torch.testing.assert_close(video_probs(cas, torch.tensor([150]), block_size=None), torch.tensor([[0.75]]))
    # block_size=None still takes the top k: with k = 20 the mean is (10 ln 3 + 10 * 0) / 20 -> sigmoid(ln(3)/2)
    # = sqrt(3) / (sqrt(3) + 1) = 0.63397...
    expected = math.sqrt(3) / (math.sqrt(3) + 1)
    torch.testing.assert_close(
        video_probs(cas, torch.tensor([150]), block_size=None, k=20), torch.tensor([[expected]])
    )


def test_video_probs_padded_batch_and_classes():
    # Two videos in one padded batch (T = 150), two classes.
    # video 0 (n = 150): class 0 as in the remainder test -> 0.875; class 1 = ln 3 everywhere: two blocks
    #   at 3/4 each -> 1 - (1/4)^2 = 0.9375.
    # video 1 (n = 3, padded with 100): class 0 = [0, 0, 0] -> 1/2; class 1 = [ln 3, ln 3, ln 3] -> 3/4.
    cas = torch.zeros(2, 150, 2)
    cas[0, 140:150, 0] = LN3
    cas[0, :, 1] = LN3
    cas[1, :3, 1] = LN3
    cas[1, 3:, :] = 100.0
    probs = video_probs(cas, torch.tensor([150, 3]))
    torch.testing.assert_close(probs, torch.tensor([[0.875, 0.9375], [0.5, 0.75]]))


def test_video_probs_saturates_without_nan():
    cas = torch.full((1, 200, 1), 50.0)
    cas[0, :, 0] = -50.0
    low = video_probs(cas, None, block_size=60, k=10)
    high = video_probs(-cas, None, block_size=60, k=10)
    assert torch.isfinite(low).all() and torch.isfinite(high).all()
    assert 0 <= low.item() < 1e-20 and high.item() == 1.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    block_size=st.one_of(st.none(), st.integers(1, 8)),
    k=st.integers(1, 6),
)
def test_video_probs_matches_loop_reference(seed, block_size, k):
    _, cas, _, lengths, _, _ = random_batch(seed, batch=3, max_len=25, classes=2)
    got = video_probs(cas, lengths, block_size=block_size, k=k).numpy()
    want = reference_video_probs(cas.numpy(), lengths.tolist(), block_size, k)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# classification losses


def test_balanced_bce_by_hand():
    probs = torch.tensor([[0.5, 0.25], [0.5, 0.5], [0.5, 0.75]], dtype=torch.float64)
    labels = torch.tensor([[1, 0], [1, 1], [0, 0]])
    # video 0: -(log 0.5 / 1 + log(1 - 0.25) / 1) = ln 2 + ln(4/3)
    # video 1 (all positive, negative term 0): -(2 log 0.5) / 2 = ln 2
    # video 2 (all negative, positive term 0): -(log 0.5 + log 0.25) / 2 = (ln 2 + ln 4) / 2 = 1.5 ln 2
    per_video = [math.log(2) + math.log(4 / 3), math.log(2), 1.5 * math.log(2)]
    assert balanced_bce(probs, labels).item() == pytest.approx(sum(per_video) / 3, rel=1e-12)


def test_balanced_bce_weights_classes_equally():
    # one positive, three negatives: the single positive term has the same weight as the mean of the negatives
    probs = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    labels = torch.tensor([[1, 0, 0, 0]])
    # -(ln 0.5 / 1 + 3 ln 0.5 / 3) = 2 ln 2, whereas plain BCE is -(4 ln 0.5) / 4 = ln 2
    assert balanced_bce(probs, labels).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert bce(probs, labels).item() == pytest.approx(math.log(2), rel=1e-6)


def test_bce_by_hand():
    probs = torch.tensor([[0.5, 0.25], [0.75, 0.5]], dtype=torch.float64)
    labels = torch.tensor([[1, 0], [1, 1]])
    # -(ln 0.5 + ln 0.75 + ln 0.75 + ln 0.5) / 4 = (2 ln 2 + 2 ln(4/3)) / 4
    expected = (2 * math.log(2) + 2 * math.log(4 / 3)) / 4
    assert bce(probs, labels).item() == pytest.approx(expected, rel=1e-12)


def test_classification_losses_clamp_zero_and_one():
    probs = torch.tensor([[0.0, 1.0]], requires_grad=True)
    for loss_fn in (balanced_bce, bce):
        # a confident correct answer costs ~0, a confident wrong answer is finite (about -ln 1e-6 = 13.8)
        assert loss_fn(probs, torch.tensor([[0, 1]])).item() == pytest.approx(0.0, abs=1e-5)
        wrong = loss_fn(probs, torch.tensor([[1, 0]]))
        assert torch.isfinite(wrong) and wrong.item() > 10
        wrong.backward()
        assert torch.isfinite(probs.grad).all()


def test_softmax_mil_by_hand():
    cas = torch.zeros(3, 9, 2, dtype=torch.float64)
    # video 0: n = 8 -> k = ceil(8/8) = 1: logits [max = ln 3, 0] -> softmax [3/4, 1/4]; y = [1, 0]
    #   loss = -ln(3/4) = ln(4/3). Its padded position holds 100 (would dominate if it counted).
    cas[0, 2, 0] = LN3
    cas[0, 8, :] = 100.0
    # video 1: n = 9 -> k = ceil(9/8) = 2: class 0 top-2 = {ln 8, ln 2} -> mean ln 4; class 1 -> 0
    #   softmax [4/5, 1/5]; y = [1, 1] -> target [1/2, 1/2]; loss = -(ln 0.8 + ln 0.2) / 2 = ln 2.5
    cas[1, 0, 0] = math.log(8)
    cas[1, 5, 0] = math.log(2)
    # video 2: no label -> contributes 0, still counted in the mean over the batch of 3
    cas[2] = torch.randn(9, 2, dtype=torch.float64)
    labels = torch.tensor([[1, 0], [1, 1], [0, 0]])
    loss = softmax_mil(cas, torch.tensor([8, 9, 9]), labels)
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(2.5)) / 3, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# metric loss (section 3.4)


def hand_batch(dtype=torch.float64):
    """Three videos of two segments in R^2; class 0 labels videos 0 and 1, class 1 only video 2.

    video 0: u = [[1, 0], [0, 1]], s^0 = [ln 3, ln 4] -> pi = [3/7, 4/7]
        z^0 = [3/7, 4/7] -> z~ = [0.6, 0.8];  z^not0 = [4/7, 3/7] / 1 -> z~ = [0.8, 0.6]
    video 1: u = [[0, 1], [0, 1]] (both segments equal) -> z~0 = z~not0 = [0, 1] for any attention
    video 2: arbitrary, labelled only with class 1 (a class with one video is ignored)
    """
    features = torch.tensor(
        [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]], [[5.0, -3.0], [2.0, 7.0]]], dtype=dtype
    )
    cas = torch.tensor(
        [[[LN3, 0.3], [math.log(4), -1.0]], [[0.7, 2.0], [-0.2, 0.1]], [[1.5, 0.4], [-2.0, 3.0]]], dtype=dtype
    )
    labels = torch.tensor([[1, 0], [1, 0], [0, 1]])
    lengths = torch.tensor([2, 2, 2])
    weight = torch.tensor([[1.0, 2.0], [-4.0, 0.5]], dtype=dtype)  # w_0 = [1, 2]
    return features, cas, labels, lengths, weight


@pytest.mark.parametrize(
    "distance, margin, kind, expected",
    [
        # Euclidean: d+ = ||[0.6, 0.8] - [0, 1]||^2 = 0.36 + 0.04 = 0.4 (both ordered pairs)
        #   d- = mean(||z~0_0 - z~not0_1||^2, ||z~0_1 - z~not0_0||^2)
        #      = mean(||[0.6, 0.8] - [0, 1]||^2, ||[0, 1] - [0.8, 0.6]||^2) = mean(0.4, 0.64 + 0.16) = 0.6
        ("euclidean", 3.0, "triplet", 0.4 - 0.6 + 3.0),  # 2.8
        ("euclidean", 0.5, "triplet", 0.4 - 0.6 + 0.5),  # 0.3
        ("euclidean", 0.1, "triplet", 0.0),  # [0.4 - 0.6 + 0.1]_+ = 0
        ("euclidean", 0.5, "contrastive", 0.4 + 0.0),  # 0.4 + [0.5 - 0.6]_+
        ("euclidean", 3.0, "contrastive", 0.4 + 3.0 - 0.6),  # 2.8
        # cosine: d+ = 1 - (0.6*0 + 0.8*1) = 0.2; d- = mean(1 - 0.8, 1 - (0*0.8 + 1*0.6)) = mean(0.2, 0.4) = 0.3
        ("cosine", 0.5, "triplet", 0.2 - 0.3 + 0.5),  # 0.4
        ("cosine", 0.5, "contrastive", 0.2 + 0.5 - 0.3),  # 0.4
        ("cosine", 0.25, "contrastive", 0.2 + 0.0),  # 0.2 + [0.25 - 0.3]_+
        # class distance with w_0 = [1, 2]: w.z~0_0 = 0.6 + 1.6 = 2.2, w.z~not0_0 = 0.8 + 1.2 = 2.0,
        #   w.z~0_1 = w.z~not0_1 = 2.0. d+ = (2.2 - 2.0)^2 = 0.04; d- = mean((2.2 - 2.0)^2, (2.0 - 2.0)^2) = 0.02
        ("class", 3.0, "triplet", 0.04 - 0.02 + 3.0),  # 3.02
        ("class", 0.01, "triplet", 0.04 - 0.02 + 0.01),  # 0.03
        ("class", 0.01, "contrastive", 0.04 + 0.0),  # 0.04 + [0.01 - 0.02]_+
        ("class", 0.5, "contrastive", 0.04 + 0.5 - 0.02),  # 0.52
    ],
)
def test_metric_loss_by_hand(distance, margin, kind, expected):
    features, cas, labels, lengths, weight = hand_batch()
    loss = metric_loss(features, cas, labels, lengths, weight, margin=margin, kind=kind, distance=distance)
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_metric_loss_custom_factors_reproduce_other_distances():
    features, cas, labels, lengths, weight = hand_batch()
    # A_c = I (r = d = 2): ||A(u - v)||^2 = Euclidean -> 0.4 - 0.6 + 0.5 = 0.3 (see the hand test)
    identity = torch.eye(2, dtype=torch.float64).expand(2, 2, 2).clone()
    loss = metric_loss(features, cas, labels, lengths, None, margin=0.5, distance="custom", custom_factors=identity)
    assert loss.item() == pytest.approx(0.3, abs=1e-12)
    # A_c = w_c (r = 1): the class distance -> 0.04 - 0.02 + 0.01 = 0.03
    loss = metric_loss(
        features, cas, labels, lengths, None, margin=0.01, distance="custom", custom_factors=weight[:, None, :]
    )
    assert loss.item() == pytest.approx(0.03, abs=1e-12)


def test_metric_loss_three_videos_by_hand():
    # Videos whose two segments are equal: z~0 = z~not0 = v / |v| whatever the attention.
    # v0 = [1, 0], v1 = [0, 1], v2 = [3, 4] -> z~ = [0.6, 0.8]; class distance w_0 = [1, 1]:
    # p = w.z~ = [1, 1, 1.4] (and the same for not-c). Ordered pairs (6): squared differences
    # (0,1): 0, (0,2): 0.16, (1,2): 0.16, each twice -> d+ = 2 * 0.32 / 6 = 0.10667; d- = d+ (same p)
    # triplet with margin 3: 3 + d+ - d- = 3; contrastive with margin 0.05: d+ + [0.05 - d+]_+ = 0.10667
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=torch.float64)
    features = vectors[:, None, :].expand(3, 2, 2).clone()
    cas = torch.tensor([[[0.1], [2.0]], [[-1.0], [0.5]], [[3.0], [-3.0]]], dtype=torch.float64)
    labels = torch.ones(3, 1)
    weight = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    lengths = torch.tensor([2, 2, 2])
    triplet = metric_loss(features, cas, labels, lengths, weight, margin=3.0, kind="triplet")
    contrastive = metric_loss(features, cas, labels, lengths, weight, margin=0.05, kind="contrastive")
    assert triplet.item() == pytest.approx(3.0, abs=1e-12)
    assert contrastive.item() == pytest.approx(0.64 / 6, abs=1e-12)


def test_metric_loss_ignores_classes_with_one_video_and_unlabelled_videos():
    features, cas, labels, lengths, weight = hand_batch()
    base = metric_loss(features, cas, labels, lengths, weight, margin=0.5, distance="euclidean")
    # change everything about video 2 (labelled only with class 1, which has a single video)
    features2, cas2 = features.clone(), cas.clone()
    features2[2] = torch.tensor([[-9.0, 1.0], [4.0, 4.0]])
    cas2[2] = torch.tensor([[7.0, -7.0], [0.0, 1.0]])
    changed = metric_loss(features2, cas2, labels, lengths, weight, margin=0.5, distance="euclidean")
    assert base.item() == changed.item() == pytest.approx(0.3, abs=1e-12)


def test_metric_loss_no_class_applies_is_zero_with_graph():
    features, cas, _, lengths, weight = hand_batch()
    features.requires_grad_(True)
    cas.requires_grad_(True)
    labels = torch.tensor([[1, 0], [0, 1], [0, 0]])  # every class has at most one video
    for kind in ("triplet", "contrastive", "none"):
        loss = metric_loss(features, cas, labels, lengths, weight, kind=kind)
        assert loss.item() == 0.0 and loss.requires_grad and loss.grad_fn is not None
        loss.backward()
        assert torch.count_nonzero(features.grad) == 0 and torch.count_nonzero(cas.grad) == 0
    # kind="none" is 0 even where classes apply
    _, _, labels, _, _ = hand_batch()
    assert metric_loss(features, cas, labels, lengths, weight, kind="none").item() == 0.0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    distance=st.sampled_from(DISTANCES),
    kind=st.sampled_from(("triplet", "contrastive")),
    margin=st.sampled_from((0.0, 0.5, 3.0)),
)
def test_metric_loss_matches_loop_reference(seed, distance, kind, margin):
    features, cas, labels, lengths, weight, factors = random_batch(seed, batch=4, max_len=6, dim=3, classes=3)
    got = metric_loss(
        features, cas, labels, lengths, weight, margin=margin, kind=kind, distance=distance,
        custom_factors=factors if distance == "custom" else None,
    )
    want = reference_metric_loss(
        features.numpy(), cas.numpy(), labels.numpy(), lengths.tolist(), weight.numpy(), margin, kind, distance,
        factors.numpy(),
    )
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    distance=st.sampled_from(DISTANCES),
    kind=st.sampled_from(("triplet", "contrastive")),
)
def test_metric_loss_invariant_to_video_order(seed, distance, kind):
    features, cas, labels, lengths, weight, factors = random_batch(seed, batch=5, max_len=7, dim=4, classes=3)
    factors = factors if distance == "custom" else None
    order = torch.randperm(5, generator=torch.Generator().manual_seed(seed))
    loss = metric_loss(features, cas, labels, lengths, weight, distance=distance, kind=kind, custom_factors=factors)
    permuted = metric_loss(
        features[order], cas[order], labels[order], lengths[order], weight, distance=distance, kind=kind,
        custom_factors=factors,
    )
    torch.testing.assert_close(loss, permuted, rtol=1e-12, atol=1e-12)


def test_metric_loss_one_segment_video_is_finite():
    # A video with n_k = 1: pi = 1, so z^notc = 0 (documented choice); the loss and its gradients stay finite.
    features, cas, labels, _, weight = hand_batch()
    lengths = torch.tensor([1, 2, 2])
    features.requires_grad_(True)
    for distance in DISTANCES:
        factors = torch.eye(2, dtype=torch.float64).expand(2, 2, 2).clone() if distance == "custom" else None
        loss = metric_loss(features, cas, labels, lengths, weight, distance=distance, custom_factors=factors)
        features.grad = None
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(features.grad).all()
    # by hand, Euclidean: z~0_0 = [1, 0] (its one segment), z~not0_0 = 0; video 1: [0, 1] for both.
    # d+ = ||[1, 0] - [0, 1]||^2 = 2; d- = mean(||[1, 0] - [0, 1]||^2, ||[0, 1] - 0||^2) = mean(2, 1) = 1.5
    # triplet, margin 3: 2 - 1.5 + 3 = 3.5
    loss = metric_loss(features, cas, labels, lengths, weight, margin=3.0, distance="euclidean")
    assert loss.item() == pytest.approx(3.5, abs=1e-12)


def test_metric_loss_class_distance_trains_classifier_weight():
    features, cas, labels, lengths, weight = hand_batch()
    weight.requires_grad_(True)
    # cas is a constant here: the gradient reaches W_f through D_c alone (Eq. 10)
    metric_loss(features, cas, labels, lengths, weight, margin=3.0, distance="class").backward()
    # only w_0 matters (class 1 has one video). With a = z~0_0 - z~0_1 = [0.6, -0.2] (w.a = 0.2) and
    # b = z~0_1 - z~not0_0 = [-0.8, 0.4] (w.b = 0): d+ = (w.a)^2, d- = ((w.a)^2 + (w.b)^2) / 2, so
    # d(d+ - d-)/dw = 2 (w.a) a - (w.a) a - (w.b) b = 0.2 * [0.6, -0.2] = [0.12, -0.04]  (hinge active)
    torch.testing.assert_close(weight.grad[0], torch.tensor([0.12, -0.04], dtype=torch.float64))
    assert torch.count_nonzero(weight.grad[1]) == 0


# ---------------------------------------------------------------------------------------------
# gradients


def test_gradcheck_video_probs():
    _, cas, _, lengths, _, _ = random_batch(1, batch=3, max_len=8, classes=2)
    cas.requires_grad_(True)
    for block_size, k in ((3, 2), (None, 3), (60, 10)):
        assert torch.autograd.gradcheck(lambda x: video_probs(x, lengths, block_size=block_size, k=k), (cas,))


def test_gradcheck_balanced_bce():
    g = torch.Generator().manual_seed(2)
    probs = (0.05 + 0.9 * torch.rand(4, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    labels = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 0], [0, 1, 0]])
    assert torch.autograd.gradcheck(lambda p: balanced_bce(p, labels), (probs,))
    assert torch.autograd.gradcheck(lambda p: bce(p, labels), (probs,))


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("kind", ("triplet", "contrastive"))
def test_gradcheck_metric_loss(distance, kind):
    features, cas, _, _, weight, factors = random_batch(3, batch=3, max_len=4, dim=3, classes=2)
    lengths = torch.tensor([4, 3, 2])  # padded positions must get zero gradient, numerically too
    labels = torch.tensor([[1, 1], [1, 0], [1, 1]])
    weight = (0.3 * weight).requires_grad_(True)
    factors = (0.3 * factors).requires_grad_(True)
    features.requires_grad_(True)
    cas.requires_grad_(True)
    margin = 10.0  # keeps both hinges active (no kink near the test point)
    if distance == "custom":
        fn = lambda f, s, a: metric_loss(f, s, labels, lengths, None, margin, kind, distance, a)  # noqa: E731
        inputs = (features, cas, factors)
    else:
        fn = lambda f, s, w: metric_loss(f, s, labels, lengths, w, margin, kind, distance)  # noqa: E731
        inputs = (features, cas, weight)
    assert torch.autograd.gradcheck(fn, inputs)


# ---------------------------------------------------------------------------------------------
# padding


def all_losses(features, cas, labels, lengths, weight, factors):
    probs = video_probs(cas, lengths)
    out = {
        "video_probs": probs,
        "video_probs_small_blocks": video_probs(cas, lengths, block_size=2, k=3),
        "video_probs_no_blocks": video_probs(cas, lengths, block_size=None),
        "bbce": balanced_bce(probs, labels),
        "bce": bce(probs, labels),
        "softmax_mil": softmax_mil(cas, lengths, labels),
    }
    for distance in DISTANCES:
        for kind in ("triplet", "contrastive"):
            out[f"{distance}-{kind}"] = metric_loss(
                features, cas, labels, lengths, weight, 0.5, kind, distance,
                factors if distance == "custom" else None,
            )
    return out


@pytest.mark.parametrize("garbage", [1e30, -1e30, math.inf, math.nan])
def test_padding_never_matters(garbage):
    features, cas, labels, lengths, weight, factors = random_batch(7, batch=4, max_len=9, dim=3, classes=3)
    labels = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=torch.float64)
    lengths = torch.tensor([9, 5, 1, 7])
    tight = all_losses(features, cas, labels, lengths, weight, factors)

    # append 6 padded steps and overwrite every padded position with garbage
    pad = 6
    features_p = torch.cat([features, torch.zeros(4, pad, 3, dtype=torch.float64)], dim=1)
    cas_p = torch.cat([cas, torch.zeros(4, pad, 3, dtype=torch.float64)], dim=1)
    padding = torch.arange(9 + pad)[None, :] >= lengths[:, None]  # (B, T)
    features_p[padding] = garbage
    cas_p[padding] = garbage
    features_p.requires_grad_(True)
    cas_p.requires_grad_(True)
    padded = all_losses(features_p, cas_p, labels, lengths, weight, factors)
    for name in tight:
        torch.testing.assert_close(padded[name], tight[name], rtol=1e-12, atol=1e-12, msg=name)

    total = sum(value.sum() for value in padded.values())
    total.backward()
    assert torch.isfinite(features_p.grad).all() and torch.isfinite(cas_p.grad).all()
    assert torch.count_nonzero(features_p.grad[padding]) == 0
    assert torch.count_nonzero(cas_p.grad[padding]) == 0


@pytest.mark.parametrize("distance", DISTANCES)
def test_padding_near_float32_max_keeps_gradients_finite(distance):
    # float32 padding of 3e38 is finite, so metric_loss pools without a masked copy of the
    # features (0 * 3e38 = 0 exactly); the pooling weights' gradient at the padding,
    # sum_d grad_z[d] * 3e38, overflows to +-inf / nan and must be cut before the softmax.
    features, cas, _, _, weight, factors = random_batch(11, batch=3, max_len=8, dim=4, classes=2, dtype=torch.float32)
    labels = torch.tensor([[1, 1], [1, 0], [1, 1]], dtype=torch.float32)
    lengths = torch.tensor([8, 5, 3])
    factors = factors if distance == "custom" else None
    padding = torch.arange(8)[None, :] >= lengths[:, None]  # (B, T)
    clean = metric_loss(features.masked_fill(padding[..., None], 0), cas, labels, lengths, weight, 0.5, "contrastive",
                        distance, factors)
    features = features.masked_fill(padding[..., None], 3e38).requires_grad_(True)
    cas = cas.masked_fill(padding[..., None], 3e38).requires_grad_(True)
    loss = metric_loss(features, cas, labels, lengths, weight, 0.5, "contrastive", distance, factors)
    torch.testing.assert_close(loss, clean)  # the same value as with zero padding
    loss.backward()
    assert torch.isfinite(features.grad).all() and torch.isfinite(cas.grad).all()
    assert torch.count_nonzero(features.grad[padding]) == 0 and torch.count_nonzero(cas.grad[padding]) == 0
    assert torch.count_nonzero(features.grad[~padding]) > 0  # the valid segments do get a gradient


# ---------------------------------------------------------------------------------------------
# invalid arguments


def test_invalid_arguments_raise_value_error():
    features, cas, labels, lengths, weight, factors = random_batch(0, batch=2, max_len=5, dim=3, classes=2)
    with pytest.raises(ValueError, match="kind"):
        metric_loss(features, cas, labels, lengths, weight, kind="quadruplet")
    with pytest.raises(ValueError, match="distance"):
        metric_loss(features, cas, labels, lengths, weight, distance="manhattan")
    with pytest.raises(ValueError, match="classifier_weight"):
        metric_loss(features, cas, labels, lengths, weight[:, :2])
    with pytest.raises(ValueError, match="custom_factors"):
        metric_loss(features, cas, labels, lengths, None, distance="custom")
    with pytest.raises(ValueError, match="custom_factors"):
        metric_loss(features, cas, labels, lengths, weight, distance="class", custom_factors=factors)
    with pytest.raises(ValueError, match="features"):
        metric_loss(features[:, :4], cas, labels, lengths, weight)
    with pytest.raises(ValueError, match="margin"):
        metric_loss(features, cas, labels, lengths, weight, margin=-1.0)
    with pytest.raises(ValueError, match="labels"):
        metric_loss(features, cas, labels[:, :1], lengths, weight)
    with pytest.raises(ValueError, match="0 and 1"):
        balanced_bce(torch.full((2, 2), 0.5), torch.tensor([[0.5, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="lengths"):
        video_probs(cas, torch.tensor([5, 6]))  # longer than the time axis
    with pytest.raises(ValueError, match="lengths"):
        video_probs(cas, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="lengths"):
        video_probs(cas, torch.tensor([5.0, 5.0]))
    with pytest.raises(ValueError, match="lengths"):
        softmax_mil(cas, torch.tensor([5, 5, 5]), labels)
    with pytest.raises(ValueError, match="cas"):
        video_probs(cas[0], torch.tensor([5]))
    with pytest.raises(ValueError, match="block_size"):
        video_probs(cas, lengths, block_size=0)
    with pytest.raises(ValueError, match="k must"):
        video_probs(cas, lengths, k=0)
    with pytest.raises(ValueError, match="block_size"):
        video_probs(cas, lengths, block_size=-3)
    with pytest.raises(ValueError, match="video_probs"):
        bce(torch.full((2, 2, 1), 0.5), labels)


def test_public_constants():
    # the choices the losses accept are defined once, in wtal_kit.config
    assert CLASSIFICATION_LOSSES == ("bbce", "bce", "softmax_mil")
    assert METRIC_LOSSES == ("triplet", "contrastive", "none")
    assert DISTANCES == ("class", "cosine", "euclidean", "custom")


def test_defaults_are_the_configs():
    import inspect

    from wtal_kit.config import Config

    video_defaults = inspect.signature(video_probs).parameters
    assert video_defaults["block_size"].default == Config.block_size == 60  # l_w (paper 4.2)
    assert video_defaults["k"].default == Config.k == 10
    assert inspect.signature(metric_loss).parameters["margin"].default == Config.margin == 3.0  # alpha
