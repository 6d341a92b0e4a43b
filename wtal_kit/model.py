"""The network of Islam & Radke (WACV 2020), paper Sec. 3.2-3.3; docs/method.md, "Model (Eq. 1)".

One embedding layer that keeps the feature dimension d, one linear classifier, and the
clipping phi_kappa of Eq. 1, applied to every segment i of a video:

    u_i = Dropout(ReLU(W_e x_i + b_e))          embedding (Sec. 3.2), u_i in R^d
    s_i = phi_kappa(W_f u_i + b_f)              class activations (Eq. 1), s_i in R^C

(The paper's Eq. 1 prints ``W_f x_i``; the classifier acts on the embedded u_i.)

:meth:`WtalModel.forward` returns the embedded features u (for the metric loss), the
clipped class activation sequence ``cas`` (for the losses) and the unclipped ``logits``
(the authors' released code localizes on raw logits; docs/method.md, "Where the released
code differs").

Feature centring (:meth:`WtalModel.center_inputs`, ``Config.center_features``): the embedding
may be written ``W_e (x_i - mu) + b_e`` with a fixed mu (the training features' mean), b_e
starting at ``W_e mu`` so that the initial network is unchanged. The network and its function
class are the paper's; only the coordinates Adam updates differ, and with them whether the
embedding survives training (docs/method.md, "Why training collapsed on the ActivityNet
layout"). ``mu = 0`` (the default, and every checkpoint saved before centring existed) is the
plain ``W_e x_i + b_e``.

Randomness: pass a ``torch.Generator`` to the constructor (initial weights) and to
``forward`` (dropout mask) and the global RNG is never touched, so training can run in a
background thread; with the same seed the numbers equal those drawn from
``torch.manual_seed``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wtal_kit.relu_dropout import relu_dropout, relu_dropout_
from wtal_kit.config import Config


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
        dropout: dropout probability after the embedding's ReLU (0.7, from the authors'
            code; the paper does not state it).
        kappa: clipping bound of Eq. 1 (4 in the paper); ``None`` disables clipping.
        generator: a CPU ``torch.Generator`` for the initial weights; ``None`` draws them
            from torch's global RNG. ``torch.Generator().manual_seed(s)`` gives the same
            weights as ``torch.manual_seed(s)`` followed by ``WtalModel(...)``.

    Weights are initialised as in the authors' released code: Xavier-uniform matrices
    and zero biases.
    """

    def __init__(
        self,
        feature_dim: int = Config.feature_dim,
        num_classes: int = 20,
        dropout: float = Config.dropout,
        kappa: float | None = Config.kappa,
        generator: torch.Generator | None = None,
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
            nn.utils.skip_init(nn.Linear, self.feature_dim, self.feature_dim),  # W_e, b_e
            nn.ReLU(),
            nn.Dropout(float(dropout)),
        )
        self.classifier = nn.utils.skip_init(nn.Linear, self.feature_dim, self.num_classes)  # W_f, b_f
        self._init_weights(generator)
        # mu of the centred embedding W_e (x - mu) + b_e; zero: not centred (see center_inputs)
        self.register_buffer("input_mean", torch.zeros(self.feature_dim))
        self.centered = False  # True once center_inputs set a non-zero mu

    def _init_weights(self, generator: torch.Generator | None) -> None:
        """Xavier-uniform W_e and W_f, zero biases (the released code's initialisation)."""
        layers = (self.embedding[0], self.classifier)
        # nn.Linear's own default initialisation is overwritten below, but earlier versions
        # let it run (from the global RNG): replaying its draws, in the same order, keeps a
        # seed giving the same weights as it did then.
        for layer in layers:
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        for layer in layers:
            nn.init.xavier_uniform_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)

    def center_inputs(self, mean) -> "WtalModel":
        """Centre the embedding on ``mean`` (d,): h = W_e (x - mean) + b_e, the network's output unchanged.

        b_e absorbs W_e (mean - previous mean), so the model computes exactly the same function
        before and after the call (up to rounding); what changes is training. The gradient on
        W_e becomes sum_i g_i (x_i - mean)^T instead of sum_i g_i x_i^T: for non-negative,
        uncentred features the latter has the same sign across a whole row of W_e, and Adam,
        which moves every weight by about lr per step whatever its gradient's size, then shifts
        that unit's pre-activation by lr * |x|_1 per step (docs/method.md, "Why training
        collapsed on the ActivityNet layout"). ``mean`` all zero switches centring off.
        Returns the model.
        """
        linear = self.embedding[0]
        mean = torch.as_tensor(mean).detach().to(device=linear.weight.device, dtype=linear.weight.dtype)
        if mean.shape != (self.feature_dim,):
            raise ValueError(f"the input mean must have shape ({self.feature_dim},), got {tuple(mean.shape)}")
        if not bool(torch.isfinite(mean).all()):
            raise ValueError("the input mean must be finite")
        with torch.no_grad():
            linear.bias.add_(linear.weight @ (mean - self.input_mean))  # keeps W_e (x - mu) + b_e unchanged
            self.input_mean.copy_(mean)
        self.centered = bool(mean.any())
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint from before centring existed has no input_mean: it is the uncentred model (mu = 0).
        state_dict.setdefault(prefix + "input_mean", torch.zeros_like(self.input_mean))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.centered = bool(self.input_mean.any())

    @property
    def classifier_weight(self) -> Tensor:
        """W_f, shape (C, d): row c defines the class distance D_c of Eq. 10-11."""
        return self.classifier.weight

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, T, d) segment features -> (u, cas, logits).

        u: (B, T, d) embedded features; cas: (B, T, C) clipped activations
        phi_kappa(W_f u + b_f) (Eq. 1); logits: (B, T, C) the same before clipping.
        Padded positions are computed like any other; the losses mask them.
        generator: where the dropout mask comes from in training mode (on x's device);
        ``None``: torch's global RNG.
        """
        _check_features(x, self.feature_dim)
        batch, num_segments, _ = x.shape
        h = self.embed(x.reshape(batch * num_segments, -1))  # (B*T, d): W_e (x - mu) + b_e, one row per segment
        u = self._relu_dropout(h, generator).view(batch, num_segments, -1)  # (B, T, d): Dropout(ReLU(h)), Sec. 3.2
        logits = self.classifier(u)  # (B, T, C): W_f u + b_f
        cas = clip_activations(logits, self.kappa)  # (B, T, C): phi_kappa, Eq. 1
        return u, cas, logits

    def embed(self, x: Tensor) -> Tensor:
        """W_e (x - mu) + b_e for x (N, d), computed as W_e x + (b_e - W_e mu): no centred copy of x.

        The gradient reaching W_e is then sum_i g_i x_i^T - (sum_i g_i) mu^T = sum_i g_i (x_i - mu)^T.
        The folded bias is computed in float32 even under autocast (b_e and W_e mu nearly cancel).
        """
        linear = self.embedding[0]
        if not self.centered:
            return linear(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            bias = torch.addmv(linear.bias, linear.weight, self.input_mean, alpha=-1)  # b_e - W_e mu, (d,)
        return F.linear(x, linear.weight, bias)

    def _relu_dropout(self, h: Tensor, generator: torch.Generator | None) -> Tensor:
        """Dropout_p(ReLU(h)) for h (N, d), the fresh (not a view) output of the embedding Linear."""
        relu, dropout = self.embedding[1], self.embedding[2]
        if not (dropout.training and dropout.p > 0):
            return relu(h)  # evaluation (or p = 0): dropout is the identity
        if generator is not None and generator.device.type != h.device.type:
            raise ValueError(f"the dropout generator is on {generator.device}, the features on {h.device}")
        if h.device.type == "cpu":
            return relu_dropout_(h, dropout.p, generator)  # fused and in place (wtal_kit/relu_dropout.py)
        if generator is None:
            return dropout(relu(h))  # CUDA: one fused kernel, drawn from the global RNG
        return relu_dropout(h, dropout.p, generator)  # mask drawn from `generator`


# ---------------------------------------------------------------------------------------------
# input checks


def _check_features(x, feature_dim: int) -> None:
    if not torch.is_tensor(x) or x.dim() != 3:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"features must be a (batch, time, feature_dim) tensor, got {shape}")
    if x.shape[-1] != feature_dim:
        raise ValueError(f"features have dimension {x.shape[-1]}, the model expects {feature_dim}")
