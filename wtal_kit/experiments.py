"""The paper's tables and figures as grids of configs, a results store, and a runner.

Each artefact (Table 1-5, Figure 2-5) is a named list of variants: a label and the config
fields it changes from the full method. :func:`grid` turns artefacts, a mode and seeds into
jobs, one per (config, seed); a config shared by several artefacts (the full method is in
Tables 1, 3, 4, 5 and Figures 2-4) becomes one job. :func:`run_jobs` trains what the
:class:`ResultsStore` does not hold yet, with several worker processes if asked (or as Ray
tasks on a cluster, :mod:`wtal_kit.ray_executor`), and
:func:`collect` reads an artefact's results back as one long table.

Modes (:data:`MODES`):

- ``smoke``: a tiny model for a few iterations: every notebook executes in seconds (tests).
- ``quick``: the embedded synthetic benchmark on a 2-core CPU budget (:data:`QUICK`),
  big enough that the ablations move the numbers; labelled "quick" wherever it appears.
- ``full``: the paper's settings (d = 2048, lr 1e-4, 4401 iterations): real features when a
  feature store is given, else the embedded benchmark at d = 2048; meant for a GPU.

The store keeps one entry per (config, seed): a folder named by a hash of the config's
training fields (:func:`config_key`) holding the run's files (config, metrics, results,
scores file, detections, checkpoint) and ``entry.json``. An entry is trained in a private
temporary folder and renamed into place when complete, so a reader never sees a half-written
entry; a per-key lock keeps two processes from training the same entry at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from wtal_kit.atomic import atomic_write_text
from wtal_kit.config import Config
from wtal_kit.data.jsonio import read_json_object
from wtal_kit.errors import InputError, WtalError

MODES = ("smoke", "quick", "full")
DEFAULT_SEEDS = (0, 1, 2)
SMOKE_SEEDS = (0, 1)
DEFAULT_STORE = "runs/store"
EXECUTORS = ("local", "ray")  # ray: wtal_kit.ray_executor, the optional [cluster] extra
ENTRY = "entry.json"

# Config fields that change what a training produces. The evaluation fields (localization,
# threshold, gamma, min_length, max_per_video, eval_protocol, iou_thresholds, checkpoint_selection) are
# re-applied to the stored scores, and device / feature_cache_mb change no result (a run on
# CUDA differs from one on CPU only in the last digits; entry.json records where it ran).
NOT_TRAINING_FIELDS = frozenset({
    "device", "feature_cache_mb", "localization", "threshold", "gamma", "min_length", "max_per_video",
    "eval_protocol", "iou_thresholds", "checkpoint_selection",
})

# -- modes ---------------------------------------------------------------------------------
# quick: the quick preset's d = 256 and lr 1e-3, shortened so that the 24 configs x 3 seeds of
# all artefacts train in about 25 minutes on 2 CPU cores (two workers, one thread each).
QUICK = dict(feature_dim=256, lr=1e-3, iterations=800, eval_every=200)
SMOKE = dict(feature_dim=16, lr=1e-3, iterations=6, eval_every=3, batch_videos=8, batch_classes=2)
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


def base_config(mode: str, layout: str = "thumos14", *, features: str | None = None, device: str = "auto") -> Config:
    """The full method's config in a mode, for a layout; ``features``: an HDF5 feature store (full mode)."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of {MODES}", field="mode")
    dataset = f"synthetic-{layout}"
    if mode in ("smoke", "quick"):
        values = dict(SMOKE if mode == "smoke" else QUICK)
        if layout == "activitynet12":
            evaluations = 1 if mode == "smoke" else ACTIVITYNET_EVALUATIONS
            values["eval_every"] = max(1, values["iterations"] // evaluations)
        return Config.from_preset("quick", dataset=dataset, device=device, **values)
    if features is not None:
        from wtal_kit.data.hdf5 import open_feature_store

        dim = open_feature_store(features).feature_dim
        return Config.from_preset("paper", dataset=str(features), feature_dim=dim, device=device)
    return Config.from_preset("paper", dataset=dataset, device=device)


def _base_configs(mode: str, features, activitynet_features, device: str):
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


def config_key(config: Config) -> str:
    """The store key of a (config, seed): a hash of the fields that change what training produces."""
    training = {k: v for k, v in config.to_dict().items() if k not in NOT_TRAINING_FIELDS}
    text = json.dumps(training, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Job:
    """One training: a config (seed included), its store key, and the artefact rows it serves."""

    config: Config
    key: str
    uses: list = field(default_factory=list)  # [(artefact name, variant label)]


def grid(names=None, mode: str = "quick", seeds=DEFAULT_SEEDS, *, features=None, activitynet_features=None,
         device: str = "auto") -> list[Job]:
    """The jobs of the named artefacts (None: all) in a mode: one per distinct (config, seed)."""
    seeds = check_seeds(seeds)
    jobs: dict[str, Job] = {}
    base = _base_configs(mode, features, activitynet_features, device)
    for name in training_artefacts(names):
        for variant in ARTEFACTS[name].variants:
            for seed in seeds:
                config = variant_config(base(variant.layout), variant, seed)
                key = config_key(config)
                jobs.setdefault(key, Job(config, key)).uses.append((name, variant.label))
    return list(jobs.values())


def check_seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise InputError(f"seeds must be non-negative integers, got {seeds!r}", field="seeds")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seeds repeat: {seeds!r}", field="seeds")
    return seeds


# -- the store -------------------------------------------------------------------------------
@dataclass
class Entry:
    """One finished (config, seed) in the store: its folder holds a complete run directory."""

    path: Path

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def info(self) -> dict:
        return read_json_object(self.path / ENTRY)

    @property
    def config(self) -> Config:
        return Config.from_json(self.path / "config.json")

    @property
    def results(self) -> dict:
        results = read_json_object(self.path / "results.json")
        mean_ap = results.get("map")
        if not isinstance(mean_ap, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean_ap.values()):
            raise InputError("no 'map' object of numbers (an unfinished or damaged entry)", file=self.path / "results.json", field="map")
        return results

    @property
    def metrics(self) -> pd.DataFrame:
        path = self.path / "metrics.csv"
        try:
            return pd.read_csv(path)
        except (OSError, ValueError) as exc:  # missing, not CSV, not UTF-8
            raise InputError(f"cannot read ({type(exc).__name__})", file=path) from None

    def run(self):
        """The entry as a :class:`wtal_kit.runs.Run` (scores, localizer, model)."""
        from wtal_kit.runs import load_run

        return load_run(self.path)


class ResultsStore:
    """A folder of entries, one per (config, seed), safe for several processes at once."""

    def __init__(self, root=DEFAULT_STORE):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> Entry | None:
        path = self.path(key)
        return Entry(path) if (path / ENTRY).is_file() else None

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / ENTRY).is_file())

    @contextmanager
    def lock(self, key: str):
        """Hold the key's lock (blocks while another process trains that entry)."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{key}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def new_entry(self, key: str):
        """Make entry ``key``, whole or not at all: yields None when the store has it (perhaps made by
        another process while this one waited for the key's lock), else an :class:`EntryDraft`.

        Fill ``draft.path`` (an empty scratch folder) and call ``draft.publish(...)``: the folder is
        renamed into place in one step. Left unpublished, or on an error, the scratch is removed. A
        killed process's scratch folders of the key are removed first (the key's lock is held).
        """
        with self.lock(key):
            if self.get(key) is not None:
                yield None
                return
            for stale in (self.root / ".tmp").glob(f"{key}.*"):
                shutil.rmtree(stale, ignore_errors=True)
            scratch = self.root / ".tmp" / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            scratch.mkdir(parents=True)
            try:
                yield EntryDraft(self, key, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)  # gone already once published (or moved away)

    def compute(self, job: Job, *, progress: bool = False) -> tuple[str, Entry]:
        """The job's entry: ("cached", entry) when present, else train it and ("trained", entry)."""
        entry = self.get(job.key)
        if entry is not None:
            return "cached", entry
        with self.new_entry(job.key) as draft:
            if draft is None:
                return "cached", self.get(job.key)
            from wtal_kit.training import train

            started = time.perf_counter()
            train(job.config, draft.path, progress=progress, quiet=not progress)
            draft.publish({"seed": job.config.seed, "uses": [list(use) for use in job.uses],
                           "seconds": time.perf_counter() - started})
        return "trained", self.get(job.key)


