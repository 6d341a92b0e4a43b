"""The network of Islam & Radke (WACV 2020), sections 3.2-3.3 of METHOD.md.

One embedding layer that keeps the feature dimension, one linear classifier, and
the clipping function phi_kappa of Eq. 1:

    u_i = Dropout(ReLU(W_e x_i + b_e))          embedding (3.2), u_i in R^d
    s_i = phi_kappa(W_f u_i + b_f)              class activations (Eq. 1), s_i in R^C

(The paper's Eq. 1 prints ``W_f x_i``; the classifier acts on the embedded u_i.)

``forward`` returns the embedded features u (for the metric loss), the clipped
class activation sequence ``cas`` (for the losses) and the unclipped ``logits``
(the authors' released code localizes on raw logits; see METHOD.md).
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
        u = self.embedding(x)  # (B, T, d)
        logits = self.classifier(u)  # (B, T, C)
        cas = clip_activations(logits, self.kappa)  # (B, T, C), Eq. 1
        return u, cas, logits
