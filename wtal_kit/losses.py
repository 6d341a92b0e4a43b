"""Losses of Islam & Radke (WACV 2020): block-based video scores, classification losses, metric loss.

In the paper's order (equation numbers are the paper's; docs/method.md restates them):

- :func:`video_probs`: the video-level probability P(c|V) from blocks (Eq. 2-4);
- :func:`balanced_bce` (Eq. 5-6), and the alternatives of Fig. 2, :func:`bce` and :func:`softmax_mil`;
- :func:`metric_loss`: attention-pooled features compared with the class distance D_c (Sec. 3.4,
  Eq. 7-11), as a triplet or contrastive loss.

Every function is pure and vectorized over the batch (no Python loop over videos, blocks
or classes). Batches are padded: activations ``cas`` (B, T, C) and features (B, T, d)
come with ``lengths`` (B,), an integer tensor; positions ``t >= lengths[b]`` are padding
and never influence a result (nor receive a gradient), whatever they hold. Defaults are
the paper's (:class:`wtal_kit.config.Config`).

Every function checks its inputs. The checks of shapes and types read no tensor value; the two
that do (lengths within [1, T], labels 0/1) wait for the device, so on a GPU each is a host
synchronisation, and none may run inside a captured CUDA graph. ``check_values=False`` skips
those two, for a caller whose batches are valid by construction (the trainer's step: its
lengths come from videos of at least one segment, its labels from boolean annotations); the
numbers are the same either way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from wtal_kit import checks
from wtal_kit.config import DISTANCES, METRIC_LOSSES, Config

PROB_EPS = 1e-6  # the classification losses clamp probabilities to [eps, 1 - eps] before the log


# ---------------------------------------------------------------------------------------------
# video-level probability (Eq. 2-4; docs/method.md, "Video-level score")


def video_probs(
    cas: Tensor,
    lengths: Tensor | None,
    block_size: int | None = Config.block_size,
    k: int = Config.k,
    *,
    check_values: bool = True,
) -> Tensor:
    """Video-level class probabilities P(c|V), (B, C), from blocks of segments (Eq. 2-4).

    Blocks B_1..B_nB: a video of n segments has n_B = max(1, n // l_w) blocks of consecutive
    segments; the first n_B - 1 hold l_w segments, the last holds the rest (between l_w and
    2 l_w - 1; all n when n < 2 l_w). Example: n = 150, l_w = 60 -> [0, 60) and [60, 150).
    ``block_size=None``: one block per video (no block processing, Table 4).

    P(c|B_i) = sigmoid(mean of the k_i largest s^c in B_i), k_i = min(k, |B_i|)   (Eq. 4)
    P(c|V)   = 1 - prod_i (1 - P(c|B_i))                                         (Eq. 2-3, noisy-OR)

    For stability the product is a sum of log(1 - P(c|B_i)) = logsigmoid(-m_i) and
    P(c|V) = -expm1(sum); the result may be exactly 0 or 1 in floating point (the losses
    clamp it). ``lengths=None`` means no padding. ``check_values``: see the module's docstring.
    """
    batch_size, max_len, lengths, block_size, k = _check_video_probs_inputs(cas, lengths, block_size, k, check_values)
    segment, in_block, block_len = _blocks(lengths, max_len, block_size)  # (1, NB, L), (B, NB, L), (B, NB)
    batch = torch.arange(batch_size, device=cas.device)[:, None, None]  # (B, 1, 1)
    s = cas[batch, segment].masked_fill(~in_block[..., None], -math.inf)  # (B, NB, L, C): s^c of each block

    # Eq. 4: m_i = mean of the k_i largest s^c in B_i (empty slots hold -inf and are never taken)
    k_i = block_len.clamp(max=k)  # (B, NB): min(k, |B_i|), 0 for blocks a short video lacks
    top = s.topk(min(k, s.shape[2]), dim=2).values  # (B, NB, k', C), descending
    taken = torch.arange(top.shape[2], device=cas.device)[:, None] < k_i[..., None, None]  # (B, NB, k', 1)
    top_sum = torch.where(taken, top, torch.zeros_like(top)).sum(dim=2)  # (B, NB, C)
    m = top_sum / k_i.clamp(min=1)[..., None].to(cas.dtype)  # (B, NB, C)

    # Eq. 2-3: P(c|V) = 1 - prod_i (1 - sigmoid(m_i)), over the blocks the video has
    log_not_block = F.logsigmoid(-m)  # (B, NB, C): log(1 - P(c|B_i))
    log_not_block = torch.where(block_len[..., None] > 0, log_not_block, torch.zeros_like(log_not_block))
    return -torch.expm1(log_not_block.sum(dim=1))  # (B, C)


def _blocks(lengths: Tensor, max_len: int, block_size: int | None):
    """The blocks of every video laid out on a grid of NB blocks x L slots (the rule of :func:`video_probs`).

    Returns ``segment`` (1, NB, L) long: the time index of slot j of block i (clamped to
    the time axis), ``in_block`` (B, NB, L) bool: slot j holds a segment of block i, and
    ``block_len`` (B, NB) long: |B_i| (0 for blocks a short video lacks).
    NB = max(1, T // l_w) and L = min(T, 2 l_w - 1) bound every video of the batch.
    """
    device = lengths.device
    if block_size is None:  # one block per video (Table 4)
        step, max_blocks, max_block_len = max_len, 1, max_len
        num_blocks = torch.ones_like(lengths)
    else:
        step = block_size
        max_blocks = max(1, max_len // block_size)
        max_block_len = min(max_len, 2 * block_size - 1)
        num_blocks = (lengths // block_size).clamp(min=1)  # (B,) n_B
    block = torch.arange(max_blocks, device=device)[None, :]  # (1, NB)
    last = num_blocks[:, None] - 1  # (B, 1)
    block_len = torch.where(
        block < last,
        torch.full_like(last, step),  # full blocks: l_w
        torch.where(block == last, lengths[:, None] - last * step, torch.zeros_like(last)),  # the rest, or none
    )  # (B, NB)
    slot = torch.arange(max_block_len, device=device)  # (L,)
    segment = (block * step)[..., None] + slot  # (1, NB, L)
    in_block = slot < block_len[..., None]  # (B, NB, L)
    return segment.clamp(max=max_len - 1), in_block, block_len


# ---------------------------------------------------------------------------------------------
# classification losses (Eq. 5-6 and the alternatives of Fig. 2; docs/method.md, "Balanced BCE")


def balanced_bce(video_probs: Tensor, labels: Tensor, *, check_values: bool = True) -> Tensor:
    """Balanced binary cross-entropy (Eq. 5-6), mean over the videos of the batch.

    per video: -[ sum_c y_c log P(c|V) / sum_c y_c  +  sum_c (1 - y_c) log(1 - P(c|V)) / sum_c (1 - y_c) ];
    a term whose denominator is 0 (no positive / no negative class) is 0.
    video_probs: (B, C) in [0, 1], clamped to [PROB_EPS, 1 - PROB_EPS]; labels: (B, C) 0/1.
    """
    video_probs, labels = _check_probs_and_labels(video_probs, labels, check_values)
    probs = video_probs.clamp(PROB_EPS, 1 - PROB_EPS)  # (B, C)
    positive = (labels * probs.log()).sum(dim=1) / labels.sum(dim=1).clamp(min=1)  # (B,)
    negative = ((1 - labels) * torch.log1p(-probs)).sum(dim=1) / (1 - labels).sum(dim=1).clamp(min=1)  # (B,)
    return -(positive + negative).mean()


def bce(video_probs: Tensor, labels: Tensor, *, check_values: bool = True) -> Tensor:
    """Plain binary cross-entropy, mean over classes and videos (Fig. 2).

    Probabilities are clamped as in :func:`balanced_bce`.
    """
    video_probs, labels = _check_probs_and_labels(video_probs, labels, check_values)
    probs = video_probs.clamp(PROB_EPS, 1 - PROB_EPS)  # (B, C)
    return -(labels * probs.log() + (1 - labels) * torch.log1p(-probs)).mean()


def softmax_mil(cas: Tensor, lengths: Tensor | None, labels: Tensor, *, check_values: bool = True) -> Tensor:
    """W-TALC's multiple-instance "Softmax" loss (Fig. 2, [27]).

    Video logits: per class, the mean of the ceil(n / 8) largest activations over the
    n valid segments; softmax over classes; cross-entropy against y / sum(y).
    A video without any label has target 0 and contributes 0, and the mean is still
    over all B videos of the batch (W-TALC's formula with 0 / 0 read as 0).
    """
    cas = _check_activations(cas)
    batch_size, max_len, num_classes = cas.shape
    lengths = _check_lengths(lengths, batch_size, max_len, cas.device, check_values)
    labels = _check_labels(labels, batch_size, num_classes, cas, check_values)
    valid = _valid_mask(lengths, max_len)  # (B, T)
    top_per_video = (lengths + 7) // 8  # (B,) ceil(n / 8)
    top_count = (max_len + 7) // 8
    top = cas.masked_fill(~valid[..., None], -math.inf).topk(top_count, dim=1).values  # (B, k', C)
    taken = torch.arange(top_count, device=cas.device)[None, :, None] < top_per_video[:, None, None]  # (B, k', 1)
    top_sum = torch.where(taken, top, torch.zeros_like(top)).sum(dim=1)  # (B, C)
    video_logits = top_sum / top_per_video[:, None].to(cas.dtype)  # (B, C)
    target = labels / labels.sum(dim=1, keepdim=True).clamp(min=1)  # (B, C), rows sum to 1 (or 0)
    return -(target * F.log_softmax(video_logits, dim=1)).sum(dim=1).mean()


# ---------------------------------------------------------------------------------------------
# metric loss (Sec. 3.4, Eq. 7-11; docs/method.md, "Metric loss")


def metric_loss(
    features: Tensor,
    cas: Tensor,
    labels: Tensor,
    lengths: Tensor | None,
    classifier_weight: Tensor | None,
    margin: float = Config.margin,
    kind: str = "triplet",
    distance: str = "class",
    custom_factors: Tensor | None = None,
    *,
    check_values: bool = True,
) -> Tensor:
    """Metric-learning loss of Sec. 3.4, mean over the classes it applies to.

    features: (B, T, d) embedded u; cas: (B, T, C) clipped activations; labels: (B, C) 0/1;
    lengths: (B,) valid lengths (None: no padding); classifier_weight: W_f (C, d), needed
    for ``distance="class"``; custom_factors: A (C, r, d), needed for ``distance="custom"``.
    kind: one of ``wtal_kit.config.METRIC_LOSSES``; distance: one of ``wtal_kit.config.DISTANCES``;
    check_values: see the module's docstring.

    For each class c that at least two videos V_1..V_m of the batch are labelled with:
      pi^c_{k,i} = softmax over the valid segments i of s^c_{k,i}
      z^c_k = sum_i pi^c_{k,i} u_{k,i};  z^notc_k = sum_i (1 - pi^c_{k,i}) / (n_k - 1) u_{k,i}
      both scaled to unit L2 norm: z~c_k, z~notc_k
      d+ = mean over ordered pairs j != j' of D^2(z~c_j, z~c_j')
      d- = mean over ordered pairs j != j' of D^2(z~c_j, z~notc_j')
      triplet: [d+ - d- + margin]_+ (Eq. 9);  contrastive: d+ + [margin - d-]_+ (Eq. 7-8)
    and the loss is the mean over those classes (0 if there is none; the zero is still
    part of the autograd graph). ``kind="none"`` returns that zero directly.

    Distances, as the quantity averaged into d+ and d-:
      "class":     D_c^2 = (w_c . (u - v))^2, w_c the c-th row of W_f (Eq. 10-11; W_f gets gradients)
      "cosine":    1 - cos(u, v)
      "euclidean": ||u - v||^2
      "custom":    ||A_c (u - v)||^2, i.e. a learnable PSD M_c = A_c^T A_c
    A video of one segment (n_k = 1) has no segment outside its attention: its z^notc is
    the zero vector (sum of 1 - pi = 0; the 1 / (n_k - 1) factor is taken as 1, and a scale
    factor does not matter after normalisation anyway) and stays zero after normalisation.
    """
    lengths, labels = _check_metric_inputs(
        features, cas, labels, lengths, classifier_weight, margin, kind, distance, custom_factors, check_values
    )
    if kind == "none":
        return features[:, :0].sum() + cas[:, :0].sum()  # an exact 0 that is part of the graph
    batch_size, max_len, num_classes = cas.shape

    # attention pooling: z^c_k and z^notc_k of every video k and class c
    valid = _valid_mask(lengths, max_len)[..., None]  # (B, T, 1)
    attention = cas.masked_fill(~valid, -math.inf).softmax(dim=1)  # (B, T, C): pi^c_{k,i}, exactly 0 on padding
    # Pooling weights: the C attentions and a column of ones on the valid segments (sum_i u_i).
    # torch.where (not a product) stops any gradient reaching padding through the weights.
    weights = torch.where(valid, torch.cat([attention, torch.ones_like(cas[..., :1])], dim=2), 0)  # (B, T, C + 1)
    pooled = _pool_valid(weights, features, valid)  # (B, C + 1, d)
    z_class, u_sum = pooled[:, :num_classes], pooled[:, num_classes:]  # (B, C, d): z^c; (B, 1, d): sum_i u_i
    # sum_i (1 - pi_i) u_i = sum_i u_i - z^c
    z_not_class = (u_sum - z_class) / (lengths - 1).clamp(min=1).to(cas.dtype)[:, None, None]
    z_not_class = z_not_class.masked_fill((lengths == 1)[:, None, None], 0)  # n_k = 1: exactly zero, no rounding
    z_class = F.normalize(z_class, dim=-1)  # (B, C, d): z~c, unit L2 norm
    z_not_class = F.normalize(z_not_class, dim=-1)  # (B, C, d): z~notc (zero when n_k = 1)

    # D_c^2 between every ordered pair of videos (Eq. 10-11, or an alternative of Fig. 3)
    positive, negative = _pairwise_squared_distances(
        z_class, z_not_class, distance, classifier_weight, custom_factors
    )  # (B, B, C) each

    # d^{+,c}, d^{-,c}: means over the ordered pairs j != j' of videos both labelled c
    other = 1 - torch.eye(batch_size, dtype=cas.dtype, device=cas.device)  # (B, B): j != j'
    pair_weight = labels[:, None, :] * labels[None, :, :] * other[..., None]  # (B, B, C): both labelled c
    num_pairs = pair_weight.sum(dim=(0, 1))  # (C,): m (m - 1)
    applies = num_pairs > 0  # (C,): at least two videos labelled c
    d_positive = (pair_weight * positive).sum(dim=(0, 1)) / num_pairs.clamp(min=1)  # (C,): d^{+,c}
    d_negative = (pair_weight * negative).sum(dim=(0, 1)) / num_pairs.clamp(min=1)  # (C,): d^{-,c}

    if kind == "triplet":
        per_class = F.relu(d_positive - d_negative + margin)  # (C,), Eq. 9
    else:
        per_class = d_positive + F.relu(margin - d_negative)  # (C,), Eq. 7-8
    per_class = torch.where(applies, per_class, torch.zeros_like(per_class))
    return per_class.sum() / applies.sum().clamp(min=1)  # mean over the classes that apply


def _pairwise_squared_distances(
    z_class: Tensor, z_not_class: Tensor, distance: str, classifier_weight, custom_factors
) -> tuple[Tensor, Tensor]:
    """Squared distances between videos, per class: (B, B, C) each.

    positive[j, j', c] = D^2(z~c_j, z~c_j'), negative[j, j', c] = D^2(z~c_j, z~notc_j').
    z_class, z_not_class: (B, C, d), unit L2 norm (or zero).
    """
    if distance == "class":
        # D_c(u, v) = ||w_c (u - v)|| with w_c a row vector (Eq. 10-11): D_c^2 = (w_c.u - w_c.v)^2,
        # so each aggregated feature is reduced to one number per class first.
        p = torch.einsum("bcd,cd->bc", z_class, classifier_weight)  # (B, C): w_c . z~c
        q = torch.einsum("bcd,cd->bc", z_not_class, classifier_weight)  # (B, C): w_c . z~notc
        return (p[:, None] - p[None, :]).square(), (p[:, None] - q[None, :]).square()  # (B, B, C) each
    if distance == "cosine":
        # 1 - cos(u, v) = 1 - u.v for unit vectors (a zero vector, n_k = 1, gives cos = 0).
        positive = 1 - torch.einsum("jcd,kcd->jkc", z_class, z_class)  # (B, B, C)
        negative = 1 - torch.einsum("jcd,kcd->jkc", z_class, z_not_class)  # (B, B, C)
        return positive, negative
    if distance == "custom":
        # D_c^2(u, v) = ||A_c (u - v)||^2 = (u - v)^T A_c^T A_c (u - v), PSD by construction.
        z_class = torch.einsum("bcd,crd->bcr", z_class, custom_factors)  # (B, C, r)
        z_not_class = torch.einsum("bcd,crd->bcr", z_not_class, custom_factors)  # (B, C, r)
    # squared Euclidean distance ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b, without a (B, B, C, d) tensor
    norm_class = z_class.square().sum(dim=-1)  # (B, C)
    norm_not_class = z_not_class.square().sum(dim=-1)  # (B, C)
    positive = norm_class[:, None] + norm_class[None, :] - 2 * torch.einsum("jcr,kcr->jkc", z_class, z_class)
    negative = norm_class[:, None] + norm_not_class[None, :] - 2 * torch.einsum("jcr,kcr->jkc", z_class, z_not_class)
    return positive.clamp(min=0), negative.clamp(min=0)  # (B, B, C); clamp: rounding can go below 0


def _pool_valid(weights: Tensor, features: Tensor, valid: Tensor) -> Tensor:
    """sum_i weights[b, i, j] features[b, i], (B, J, d), for weights that are exactly 0 on padding.

    weights: (B, T, J); features: (B, T, d); valid: (B, T, 1) bool.
    On CPU: a zero weight times a finite padded feature adds exactly 0, so the features need
    no masked (B, T, d) copy nor its backward pass (at the paper's size the two together cost
    about a tenth of the step's GEMM time on CPU), and the gradient reaching features is weights @ grad,
    exactly 0 on padding. Only when padding holds inf / nan (0 * inf = nan) is the product
    recomputed on a masked copy; the check reads the small (B, J, d) result.
    Elsewhere (CUDA) the masked copy is cheap and the check would be a host sync: always mask.
    """
    if features.device.type == "cpu":
        pooled = torch.bmm(weights.transpose(1, 2), features)  # (B, J, d)
        if bool(torch.isfinite(pooled).all()):
            return pooled
        # padding (or a valid segment) is not finite: recompute on a masked copy
    return torch.bmm(weights.transpose(1, 2), features.masked_fill(~valid, 0))  # (B, J, d)


def _valid_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, T) bool: True on the valid segments of each video."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


# ---------------------------------------------------------------------------------------------
# input checks


def _check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")


def _check_activations(cas, name="cas") -> Tensor:
    if not torch.is_tensor(cas) or cas.dim() != 3:
        shape = tuple(cas.shape) if torch.is_tensor(cas) else type(cas).__name__
        raise ValueError(f"{name} must be a (batch, time, classes) tensor, got {shape}")
    if not cas.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {cas.dtype}")
    if cas.shape[0] < 1 or cas.shape[1] < 1 or cas.shape[2] < 1:
        raise ValueError(f"{name} must have at least one video, segment and class, got {tuple(cas.shape)}")
    return cas


def _check_lengths(lengths, batch_size: int, max_len: int, device, check_values: bool = True) -> Tensor:
    """Valid lengths (B,) as int64 on ``device``; ``None`` means every video fills all ``max_len`` segments.
    check_values=False: the range [1, max_len] is not checked (it reads the values: a sync on a GPU)."""
    if lengths is None:
        return torch.full((batch_size,), max_len, dtype=torch.long, device=device)
    if not torch.is_tensor(lengths) or lengths.dim() != 1:
        shape = tuple(lengths.shape) if torch.is_tensor(lengths) else type(lengths).__name__
        raise ValueError(f"lengths must be a 1-D integer tensor, got {shape}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor, got {lengths.dtype}")
    if lengths.shape[0] != batch_size:
        raise ValueError(f"lengths has {lengths.shape[0]} entries for a batch of {batch_size} videos")
    lengths = lengths.to(device=device, dtype=torch.long)
    if check_values and bool(((lengths < 1) | (lengths > max_len)).any()):
        raise ValueError(
            f"every entry of lengths must lie in [1, {max_len}] (the padded time axis), got {lengths.tolist()}"
        )
    return lengths


def _check_labels(labels, batch_size: int, num_classes: int, like: Tensor, check_values: bool = True) -> Tensor:
    """0/1 labels (B, C) as a tensor of ``like``'s dtype and device (check_values=False: 0/1 not checked)."""
    if not torch.is_tensor(labels) or tuple(labels.shape) != (batch_size, num_classes):
        shape = tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"labels must have shape ({batch_size}, {num_classes}), got {shape}")
    labels = labels.to(device=like.device, dtype=like.dtype)
    if check_values and bool(((labels != 0) & (labels != 1)).any()):
        raise ValueError("labels must hold only 0 and 1")
    return labels


def _check_video_probs_inputs(cas, lengths, block_size, k, check_values: bool = True):
    """(B, T, lengths (B,) long, block_size as int or None, k as int) for :func:`video_probs`."""
    cas = _check_activations(cas)
    batch_size, max_len, _ = cas.shape
    lengths = _check_lengths(lengths, batch_size, max_len, cas.device, check_values)
    if block_size is not None and not (checks.is_integer(block_size) and block_size >= 1):
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")
    if not (checks.is_integer(k) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return batch_size, max_len, lengths, None if block_size is None else int(block_size), int(k)


def _check_probs_and_labels(video_probs, labels, check_values: bool = True):
    if not torch.is_tensor(video_probs) or video_probs.dim() != 2 or not video_probs.is_floating_point():
        shape = tuple(video_probs.shape) if torch.is_tensor(video_probs) else type(video_probs).__name__
        raise ValueError(f"video_probs must be a floating-point (batch, classes) tensor, got {shape}")
    labels = _check_labels(labels, video_probs.shape[0], video_probs.shape[1], video_probs, check_values)
    return video_probs, labels


def _check_metric_inputs(features, cas, labels, lengths, classifier_weight, margin, kind, distance, custom_factors,
                         check_values: bool = True):
    """(lengths (B,) long, labels (B, C) like cas) for :func:`metric_loss`, after checking every argument."""
    _check_choice(kind, METRIC_LOSSES, "metric loss kind")
    _check_choice(distance, DISTANCES, "distance")
    cas = _check_activations(cas)
    batch_size, max_len, num_classes = cas.shape
    if not torch.is_tensor(features) or features.dim() != 3 or tuple(features.shape[:2]) != (batch_size, max_len):
        shape = tuple(features.shape) if torch.is_tensor(features) else type(features).__name__
        raise ValueError(f"features must have shape ({batch_size}, {max_len}, d) to match cas, got {shape}")
    feature_dim = features.shape[2]
    lengths = _check_lengths(lengths, batch_size, max_len, cas.device, check_values)
    labels = _check_labels(labels, batch_size, num_classes, cas, check_values)
    if not math.isfinite(float(margin)) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if distance == "class":
        if not torch.is_tensor(classifier_weight) or tuple(classifier_weight.shape) != (num_classes, feature_dim):
            shape = tuple(classifier_weight.shape) if torch.is_tensor(classifier_weight) else classifier_weight
            raise ValueError(
                f"distance 'class' needs classifier_weight of shape ({num_classes}, {feature_dim}), got {shape}"
            )
    if distance == "custom":
        if (
            not torch.is_tensor(custom_factors)
            or custom_factors.dim() != 3
            or custom_factors.shape[0] != num_classes
            or custom_factors.shape[2] != feature_dim
        ):
            shape = tuple(custom_factors.shape) if torch.is_tensor(custom_factors) else custom_factors
            raise ValueError(
                f"distance 'custom' needs custom_factors of shape ({num_classes}, r, {feature_dim}), got {shape}"
            )
    elif custom_factors is not None:
        raise ValueError(f"custom_factors is only used with distance 'custom', not {distance!r}")
    return lengths, labels