@dataclass
class EntryDraft:
    """An entry being made (:meth:`ResultsStore.new_entry`): its files go into ``path``."""

    store: ResultsStore
    key: str
    path: Path

    def publish(self, info: dict | None = None) -> None:
        """Write entry.json (``info`` plus key, host and time; None: ``path`` holds one already) and
        rename the folder into place: the entry appears whole."""
        if info is not None:
            atomic_write_text(self.path / ENTRY, json.dumps({
                "key": self.key, **info, "host": socket.gethostname(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }, indent=2))
        os.replace(self.path, self.store.path(self.key))


# -- the runner --------------------------------------------------------------------------------
@dataclass
class Summary:
    """What :func:`run_jobs` did: keys trained, keys found in the store, and failures with their message."""

    trained: list = field(default_factory=list)
    cached: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # [(key, one-line message)]
    seconds: float = 0.0

    def line(self) -> str:
        text = (f"{len(self.trained)} trained, {len(self.cached)} cached, {len(self.failed)} failed "
                f"in {self.seconds:.0f} s")
        return text + "".join(f"\n  failed {key}: {message}" for key, message in self.failed)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def failure_message(error: BaseException) -> str:
    """One line for a failed training: a WtalError's own message; anything else with where it happened."""
    if isinstance(error, WtalError):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__)  # a bug or a library error
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def _compute(root: str, job: Job) -> tuple[str, str, str | None]:
    """(key, status, message) of one job; never raises (a failure is reported, the others go on)."""
    try:
        status, _ = ResultsStore(root).compute(job)
        return job.key, status, None
    except Exception as error:
        return job.key, "failed", failure_message(error)


