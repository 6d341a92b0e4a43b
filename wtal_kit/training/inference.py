"""From a model to scores: class activations of whole videos and their video probabilities.

:func:`infer` runs the model of :mod:`wtal_kit.model` on every segment of the
videos asked for (no training window) and computes P(c|V) with the block rule
of Eq. 2-4 (docs/method.md); :func:`infer_stored` does the same for videos already
on the device in a :class:`~wtal_kit.training.batches.FeatureStore`. :func:`scores_in_memory`
wraps the result in the same :class:`~wtal_kit.data.hdf5.Scores` object a scores file gives,
so that localization and evaluation never need the model. :func:`evaluate_split` is a
training's periodic evaluation: infer the held-out split, localize, score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from wtal_kit import losses
from wtal_kit.config import Config
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.hdf5 import Scores
from wtal_kit.errors import InputError
from wtal_kit.evaluate import Evaluation
from wtal_kit.localizer import Localizer
from wtal_kit.model import WtalModel
from wtal_kit.training.batches import FeatureStore, Split

MAX_BATCH_SEGMENTS = 16384  # inference batches hold at most this many (padded) segments


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cuda`` without a GPU is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA device is available", field="device")
    return torch.device(name)


def build_model(config: Config, num_classes: int, generator: torch.Generator | None = None) -> WtalModel:
    """The network a config describes; ``generator`` draws its initial weights (else torch's global RNG)."""
    return WtalModel(
        feature_dim=config.feature_dim, num_classes=num_classes, dropout=config.dropout, kappa=config.kappa, generator=generator
    )


def length_batches(lengths, max_batch_segments: int = MAX_BATCH_SEGMENTS):
    """Videos grouped by length for inference: index arrays into ``lengths``, shortest videos first.

    A batch holds at most ``max_batch_segments`` padded segments (its count times its longest
    video's length); a video longer than that is a batch of its own.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= max_batch_segments:
            stop += 1
        yield order[start:stop]
        start = stop


@torch.inference_mode()
def infer_batches(model: WtalModel, lengths, batch_of, num_classes: int, config: Config, device,
                  progress: bool = False, max_batch_segments: int = MAX_BATCH_SEGMENTS) -> tuple[list, np.ndarray]:
    """The inference loop over :func:`length_batches`, whatever holds the features.

    ``batch_of(chunk)`` -> (x: (b, T, d) float32 zero-padded, lengths: (b,) int64), both on ``device``,
    for the videos ``chunk`` (indices into ``lengths``). Returns (logits: list of (n_i, C) float32 in
    the order of ``lengths``, video_probs: (N, C) float32).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    was_training = model.training
    model.eval()
    logits_out: list = [None] * len(lengths)
    probs_out = np.zeros((len(lengths), num_classes), dtype=np.float32)  # (N, C)
    autocast = device.type == "cuda" and config.bf16
    bar = tqdm(total=len(lengths), desc="inference", unit="video", disable=not progress, leave=False)
    for chunk in length_batches(lengths, max_batch_segments):
        x, lengths_t = batch_of(chunk)  # (b, T, d), (b,)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            _, cas, logits = model(x)  # (b, T, C) each
        probs = losses.video_probs(cas.float(), lengths_t, block_size=config.effective_block_size, k=config.k)  # (b, C)
        logits = logits.float().cpu().numpy()
        probs = probs.float().cpu().numpy()
        for row, j in enumerate(chunk):
            logits_out[j] = logits[row, : lengths[j]].copy()
            probs_out[j] = probs[row]
        bar.update(len(chunk))
    bar.close()
    model.train(was_training)
    return logits_out, probs_out


def infer(
    model: WtalModel,
    dataset: FeatureDataset,
    indices,
    config: Config,
    device=None,
    progress: bool = False,
    max_batch_segments: int = MAX_BATCH_SEGMENTS,
) -> tuple[list, np.ndarray]:
    """Class activations of whole videos and their video probabilities.

    Videos are grouped by length into padded batches of at most
    ``max_batch_segments`` segments (padding is masked by ``lengths``).
    Returns (logits: list of (n_i, C) float32 raw activations in the order of
    ``indices``, video_probs: (N, C) float32 P(c|V)).
    """
    device = device or next(model.parameters()).device
    arrays = [dataset.features(i) for i in indices]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)  # (N,)

    def batch_of(chunk):
        batch = np.zeros((len(chunk), int(lengths[chunk].max()), dataset.feature_dim), dtype=np.float32)  # (b, T, d)
        for row, j in enumerate(chunk):
            batch[row, : lengths[j]] = arrays[j]
        return torch.from_numpy(batch).to(device, non_blocking=True), torch.from_numpy(lengths[chunk]).to(device)

    return infer_batches(model, lengths, batch_of, model.num_classes, config, device, progress, max_batch_segments)


