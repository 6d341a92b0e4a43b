"""The one configuration of a run, with the paper's defaults.

Every field carries a one-line comment; "paper" means Islam & Radke, WACV 2020,
Sec. 4.2 (restated in docs/method.md), "code" the authors' released code,
where the two differ the paper is the default and the code's choice an option.
CLI flags and notebook parameters override fields (:meth:`Config.replace`);
every run saves the config it used as JSON next to its results.

Budgets: one vocabulary for every place that names how much a run trains (the ``--preset`` of
``wtal train``, the ``--mode`` of ``wtal reproduce``, the sliders' presets). A config records its
budget's name in ``preset``, so a saved config says exactly what ran (:data:`BUDGETS`):

- ``paper``: the paper's settings exactly (d = 2048, lr 1e-4, batch 20, 4401 iterations).
- ``quick``: the demo's CPU budget on the embedded synthetic benchmark: d = 256, lr 1e-3,
  1500 iterations (about 1.5 minutes on 2 CPU cores).
- ``small``: the reproduction's CPU grid and the sliders' default: d = 256, lr 1e-3, 800 iterations.
- ``smoke``: a check of the machinery in seconds (d = 16, 6 iterations); its numbers mean nothing.

A budget other than ``paper`` is legitimate only because it is named, saved with every result and
printed wherever its numbers appear.

Also here, each defined once: the tIoU sets (:data:`PAPER_TIOUS` and the others) and
:class:`LocalizationSettings`, the five settings that turn scores into detections.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from wtal_kit import checks
from wtal_kit.atomic import atomic_write_text
from wtal_kit.errors import InputError
from wtal_kit.timegrid import DEFAULT_SECONDS_PER_SEGMENT

CLASSIFICATION_LOSSES = ("bbce", "bce", "softmax_mil")
METRIC_LOSSES = ("triplet", "contrastive", "none")
DISTANCES = ("class", "cosine", "euclidean", "custom")
SAMPLERS = ("paper", "code")
LOCALIZATIONS = ("paper", "wsad_code")
EVAL_PROTOCOLS = ("activitynet", "wtalc")
CHECKPOINT_SELECTIONS = ("last", "best_test_map")
DEVICES = ("auto", "cpu", "cuda")
MAX_INT = checks.MAX_INT  # the largest count, size or seed a config accepts
DEFAULT_MIN_LENGTH = {"paper": 1, "wsad_code": 2}  # segments; min_length=None means this, per localization

# -- tIoU sets: the one source ---------------------------------------------------------------
PAPER_TIOUS = (0.1, 0.3, 0.5, 0.7)  # the paper's tables (Sec. 4.1); "avg" anywhere is the mean over these
FINE_TIOUS = tuple(round(0.1 * i, 1) for i in range(1, 10))  # 0.1:0.1:0.9; its mean is labelled "avg 0.1:0.1:0.9"
ACTIVITYNET_TIOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95, ActivityNet's usual average
VIEW_TIOU = 0.5  # tIoU at which a view or a per-video table calls a detection a true positive

# -- budgets: the one vocabulary ------------------------------------------------------------------
# name -> the fields it changes from the paper's settings, and what a page or a flag says of it.
BUDGETS = MappingProxyType({
    "paper": ({}, "the paper's settings (d=2048, lr 1e-4, 4401 iterations): meant for a GPU"),
    "quick": (dict(feature_dim=256, lr=1e-3, iterations=1500),
              "the demo's CPU budget (d=256, lr 1e-3, 1500 iterations, about 1.5 min on 2 cores)"),
    "small": (dict(feature_dim=256, lr=1e-3, iterations=800, eval_every=200),
              "the reproduction's CPU grid (d=256, lr 1e-3, 800 iterations)"),
    "smoke": (dict(feature_dim=16, lr=1e-3, iterations=6, eval_every=3, batch_videos=8, batch_classes=2),
              "seconds; a check of the machinery (d=16, 6 iterations): its numbers mean nothing"),
})
PRESETS = tuple(BUDGETS)  # the budgets' names (``Config.preset``, ``--preset``)
FIELD_CHOICES = {
    "classification_loss": CLASSIFICATION_LOSSES,
    "metric_loss": METRIC_LOSSES,
    "distance": DISTANCES,
    "sampler": SAMPLERS,
    "localization": LOCALIZATIONS,
    "eval_protocol": EVAL_PROTOCOLS,
    "checkpoint_selection": CHECKPOINT_SELECTIONS,
    "device": DEVICES,
    "preset": PRESETS,
}


@dataclass(frozen=True)
class LocalizationSettings:
    """How scores become detections (paper Sec. 3.5; docs/method.md, "Localization"): one frozen
    value, checked here and only here, taken by the Localizer, the explorer, the sliders and the CLI.

    ``LocalizationSettings(threshold=0.4)``; ``settings.replace(gamma=0.2)``; ``config.localization_settings``.
    """

    threshold: float = 0.5  # keep segments with sigmoid score >= threshold (paper 3.5; not used by wsad_code)
    gamma: float = 0.7  # detection score = max + gamma * P(c|V) (paper 3.5)
    localization: str = "paper"  # paper (Sec. 3.5) | wsad_code (the released code's localization)
    min_length: int | None = None  # shortest detection kept, in segments; None: DEFAULT_MIN_LENGTH of the localization
    max_per_video: int | None = None  # keep each video's this many highest-scoring detections; None: all (the paper)

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise the values once, here
        set_(self, "localization", checks.one_of(self.localization, LOCALIZATIONS, "localization"))
        set_(self, "threshold", checks.number(self.threshold, "threshold", above=0, below=1))
        set_(self, "gamma", checks.number(self.gamma, "gamma", minimum=0))
        set_(self, "min_length", checks.optional_integer(self.min_length, "min_length", minimum=1))
        set_(self, "max_per_video", checks.optional_integer(self.max_per_video, "max_per_video", minimum=1))

    @property
    def resolved_min_length(self) -> int:
        """min_length, with None resolved to the localization's default (1 paper, 2 wsad_code)."""
        return DEFAULT_MIN_LENGTH[self.localization] if self.min_length is None else self.min_length

    def replace(self, **changes) -> "LocalizationSettings":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def note(self) -> str:
        """What every report says of these settings: 'paper localization', with the per-video cap when set."""
        cap = "" if self.max_per_video is None else f", at most {self.max_per_video} detections per video"
        return f"{self.localization} localization{cap}"


