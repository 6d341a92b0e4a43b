"""The training loop: video-level labels only, the losses of docs/method.md, periodic evaluation.

``train(config, run_dir)`` trains the model of :mod:`wtal_kit.model` with the losses of
:mod:`wtal_kit.losses`, evaluates it on the held-out split every ``eval_every`` iterations and
writes the run directory of :mod:`wtal_kit.training.runs`. The pieces it calls each live in
their own room: the data path (:mod:`~wtal_kit.training.batches`), the state and its step
(:mod:`~wtal_kit.training.state`), the evaluation (:mod:`~wtal_kit.training.inference`), the
logs (:mod:`~wtal_kit.training.log`) and the run folder (:mod:`~wtal_kit.training.runs`).

As a library call (notebooks, dashboards): ``callbacks`` observe every iteration (with the loss
terms every ``log_every`` iterations) and every evaluation (the mAP table); ``stop`` (a ``threading.Event``) ends the run
cleanly after the current iteration, with a valid checkpoint that ``resume=True`` continues
from; ``quiet=True`` prints nothing. Every random draw comes from generators owned by the run
(numpy for the batches, a torch ``Generator`` for initialisation and dropout), never from
torch's or numpy's global state, so a training can run in a background thread.

No host synchronisation between two reads: the step returns its loss terms as tensors on the
device, the loop sums them there (:class:`~wtal_kit.training.log.LossWindow`) and reads values
back only every ``log_every`` iterations (progress bar, callbacks) and at each evaluation, so on a
GPU the host queues steps ahead of the device. On CPU a read costs nothing (``log_every`` 1).

Determinism: on CPU, a given config (seed included) gives the same numbers to the last digit on
one machine, and ``resume=True`` continues from ``checkpoint.pt`` to exactly the result of an
uninterrupted run (model, optimizer and both random streams are saved).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from wtal_kit import checks
from wtal_kit.config import Config
from wtal_kit.data.catalog import load_dataset
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.hdf5 import Scores
from wtal_kit.evaluate import Evaluation
from wtal_kit.training.batches import Split, TrainingData, training_feature_mean
from wtal_kit.training.inference import Evaluated, evaluate_split, resolve_device
from wtal_kit.training.log import LossWindow, MetricsLog, map_line
from wtal_kit.training.runs import BEST_CHECKPOINT, CHECKPOINT, CONFIG, METRICS, load_checkpoint, write_outputs
from wtal_kit.training.state import TrainState


# -- what callbacks see ------------------------------------------------------------------
LOG_EVERY = {"cpu": 1, "cuda": 10}  # train()'s default log_every per device type (others: 1)


@dataclass(frozen=True)
class IterationEvent:
    """One training iteration: ``iteration`` iterations are done out of ``iterations``.

    losses: this batch's terms as floats (total, classification and, with a metric loss, metric) on
    the iterations whose terms the loop read back: every ``log_every``-th, each evaluation's and the
    last (every iteration with the CPU default, ``log_every=1``); ``None`` on the others.
    """

    iteration: int
    iterations: int
    losses: dict | None


@dataclass(frozen=True)
class EvaluationEvent:
    """One evaluation on the held-out split after ``iteration`` iterations.

    losses: mean of each loss term since the previous evaluation; evaluation: mAP per
    tIoU threshold (with "avg") and per-class AP; scores: the split's activations.
    """

    iteration: int
    iterations: int
    losses: dict
    evaluation: Evaluation
    scores: Scores


class Callback:
    """Subclass and override what you need; both methods run in the training's thread."""

    def on_iteration(self, event: IterationEvent) -> None:
        pass

    def on_evaluation(self, event: EvaluationEvent) -> None:
        pass


@dataclass
class TrainResult:
    run_dir: Path
    config: Config
    mean_ap: pd.Series  # index: thresholds + "avg"
    per_class: pd.DataFrame
    checkpoint: str  # which checkpoint the reported numbers come from
    metrics: pd.DataFrame  # the metrics.csv log
    seconds: float
    iterations_done: int = 0  # < config.iterations when ``stop`` ended the run early

    @property
    def completed(self) -> bool:
        return self.iterations_done >= self.config.iterations


