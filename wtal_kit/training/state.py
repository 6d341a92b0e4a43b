"""The train state: model, optimizer and the run's two random streams, with its public step.

``TrainState.fresh(config, num_classes, device, input_mean)`` builds what a run starts from;
``state.step(batch)`` is one optimisation step (forward, the losses of docs/method.md, backward,
Adam); ``save`` / ``restore`` write and read the checkpoint that resumes a run exactly.
Tests, benchmarks and callbacks drive training through ``step``, as :func:`wtal_kit.train` does.

Neither step reads a value back to the host: the loss terms come back as 0-d tensors on the
device, and the losses skip their value checks (``check_values=False``: the trainer's batches are
valid by construction), so on a GPU the host can queue step after step without waiting.

Two steps compute the same update (``Config.fast_step`` picks one):

- the plain step: each batch as long as its longest window, every kernel launched from Python;
- the fast step (:class:`StaticStep`): every batch padded to ``max_segments`` (static shapes; the
  losses mask padding, so the numbers are the plain step's up to rounding, and with dropout the
  masks are drawn over the padded grid: another random stream of the same distribution). On CUDA,
  after a few eager steps, forward + losses + backward + Adam (fused, ``capturable=True``) are
  captured once as a CUDA graph and every later step is one graph replay: one launch instead of
  hundreds. On CPU it runs eagerly (there is no graph to capture): slower than the plain step (it
  computes the padding), there so that CPU tests can hold the route equal to the plain step.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wtal_kit import losses
from wtal_kit.config import Config
from wtal_kit.errors import InputError
from wtal_kit.training.batches import Batch
from wtal_kit.training.inference import build_model
from wtal_kit.training.runs import load_checkpoint, save_checkpoint


# -- one step -------------------------------------------------------------------------
def build_custom_factors(config: Config, num_classes: int) -> torch.nn.Parameter | None:
    """A_c of the learnable metric M_c = A_c^T A_c (distance "custom"), (C, r, d)."""
    if config.distance != "custom" or config.metric_loss == "none":
        return None
    generator = torch.Generator().manual_seed(config.seed + 1)
    scale = 1.0 / math.sqrt(config.feature_dim)
    return torch.nn.Parameter(torch.randn(num_classes, config.custom_rank, config.feature_dim, generator=generator) * scale)


def build_optimizer(parameters, config: Config, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused implementation where this torch has it for the device (same update, one kernel).

    With ``config.fast_step`` on CUDA also ``capturable=True`` (its step count stays on the device), so
    that :class:`StaticStep` can capture it in a CUDA graph.
    """
    capturable = {"capturable": True} if config.fast_step and device.type == "cuda" else {}
    try:
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True, **capturable)
    except (RuntimeError, TypeError, ValueError):  # older torch, or no fused Adam for this device
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay, **capturable)


def compute_losses(model, custom_factors, features, lengths, labels, config: Config, generator=None, *,
                   check_values: bool = True) -> dict:
    """Forward + loss terms of one batch. features (B, T, d), lengths (B,), labels (B, C).

    check_values=False: the losses skip the checks that read tensor values (host synchronisations
    on a GPU; :mod:`wtal_kit.losses`), for batches valid by construction. Same numbers.
    """
    u, cas, _ = model(features, generator=generator)  # u: (B, T, d), cas: (B, T, C)
    checked = {"check_values": check_values}
    if config.classification_loss == "softmax_mil":
        classification = losses.softmax_mil(cas, lengths, labels, **checked)
    else:
        probs = losses.video_probs(cas, lengths, block_size=config.effective_block_size, k=config.k, **checked)  # (B, C)
        loss_fn = losses.balanced_bce if config.classification_loss == "bbce" else losses.bce
        classification = loss_fn(probs, labels, **checked)
    terms = {"classification": classification}
    total = config.classification_weight * classification
    if config.metric_loss != "none":
        metric = losses.metric_loss(
            u,
            cas,
            labels,
            lengths,
            model.classifier_weight,
            margin=config.margin,
            kind=config.metric_loss,
            distance=config.distance,
            custom_factors=custom_factors,
            **checked,
        )
        terms["metric"] = metric
        total = total + config.metric_weight * metric
    terms["total"] = total
    return terms