LOCALIZATION_FIELDS = tuple(f.name for f in dataclasses.fields(LocalizationSettings))


def _field(default, help: str):
    """A config field: its default and its one-line help (CLI flags and notebooks read it from the metadata)."""
    return field(default=default, metadata={"help": help})


def field_help(name: str) -> str:
    """The one-line help of a config field."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(Config)}[name]


@dataclass
class Config:
    # -- run ------------------------------------------------------------------
    preset: str = _field("paper", "name of the preset these values started from (saved with every result)")
    seed: int = _field(0, "seeds the run's own random generators: initialisation, dropout, batches")
    device: str = _field("auto", "auto: CUDA when present, else CPU")
    bf16: bool = _field(False, "bf16 autocast on CUDA (ignored on CPU)")
    fast_step: bool = _field(False, "pad every batch to max_segments and, on CUDA, replay the training step as one CUDA graph (the same update; with dropout, masks from another stream); on CPU only slower")

    # -- data -----------------------------------------------------------------
    dataset: str = _field("synthetic-thumos14", "synthetic-thumos14 | synthetic-activitynet12 | path to an HDF5 feature store")
    train_subset: str | None = _field(None, "None: 'validation' for THUMOS14 layouts, 'training' otherwise (paper 4.1)")
    test_subset: str | None = _field(None, "None: 'test' for THUMOS14 layouts, 'validation' otherwise (paper 4.1)")
    feature_dim: int = _field(2048, "d; I3D RGB + flow (paper 4.2); the synthetic benchmark generates this many")
    synthetic_seed: int = _field(0, "seed of the embedded synthetic benchmark's features")
    seconds_per_segment: float = _field(DEFAULT_SECONDS_PER_SEGMENT, "16 frames at 25 fps")
    max_segments: int = _field(300, "training window: at most this many segments per video (paper 4.2)")

    # -- model ----------------------------------------------------------------
    dropout: float = _field(0.7, "after the embedding's ReLU; not stated in the paper (the released code and W-TALC use 0.7)")
    kappa: float | None = _field(4.0, "clip activations to [-kappa, kappa] (paper Table 5); None: no clipping")
    center_features: bool = _field(True, "embedding W_e (x - mu) + b_e, mu = training-feature mean, b_e starting at W_e mu: the same initial network; without it units die (docs/method.md, 'Why training collapsed')")

    # -- video-level score (Eq. 2-4) ------------------------------------------
    block_processing: bool = _field(True, "False: the whole video is one block (paper Table 4)")
    block_size: int = _field(60, "l_w, segments per block (paper 4.2)")
    k: int = _field(10, "top-k activations averaged per block (paper 4.2)")

    # -- losses ---------------------------------------------------------------
    classification_loss: str = _field("bbce", "bbce (Eq. 5-6) | bce | softmax_mil (Fig. 2)")
    metric_loss: str = _field("triplet", "triplet | contrastive | none (paper Table 3)")
    distance: str = _field("class", "class (Eq. 10-11) | cosine | euclidean | custom (Fig. 3)")
    custom_rank: int = _field(64, "rank r of the learnable M_c = A_c^T A_c (distance 'custom' only)")
    margin: float = _field(3.0, "alpha, metric-loss margin (paper 4.2)")
    metric_weight: float = _field(1.0, "lambda: L = w_cls * L_cls + lambda * L_metric (paper: 1; code: 0.5)")
    classification_weight: float = _field(1.0, "w_cls (paper: 1; code: 0.5)")

    # -- optimisation ---------------------------------------------------------
    lr: float = _field(1e-4, "Adam learning rate (paper 4.2; code: 2e-4)")
    weight_decay: float = _field(0.0, "Adam weight decay (not stated in the paper)")
    iterations: int = _field(4401, "training iterations (not stated in the paper; the code's value)")
    sampler: str = _field("paper", "paper: batch_classes classes x videos_per_class videos sharing a class; code: 5 x 4, classes drawn with replacement")
    batch_videos: int = _field(20, "videos per batch (paper 4.2)")
    batch_classes: int = _field(4, "classes per batch (paper 4.2: 4 classes, >= 5 videos each)")

    # -- evaluation -----------------------------------------------------------
    eval_every: int = _field(500, "evaluate on the held-out split every this many iterations (and at the end)")
    # (the five localization settings: their defaults are LocalizationSettings', their checks its own)
    localization: str = _field(LocalizationSettings.localization, "paper (Sec. 3.5) | wsad_code (the released code's localization)")
    threshold: float = _field(LocalizationSettings.threshold, "keep segments with sigmoid score >= threshold (paper 3.5)")
    gamma: float = _field(LocalizationSettings.gamma, "detection score = max + gamma * P(c|V) (paper 3.5)")
    min_length: int | None = _field(LocalizationSettings.min_length, "shortest detection kept, in segments; None: 1 (paper localization) or 2 (wsad_code)")
    max_per_video: int | None = _field(LocalizationSettings.max_per_video, "keep each video's this many highest-scoring detections (the ActivityNet challenge allows 100); None: no cap, the paper's protocol")
    eval_protocol: str = _field("activitynet", "activitynet (interpolated AP, best match) | wtalc (W-TALC's evaluator)")
    iou_thresholds: tuple = _field(PAPER_TIOUS, "tIoU thresholds reported (paper 4.1)")
    checkpoint_selection: str = _field("last", "last: the reported model; best_test_map: the code's choice (selects on TEST mAP@0.5+0.7)")
    feature_cache_mb: int = _field(2048, "MB of features a run keeps on its device: the training split (then the held-out one) whole if it fits, else a host cache of training videos")

    def __post_init__(self):
        try:
            self.iou_thresholds = tuple(float(t) for t in self.iou_thresholds)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"must be a list of numbers, got {self.iou_thresholds!r:.80}", field="iou_thresholds") from None
        self.validate()

    # -- presets ----------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str = "paper", **overrides) -> "Config":
        """The paper's settings with a budget's changes (:data:`BUDGETS`), then ``overrides``."""
        if name not in BUDGETS:
            raise InputError(f"unknown preset {name!r}; choose one of {PRESETS}", field="preset")
        return cls(**{"preset": name, **BUDGETS[name][0], **overrides})

    # -- checks and (de)serialisation ---------------------------------------------
    def validate(self) -> None:
        """Every field checked (through :mod:`wtal_kit.checks`); the first problem is one InputError."""
        for name, kind in _SIMPLE_TYPES.items():  # a config is JSON: plain Python types only (no numpy scalar)
            value = getattr(self, name)
            plain = (int, float) if kind is float else kind
            if not isinstance(value, plain) or (kind is not bool and isinstance(value, bool)):
                raise InputError(f"must be {kind.__name__}, got {value!r:.80}", field=name)
            if kind is float:
                checks.number(value, name)  # finite
        for name, allowed in FIELD_CHOICES.items():
            checks.one_of(getattr(self, name), allowed, name)
        for name in ("feature_dim", "max_segments", "block_size", "k", "iterations", "batch_videos", "batch_classes",
                     "eval_every", "custom_rank"):
            checks.integer(getattr(self, name), name, minimum=1)
        for name in ("seed", "synthetic_seed", "feature_cache_mb"):
            checks.integer(getattr(self, name), name, minimum=0)
        if self.batch_videos < 2 * self.batch_classes and self.metric_loss != "none":
            raise InputError("the metric loss needs at least 2 videos per class in a batch (batch_videos >= 2 * batch_classes)", field="batch_videos")
        checks.optional_number(self.kappa, "kappa", above=0)  # None: no clipping
        for name in ("lr", "seconds_per_segment"):
            checks.number(getattr(self, name), name, above=0)
        for name in ("weight_decay", "margin", "metric_weight", "classification_weight"):
            checks.number(getattr(self, name), name, minimum=0)
        checks.number(self.dropout, "dropout", minimum=0, below=1)
        self.localization_settings  # noqa: B018 -- the five localization settings are checked there
        checks.tiou_thresholds(self.iou_thresholds)

    def replace(self, **changes) -> "Config":
        """A copy with ``changes`` applied; None is a value like any other (``replace(kappa=None)``: no clipping)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InputError(f"unknown config field(s) {unknown}", field="config")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["iou_thresholds"] = list(self.iou_thresholds)
        return data

    def to_json(self, path=None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False)
        if path is not None:
            atomic_write_text(path, text + "\n")  # never a half-written config.json (a full disk, a killed run)
        return text

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        if not isinstance(data, dict):
            raise InputError(f"a config must be a JSON object, got {type(data).__name__}", field="config")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(f"unknown config field(s) {unknown}", field="config")
        # A field missing from a saved config means the run predates it: take the value that
        # reproduces what that run did, not today's default.
        return cls(**{**BEFORE_THE_FIELD_EXISTED, **data})

    @classmethod
    def from_json(cls, path) -> "Config":
        path = Path(path)
        if not path.is_file():
            raise InputError("config file not found", file=path)
        try:
            data = json.loads(path.read_bytes())
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, a 5000-digit integer, deep nesting
            raise InputError(f"not valid JSON ({type(exc).__name__}: {str(exc)[:120]})", file=path) from None
        try:
            return cls.from_dict(data)
        except InputError as exc:
            raise InputError(exc.problem, file=path, field=exc.field) from None
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc).splitlines()[0][:200], file=path) from None

    # -- derived ----------------------------------------------------------------
    @property
    def localization_settings(self) -> LocalizationSettings:
        """threshold, gamma, localization, min_length and max_per_video as one value."""
        return LocalizationSettings(**{name: getattr(self, name) for name in LOCALIZATION_FIELDS})

    @property
    def effective_block_size(self) -> int | None:
        """The block size the losses see: None when block processing is off."""
        return self.block_size if self.block_processing else None


# What a config saved before a field existed meant by its absence (Config.from_dict).
BEFORE_THE_FIELD_EXISTED = {"center_features": False}  # issue 12: runs until then trained uncentred


# Fields of a plain type (not Optional): the type every value must have.
_SIMPLE_TYPES = {
    f.name: {"float": float, "int": int, "str": str, "bool": bool}[f.type]
    for f in dataclasses.fields(Config)
    if f.type in ("float", "int", "str", "bool")
}
