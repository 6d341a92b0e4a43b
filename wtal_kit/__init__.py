"""wtal-kit: weakly-supervised temporal action localization with deep metric learning.

The method is Islam & Radke, "Weakly Supervised Temporal Action Localization Using
Deep Metric Learning", WACV 2020 (restated in docs/method.md). The core (this
package) imports without any Jupyter, ipywidgets, plotly or voila package; the
dashboards live in ``widgets``. A notebook needs only ``import wtal_kit``::

    import wtal_kit
    result = wtal_kit.train(wtal_kit.Config.from_preset("quick"), "runs/quick")
    run = wtal_kit.load_run("runs/quick")
    localizer = wtal_kit.Localizer(run.scores("test"))
    localizer.evaluate(gamma=0.5).mean_ap

The public API (names are loaded on first use, so ``wtal localize`` and
``wtal evaluate`` never import torch):

Configuration and training
    Config            one typed config with the paper's defaults (``Config.from_preset("quick")``)
    LocalizationSettings  threshold, gamma, localization, min length, max per video: one checked value
    train             train a model into a run directory; callbacks, stop event, resume
    TrainState        model, optimizer and random streams, with the public ``step(batch)``
    Callback          base class of training callbacks (``on_iteration``, ``on_evaluation``)
    IterationEvent    what ``Callback.on_iteration`` receives: iteration, loss terms
    EvaluationEvent   what ``Callback.on_evaluation`` receives: iteration, mean losses, mAP table
    TrainResult       what ``train`` returns: mAP, per-class AP, metrics log, checkpoint used
Runs and scores
    load_run          open a run directory -> Run
    Run               config, results, metrics, annotations, ``scores(subset)``, ``model()``
    Scores            class activations + P(c|V) of one split (a scores file, or in memory)
    infer             class activations of whole videos with a model
    load_dataset      the dataset a config names (embedded synthetic layout or HDF5 store)
Localization and evaluation
    Localizer         detections, mAP, per-video table and views of one scores file, fast
    VideoView         one video and class: curves, detections (true/false positive), ground truth
    Evaluation        mAP per tIoU threshold (with "avg") and per-class AP
    localize          the paper's localization of one video (Sec. 3.5)
    localize_videos   either localization protocol over many videos -> detections table
    per_class_ap      AP of every ground-truth class at every tIoU threshold
    detection_map     mAP per tIoU threshold
    evaluate_detections  mAP and per-class AP of a detections table against ground truth
    reference         the readable evaluator, the oracle the fast one is tested equal to
Readers and writers
    read_scores, write_scores                   HDF5 scores files
    open_feature_store, write_feature_store     HDF5 feature stores
    load_wtalc_annotations, load_wtalc_release  the W-TALC release (annotation folder, pickled features)
    read_ground_truth_json, write_ground_truth_json, read_detections_json, write_detections_json
                                                ActivityNet-style JSON
    load_ground_truth                           ground truth from any of the above
Reproducing the paper
    experiments       the tables and figures as grids of configs, the results store, the runners,
                      our tables beside the published rows, the claims check, the protocol audit
Errors
    WtalError         base of every error raised on purpose
    InputError        bad input: names the file, the video and the field
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from wtal_kit.errors import InputError, WtalError

__version__ = "0.1.0"

_LOCATIONS = {
    "Config": "wtal_kit.config",
    "LocalizationSettings": "wtal_kit.config",
    "train": "wtal_kit.training.loop",
    "TrainState": "wtal_kit.training.state",
    "Callback": "wtal_kit.training.loop",
    "IterationEvent": "wtal_kit.training.loop",
    "EvaluationEvent": "wtal_kit.training.loop",
    "TrainResult": "wtal_kit.training.loop",
    "load_run": "wtal_kit.training.runs",
    "Run": "wtal_kit.training.runs",
    "Scores": "wtal_kit.data.hdf5",
    "infer": "wtal_kit.training.inference",
    "load_dataset": "wtal_kit.data.catalog",
    "Localizer": "wtal_kit.localizer",
    "VideoView": "wtal_kit.localizer",
    "Evaluation": "wtal_kit.evaluate",
    "evaluate_detections": "wtal_kit.evaluate",
    "localize": "wtal_kit.localization",
    "localize_videos": "wtal_kit.localization",
    "per_class_ap": "wtal_kit.evaluate",
    "detection_map": "wtal_kit.evaluate",
    "read_scores": "wtal_kit.data.hdf5",
    "write_scores": "wtal_kit.data.hdf5",
    "open_feature_store": "wtal_kit.data.hdf5",
    "write_feature_store": "wtal_kit.data.hdf5",
    "load_wtalc_annotations": "wtal_kit.data.wtalc",
    "load_wtalc_release": "wtal_kit.data.wtalc",
    "read_ground_truth_json": "wtal_kit.data.jsonio",
    "write_ground_truth_json": "wtal_kit.data.jsonio",
    "read_detections_json": "wtal_kit.data.jsonio",
    "write_detections_json": "wtal_kit.data.jsonio",
    "load_ground_truth": "wtal_kit.data.ground_truth",
}

# Submodules a notebook reaches as ``wtal_kit.<name>`` without importing them itself.
_SUBMODULES = ("experiments", "reference")

# Module paths before the rooms of 0.2, kept as aliases for one version (imported, they warn once):
# ``import wtal_kit.pipeline`` gives wtal_kit.localizer, and so on.
_MOVED = {
    "pipeline": "wtal_kit.localizer",
    "datasets": "wtal_kit.data.catalog",
    "bundled": "wtal_kit.data.bundled",
    "inference": "wtal_kit.training.inference",
    "runs": "wtal_kit.training.runs",
    "reproduction": "wtal_kit.experiments",
    "ray_executor": "wtal_kit.experiments.ray_runner",
    "report": "wtal_kit.experiments.published",
    "reports": "wtal_kit.experiments.notebooks",
    "sessions": "wtal_kit.apps.sessions",
    "serve": "wtal_kit.apps.serve",
    "demo": "wtal_kit.apps.demo",
    "cli": "wtal_kit.apps.cli",
}

__all__ = sorted(_LOCATIONS) + list(_SUBMODULES) + ["InputError", "WtalError", "__version__"]


def __getattr__(name: str):
    if name in _LOCATIONS:
        value = getattr(importlib.import_module(_LOCATIONS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"wtal_kit.{name}")
    if name in _MOVED:
        return _moved_module(name)
    raise AttributeError(f"module 'wtal_kit' has no attribute {name!r}")


def _moved_module(name: str):
    """The module an old path names now, with a FutureWarning (once per path: the module is then
    both ``sys.modules["wtal_kit.<name>"]`` and the package's attribute, so neither the import system
    nor :func:`__getattr__` comes back here)."""
    import warnings

    new = _MOVED[name]
    warnings.warn(f"wtal_kit.{name} is now {new}; the old path goes away in 0.3", FutureWarning, stacklevel=3)
    module = importlib.import_module(new)
    sys.modules[f"wtal_kit.{name}"] = module
    globals()[name] = module
    return module


class _MovedModules(importlib.abc.MetaPathFinder):
    """Lets ``import wtal_kit.pipeline`` (and the other paths of :data:`_MOVED`) find the module's new home."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.rpartition(".")
        if prefix != "wtal_kit" or name not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedLoader())


class _MovedLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _moved_module(spec.name.rpartition(".")[2])
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module):
        # Already executed under its new name; the import system has just set the old path's spec
        # on it, so give it back its own (else ``importlib.reload`` of the module would do nothing).
        module.__spec__ = self.own_spec


sys.meta_path.insert(0, _MovedModules())  # before the path finders: an old path is never a file


def __dir__():
    return sorted(set(globals()) | set(__all__))