# -- the loop -------------------------------------------------------------------------
def train(config: Config, run_dir, *, resume: bool = False, progress: bool = True, quiet: bool = False,
          callbacks=(), stop=None, dataset: FeatureDataset | None = None, log_every: int | None = None) -> TrainResult:
    """Train per ``config`` into ``run_dir``; returns the final evaluation.

    resume: continue from ``run_dir/checkpoint.pt`` (same config required).
    progress: tqdm progress bars; quiet: print nothing at all (no bars either).
    callbacks: :class:`Callback` objects, called after every iteration and every evaluation.
    stop: an object with ``is_set()`` (a ``threading.Event``); once set, the run saves a
    checkpoint after the current iteration, evaluates the model it reached, writes its
    results (``"completed": false``) and returns (``result.completed`` is False).
    dataset: an already-opened dataset (else :func:`wtal_kit.data.catalog.load_dataset`).
    log_every: read the loss terms back for the progress bar and ``IterationEvent.losses`` every this
    many iterations (one host synchronisation each on a GPU); None: :data:`LOG_EVERY` of the device.
    """
    started = time.perf_counter()
    run_dir, device = Path(run_dir), resolve_device(config.device)
    log_every = checks.integer(LOG_EVERY.get(device.type, 1) if log_every is None else log_every, "log_every", minimum=1)
    data = TrainingData(dataset or load_dataset(config), config, device)
    state = TrainState.fresh(config, data.num_classes, device, data.input_mean(), data.dataset.annotations.classes)
    run_dir.mkdir(parents=True, exist_ok=True)  # only now: a dataset that cannot be opened leaves no folder behind
    log, window = MetricsLog(run_dir, config), LossWindow()
    done, best = 0, {"score": -math.inf, "iteration": None}
    if resume and (run_dir / CHECKPOINT).is_file():
        done, extra = state.restore(run_dir / CHECKPOINT)
        best = extra.get("best", best)
        window.restore(extra.get("loss_window", {}))  # a run stopped between two evaluations
        log.truncate(done)
    else:
        log.start()
    config.to_json(run_dir / CONFIG)

    bars = progress and not quiet
    bar = tqdm(total=config.iterations, initial=done, desc=f"train [{config.preset}]", unit="it", disable=not bars)
    latest: Evaluated | None = None
    state.model.train()
    while done < config.iterations and not (stop is not None and stop.is_set()):
        terms = state.step(data.batch(state.rng))  # 0-d tensors on the device, not read
        done += 1
        window.add(terms)
        evaluate = done % config.eval_every == 0 or done == config.iterations
        read = None  # this iteration's terms as floats, where they are read back
        if evaluate or done % log_every == 0:
            read = {name: float(value) for name, value in terms.items()}
            bar.set_postfix({name: f"{value:.3f}" for name, value in read.items()}, refresh=False)
        bar.update(1)
        for callback in callbacks:
            callback.on_iteration(IterationEvent(done, config.iterations, read))
        if evaluate:
            latest = evaluate_split(state.model, data.dataset, data.split, config, "last", done,
                                    test_features=data.test_features)
            mean_losses = window.take()
            log.append(done, mean_losses, latest.evaluation.mean_ap)
            if not quiet:
                bar.write(map_line(config, latest.evaluation.mean_ap, done, data.split.test_subset))
            for callback in callbacks:
                callback.on_evaluation(EvaluationEvent(done, config.iterations, mean_losses, latest.evaluation, latest.scores))
            best = _keep_best(state, run_dir, latest, best)
            state.save(run_dir / CHECKPOINT, done, extra={"best": best})
    bar.close()
    log.close()
    if latest is None or latest.iteration != done:  # stopped between two evaluations
        state.save(run_dir / CHECKPOINT, done, extra={"best": best, "loss_window": window.state()})
    return _finish(run_dir, data, state, latest, done, best, started, progress=bars)


def _keep_best(state: TrainState, run_dir: Path, latest: Evaluated, best: dict) -> dict:
    """checkpoint_selection="best_test_map", the released code's choice: keep the model with the best
    mAP@0.5 + mAP@0.7 on the TEST split (optimistic by construction) as checkpoint_best.pt."""
    if state.config.checkpoint_selection != "best_test_map":
        return best
    score = sum(float(latest.evaluation.mean_ap.get(t, 0.0)) for t in (0.5, 0.7))
    if score > best["score"]:
        best = {"score": score, "iteration": latest.iteration}
        state.save(run_dir / BEST_CHECKPOINT, latest.iteration)
    return best


def _finish(run_dir: Path, data: TrainingData, state: TrainState, latest: Evaluated | None, done: int, best: dict,
            started: float, progress: bool) -> TrainResult:
    """Evaluate the reported model where the latest evaluation did not see it, and write the run's outputs."""
    config = state.config
    checkpoint = "last"
    if config.checkpoint_selection == "best_test_map" and best["iteration"] is not None:
        state.model.load_state_dict(load_checkpoint(run_dir / BEST_CHECKPOINT, map_location=data.device)["model"])
        checkpoint = f"best_test_map (iteration {best['iteration']}, selected on the test split)"
    if checkpoint != "last" or latest is None or latest.iteration != done:
        latest = evaluate_split(state.model, data.dataset, data.split, config, checkpoint, done,
                                test_features=data.test_features, progress=progress)
    seconds = time.perf_counter() - started
    write_outputs(run_dir, config, data.dataset, data.split, latest, checkpoint, done, seconds, data.device)
    evaluation = latest.evaluation
    return TrainResult(run_dir, config, evaluation.mean_ap, evaluation.per_class, checkpoint,
                       pd.read_csv(run_dir / METRICS), seconds, done)


def untrained_result(config: Config, dataset: FeatureDataset | None = None) -> Evaluation:
    """mAP of the freshly initialised model (seeded like a run), for 'does training help' checks."""
    dataset = dataset or load_dataset(config)
    split = Split.of(config, dataset)
    input_mean = training_feature_mean(dataset.features, split.train_indices) if config.center_features else None
    state = TrainState.fresh(config, dataset.annotations.num_classes, resolve_device(config.device), input_mean)
    return evaluate_split(state.model, dataset, split, config, "untrained", 0).evaluation