def run_jobs(jobs: list[Job], store: ResultsStore | str = DEFAULT_STORE, *, workers: int = 1,
             progress: bool = True, executor: str = "local", address: str | None = None,
             gpus_per_task: float | None = None) -> Summary:
    """Train every job the store lacks, on this machine or on a Ray cluster.

    ``executor="local"``: ``workers`` processes (torch threads split between them).
    ``executor="ray"``: one Ray task per job (:mod:`wtal_kit.ray_executor`) on the cluster at
    ``address`` (None: this machine's cluster, else a new local instance), each with one CPU and
    ``gpus_per_task`` GPUs (None: one where the cluster has GPUs); a failed task is tried once more.
    One progress bar over the whole grid; a failed job is reported in the summary and the
    others go on.
    """
    from tqdm.auto import tqdm

    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}", field="workers")
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; choose one of {EXECUTORS}", field="executor")
    if executor == "ray":
        from wtal_kit import ray_executor

        ray_executor.import_ray()  # without Ray: one line, before anything starts
        ray_executor.check_gpus_per_task(gpus_per_task)
    elif address is not None or gpus_per_task is not None:
        raise InputError("address and gpus_per_task are for the Ray executor", field="executor")
    started = time.perf_counter()
    summary = Summary()
    todo = []
    for job in jobs:
        if store.get(job.key):
            summary.cached.append(job.key)
        else:
            todo.append(job)
    bar = tqdm(total=len(jobs), initial=len(summary.cached), desc="grid", unit="run", disable=not progress)

    def record(key, status, message):
        if status == "failed":
            summary.failed.append((key, message))
            bar.write(f"failed {key}: {message}")
        else:
            (summary.trained if status == "trained" else summary.cached).append(key)
        bar.update(1)
        bar.set_postfix(trained=len(summary.trained), failed=len(summary.failed))

    if executor == "ray":
        ray_executor.run_on_ray(todo, store, record, address=address, gpus_per_task=gpus_per_task)
    elif workers == 1 or len(todo) <= 1:
        for job in todo:
            record(*_compute(str(store.root), job))
    else:
        # A worker that dies (killed, out of memory) breaks its pool: the jobs it left unfinished
        # get one more round in a fresh pool; what fails again is reported.
        for last_round in (False, True):
            todo = _run_in_pool(todo, store, workers, record, last_round)
            if not todo:
                break
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _run_in_pool(todo: list[Job], store: ResultsStore, workers: int, record, last_round: bool) -> list[Job]:
    """Run jobs in a process pool; return those left unfinished by a broken pool (unless last_round)."""
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # a forked torch can deadlock
    unfinished = []
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=context, initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(_compute, str(store.root), job): job for job in todo}
        for future in as_completed(futures):
            try:
                record(*future.result())
            except BrokenProcessPool as error:
                if last_round:
                    record(futures[future].key, "failed", f"its worker process died ({error})")
                else:
                    unfinished.append(futures[future])
    return unfinished


