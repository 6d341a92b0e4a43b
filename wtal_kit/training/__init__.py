"""Training, by role: the loop (:mod:`.loop`), batches and feature caches (:mod:`.batches`), the
train state and its public step (:mod:`.state`), inference and evaluation (:mod:`.inference`),
logs (:mod:`.log`) and run folders (:mod:`.runs`).

    state = TrainState.fresh(config, data.num_classes, device, data.input_mean())
    terms = state.step(data.batch(state.rng))   # one optimisation step, as train() takes it
"""

from wtal_kit.training.batches import (
    Batch,
    BatchSampler,
    FeatureCache,
    FeatureStore,
    Split,
    TrainingData,
    draw_windows,
    load_training_features,
    make_batch,
    training_feature_mean,
)
from wtal_kit.training.inference import evaluate_split, infer, infer_stored, resolve_device
from wtal_kit.training.loop import Callback, EvaluationEvent, IterationEvent, TrainResult, train, untrained_result
from wtal_kit.training.runs import Run, load_run
from wtal_kit.training.state import TrainState, build_optimizer, compute_losses

__all__ = [
    "Batch", "BatchSampler", "Callback", "EvaluationEvent", "FeatureCache", "FeatureStore", "IterationEvent", "Run",
    "Split", "TrainResult", "TrainState", "TrainingData", "build_optimizer", "compute_losses", "draw_windows",
    "evaluate_split", "infer", "infer_stored", "load_run", "load_training_features", "make_batch", "resolve_device",
    "train", "training_feature_mean", "untrained_result",
]


# 0.1's names of this module that moved (wtal_kit/legacy.py): they warn, and go away in 0.3
from wtal_kit import legacy  # noqa: E402

__getattr__ = legacy.old_names("wtal_kit.training")  # its own name, also when run as __main__
