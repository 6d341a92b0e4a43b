"""Training and inference.

``train(config, run_dir)`` trains the model of :mod:`wtal_kit.model` with the
losses of :mod:`wtal_kit.losses` on video-level labels only, evaluates it on the
held-out split every ``eval_every`` iterations (logged to ``metrics.csv``, and to
TensorBoard when it is installed), and writes into ``run_dir``::

    config.json        the config used
    checkpoint.pt      the last checkpoint (the reported model), written atomically
    checkpoint_best.pt only with checkpoint_selection="best_test_map" (the released code's choice)
    metrics.csv        iteration, loss terms (mean since the previous evaluation), mAP per tIoU threshold and their average
    scores_<subset>.h5 class activations + video scores of the held-out split (read without torch)
    detections_<subset>.json  ActivityNet-style results
    results.json       the final mAP table, which checkpoint it comes from, preset, protocol, dataset

Determinism: on CPU, a given config (seed included) gives the same numbers to the
last digit, and ``resume=True`` continues from ``checkpoint.pt`` to exactly the
result of an uninterrupted run (model, optimizer and every random state are saved).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from wtal_kit import losses
from wtal_kit.config import Config
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.hdf5 import Scores, atomic_path, open_feature_store, write_scores
from wtal_kit.data.jsonio import write_detections_json
from wtal_kit.errors import InputError
from wtal_kit.model import WtalModel
from wtal_kit.pipeline import detections_from_scores, evaluate_detections

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_LAYOUTS = {"synthetic-thumos14": "thumos14", "synthetic-activitynet12": "activitynet12"}


# -- data ---------------------------------------------------------------------------
def load_dataset(config: Config) -> FeatureDataset:
    """The dataset a config names: an embedded synthetic layout or an HDF5 feature store."""
    if config.dataset in SYNTHETIC_LAYOUTS:
        from wtal_kit.data.synthetic import SyntheticSpec, make_synthetic_dataset
        from wtal_kit.data.wtalc import load_wtalc_annotations

        folder = REPO_ROOT / "data" / SYNTHETIC_LAYOUTS[config.dataset]
        annotations = load_wtalc_annotations(folder)
        spec = SyntheticSpec(feature_dim=config.feature_dim, seed=config.synthetic_seed)
        return make_synthetic_dataset(annotations, spec, seconds_per_segment=config.seconds_per_segment)
    path = Path(config.dataset)
    if path.suffix.lower() in (".h5", ".hdf5"):
        dataset = open_feature_store(path)
        if dataset.feature_dim != config.feature_dim:
            raise InputError(
                f"the store has feature dimension {dataset.feature_dim} but the config says {config.feature_dim} "
                f"(pass --feature-dim {dataset.feature_dim})",
                file=path,
                field="feature_dim",
            )
        return dataset
    raise InputError(
        f"unknown dataset {config.dataset!r}: use one of {sorted(SYNTHETIC_LAYOUTS)} or an HDF5 feature store "
        "(.h5, made by `wtal convert`)",
        field="dataset",
    )


def dataset_label(config: Config) -> str:
    """How a result's dataset is named in every report."""
    if config.dataset in SYNTHETIC_LAYOUTS:
        layout = {"thumos14": "THUMOS14", "activitynet12": "ActivityNet1.2"}[SYNTHETIC_LAYOUTS[config.dataset]]
        return f"embedded synthetic benchmark ({layout} layout, benchmark seed {config.synthetic_seed}, d={config.feature_dim})"
    return f"feature store {config.dataset}"


def split_subsets(config: Config, annotations: Annotations) -> tuple[str, str]:
    """(train subset, test subset): THUMOS14 trains on validation and tests on test; ActivityNet trains on training."""
    present = set(annotations.subsets)
    if {"validation", "test"} <= present:
        default = ("validation", "test")
    elif {"training", "validation"} <= present:
        default = ("training", "validation")
    else:
        default = (None, None)
    train_subset = config.train_subset or default[0]
    test_subset = config.test_subset or default[1]
    if train_subset is None or test_subset is None:
        raise InputError(
            f"cannot guess the train/test subsets from {sorted(present)}; pass --train-subset and --test-subset",
            file=annotations.source,
            field="subset",
        )
    annotations.indices(train_subset), annotations.indices(test_subset)  # raise on an unknown subset
    return train_subset, test_subset


