"""The paper's tables and figures as grids of configs, in three modes.

Each artefact (Table 1-5, Figure 2-5) is a named list of variants: a label and the config
fields it changes from the full method. :func:`grid` turns artefacts, a mode and seeds into
jobs, one per (config, seed); a config shared by several artefacts (the full method is in
Tables 1, 3, 4, 5 and Figures 2-4) becomes one job.

Modes (:data:`MODES`) are budgets of :data:`wtal_kit.config.BUDGETS`, so a stored config names
what ran:

- ``smoke``: a tiny model for a few iterations: every notebook executes in seconds (tests).
- ``small``: the embedded synthetic benchmark on a 2-core CPU budget (800 iterations, d = 256),
  big enough that the ablations move the numbers; labelled "small" wherever it appears.
- ``paper``: the paper's settings (d = 2048, lr 1e-4, 4401 iterations): real features when a
  feature store is given, else the embedded benchmark at d = 2048; meant for a GPU.

Until 0.2 the small mode was called ``quick`` (a name the demo's 1500-iteration budget also had)
and the paper mode ``full``; :func:`mode_name` still takes both, with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from wtal_kit import checks
from wtal_kit.config import Config
from wtal_kit.data.catalog import synthetic_dataset
from wtal_kit.errors import InputError
from wtal_kit.experiments.store import Job, config_key

MODES = ("smoke", "small", "paper")  # budgets of wtal_kit.config.BUDGETS
OLD_MODE_NAMES = {"quick": "small", "full": "paper"}  # before 0.2; accepted with a warning for one version
DEFAULT_MODE = "small"
DEFAULT_SEEDS = (0, 1, 2)
SMOKE_SEEDS = (0, 1)
# An evaluation of the ActivityNet layout's 2383 validation videos costs about 20 s on one core
# (most of it synthesizing their features): evaluate there twice a run, not every 200 iterations.
ACTIVITYNET_EVALUATIONS = 2


@dataclass(frozen=True)
class Variant:
    """One row of an artefact: its label, the fields it changes, and its published row if any."""

    label: str
    changes: dict = field(default_factory=dict)
    published: tuple | None = None  # (table, variant) of its row in data/published_results.csv; None: none printed
    layout: str = "thumos14"  # thumos14 | activitynet12


@dataclass(frozen=True)
class Artefact:
    name: str
    title: str
    variants: tuple[Variant, ...]
    table: int | None = None  # the paper's table number (its rows in data/published_results.csv)
    x: str | None = None  # for a sweep (Figure 4): the field on the x axis


FULL_METHOD = "full method (BBCE + triplet, class-specific distance, kappa 4, block 60, k 10)"


def _k_of_block(block_size: int) -> int:
    """Figure 4b: k is 6 % of the block size (at least 1)."""
    return max(1, round(0.06 * block_size))


ARTEFACTS: dict[str, Artefact] = {a.name: a for a in (
    Artefact("table1", "Table 1: THUMOS14, the full method", (Variant(FULL_METHOD, published=(1, "")),), table=1),
    Artefact("table2", "Table 2: ActivityNet1.2, the full method",
             (Variant(FULL_METHOD, published=(2, ""), layout="activitynet12"),), table=2),
    Artefact("table3", "Table 3: the loss terms", (
        Variant("BBCE", {"metric_loss": "none"}, published=(3, "BBCE")),
        Variant("BBCE + contrastive", {"metric_loss": "contrastive"}, published=(3, "BBCE + contrastive")),
        Variant("BBCE + triplet", {}, published=(3, "BBCE + triplet")),
    ), table=3),
    Artefact("table4", "Table 4: block-based processing", (
        Variant("no block-based processing", {"block_processing": False}, published=(4, "no block-based processing")),
        Variant("block-based processing", {}, published=(1, "")),  # the full method: Table 1's row
    ), table=4),
    Artefact("table5", "Table 5: the clipping threshold kappa", tuple(
        Variant(f"kappa={'none' if kappa is None else kappa}", {} if kappa == 4 else {"kappa": kappa},
                published=(5, f"kappa={'none (no clip)' if kappa is None else kappa}"))
        for kappa in (None, 2, 3, 4, 5, 10)
    ), table=5, x="kappa"),
    Artefact("figure2", "Figure 2: the classification loss (each + triplet)", (
        Variant("BCE", {"classification_loss": "bce"}),
        Variant("Softmax", {"classification_loss": "softmax_mil"}),
        Variant("BBCE", {}),
    )),
    Artefact("figure3", "Figure 3: the distance of the metric loss", (
        Variant("cosine", {"distance": "cosine"}),
        Variant("Euclidean", {"distance": "euclidean"}),
        Variant("custom", {"distance": "custom"}),
        Variant("class-specific (ours)", {}),
    )),
    Artefact("figure4a", "Figure 4a: k at block size 60", tuple(
        Variant(f"k={k}", {} if k == 10 else {"k": k}) for k in (2, 5, 10, 15, 20)
    ), x="k"),
    Artefact("figure4b", "Figure 4b: block size, k = 6% of the block", tuple(
        Variant(f"block {size}", {"block_size": size, "k": _k_of_block(size)}) for size in (20, 40, 60, 80, 100)
    ), x="block_size"),
    Artefact("figure5", "Figure 5: qualitative timelines of the full method", (Variant(FULL_METHOD),)),
)}
# What the reports add on top of the artefacts' runs (they train nothing of their own).
REPORTS = ("claims", "audit")
REPORT_TITLES = {  # a report's title, as an artefact's is Artefact.title
    "claims": "Claims check: what the paper concludes from its ablations, against what we measure",
    "audit": "Protocol audit: how far each evaluation choice moves the numbers",
}
ALL_NAMES = tuple(ARTEFACTS) + REPORTS
REPORT_SOURCES = {
    "claims": ("table3", "table4", "table5", "figure2", "figure3", "figure4a", "figure4b"),
    "audit": ("table1",),
}


def artefact_names(names=None) -> tuple[str, ...]:
    """Validated artefact names, in the canonical order; None: all of them (reports included)."""
    if not names:
        return ALL_NAMES
    unknown = [n for n in names if n not in ALL_NAMES]
    if unknown:
        raise InputError(f"unknown artefact {unknown[0]!r}; choose from {', '.join(ALL_NAMES)}", field="only")
    return tuple(n for n in ALL_NAMES if n in names)


def training_artefacts(names) -> tuple[str, ...]:
    """The artefacts whose runs ``names`` need (a report needs the artefacts it reads)."""
    wanted = set()
    for name in artefact_names(names):
        wanted.update(REPORT_SOURCES.get(name, (name,)))
    return tuple(n for n in ARTEFACTS if n in wanted)


def mode_name(mode: str) -> str:
    """A mode's name (:data:`MODES`); an old name (quick, full) is taken with a warning."""
    if mode in OLD_MODE_NAMES:
        new = OLD_MODE_NAMES[mode]
        warnings.warn(f"mode {mode!r} is now called {new!r} (the budget names of wtal_kit.config.BUDGETS); "
                      f"{mode!r} will stop working in 0.3", FutureWarning, stacklevel=3)
        return new
    return checks.one_of(mode, MODES, "mode")


