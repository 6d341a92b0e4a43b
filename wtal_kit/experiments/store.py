"""The results store: one entry per (config, seed), safe for several processes at once.

An entry is a folder named by a hash of the config's training fields (:func:`config_key`)
holding the run's files (config, metrics, results, scores file, detections, checkpoint) and
``entry.json``. An entry is trained in a private temporary folder and renamed into place when
complete, so a reader never sees a half-written entry; a per-key lock keeps two processes from
training the same entry at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from wtal_kit import checks
from wtal_kit.atomic import atomic_write_text
from wtal_kit.config import Config
from wtal_kit.data.jsonio import read_json_object
from wtal_kit.data.runfolder import CONFIG, METRICS, RESULTS
from wtal_kit.errors import InputError

DEFAULT_STORE = "runs/store"
ENTRY = "entry.json"


# Config fields that change what a training produces. The evaluation fields (localization,
# threshold, gamma, min_length, max_per_video, eval_protocol, iou_thresholds, checkpoint_selection) are
# re-applied to the stored scores, and device / feature_cache_mb change no result (a run on
# CUDA differs from one on CPU only in the last digits; entry.json records where it ran). fast_step
# is how the device runs the same step (static shapes, a CUDA graph): like device, it changes
# rounding and which dropout masks are drawn, not the experiment.
NOT_TRAINING_FIELDS = frozenset({
    "device", "fast_step", "feature_cache_mb", "localization", "threshold", "gamma", "min_length", "max_per_video",
    "eval_protocol", "iou_thresholds", "checkpoint_selection",
})

# The key hashes the budget's name as stores made before 0.2 wrote it: the small and smoke budgets
# were then the "quick" preset with other fields changed, and hashing that name keeps their keys.
KEY_PRESET_NAMES = {"small": "quick", "smoke": "quick"}


def config_key(config: Config) -> str:
    """The store key of a (config, seed): a hash of the fields that change what training produces."""
    training = {k: v for k, v in config.to_dict().items() if k not in NOT_TRAINING_FIELDS}
    training["preset"] = KEY_PRESET_NAMES.get(training["preset"], training["preset"])
    text = json.dumps(training, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Job:
    """One training: a config (seed included), its store key, and the artefact rows it serves."""

    config: Config
    key: str
    uses: list = field(default_factory=list)  # [(artefact name, variant label)]


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
        return Config.from_json(self.path / CONFIG)

    @property
    def results(self) -> dict:
        results = read_json_object(self.path / RESULTS)
        mean_ap = results.get("map")
        if not isinstance(mean_ap, dict) or not all(checks.is_number(v) for v in mean_ap.values()):
            raise InputError("no 'map' object of numbers (an unfinished or damaged entry)", file=self.path / RESULTS, field="map")
        return results

    @property
    def metrics(self) -> pd.DataFrame:
        path = self.path / METRICS
        try:
            return pd.read_csv(path)
        except (OSError, ValueError) as exc:  # missing, not CSV, not UTF-8
            raise InputError(f"cannot read ({type(exc).__name__})", file=path) from None

    def run(self):
        """The entry as a :class:`wtal_kit.training.runs.Run` (scores, localizer, model)."""
        from wtal_kit.training.runs import load_run

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