class FeatureCache:
    """Keeps training features in memory up to a size limit (the synthetic ones are regenerated otherwise)."""

    def __init__(self, dataset: FeatureDataset, limit_mb: int):
        self.dataset = dataset
        self.limit_bytes = limit_mb * 2**20
        self.used_bytes = 0
        self.arrays: dict[int, np.ndarray] = {}

    def __call__(self, index: int) -> np.ndarray:
        array = self.arrays.get(index)
        if array is None:
            array = self.dataset.features(index)
            if self.used_bytes + array.nbytes <= self.limit_bytes:
                self.arrays[index] = array
                self.used_bytes += array.nbytes
        return array


# -- batches --------------------------------------------------------------------------
class BatchSampler:
    """Batches of videos that share classes, as the metric loss needs pairs of the same class.

    paper: ``batch_classes`` distinct classes, ``batch_videos // batch_classes`` videos
    labelled with each (the paper: 20 videos, 4 classes, >= 5 each), the rest of the
    batch (if any) random; code: 5 classes drawn with replacement x 4 videos each.
    A class with fewer videos than needed contributes all of them and the batch is
    topped up with random videos.
    """

    def __init__(self, video_labels: np.ndarray, config: Config):
        self.video_labels = np.asarray(video_labels, dtype=bool)  # (N_train, C)
        self.num_videos = len(self.video_labels)
        if config.sampler == "code":
            self.num_classes_drawn, self.per_class, self.replace_classes = 5, 4, True
        else:
            self.num_classes_drawn = config.batch_classes
            self.per_class = config.batch_videos // config.batch_classes
            self.replace_classes = False
        self.batch_videos = self.num_classes_drawn * self.per_class if config.sampler == "code" else config.batch_videos
        counts = self.video_labels.sum(axis=0)
        self.classes = np.flatnonzero(counts >= 2)  # a class with one video cannot form a pair
        if len(self.classes) == 0:
            raise InputError("no class has two training videos: the batch sampler needs pairs", field="labels")
        self.members = [np.flatnonzero(self.video_labels[:, c]) for c in range(self.video_labels.shape[1])]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        draw = min(self.num_classes_drawn, len(self.classes)) if not self.replace_classes else self.num_classes_drawn
        classes = rng.choice(self.classes, size=draw, replace=self.replace_classes)
        chosen: list[int] = []
        for c in classes:
            members = self.members[c]
            take = min(self.per_class, len(members))
            chosen.extend(rng.choice(members, size=take, replace=False).tolist())
        missing = self.batch_videos - len(chosen)
        if missing > 0:
            chosen.extend(rng.choice(self.num_videos, size=missing, replace=self.num_videos < missing).tolist())
        return np.asarray(chosen, dtype=np.int64)


def make_batch(arrays: list[np.ndarray], max_segments: int, rng: np.random.Generator):
    """Random windows of at most ``max_segments`` segments, zero-padded.

    Returns features (B, T, d) float32 and lengths (B,) int64, T = longest window.
    """
    windows = []
    for array in arrays:
        n = len(array)
        if n > max_segments:
            start = int(rng.integers(0, n - max_segments + 1))
            array = array[start : start + max_segments]
        windows.append(array)
    lengths = np.array([len(w) for w in windows], dtype=np.int64)
    batch = np.zeros((len(windows), int(lengths.max()), windows[0].shape[1]), dtype=np.float32)  # (B, T, d)
    for i, window in enumerate(windows):
        batch[i, : len(window)] = window
    return batch, lengths


# -- model pieces ---------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA device is available", field="device")
    return torch.device(name)


def build_model(config: Config, num_classes: int) -> WtalModel:
    return WtalModel(feature_dim=config.feature_dim, num_classes=num_classes, dropout=config.dropout, kappa=config.kappa)


def build_custom_factors(config: Config, num_classes: int) -> torch.nn.Parameter | None:
    """A_c of the learnable metric M_c = A_c^T A_c (distance "custom"), (C, r, d)."""
    if config.distance != "custom" or config.metric_loss == "none":
        return None
    generator = torch.Generator().manual_seed(config.seed + 1)
    scale = 1.0 / math.sqrt(config.feature_dim)
    return torch.nn.Parameter(torch.randn(num_classes, config.custom_rank, config.feature_dim, generator=generator) * scale)