def scores_attrs(config: Config, name: str, subset: str, checkpoint: str) -> dict:
    """What a scores file records beside the activations: enough to localize without the config."""
    return {
        "name": name,
        "subset": subset,
        "seconds_per_segment": config.seconds_per_segment,
        "kappa": config.kappa,
        "block_size": config.block_size,
        "block_processing": config.block_processing,
        "k": config.k,
        "config": config.to_dict(),
        "checkpoint": checkpoint,
    }


def scores_in_memory(split_annotations: Annotations, logits, video_probs, attrs: dict) -> Scores:
    """A :class:`Scores` without a file; ``logits`` in the order of ``split_annotations.videos``."""
    return Scores(
        annotations=split_annotations,
        logits=dict(zip(split_annotations.videos, logits)),
        video_probs=video_probs,
        attrs=attrs,
    )


def infer_stored(model, store: FeatureStore, num_classes: int, config: Config,
                 max_batch_segments: int = MAX_BATCH_SEGMENTS) -> tuple[list, np.ndarray]:
    """:func:`wtal_kit.training.inference.infer` of every video of ``store``, batches gathered on its device.

    The same loop and batches as ``infer`` (:func:`wtal_kit.training.inference.infer_batches`), hence the
    same numbers; no video is read or copied again. Returns (logits: list of (n_i, C) float32 in
    the store's order, video_probs: (N, C) float32).
    """
    def batch_of(chunk):
        meta = torch.from_numpy(np.stack([store.offsets[chunk], store.lengths[chunk]])).to(store.device)  # (2, b)
        return store.gather(meta[0], meta[1], int(store.lengths[chunk].max())), meta[1]  # (b, T, d), (b,)

    return infer_batches(model, store.lengths, batch_of, num_classes, config, store.device,
                         max_batch_segments=max_batch_segments)


@dataclass
class Evaluated:
    """An evaluation on the held-out split: after which iteration, on which scores, with what result."""

    iteration: int
    scores: Scores
    localizer: Localizer = field(repr=False)
    evaluation: Evaluation


def evaluate_split(model, dataset: FeatureDataset, split: Split, config: Config, checkpoint: str, iteration: int, *,
                   test_features: FeatureStore | None = None, progress: bool = False) -> Evaluated:
    """Infer the held-out split of ``split`` and evaluate it as ``config`` says.

    test_features: the held-out split's features on the model's device (in ``split.test_indices``
    order), else they are read from ``dataset`` again. checkpoint: recorded in the scores' attrs.
    """
    annotations = dataset.annotations
    if test_features is not None:
        logits, video_probs = infer_stored(model, test_features, annotations.num_classes, config)
    else:
        logits, video_probs = infer(model, dataset, split.test_indices, config, progress=progress)
    attrs = scores_attrs(config, annotations.name, split.test_subset, checkpoint)
    scores = scores_in_memory(annotations.select(split.test_indices), logits, video_probs, attrs)
    localizer = Localizer(scores)
    evaluation = localizer.evaluate(config.localization_settings, iou_thresholds=config.iou_thresholds,
                                    eval_protocol=config.eval_protocol)
    return Evaluated(iteration, scores, localizer, evaluation)
