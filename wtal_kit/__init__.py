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
    train             train a model into a run directory; callbacks, stop event, resume
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
Readers and writers
    read_scores, write_scores                   HDF5 scores files
    open_feature_store, write_feature_store     HDF5 feature stores
    load_wtalc_annotations, load_wtalc_release  the W-TALC release (annotation folder, pickled features)
    read_ground_truth_json, write_ground_truth_json, read_detections_json, write_detections_json
                                                ActivityNet-style JSON
    load_ground_truth                           ground truth from any of the above
Reproducing the paper
    experiments       the tables and figures as grids of configs, the results store, the runner
    reproduction      tables with the published rows beside ours, the claims check, the protocol audit
Errors
    WtalError         base of every error raised on purpose
    InputError        bad input: names the file, the video and the field
"""

from __future__ import annotations

import importlib

from wtal_kit.errors import InputError, WtalError

__version__ = "0.1.0"

_LOCATIONS = {
    "Config": "wtal_kit.config",
    "train": "wtal_kit.training",
    "Callback": "wtal_kit.training",
    "IterationEvent": "wtal_kit.training",
    "EvaluationEvent": "wtal_kit.training",
    "TrainResult": "wtal_kit.training",
    "load_run": "wtal_kit.runs",
    "Run": "wtal_kit.runs",
    "Scores": "wtal_kit.data.hdf5",
    "infer": "wtal_kit.inference",
    "load_dataset": "wtal_kit.datasets",
    "Localizer": "wtal_kit.pipeline",
    "VideoView": "wtal_kit.pipeline",
    "Evaluation": "wtal_kit.pipeline",
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
_SUBMODULES = ("experiments", "reproduction")

__all__ = sorted(_LOCATIONS) + list(_SUBMODULES) + ["InputError", "WtalError", "__version__"]


def __getattr__(name: str):
    if name in _LOCATIONS:
        value = getattr(importlib.import_module(_LOCATIONS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"wtal_kit.{name}")
    raise AttributeError(f"module 'wtal_kit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