def base_config(mode: str, layout: str = "thumos14", *, features: str | None = None, device: str = "auto") -> Config:
    """The full method's config in a mode, for a layout; ``features``: an HDF5 feature store (paper mode)."""
    mode = mode_name(mode)
    dataset = synthetic_dataset(layout)
    if mode != "paper":
        config = Config.from_preset(mode, dataset=dataset, device=device)
        if layout == "activitynet12":
            evaluations = 1 if mode == "smoke" else ACTIVITYNET_EVALUATIONS
            config = config.replace(eval_every=max(1, config.iterations // evaluations))
        return config
    if features is not None:
        from wtal_kit.data.hdf5 import open_feature_store

        dim = open_feature_store(features).feature_dim
        return Config.from_preset("paper", dataset=str(features), feature_dim=dim, device=device)
    return Config.from_preset("paper", dataset=dataset, device=device)


def base_configs(mode: str, features, activitynet_features, device: str):
    """layout -> the full method's config there, built once per layout (a feature store is opened once)."""
    bases: dict[str, Config] = {}

    def base(layout: str) -> Config:
        if layout not in bases:
            layout_features = activitynet_features if layout == "activitynet12" else features
            bases[layout] = base_config(mode, layout, features=layout_features, device=device)
        return bases[layout]

    return base


def variant_config(base: Config, variant: Variant, seed: int) -> Config:
    return base.replace(seed=seed, **variant.changes)


def grid(names=None, mode: str = DEFAULT_MODE, seeds=DEFAULT_SEEDS, *, features=None, activitynet_features=None,
         device: str = "auto") -> list[Job]:
    """The jobs of the named artefacts (None: all) in a mode: one per distinct (config, seed)."""
    mode, seeds = mode_name(mode), check_seeds(seeds)
    jobs: dict[str, Job] = {}
    base = base_configs(mode, features, activitynet_features, device)
    for name in training_artefacts(names):
        for variant in ARTEFACTS[name].variants:
            for seed in seeds:
                config = variant_config(base(variant.layout), variant, seed)
                key = config_key(config)
                jobs.setdefault(key, Job(config, key)).uses.append((name, variant.label))
    return list(jobs.values())


def check_seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or not all(checks.is_integer(s) and s >= 0 for s in seeds):
        raise InputError(f"seeds must be non-negative integers, got {seeds!r}", field="seeds")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seeds repeat: {seeds!r}", field="seeds")
    return seeds
