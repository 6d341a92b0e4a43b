"""The runner: train what the results store lacks, on this machine or on a Ray cluster, and
read an artefact's results back.

:func:`run_jobs` trains the jobs the :class:`~wtal_kit.experiments.store.ResultsStore` does not
hold yet, with several worker processes if asked (or as Ray tasks on a cluster,
:mod:`wtal_kit.experiments.ray_runner`); :func:`run_artefacts` is the one call a notebook makes;
:func:`collect` reads an artefact's results back as one long table.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import pandas as pd

from wtal_kit import checks
from wtal_kit.data.catalog import dataset_label, is_synthetic
from wtal_kit.errors import InputError, failure_message
from wtal_kit.experiments.artefacts import (
    ARTEFACTS,
    DEFAULT_MODE,
    DEFAULT_SEEDS,
    Artefact,
    base_configs,
    check_seeds,
    grid,
    mode_name,
    variant_config,
)
from wtal_kit.experiments.store import DEFAULT_STORE, Job, ResultsStore, config_key

EXECUTORS = ("local", "ray")  # ray: wtal_kit.experiments.ray_runner, the optional [cluster] extra


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
    ``executor="ray"``: one Ray task per job (:mod:`wtal_kit.experiments.ray_runner`) on the cluster at
    ``address`` (None: this machine's cluster, else a new local instance), each with one CPU and
    ``gpus_per_task`` GPUs (None: one where the cluster has GPUs); a failed task is tried once more.
    One progress bar over the whole grid; a failed job is reported in the summary and the
    others go on.
    """
    from tqdm.auto import tqdm

    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    checks.integer(workers, "workers", minimum=1)
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; choose one of {EXECUTORS}", field="executor")
    if executor == "ray":
        from wtal_kit.experiments import ray_runner

        ray_runner.import_ray()  # without Ray: one line, before anything starts
        ray_runner.check_gpus_per_task(gpus_per_task)
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
        ray_runner.run_on_ray(todo, store, record, address=address, gpus_per_task=gpus_per_task)
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
        return dataset_label(next(iter(self.configs.values())))

    def label(self) -> str:
        """What every table and figure of these results says about where its numbers come from."""
        config = next(iter(self.configs.values()))
        features = "embedded synthetic features (not I3D)" if is_synthetic(config) else "features from the store"
        return (f"ours: {self.dataset}; {features}; {self.mode} mode ({config.preset} preset, "
                f"{config.iterations} iterations, lr {config.lr:g}); {config.localization} localization, "
                f"{config.eval_protocol} AP; mean ± std over seeds {list(self.seeds)}")


def collect(name: str, mode: str = DEFAULT_MODE, seeds=DEFAULT_SEEDS, store: ResultsStore | str = DEFAULT_STORE, *,
            features=None, activitynet_features=None, device: str = "auto") -> ArtefactResults:
    """Read one artefact's runs back from the store (missing ones are listed, not trained)."""
    if name not in ARTEFACTS:
        raise InputError(f"{name!r} is not an artefact with runs; choose from {', '.join(ARTEFACTS)}", field="only")
    store = store if isinstance(store, ResultsStore) else ResultsStore(store)
    mode, seeds = mode_name(mode), check_seeds(seeds)
    artefact = ARTEFACTS[name]
    base = base_configs(mode, features, activitynet_features, device)
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


def run_artefacts(names=None, mode: str = DEFAULT_MODE, seeds=DEFAULT_SEEDS, store: ResultsStore | str = DEFAULT_STORE, *,
                  features=None, activitynet_features=None, device: str = "auto", workers: int = 1,
                  progress: bool = True, executor: str = "local", address: str | None = None,
                  gpus_per_task: float | None = None) -> Summary:
    """Train whatever the named artefacts (None: all) lack in the store; the one call a notebook makes.

    ``executor``, ``address``, ``gpus_per_task``: where the jobs run (:func:`run_jobs`).
    """
    jobs = grid(names, mode, seeds, features=features, activitynet_features=activitynet_features, device=device)
    return run_jobs(jobs, store, workers=workers, progress=progress, executor=executor, address=address,
                    gpus_per_task=gpus_per_task)


def default_workers(device: str = "auto", most: int = 4) -> int:
    """Trainings at once: one per CPU core, at most ``most``; on a GPU, ``most`` sharing it.

    ``wtal reproduce`` runs up to 4 processes; the sliders, which train in threads of the page's
    kernel, at most 2 (``most=2``).
    """
    from wtal_kit.training.inference import resolve_device

    if resolve_device(device).type == "cuda":
        return most
    return max(1, min(most, os.cpu_count() or 1))