def build_optimizer(parameters, config: Config, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused implementation where this torch has it for the device (same update, one kernel)."""
    try:
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or no fused Adam for this device
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)


def compute_losses(model, custom_factors, features, lengths, labels, config: Config) -> dict:
    """Forward + loss terms of one batch. features (B, T, d), lengths (B,), labels (B, C)."""
    u, cas, _ = model(features)  # u: (B, T, d), cas: (B, T, C)
    if config.classification_loss == "softmax_mil":
        classification = losses.softmax_mil(cas, lengths, labels)
    else:
        probs = losses.video_scores(cas, lengths, block_size=config.effective_block_size, k=config.k)  # (B, C)
        loss_fn = losses.balanced_bce if config.classification_loss == "bbce" else losses.bce
        classification = loss_fn(probs, labels)
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
        )
        terms["metric"] = metric
        total = total + config.metric_weight * metric
    terms["total"] = total
    return terms


# -- inference ------------------------------------------------------------------------
@torch.inference_mode()
def infer(
    model: WtalModel,
    dataset: FeatureDataset,
    indices,
    config: Config,
    device=None,
    progress: bool = False,
    max_batch_segments: int = 16384,
):
    """Class activations of whole videos (no window) and their video scores.

    Videos are grouped by length into padded batches of at most
    ``max_batch_segments`` segments (padding is masked by ``lengths``).
    Returns (logits: list of (n_i, C) float32 arrays in the order of ``indices``,
    video_scores: (N, C) float32).
    """
    device = device or next(model.parameters()).device
    indices = list(indices)
    was_training = model.training
    model.eval()
    arrays = [dataset.features(i) for i in indices]
    order = np.argsort([len(a) for a in arrays], kind="stable")
    logits_out: list = [None] * len(indices)
    scores_out = np.zeros((len(indices), dataset.annotations.num_classes), dtype=np.float32)
    autocast = device.type == "cuda" and config.bf16
    bar = tqdm(total=len(indices), desc="inference", unit="video", disable=not progress, leave=False)
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * len(arrays[order[stop]]) <= max_batch_segments:
            stop += 1
        chunk = order[start:stop]
        lengths = np.array([len(arrays[j]) for j in chunk], dtype=np.int64)
        batch = np.zeros((len(chunk), int(lengths.max()), dataset.feature_dim), dtype=np.float32)  # (b, T, d)
        for row, j in enumerate(chunk):
            batch[row, : lengths[row]] = arrays[j]
        x = torch.from_numpy(batch).to(device, non_blocking=True)
        lengths_t = torch.from_numpy(lengths).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            _, cas, logits = model(x)  # (b, T, C)
        probs = losses.video_scores(cas.float(), lengths_t, block_size=config.effective_block_size, k=config.k)  # (b, C)
        logits = logits.float().cpu().numpy()
        probs = probs.float().cpu().numpy()
        for row, j in enumerate(chunk):
            logits_out[j] = logits[row, : lengths[row]].copy()
            scores_out[j] = probs[row]
        bar.update(len(chunk))
        start = stop
    bar.close()
    model.train(was_training)
    return logits_out, scores_out


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


def scores_in_memory(split_annotations: Annotations, logits, video_scores, attrs: dict) -> Scores:
    """A :class:`Scores` without a file; ``logits`` in the order of ``split_annotations.videos``."""
    return Scores(
        annotations=split_annotations,
        logits=dict(zip(split_annotations.videos, logits)),
        video_scores=video_scores,
        attrs=attrs,
    )


def evaluate_scores(scores: Scores, config: Config):
    """Localize + evaluate per the config; returns (mAP series with avg, per-class AP, detections)."""
    detections = detections_from_scores(scores, config.localization, threshold=config.threshold, gamma=config.gamma)
    ground_truth = scores.annotations.ground_truth()
    mean_ap, per_class = evaluate_detections(ground_truth, detections, config.iou_thresholds, config.eval_protocol)
    return mean_ap, per_class, detections


# -- checkpoints ----------------------------------------------------------------------
def save_checkpoint(path, model, custom_factors, optimizer, iteration: int, rng: np.random.Generator, config: Config, extra=None):
    state = {
        "model": model.state_dict(),
        "custom_factors": None if custom_factors is None else custom_factors.detach().cpu(),
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        "numpy_rng": json.dumps(rng.bit_generator.state),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": json.dumps(config.to_dict()),
        "extra": json.dumps(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", file=path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot load checkpoint ({type(exc).__name__}: {exc})", file=path) from None


def load_model(path, device="cpu") -> tuple[WtalModel, Config]:
    """The model and config stored in a checkpoint."""
    state = load_checkpoint(path, map_location=device)
    config = Config.from_dict(json.loads(state["config"]))
    num_classes = state["model"]["classifier.weight"].shape[0]
    model = build_model(config, num_classes).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return model, config


# -- training -------------------------------------------------------------------------
@dataclass
class TrainResult:
    run_dir: Path
    config: Config
    mean_ap: pd.Series  # index: thresholds + "avg"
    per_class: pd.DataFrame
    checkpoint: str  # which checkpoint the reported numbers come from
    metrics: pd.DataFrame  # the metrics.csv log
    seconds: float


METRIC_FIELDS_FIXED = ["iteration", "loss_total", "loss_classification", "loss_metric"]


def _metric_fields(config: Config) -> list[str]:
    return METRIC_FIELDS_FIXED + [f"map@{t:g}" for t in config.iou_thresholds] + ["map_avg"]


def _seed_everything(seed: int):
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def train(
    config: Config,
    run_dir,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    dataset: FeatureDataset | None = None,
) -> TrainResult | None:
    """Train per ``config`` into ``run_dir``; returns the final evaluation.

    resume: continue from ``run_dir/checkpoint.pt`` (same config required).
    stop_after: stop (after saving a checkpoint) once this many iterations are
    done, as an interruption would; returns None then.
    dataset: an already-opened dataset (else :func:`load_dataset`).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dataset = dataset or load_dataset(config)
    annotations = dataset.annotations
    train_subset, test_subset = split_subsets(config, annotations)
    train_indices = annotations.indices(train_subset)
    test_indices = annotations.indices(test_subset)
    test_annotations = annotations.select(test_indices)  # the held-out split, evaluated every eval_every
    eval_attrs = scores_attrs(config, annotations.name, test_subset, "last")
    device = resolve_device(config.device)

    _seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_model(config, annotations.num_classes).to(device)
    custom_factors = build_custom_factors(config, annotations.num_classes)
    parameters = list(model.parameters())
    if custom_factors is not None:
        custom_factors = torch.nn.Parameter(custom_factors.data.to(device))
        parameters.append(custom_factors)
    optimizer = build_optimizer(parameters, config, device)
    sampler = BatchSampler(annotations.video_labels[train_indices], config)
    cache = FeatureCache(dataset, config.feature_cache_mb)
    labels_all = torch.from_numpy(annotations.video_labels.astype(np.float32))  # (N, C)

    checkpoint_path = run_dir / "checkpoint.pt"
    metrics_path = run_dir / "metrics.csv"
    fields = _metric_fields(config)
    start_iteration, best = 0, {"score": -math.inf, "iteration": None}
    if resume and checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path, map_location=device)
        saved = Config.from_dict(json.loads(state["config"]))
        if saved != config:
            differing = sorted(k for k, v in config.to_dict().items() if saved.to_dict().get(k) != v)
            raise InputError(f"--resume with a different config (fields {differing})", file=checkpoint_path, field="config")
        model.load_state_dict(state["model"])
        if custom_factors is not None:
            custom_factors.data.copy_(state["custom_factors"].to(device))
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        start_iteration = int(state["iteration"])
        best = json.loads(state["extra"]).get("best", best)
        _truncate_metrics(metrics_path, start_iteration)
    else:
        with open(metrics_path, "w", newline="") as handle:
            csv.writer(handle).writerow(fields)
    config.to_json(run_dir / "config.json")

    writer = _tensorboard_writer(run_dir)
    model.train()
    bar = tqdm(range(start_iteration, config.iterations), initial=start_iteration, total=config.iterations,
               desc=f"train [{config.preset}]", unit="it", disable=not progress)
    running, window = {}, 0
    last_evaluation = None  # (iteration, scores, (mean_ap, per_class, detections)) of the latest evaluation
    for iteration in bar:
        batch_indices = train_indices[sampler.sample(rng)]
        arrays = [cache(i) for i in batch_indices]
        features, lengths = make_batch(arrays, config.max_segments, rng)
        features = torch.from_numpy(features)
        if device.type == "cuda":
            features = features.pin_memory()  # lets the copy below overlap with GPU work
        features = features.to(device, non_blocking=True)  # (B, T, d)
        lengths_t = torch.from_numpy(lengths).to(device, non_blocking=True)  # (B,)
        labels = labels_all[batch_indices].to(device, non_blocking=True)  # (B, C)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and config.bf16):
            terms = compute_losses(model, custom_factors, features, lengths_t, labels, config)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        current = {name: float(value.detach()) for name, value in terms.items()}
        for name, value in current.items():
            running[name] = running.get(name, 0.0) + value
        window += 1
        bar.set_postfix({name: f"{value:.3f}" for name, value in current.items()})
        done = iteration + 1
        if done % config.eval_every == 0 or done == config.iterations:
            logits, video_scores = infer(model, dataset, test_indices, config, device)
            scores = scores_in_memory(test_annotations, logits, video_scores, eval_attrs)
            evaluation = evaluate_scores(scores, config)
            last_evaluation = (done, scores, evaluation)
            mean_ap = evaluation[0]
            # loss columns: mean over the iterations since the previous evaluation
            mean = {name: value / window for name, value in running.items()}
            running, window = {}, 0
            row = [done, mean["total"], mean["classification"], mean.get("metric", float("nan"))]
            row += [float(mean_ap[t]) for t in config.iou_thresholds] + [float(mean_ap["avg"])]
            with open(metrics_path, "a", newline="") as handle:
                csv.writer(handle).writerow(row)
            if writer is not None:
                for name, value in zip(fields[1:], row[1:]):
                    writer.add_scalar(name, value, done)
            bar.write(f"[{config.preset}] it {done}: " + "  ".join(f"mAP@{t:g}={100 * mean_ap[t]:.1f}" for t in config.iou_thresholds)
                      + f"  avg={100 * mean_ap['avg']:.1f}  (held-out split '{test_subset}', {dataset_label(config)})")
            if config.checkpoint_selection == "best_test_map":
                # The released code's selection: mAP@0.5 + mAP@0.7 on the TEST split (optimistic by construction).
                score = sum(float(mean_ap.get(t, 0.0)) for t in (0.5, 0.7))
                if score > best["score"]:
                    best = {"score": score, "iteration": done}
                    save_checkpoint(run_dir / "checkpoint_best.pt", model, custom_factors, optimizer, done, rng, config)
            save_checkpoint(checkpoint_path, model, custom_factors, optimizer, done, rng, config, extra={"best": best})
            if stop_after is not None and done >= stop_after and done < config.iterations:
                bar.close()
                return None
    bar.close()
    if writer is not None:
        writer.close()

    checkpoint_used = "last"
    if config.checkpoint_selection == "best_test_map" and best["iteration"] is not None:
        state = load_checkpoint(run_dir / "checkpoint_best.pt", map_location=device)
        model.load_state_dict(state["model"])
        checkpoint_used = f"best_test_map (iteration {best['iteration']}, selected on the test split)"
    attrs = scores_attrs(config, annotations.name, test_subset, checkpoint_used)
    if checkpoint_used == "last" and last_evaluation is not None and last_evaluation[0] == config.iterations:
        _, scores, (mean_ap, per_class, detections) = last_evaluation  # the last evaluation saw this very model
    else:
        logits, video_scores = infer(model, dataset, test_indices, config, device, progress=progress)
        scores = scores_in_memory(test_annotations, logits, video_scores, attrs)
        mean_ap, per_class, detections = evaluate_scores(scores, config)
    logits = [scores.logits[video] for video in test_annotations.videos]
    write_scores(run_dir / f"scores_{test_subset}.h5", annotations, test_indices, logits, scores.video_scores, attrs)
    write_detections_json(run_dir / f"detections_{test_subset}.json", detections, videos=scores.annotations.videos,
                          external_data={"config": config.to_dict(), "checkpoint": checkpoint_used})
    seconds = time.perf_counter() - started
    results = {
        "dataset": dataset_label(config),
        "synthetic": config.dataset in SYNTHETIC_LAYOUTS,
        "preset": config.preset,
        "train_subset": train_subset,
        "test_subset": test_subset,
        "checkpoint": checkpoint_used,
        "localization": config.localization,
        "eval_protocol": config.eval_protocol,
        "iterations": config.iterations,
        "map": {str(k): float(v) for k, v in mean_ap.items()},
        "per_class_ap": {str(t): {str(c): float(v) for c, v in per_class[t].items()} for t in per_class.columns},
        "seconds": seconds,
        "device": str(device),
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    metrics = pd.read_csv(metrics_path)
    return TrainResult(run_dir, config, mean_ap, per_class, checkpoint_used, metrics, seconds)


def _truncate_metrics(path: Path, iteration: int):
    """Drop log rows written after the checkpoint we resume from."""
    if not path.is_file():
        return
    table = pd.read_csv(path)
    table = table[table["iteration"] <= iteration]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def _tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def untrained_result(config: Config, dataset: FeatureDataset | None = None):
    """mAP of the freshly initialised model (seeded like a run), for 'does training help' checks."""
    dataset = dataset or load_dataset(config)
    annotations = dataset.annotations
    _, test_subset = split_subsets(config, annotations)
    test_indices = annotations.indices(test_subset)
    _seed_everything(config.seed)
    model = build_model(config, annotations.num_classes).to(resolve_device(config.device))
    logits, video_scores = infer(model, dataset, test_indices, config)
    scores = scores_in_memory(annotations.select(test_indices), logits, video_scores,
                              scores_attrs(config, annotations.name, test_subset, "untrained"))
    mean_ap, per_class, _ = evaluate_scores(scores, config)
    return mean_ap, per_class