# -- the state ---------------------------------------------------------------------------------
@dataclass
class TrainState:
    """What a checkpoint holds: the model, the optimizer and the run's two random streams."""

    config: Config
    model: torch.nn.Module
    custom_factors: torch.nn.Parameter | None  # A_c of the "custom" distance, else None
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator  # batches: which videos, which windows
    generator: torch.Generator  # initialisation, then dropout masks
    classes: tuple = ()  # the class names the model scores, in its output order (saved with the checkpoint)
    fast: "StaticStep | None" = field(default=None, repr=False, compare=False)  # Config.fast_step's step, built on first use

    @classmethod
    def fresh(cls, config: Config, num_classes: int, device: torch.device, input_mean=None, classes=()) -> "TrainState":
        """A run's start, seeded by ``config.seed``; input_mean: mu of ``config.center_features``
        (:func:`wtal_kit.training.batches.training_feature_mean`), needed when it is on; classes: the
        ``num_classes`` class names (recorded in checkpoints)."""
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        model = build_model(config, num_classes, generator=generator)
        if config.center_features:
            if input_mean is None:
                raise ValueError("center_features needs the training-feature mean")
            model.center_inputs(torch.from_numpy(np.asarray(input_mean, dtype=np.float32)))
        model = model.to(device)
        if device.type != "cpu":  # dropout masks are drawn on the device
            generator = torch.Generator(device=device).manual_seed(config.seed)
        custom_factors = build_custom_factors(config, num_classes)
        parameters = list(model.parameters())
        if custom_factors is not None:
            custom_factors = torch.nn.Parameter(custom_factors.data.to(device))
            parameters.append(custom_factors)
        optimizer = build_optimizer(parameters, config, device)
        return cls(config, model, custom_factors, optimizer, np.random.default_rng(config.seed), generator, tuple(classes))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def step(self, batch: Batch) -> dict:
        """One optimisation step on ``batch``; returns the loss terms (total, classification and, with
        a metric loss, metric), detached: 0-d tensors on the device, never read back here (no host sync).

        Forward and losses run under bf16 autocast on CUDA when ``config.bf16``; dropout masks are
        drawn from ``self.generator``. With ``config.fast_step`` the step is :class:`StaticStep`'s.
        """
        if self.config.fast_step:
            if self.fast is None:
                self.fast = StaticStep(self)
            return self.fast(batch)
        return {name: value.detach() for name, value in self._update(batch).items()}

    def _update(self, batch: Batch, cache_enabled: bool | None = None) -> dict:
        """Forward and losses (under bf16 autocast on CUDA when ``config.bf16``), backward, Adam: the
        body of both steps; returns the loss terms, not detached. cache_enabled: autocast's."""
        device = batch.features.device
        autocast = device.type == "cuda" and self.config.bf16
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast, cache_enabled=cache_enabled):
            terms = compute_losses(self.model, self.custom_factors, batch.features, batch.lengths, batch.labels, self.config,
                                   self.generator, check_values=False)
        self.optimizer.zero_grad(set_to_none=True)  # in a CUDA graph capture, backward then writes the gradients into its memory
        terms["total"].backward()
        self.optimizer.step()
        return terms

    def save(self, path: Path, iteration: int, extra=None) -> None:
        """A checkpoint after ``iteration`` iterations, written atomically; ``extra``: JSON-able run state."""
        rng_state = {"numpy": self.rng.bit_generator.state, "torch": self.generator.get_state()}
        save_checkpoint(path, self.model, self.custom_factors, self.optimizer, iteration, rng_state, self.config, extra,
                        self.classes)

    def restore(self, path: Path) -> tuple[int, dict]:
        """Load a checkpoint of the same config; returns (iterations done, extra)."""
        state = load_checkpoint(path, map_location=self.device)
        saved = Config.from_dict(json.loads(state["config"]))
        if saved != self.config:
            differing = sorted(k for k, v in self.config.to_dict().items() if saved.to_dict().get(k) != v)
            raise InputError(f"--resume with a different config (fields {differing})", file=path, field="config")
        self.fast = None  # the optimizer's state tensors are replaced below: a captured step would miss them
        self.model.load_state_dict(state["model"])
        if self.custom_factors is not None:
            self.custom_factors.data.copy_(state["custom_factors"].to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        self.generator.set_state(state["torch_rng"].cpu())
        return int(state["iteration"]), json.loads(state["extra"])


# -- the fast step -------------------------------------------------------------------------------
CAPTURE_AFTER = 3  # eager steps, on a side stream, before the CUDA graph is captured (torch's docs: warm up first)
CAPTURABLE_WARNING = "This instance was constructed with capturable=True"  # Adam's note on the eager warm-up steps


class StaticStep:
    """The fast step of ``Config.fast_step``: static shapes, and on CUDA one graph replay per step.

    Each batch is copied into static buffers, features (B, max_segments, d) with its windows first
    and zeros after them, lengths (B,) and labels (B, C); the update reads only those buffers and
    writes the loss terms into one (n_terms,) tensor. On CUDA the first ``capture_after`` calls run
    eagerly on a side stream (they also create Adam's state and cuBLAS's workspaces), the next one
    captures forward, losses, backward and Adam's update (``capturable=True``) as a CUDA graph and
    replays it, and every later call copies its batch in and replays the graph. The run's dropout
    generator is registered with the graph: each replay draws fresh masks from it and advances it
    as the eager step would, so a checkpoint's generator state stays exact. A batch of another
    size than the buffers' gets new buffers and a new capture. On CPU every call runs eagerly.
    """

    def __init__(self, state: TrainState, capture_after: int = CAPTURE_AFTER):
        self.state = state
        self.capture_after = capture_after  # eager steps before the capture (math.inf: never capture)
        self.inputs: Batch | None = None  # the static buffers
        self.terms: torch.Tensor | None = None  # (n_terms,) float32: the last step's loss terms
        self.names: tuple = ()  # their names, in compute_losses' order
        self.graph = None  # a torch.cuda.CUDAGraph once captured
        self.eager_steps = 0

    def __call__(self, batch: Batch) -> dict:
        """One step on ``batch`` (features (B, T, d), T <= max_segments); the loss terms as 0-d tensors."""
        self._copy_in(batch)
        device = self.inputs.features.device
        if device.type != "cuda":
            self.terms = self._update()
        elif self.graph is not None:
            self.graph.replay()
        elif self.eager_steps < self.capture_after:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=CAPTURABLE_WARNING)  # known: these steps are not captured
                self.terms = self._update()
            torch.cuda.current_stream(device).wait_stream(side)
            self.eager_steps += 1
        else:
            self.graph = torch.cuda.CUDAGraph()
            self.graph.register_generator_state(self.state.generator)  # dropout masks from the run's own stream
            with torch.cuda.graph(self.graph):
                self.terms = self._update()  # recorded, not run
            self.graph.replay()
        return dict(zip(self.names, self.terms.clone().unbind()))  # a copy: the next replay overwrites self.terms

    def _copy_in(self, batch: Batch) -> None:
        """Copy ``batch`` into the static buffers (new buffers, and no graph yet, when its size differs)."""
        batch_size, steps, dim = batch.features.shape
        max_segments = self.state.config.max_segments
        if steps > max_segments:
            raise ValueError(f"a batch of {steps} segments for static buffers of max_segments = {max_segments}")
        if self.inputs is None or self.inputs.features.shape != (batch_size, max_segments, dim) \
                or self.inputs.labels.shape != batch.labels.shape:
            device = self.state.device
            self.inputs = Batch(torch.zeros(batch_size, max_segments, dim, device=device),  # (B, max_segments, d)
                                torch.ones(batch_size, dtype=torch.long, device=device),  # (B,)
                                torch.zeros(batch.labels.shape, device=device))  # (B, C)
            self.graph, self.eager_steps = None, 0
        features, lengths, labels = self.inputs
        features[:, :steps].copy_(batch.features)  # (B, T, d): the windows, zero-padded to the longest
        features[:, steps:].zero_()  # (B, max_segments - T, d): more padding
        lengths.copy_(batch.lengths)
        labels.copy_(batch.labels)

    def _update(self) -> torch.Tensor:
        """Forward, losses, backward and Adam on the static buffers; returns the terms, (n_terms,) float32."""
        # cache_enabled=False: a graph must not keep autocast's cast weights from its capture
        terms = self.state._update(self.inputs, cache_enabled=False)
        self.names = tuple(terms)
        return torch.stack([value.detach().float() for value in terms.values()])  # (n_terms,)