# -- reading results back ----------------------------------------------------------------------
@dataclass
class ArtefactResults:
    """An artefact's runs: ``table`` has one row per (variant, seed, tIoU) with the mAP (fraction)."""

    artefact: Artefact
    mode: str
    seeds: tuple
    table: pd.DataFrame  # columns: variant, seed, key, tiou, map
    entries: dict  # (variant label, seed) -> Entry
    configs: dict  # variant label -> the config of its first seed
    missing: list  # [(variant label, seed)] without an entry (a failed run)

    @property
    def dataset(self) -> str:
        from wtal_kit.datasets import dataset_label

        return dataset_label(next(iter(self.configs.values())))

    def label(self) -> str:
        """What every table and figure of these results says about where its numbers come from."""
        config = next(iter(self.configs.values()))
        synthetic = config.dataset.startswith("synthetic-")
        features = "embedded synthetic features (not I3D)" if synthetic else "features from the store"
        return (f"ours: {self.dataset}; {features}; {self.mode} mode ({config.preset} preset, "
                f"{config.iterations} iterations, lr {config.lr:g}); {config.localization} localization, "
                f"{config.eval_protocol} AP; mean ± std over seeds {list(self.seeds)}")


def collect(name: str, mode: str = "quick", seeds=DEFAULT_SEEDS, store: ResultsStore | str = DEFAULT_STORE, *,
            features=None, activitynet_features=None, device: str = "auto") -> ArtefactResults:
    """Read one artefact's runs back from the store (missing ones are listed, not trained)."""
    if name not in ARTEFACTS:
        raise InputError(f"{name!r} is not an artefact with runs; choose from {', '.join(ARTEFACTS)}", field="only")
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    seeds = check_seeds(seeds)
    artefact = ARTEFACTS[name]
    base = _base_configs(mode, features, activitynet_features, device)
    rows, entries, configs, missing = [], {}, {}, []
    for variant in artefact.variants:
        for seed in seeds:
            config = variant_config(base(variant.layout), variant, seed)
            configs.setdefault(variant.label, config)
            entry = store.get(config_key(config))
            if entry is None:
                missing.append((variant.label, seed))
                continue
            entries[(variant.label, seed)] = entry
            for tiou, value in entry.results["map"].items():
                rows.append({"variant": variant.label, "seed": seed, "key": entry.key,
                             "tiou": tiou if tiou == "avg" else float(tiou), "map": float(value)})
    table = pd.DataFrame(rows, columns=["variant", "seed", "key", "tiou", "map"])
    return ArtefactResults(artefact, mode, seeds, table, entries, configs, missing)


def run_artefacts(names=None, mode: str = "quick", seeds=DEFAULT_SEEDS, store: ResultsStore | str = DEFAULT_STORE, *,
                  features=None, activitynet_features=None, device: str = "auto", workers: int = 1,
                  progress: bool = True, executor: str = "local", address: str | None = None,
                  gpus_per_task: float | None = None) -> Summary:
    """Train whatever the named artefacts (None: all) lack in the store; the one call a notebook makes.

    ``executor``, ``address``, ``gpus_per_task``: where the jobs run (:func:`run_jobs`).
    """
    jobs = grid(names, mode, seeds, features=features, activitynet_features=activitynet_features, device=device)
    return run_jobs(jobs, store, workers=workers, progress=progress, executor=executor, address=address,
                    gpus_per_task=gpus_per_task)
