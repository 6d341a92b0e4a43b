"""Runs on disk: checkpoints, the results of a run, and :func:`load_run` for notebooks.

A run directory (written by :func:`wtal_kit.train`) holds::

    config.json        the config used
    checkpoint.pt      the last checkpoint (the reported model), written atomically
    checkpoint_best.pt only with checkpoint_selection="best_test_map" (the released code's choice)
    metrics.csv        iteration, loss terms (mean since the previous evaluation), mAP per tIoU threshold and their average
    scores_<subset>.h5 raw class activations + P(c|V) of a split (read without torch)
    detections_<subset>.json  ActivityNet-style results
    results.json       the final mAP table, which checkpoint it comes from, preset, protocol, dataset

Checkpoints are loaded with ``weights_only=True``: loading one never runs code.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from wtal_kit.atomic import atomic_path, atomic_write_text
from wtal_kit.config import Config
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.catalog import dataset_label, is_synthetic, load_dataset, split_subsets
from wtal_kit.data.hdf5 import Scores, read_scores, write_scores
from wtal_kit.data.jsonio import read_json_object, write_detections_json
from wtal_kit.data.runfolder import CONFIG, METRICS, RESULTS, detections_file_name, scores_file_name
from wtal_kit.evaluate import is_average
from wtal_kit.errors import InputError
from wtal_kit.localizer import Localizer
from wtal_kit.model import WtalModel
from wtal_kit.training.batches import Split
from wtal_kit.training.inference import Evaluated, build_model, infer, resolve_device, scores_attrs

CHECKPOINT = "checkpoint.pt"
BEST_CHECKPOINT = "checkpoint_best.pt"


# -- checkpoints ----------------------------------------------------------------------
def save_checkpoint(path, model, custom_factors, optimizer, iteration: int, rng_state: dict, config: Config, extra=None,
                    classes=()):
    """Everything :func:`wtal_kit.train` needs to resume exactly: weights, optimizer, random streams;
    and the names of the classes the model scores (what ``wtal infer`` labels a store without classes with).

    rng_state: {"numpy": the batch sampler's bit-generator state, "torch": the training
    generator's state (a uint8 tensor)}.
    """
    state = {
        "model": model.state_dict(),
        "custom_factors": None if custom_factors is None else custom_factors.detach().cpu(),
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        "numpy_rng": json.dumps(rng_state["numpy"]),
        "torch_rng": rng_state["torch"],
        "config": json.dumps(config.to_dict()),
        "extra": json.dumps(extra or {}),
        "classes": json.dumps([str(name) for name in classes]),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint's dict, loaded with ``weights_only=True``: a pickle that would build anything but
    tensors and plain values is refused before it runs. Any failure is one InputError line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", file=path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own warnings about the file would be extra lines
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # not a zip, truncated, a refused global, a foreign pickle: torch raises many types
        text = str(exc).strip().splitlines()
        reason = text[0] if text else ""
        if "Weights only load failed" in reason or "weights_only" in str(exc):
            reason = "it holds Python objects other than tensors and plain values; refused (weights_only=True), nothing was run"
        raise InputError(f"not a wtal-kit checkpoint ({type(exc).__name__}: {reason[:200]})", file=path) from None
    if not isinstance(state, dict):
        raise InputError(f"not a wtal-kit checkpoint (holds a {type(state).__name__}, not a dict)", file=path)
    return state


def load_model(path, device="cpu") -> tuple[WtalModel, Config]:
    """The model (in eval mode) and config stored in a checkpoint."""
    state = load_checkpoint(path, map_location=device)
    for key in ("config", "model"):
        if key not in state:
            raise InputError(f"not a wtal-kit checkpoint (no {key!r} entry)", file=path, field=key)
    try:
        data = json.loads(state["config"])
    except (TypeError, ValueError, RecursionError):
        raise InputError("the stored config is not JSON text", file=path, field="config") from None
    try:
        config = Config.from_dict(data)
    except InputError as exc:
        raise InputError(exc.problem, file=path, field=exc.field) from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"the stored config is malformed ({str(exc)[:200]})", file=path, field="config") from None
    weights = state["model"]
    classifier = weights.get("classifier.weight") if isinstance(weights, dict) else None
    if not isinstance(classifier, torch.Tensor) or classifier.ndim != 2:
        raise InputError("the model weights lack a 2-D 'classifier.weight'", file=path, field="model")
    try:
        model = build_model(config, classifier.shape[0]).to(device)
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as exc:  # missing or unexpected keys, wrong shapes
        raise InputError(f"the model weights do not fit the stored config ({str(exc).strip().splitlines()[0][:200]})",
                         file=path, field="model") from None
    model.eval()
    return model, config


def checkpoint_classes(path, config: Config) -> tuple[str, ...]:
    """The class names a checkpoint's model scores, in its output order: recorded in the checkpoint
    since 0.2, else those of the dataset it was trained on (``config.dataset``, read again)."""
    state = load_checkpoint(path)
    try:
        classes = tuple(json.loads(state.get("classes", "[]")))
    except (TypeError, ValueError):
        raise InputError("the stored class list is not a JSON list", file=path, field="classes") from None
    return classes or tuple(load_dataset(config).annotations.classes)


# -- results --------------------------------------------------------------------------
def map_from_json(mapping: dict) -> pd.Series:
    """An mAP series (index: tIoU thresholds as floats, then "avg") from its JSON form."""
    return pd.Series({(key if is_average(key) else float(key)): float(value) for key, value in mapping.items()}, name="mAP")


def map_to_json(mean_ap: pd.Series) -> dict:
    return {str(key): float(value) for key, value in mean_ap.items()}


def write_results(run_dir: Path, results: dict) -> None:
    atomic_write_text(Path(run_dir) / RESULTS, json.dumps(results, indent=2) + "\n")


def write_outputs(run_dir: Path, config: Config, dataset, split: Split, evaluated: Evaluated, checkpoint: str,
                  iterations_done: int, seconds: float, device: torch.device) -> None:
    """A finished (or stopped) run's outputs: the held-out split's scores file, its detections and results.json."""
    scores, evaluation = evaluated.scores, evaluated.evaluation
    annotations = dataset.annotations
    logits = [scores.logits[video] for video in scores.annotations.videos]
    write_scores(run_dir / scores_file_name(split.test_subset), annotations, split.test_indices, logits, scores.video_probs,
                 scores.attrs)  # scores_attrs of this checkpoint, made by evaluate_split
    detections = evaluated.localizer.detections(config.localization_settings)
    write_detections_json(run_dir / detections_file_name(split.test_subset), detections, videos=scores.annotations.videos,
                          external_data={"config": config.to_dict(), "checkpoint": checkpoint})
    write_results(run_dir, {
        "dataset": dataset_label(config),
        "synthetic": is_synthetic(config),
        "preset": config.preset,
        "train_subset": split.train_subset,
        "test_subset": split.test_subset,
        "checkpoint": checkpoint,
        "localization": config.localization,
        "eval_protocol": config.eval_protocol,
        "iterations": config.iterations,
        "iterations_done": iterations_done,
        "completed": iterations_done >= config.iterations,
        "map": map_to_json(evaluation.mean_ap),
        "per_class_ap": {str(t): {str(c): float(v) for c, v in evaluation.per_class[t].items()} for t in evaluation.per_class.columns},
        "seconds": seconds,
        "device": str(device),
        "environment": environment(device),
    })


def environment(device: torch.device) -> dict:
    """What the last digits of a CPU run depend on: library versions, the CPU code path, threads."""
    import platform

    import numpy as np

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else None,
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


# -- a run, for notebooks -------------------------------------------------------------
@dataclass(eq=False)
class Run:
    """A finished (or interrupted) run directory, opened by :func:`load_run`.

    ``config`` and ``results`` are read at once; the metrics, the annotations, the
    scores of each subset and the model are read when first asked for.
    """

    path: Path
    config: Config
    results: dict
    _scores: dict = field(default_factory=dict, repr=False)
    _annotations: Annotations | None = field(default=None, repr=False)

    @property
    def metrics(self) -> pd.DataFrame:
        """The training log (metrics.csv): iteration, loss terms, mAP per tIoU threshold and their average."""
        path = self.path / METRICS
        if not path.is_file():
            raise InputError("this run has no metrics log", file=path)
        try:
            return pd.read_csv(path)
        except (OSError, ValueError) as exc:  # not CSV, not UTF-8, empty
            raise InputError(f"cannot read the metrics log ({type(exc).__name__})", file=path) from None

    @property
    def mean_ap(self) -> pd.Series:
        """The reported mAP per tIoU threshold and "avg" (fractions)."""
        if "map" not in self.results:
            raise InputError("this run has no final results yet (interrupted?)", file=self.path / RESULTS)
        try:
            return map_from_json(self.results["map"])
        except (AttributeError, TypeError, ValueError):
            raise InputError("'map' must be an object of tIoU -> number", file=self.path / RESULTS, field="map") from None

    @property
    def test_subset(self) -> str:
        """The held-out subset the run is evaluated on."""
        if "test_subset" in self.results:
            return self.results["test_subset"]
        return split_subsets(self.config, self.annotations)[1]

    @property
    def annotations(self) -> Annotations:
        """Annotations of the run's whole dataset (every subset)."""
        if self._annotations is None:
            self._annotations = load_dataset(self.config).annotations
        return self._annotations

    def scores_path(self, subset: str | None = None) -> Path:
        return self.path / scores_file_name(subset or self.test_subset)

    @property
    def subsets_with_scores(self) -> list[str]:
        return sorted(p.name[len("scores_") : -len(".h5")] for p in self.path.glob("scores_*.h5"))

    def scores(self, subset: str | None = None, *, device: str = "auto", progress: bool = True) -> Scores:
        """The scores of ``subset`` (default: the held-out one), read once and kept.

        Without a scores file for that subset, inference computes it (on the GPU when
        there is one, ``device="auto"``) and writes it atomically into the run.
        """
        subset = subset or self.test_subset
        if subset not in self._scores:
            path = self.scores_path(subset)
            if not path.is_file():
                self._write_scores(subset, device=device, progress=progress)
            self._scores[subset] = read_scores(path)
        return self._scores[subset]

    def localizer(self, subset: str | None = None, **kwargs):
        """A :class:`wtal_kit.Localizer` on :meth:`scores` of ``subset``."""
        return Localizer(self.scores(subset, **kwargs))

    def model(self, device: str = "cpu", checkpoint: str = CHECKPOINT) -> WtalModel:
        """The trained model in eval mode (loaded with weights_only=True)."""
        model, _ = load_model(self.path / checkpoint, device=resolve_device(device))
        return model

    def _write_scores(self, subset: str, *, device: str, progress: bool) -> Path:
        torch_device = resolve_device(device)
        model, config = load_model(self.path / CHECKPOINT, device=torch_device)
        dataset = load_dataset(config)
        annotations = dataset.annotations
        indices = annotations.indices(subset)
        logits, video_probs = infer(model, dataset, indices, config, torch_device, progress=progress)
        attrs = scores_attrs(config, annotations.name, subset, CHECKPOINT)
        return write_scores(self.scores_path(subset), annotations, indices, logits, video_probs, attrs)


def load_run(run_dir) -> Run:
    """Open a run directory written by :func:`wtal_kit.train` (or ``wtal train``)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError("no such run directory", file=path)
    config = Config.from_json(path / CONFIG)
    results_path = path / RESULTS
    results = read_json_object(results_path) if results_path.is_file() else {}
    return Run(path=path, config=config, results=results)
