"""The network of Islam & Radke (WACV 2020), sections 3.2-3.3 of METHOD.md.

One embedding layer that keeps the feature dimension, one linear classifier, and
the clipping function phi_kappa of Eq. 1:

    u_i = Dropout(ReLU(W_e x_i + b_e))          embedding (3.2), u_i in R^d
    s_i = phi_kappa(W_f u_i + b_f)              class activations (Eq. 1), s_i in R^C

(The paper's Eq. 1 prints ``W_f x_i``; the classifier acts on the embedded u_i.)

``forward`` returns the embedded features u (for the metric loss), the clipped
class activation sequence ``cas`` (for the losses) and the unclipped ``logits``
(the authors' released code localizes on raw logits; see METHOD.md).

Speed: on CPU in training mode, ReLU and dropout run as one in-place step
(:class:`_ReluDropout`): ``Tensor.bernoulli_`` alone costs about half as much as the
embedding's forward GEMM there. It is the same function (ReLU, then zero each element
with probability p and scale the rest by 1 / (1 - p)); only the random stream differs
from ``nn.Dropout``'s.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# The paper does not state the dropout rate. The authors' released code
# (asrafulashiq/wsad, model.py) uses nn.Dropout(0.7), the same value as W-TALC.
DEFAULT_DROPOUT = 0.7
DEFAULT_KAPPA = 4.0  # clipping bound kappa of Eq. 1 (paper 4.2)


def clip_activations(logits: Tensor, kappa: float | None) -> Tensor:
    """phi_kappa of Eq. 1: clamp every activation to [-kappa, kappa]; ``kappa=None`` is the identity.

    Outside the band the gradient is zero, as for any clamp.
    """
    if kappa is None:
        return logits
    return logits.clamp(min=-kappa, max=kappa)


MASK_CHUNK_BYTES = 2**22  # the dropout mask is drawn in chunks of about 4 MiB of random bits


class _ReluDropout(torch.autograd.Function):
    """u = Dropout_p(ReLU(h)) for a 2-D h (N, d), computed in place on h (section 3.2).

    forward:  u = max(h, 0) * m / (1 - p), m ~ Bernoulli(1 - p) elementwise; each element
              gets 31 uniform random bits r in [0, 2^31) (``int32.random_``) and m = [r <
              round((1 - p) 2^31)], so the keep probability is 1 - p to within 2^-31 (finer
              than a float32 uniform's 2^-24).
    backward: dL/dh = dL/du / (1 - p) where u > 0, else 0 (u > 0 exactly where h > 0 and m = 1).

    Why not nn.ReLU + nn.Dropout on CPU: ``bernoulli_`` there costs about half of the
    embedding's forward GEMM at the paper's size; drawing and applying the mask in chunks of
    rows keeps every temporary small (no fresh page-faulted allocation of B*T*d elements)
    and the ReLU and mask are applied in place. Only the output is saved for backward, and
    it is kept alive anyway by the classifier that consumes it. h must be a fresh tensor
    nothing else needs (the embedding Linear's output: its backward needs only x and W_e),
    and not a view (in place on a view makes autograd copy the whole base).
    """

    @staticmethod
    def forward(ctx, h: Tensor, p: float) -> Tensor:
        keep_below = min(round((1.0 - p) * 2**31), 2**31 - 1)  # P(r < keep_below) = 1 - p
        scale = 1.0 / (1.0 - p)
        rows = max(1, MASK_CHUNK_BYTES // (4 * h.shape[1]))
        for start in range(0, h.shape[0], rows):
            chunk = h[start : start + rows]  # (rows, d), a view: written in place
            bits = torch.empty(chunk.shape, dtype=torch.int32, device=h.device).random_()  # uniform on [0, 2^31)
            keep = (bits < keep_below).to(h.dtype)  # (rows, d) 0/1
            chunk.clamp_(min=0).mul_(keep).mul_(scale)
        ctx.mark_dirty(h)
        ctx.save_for_backward(h)
        ctx.scale = scale
        return h

    @staticmethod
    def backward(ctx, grad_u: Tensor):
        (u,) = ctx.saved_tensors
        grad_h = torch.ops.aten.threshold_backward(grad_u, u, 0).mul_(ctx.scale)  # grad where u > 0, else 0
        return grad_h, None


class WtalModel(nn.Module):
    """Embedding (Linear d->d, ReLU, Dropout) followed by a linear classifier (d->C).

    Args:
        feature_dim: d, the size of one segment feature (2048 for two-stream I3D).
        num_classes: C (20 for THUMOS14, 100 for ActivityNet1.2).
        dropout: dropout probability after the embedding (0.7, from the authors' code;
            the paper does not state it).
        kappa: clipping bound of Eq. 1 (4 in the paper); ``None`` disables clipping.

    Weights are initialised as in the authors' released code: Xavier-uniform
    matrices and zero biases.
    """

    def __init__(
        self,
        feature_dim: int = 2048,
        num_classes: int = 20,
        dropout: float = DEFAULT_DROPOUT,
        kappa: float | None = DEFAULT_KAPPA,
    ):
        super().__init__()
        if int(feature_dim) != feature_dim or feature_dim < 1:
            raise ValueError(f"feature_dim must be a positive integer, got {feature_dim!r}")
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if kappa is not None and not (math.isfinite(float(kappa)) and float(kappa) > 0):
            raise ValueError(f"kappa must be a positive finite number or None, got {kappa!r}")
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.kappa = None if kappa is None else float(kappa)
        self.embedding = nn.Sequential(
            nn.Linear(self.feature_dim, self.feature_dim),  # W_e, b_e
            nn.ReLU(),
            nn.Dropout(float(dropout)),
        )
        self.classifier = nn.Linear(self.feature_dim, self.num_classes)  # W_f, b_f
        for layer in (self.embedding[0], self.classifier):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def classifier_weight(self) -> Tensor:
        """W_f, shape (C, d): row c defines the class distance D_c of Eq. 10."""
        return self.classifier.weight

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, T, d) segment features -> (u, cas, logits).

        u: (B, T, d) embedded features; cas: (B, T, C) clipped activations
        phi_kappa(W_f u + b_f) (Eq. 1); logits: (B, T, C) the same before clipping.
        Padded positions are computed like any other; the losses mask them.
        """
        if not torch.is_tensor(x) or x.dim() != 3:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"features must be a (batch, time, feature_dim) tensor, got {shape}")
        if x.shape[-1] != self.feature_dim:
            raise ValueError(f"features have dimension {x.shape[-1]}, the model expects {self.feature_dim}")
        linear, relu, dropout = self.embedding
        batch, num_segments, _ = x.shape
        if dropout.training and dropout.p > 0 and x.device.type == "cpu":
            h = linear(x.reshape(batch * num_segments, -1))  # (B*T, d): W_e x + b_e, a fresh 2-D tensor (not a view)
            u = _ReluDropout.apply(h, dropout.p).view(batch, num_segments, -1)  # (B, T, d), in place (see _ReluDropout)
        else:
            u = dropout(relu(linear(x)))  # (B, T, d); on CUDA dropout is one fused kernel already
        logits = self.classifier(u)  # (B, T, C)
        cas = clip_activations(logits, self.kappa)  # (B, T, C), Eq. 1
        return u, cas, logits
