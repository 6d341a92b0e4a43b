"""u = Dropout_p(ReLU(h)), the embedding's nonlinearity (paper Sec. 3.2), with an explicit random stream.

Private to :mod:`wtal_kit.model`. Two implementations of the same function, for a 2-D
``h`` of shape (N, d) (one row per segment):

- :func:`relu_dropout_`: the CPU training path, computed in place on ``h`` in chunks of
  rows (see :class:`_ReluDropoutInPlace` for why);
- :func:`relu_dropout`: an ordinary out-of-place version for any device, used on CUDA when
  the mask must come from a given ``torch.Generator``.

Both draw the mask the same way: each element gets 31 uniform random bits
r in [0, 2^31) (``int32.random_``) and is kept when r < round((1 - p) 2^31), so the keep
probability is 1 - p to within 2^-31 (finer than a float32 uniform's 2^-24); kept values
are scaled by 1 / (1 - p). ``generator=None`` draws from torch's global RNG, a
``torch.Generator`` (on ``h``'s device) leaves the global RNG untouched. On CPU the bits
are drawn one element after another, so the two functions give bit-identical results
for the same generator state, however the rows are chunked.
"""

from __future__ import annotations

import torch
from torch import Tensor

MASK_CHUNK_BYTES = 2**22  # the CPU path draws the mask in chunks of about 4 MiB of random bits


def _keep_below(p: float) -> int:
    """Threshold on 31 random bits r such that P(r < threshold) = 1 - p."""
    return min(round((1.0 - p) * 2**31), 2**31 - 1)


def relu_dropout(h: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """ReLU(h) * m / (1 - p), m ~ Bernoulli(1 - p) elementwise; out of place, any device and shape."""
    bits = torch.empty(h.shape, dtype=torch.int32, device=h.device).random_(generator=generator)  # [0, 2^31)
    keep = (bits < _keep_below(p)).to(h.dtype)  # 0/1, like h
    return torch.relu(h).mul(keep).mul(1.0 / (1.0 - p))


def relu_dropout_(h: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """ReLU(h) * m / (1 - p) computed in place on a 2-D CPU tensor h (N, d); returns h.

    h must be a fresh tensor that nothing else needs (the embedding Linear's output: its
    backward needs only x and W_e) and not a view (in place on a view makes autograd copy
    the whole base).
    """
    return _ReluDropoutInPlace.apply(h, p, generator)


class _ReluDropoutInPlace(torch.autograd.Function):
    """forward: u = max(h, 0) * m / (1 - p), in place on h;
    backward: dL/dh = dL/du / (1 - p) where u > 0, else 0 (u > 0 exactly where h > 0 and m = 1).

    Why not nn.ReLU + nn.Dropout on CPU: ``bernoulli_`` there costs about half of the
    embedding's forward GEMM at the paper's size. Drawing and applying the mask in chunks
    of rows keeps every temporary small (no fresh page-faulted allocation of N*d elements),
    and the ReLU and the mask are applied in place. Only the output is saved for backward,
    and it is kept alive anyway by the classifier that consumes it.
    """

    @staticmethod
    def forward(ctx, h: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
        keep_below = _keep_below(p)
        scale = 1.0 / (1.0 - p)
        rows = max(1, MASK_CHUNK_BYTES // (4 * h.shape[1]))
        for start in range(0, h.shape[0], rows):
            chunk = h[start : start + rows]  # (rows, d), a view: written in place
            bits = torch.empty(chunk.shape, dtype=torch.int32, device=h.device).random_(generator=generator)
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
        return grad_h, None, None
