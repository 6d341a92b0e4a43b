"""Runs asked for from a live dashboard: a queue, one or two trainings in background threads, the store first.

The "Live hyperparameter sliders" app (``widgets.hyperparameters``, ``wtal sliders``) asks a
:class:`Session` for runs; the session keeps the logic and the state, the app only draws it::

    session = Session("runs/store")
    run = session.submit(preset_config("small").replace(kappa=2.0))
    session.subscribe(lambda run, kind: print(run.number, kind, run.iteration))
    run.finished.wait(); run.mean_ap           # mAP per tIoU (fractions) and "avg"
    session.stop()                             # every running and queued run
    session.close()

What a request does, in order:

1. Its config is checked (:func:`check`: Config's own validation, and k no larger than the block).
2. The results store is looked up first (:func:`wtal_kit.experiments.config_key`): a finished entry
   is served at once, without training (status ``"store"``); a request for a run already queued or
   running returns that run.
3. Otherwise it is queued; ``workers`` background threads (2 where there are 2 or more CPU cores or
   a GPU) train the queue in order, into the store's private scratch folder under the key's lock,
   with the reproduction's own entry layout: a finished run becomes a store entry that
   ``wtal reproduce`` and the reproduction notebooks read like their own.
4. ``stop()`` ends a training after its current iteration (``train(stop=...)``): its checkpoint,
   scores and partial results are kept, but never as a store entry (the store holds finished runs
   only); it goes to ``<store>/.stopped/<key>/``, and the next request of that config resumes from
   there (to exactly the numbers of an uninterrupted run).

Store entries are always trained with the preset's localization settings (threshold, gamma, ...),
which the store key leaves out, so that their ``results.json`` means what the reproduction's tables
expect; a run asked for at another threshold or gamma is re-evaluated from its stored scores.

Listeners (:meth:`Session.subscribe`) are called in the training's thread with ``(run, kind)``,
kind one of :data:`EVENTS`; a listener that raises is dropped from that call, never the training.
No Jupyter, ipywidgets or plotly here.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from wtal_kit import checks, experiments
from wtal_kit.config import Config
from wtal_kit.data.catalog import LAYOUTS, layout_of
from wtal_kit.data.runfolder import metric_key
from wtal_kit.experiments import published
from wtal_kit.errors import InputError, WtalError

EVENTS = ("queued", "started", "iteration", "evaluation", "finished")
STATUSES = ("queued", "running", "finished", "store", "stopped", "cancelled", "failed")
LOSS_TERMS = ("total", "classification", "metric")  # a run's losses: {term: value} (metrics.csv: loss_<term>)
# What a run may change without training anew (its stored scores are re-evaluated): the evaluation fields.
EVALUATION_FIELDS = tuple(sorted(experiments.NOT_TRAINING_FIELDS - {"device", "feature_cache_mb", "checkpoint_selection"}))
STOPPED = ".stopped"  # <store>/.stopped/<key>/: runs that Stop ended (the store's keys() skips dot-folders)
SOURCE = "wtal sliders"  # entry.json "source" of the entries this module publishes

# -- presets: the budgets of wtal_kit.config.BUDGETS a page starts from -------------------------------
PRESETS = experiments.MODES  # each preset is a reproduction mode: runs here fill its tables
DEFAULT_PRESET = experiments.DEFAULT_MODE
# CPU seconds of the small preset on the THUMOS14 layout with one torch thread (what a training here uses on
# 2 cores): `wtal sliders --time-preset --threads 1` printed 35.0 s CPU, 34.8 s wall on an idle machine, and
# 54.4 s wall with other jobs loading it (README, "Live hyperparameter sliders").
SMALL_PRESET_SECONDS = 35.0


def preset_config(name: str = DEFAULT_PRESET, layout: str = "thumos14", *, device: str = "auto") -> Config:
    """The full method's config of a sliders preset on a dataset layout (the base every control starts from)."""
    checks.one_of(name, PRESETS, "preset")
    checks.one_of(layout, LAYOUTS, "layout")
    return experiments.base_config(name, layout, device=device)


def eval_every(base: Config, iterations) -> int:
    """Evaluate as many times as the preset does whatever the iterations (the preset's own when they are its)."""
    if not checks.is_integer(iterations) or iterations <= 0 or iterations == base.iterations:
        return base.eval_every  # the iterations' own check says what is wrong
    evaluations = max(1, round(base.iterations / base.eval_every))
    return max(1, math.ceil(iterations / evaluations))


# -- checking a request ------------------------------------------------------------------------
def check(base: Config, changes: dict) -> tuple[Config | None, dict]:
    """(config, {}) for valid ``changes`` of ``base``, else (None, {field: one-line problem}).

    Each change is first checked alone (so that every bad control gets its own message), then
    all together (Config's cross-field rules, and k no larger than the block).
    """
    problems = {}
    for name, value in changes.items():
        try:
            base.replace(**{name: value})
        except InputError as error:
            problems[error.field or name] = error.problem
        except (TypeError, ValueError) as error:
            problems[name] = str(error)
    if problems:
        return None, problems
    try:
        config = base.replace(**changes)
    except InputError as error:
        return None, {error.field or "config": error.problem}
    if config.block_processing and config.k > config.block_size:
        return None, {"k": f"k = {config.k} is larger than the block ({config.block_size} segments)"}
    return config, {}


def training_config(config: Config, base: Config) -> Config:
    """What trains for ``config``: the store's form of it, so that it has the reproduction's key.

    The evaluation fields the store key leaves out are ``base``'s (see the module's docstring), and
    a value equal to the base's or to a matching paper row's is taken as written there: the key
    hashes the JSON of the fields, where ``kappa=2`` (Table 5's row) and ``2.0`` differ.
    """
    values = {name: getattr(base, name) for name in experiments.NOT_TRAINING_FIELDS if name != "device"}
    for name, value in config.to_dict().items():
        if name not in values and getattr(base, name) == getattr(config, name):
            values[name] = getattr(base, name)
    for match in matches(config):
        values.update(match.changes)
    return config.replace(**values)


# -- published rows ----------------------------------------------------------------------------
# The method's hyperparameters: a setting matches a row of the paper when these agree with the
# full method plus that row's changes (the budget: d, lr, iterations, seed, may differ).
METHOD_FIELDS = ("kappa", "k", "block_size", "block_processing", "metric_weight", "margin",
                 "classification_loss", "metric_loss", "distance")


@dataclass(frozen=True)
class Match:
    """A row of the paper's tables or figures whose setting a config has."""

    artefact: str  # table3, figure4a, ...
    title: str  # "Table 3: the loss terms"
    variant: str  # the row's label
    published: pd.Series | None  # the printed mAP (%) per tIoU and "avg"; None: the paper prints no number for it
    source: str  # what the published numbers are
    changes: dict = field(default_factory=dict)  # the row's changes from the full method, as the reproduction writes them

    @property
    def name(self) -> str:
        return f"{self.title.split(':')[0]} · {self.variant}"


def matches(config: Config) -> list[Match]:
    """The paper's rows (Tables 1-5, Figures 2-4) whose setting ``config`` has, tables first."""
    layout = layout_of(config.dataset)
    paper = Config()
    found = []
    for name, artefact in experiments.ARTEFACTS.items():
        if name == "figure5":
            continue
        for variant in artefact.variants:
            if variant.layout != layout and not (layout is None and variant.layout == "thumos14"):
                continue
            expected = {f: getattr(paper, f) for f in METHOD_FIELDS} | variant.changes
            if all(getattr(config, f) == expected[f] for f in METHOD_FIELDS):
                dataset = published.PAPER_DATASETS[variant.layout]
                printed = published.published_for(variant)
                if printed is None:
                    source = f"the paper shows this setting only as a chart (no number printed); real {dataset} features"
                else:
                    source = published.PUBLISHED_SOURCE.format(dataset=dataset)
                    if not published.avg_is_printed(variant):
                        source += "; " + published.DERIVED_AVG
                found.append(Match(name, artefact.title, variant.label, printed, source, dict(variant.changes)))
    return sorted(found, key=lambda m: (m.published is None, not m.artefact.startswith("table")))


def uses(config: Config) -> list[list[str]]:
    """entry.json "uses" of a config: the (artefact, variant) rows it serves."""
    return [[m.artefact, m.variant] for m in matches(config)]


# -- one run -------------------------------------------------------------------------------------
@dataclass
class Request:
    """One request and what became of it; the session updates it, readers copy what they need."""

    number: int
    config: Config  # as asked for (its threshold and gamma are the ones shown)
    trained_config: Config  # what trains (the preset's localization settings)
    key: str
    status: str = "queued"  # one of STATUSES
    iteration: int = 0  # iterations done
    losses: list = field(default_factory=list)  # [(iteration, {term: value})], each iteration the loss terms were read (all, on CPU)
    evaluations: list = field(default_factory=list)  # [(iteration, {tiou or "avg": mAP})] at the preset's localization
    mean_ap: pd.Series | None = None  # final mAP (fractions) at the asked localization settings
    run_dir: Path | None = None  # the store entry, or the stopped run's folder
    message: str = ""  # why it failed, or what happened
    seconds: float | None = None  # training time (this session's part of it when resumed)
    resumed_from: int = 0  # iterations a stopped run had reached when this one resumed it
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)  # set once it ends, however

    @property
    def iterations(self) -> int:
        return self.config.iterations

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


Run = Request  # the name before 0.2, when it was easily taken for a run folder (wtal_kit.training.runs.Run)


class _Relay:
    """A training callback that records into a :class:`Request` and tells the session's listeners."""

    def __init__(self, session: "Session", run: Request):
        self.session, self.run = session, run
        self.threads = 0

    def on_iteration(self, event) -> None:
        wanted = self.session.threads_now()
        if wanted != self.threads:  # torch's CPU threads are set per thread: this training's own
            import torch

            torch.set_num_threads(wanted)
            self.threads = wanted
        self.run.iteration = event.iteration
        if event.losses is not None:  # read every iteration on CPU, every few on a GPU (IterationEvent)
            self.run.losses.append((event.iteration, dict(event.losses)))
        self.session._emit(self.run, "iteration")

    def on_evaluation(self, event) -> None:
        mean_ap = event.evaluation.mean_ap
        self.run.evaluations.append((event.iteration, {k: float(v) for k, v in mean_ap.items()}))
        self.session._emit(self.run, "evaluation")


class Session:
    """A queue of requested runs trained by ``workers`` background threads into a results store."""

    def __init__(self, store=experiments.DEFAULT_STORE, *, workers: int | None = None, threads: int | None = None,
                 device: str = "auto"):
        self.store = store if isinstance(store, experiments.ResultsStore) else experiments.ResultsStore(store)
        self.workers = experiments.default_workers(device, most=2) if workers is None else workers
        checks.integer(self.workers, "workers", minimum=1)
        self.threads = threads  # torch CPU threads per training; None: see threads_now()
        self.runs: list[Request] = []
        self._queue: deque[Request] = deque()
        self._lock = threading.Condition()
        self._listeners: list = []
        self._threads: list[threading.Thread] = []
        self._closed = False

    # -- asking ----------------------------------------------------------------------------
    def submit(self, config: Config, base: Config | None = None) -> Request:
        """Ask for a run of ``config``: served from the store, joined to the same run in flight, or queued.

        ``base``: the preset config it was made from (its localization settings are what trains;
        default: ``config``'s own).
        """
        config, problems = check(config, {})
        if problems:
            raise InputError(next(iter(problems.values())), field=next(iter(problems)))
        trained = training_config(config, base or config)
        key = experiments.config_key(trained)
        with self._lock:
            if self._closed:
                raise InputError("this session is closed")
            for run in self.runs:
                if run.key == key and run.active and run.config == config:
                    return run
            run = Request(len(self.runs) + 1, config, trained, key)
            self.runs.append(run)
        entry = self.store.get(key)
        if entry is not None:
            self._serve_from_store(run, entry)
            return run
        with self._lock:
            self._queue.append(run)
            self._start_workers()
            self._lock.notify()
        self._emit(run, "queued")
        return run

    def stop(self, run: Request | None = None) -> None:
        """Stop one run (None: all): a queued run is cancelled, a running one ends after its current iteration."""
        with self._lock:
            targets = [run] if run is not None else list(self.runs)
            cancelled = []
            for target in targets:
                if target.status == "queued" and target in self._queue:
                    self._queue.remove(target)
                    target.status, target.message = "cancelled", "cancelled before it started"
                    cancelled.append(target)
                target.stop_event.set()
        for target in cancelled:
            target.finished.set()
            self._emit(target, "finished")

    def subscribe(self, listener) -> None:
        """``listener(run, kind)`` on every event (see :data:`EVENTS`), in the thread that caused it."""
        self._listeners.append(listener)

    def active(self) -> list[Request]:
        with self._lock:
            return [run for run in self.runs if run.active]

    def wait(self, timeout: float | None = None) -> bool:
        """Until no run is queued or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for run in list(self.runs):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not run.finished.wait(left):
                return False
        return True

    def threads_now(self) -> int:
        """torch CPU threads a training should use now: fixed, or the cores less one shared by the runs in progress.

        One core is left to the page (its kernel, the server, the browser): on 2 cores a training runs on
        one thread, which also keeps it fast when other jobs load the machine (the small preset: 54 s
        with 1 thread, 362 s with 2, at a load average of 5 on 2 cores; README).
        """
        if self.threads:
            return self.threads
        running = sum(run.status == "running" for run in self.runs)
        return max(1, ((os.cpu_count() or 1) - 1) // max(1, running))

    def close(self, timeout: float = 60) -> None:
        """Stop everything and wait for the workers."""
        with self._lock:
            self._closed = True
        self.stop()
        with self._lock:
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- the workers -----------------------------------------------------------------------
    def _start_workers(self) -> None:
        if self._threads:
            return
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"wtal-sliders-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed and not self._queue:
                    return
                run = self._queue.popleft()
                run.status = "running"
            try:
                import torch

                torch.set_num_threads(self.threads_now())  # this thread's own setting (see _Relay)
                self._emit(run, "started")
                self._train(run)
            except WtalError as error:
                run.status, run.message = "failed", str(error)
            except Exception as error:  # noqa: BLE001 - one line for the page; the worker goes on
                run.status, run.message = "failed", f"{type(error).__name__}: {error}"
            finally:
                run.finished.set()
                self._emit(run, "finished")

    def _train(self, run: Request) -> None:
        from wtal_kit.training.runs import CHECKPOINT, load_checkpoint
        from wtal_kit.training import train

        store, key = self.store, run.key
        with store.new_entry(key) as draft:
            if draft is None:  # another process may have trained it while this one waited
                self._serve_from_store(run, store.get(key), emit=False)
                return
            if run.stop_event.is_set():  # stopped while it waited for the key: nothing to load or evaluate
                run.status, run.message = "cancelled", "stopped before it started"
                return
            stopped = self.stopped_path(key)
            config = run.trained_config
            resume = (stopped / CHECKPOINT).is_file()
            if resume:
                shutil.copytree(stopped, draft.path, dirs_exist_ok=True)
                config = Config.from_json(stopped / "config.json")  # the same training fields (same key)
                run.resumed_from = run.iteration = int(load_checkpoint(stopped / CHECKPOINT)["iteration"])
            started = time.perf_counter()
            result = train(config, draft.path, resume=resume, quiet=True, callbacks=[_Relay(self, run)], stop=run.stop_event)
            run.seconds = time.perf_counter() - started
            if result.completed:
                self._publish(run, draft, stopped)
            else:
                self._keep_stopped(run, draft.path, stopped, result.iterations_done)
        run.mean_ap = self._mean_ap(run)

    def _publish(self, run: Request, draft, stopped: Path) -> None:
        """The finished run becomes a store entry, as ResultsStore.compute makes one."""
        draft.publish({"seed": run.config.seed, "uses": uses(run.trained_config), "seconds": run.seconds, "source": SOURCE})
        shutil.rmtree(stopped, ignore_errors=True)
        run.status, run.run_dir, run.iteration = "finished", self.store.path(run.key), run.iterations

    def _keep_stopped(self, run: Request, scratch: Path, stopped: Path, done: int) -> None:
        stopped.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(stopped, ignore_errors=True)
        os.replace(scratch, stopped)
        run.status, run.run_dir, run.iteration = "stopped", stopped, done
        run.message = f"stopped at iteration {done} of {run.iterations}"

    def stopped_path(self, key: str) -> Path:
        return self.store.root / STOPPED / key

    def _serve_from_store(self, run: Request, entry, emit: bool = True) -> None:
        run.status, run.run_dir, run.iteration = "store", entry.path, run.iterations
        run.message = "from the results store (no training)"
        try:
            metrics = entry.metrics
            run.evaluations = [(int(row["iteration"]), {metric_key(c): float(row[c]) for c in row.index if c.startswith("map")})
                               for _, row in metrics.iterrows()]
            # the log keeps each loss term's mean since the previous evaluation (not every iteration)
            run.losses = [(int(row["iteration"]), {term: float(row[f"loss_{term}"]) for term in LOSS_TERMS
                                                   if f"loss_{term}" in row.index and not pd.isna(row[f"loss_{term}"])})
                          for _, row in metrics.iterrows()]
            run.seconds = float(entry.info.get("seconds", float("nan")))
            run.mean_ap = self._mean_ap(run)
        except WtalError as error:
            run.status, run.message = "failed", str(error)
        except Exception as error:  # noqa: BLE001 - a damaged entry: one line, not a traceback
            run.status, run.message = "failed", f"{type(error).__name__}: {error}"
        run.finished.set()
        if emit:
            self._emit(run, "finished")

    def _mean_ap(self, run: Request) -> pd.Series:
        """The final mAP at the localization settings asked for (re-evaluated from the scores if they differ)."""
        from wtal_kit.training.runs import load_run

        loaded = load_run(run.run_dir)
        saved = loaded.config
        if all(getattr(saved, f) == getattr(run.config, f) for f in EVALUATION_FIELDS):
            return loaded.mean_ap
        localizer = loaded.localizer(progress=False)
        return localizer.evaluate(run.config.localization_settings, iou_thresholds=run.config.iou_thresholds,
                                  eval_protocol=run.config.eval_protocol).mean_ap

    def _emit(self, run: Request, kind: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(run, kind)
            except Exception:  # noqa: BLE001 - a drawing error must not end a training
                pass


# -- timing the small preset -----------------------------------------------------------------------
def time_preset(name: str = DEFAULT_PRESET, layout: str = "thumos14", run_dir=None, *, device: str = "cpu",
                threads: int | None = None) -> dict:
    """Train a preset's full method once, alone (no store), and say how long it took: wall and CPU seconds.

    ``threads``: torch CPU threads (None: torch's default, one per core). The CPU seconds of a
    one-thread run hardly depend on what else the machine runs; its wall time does.
    """
    import tempfile

    import torch

    from wtal_kit.training.inference import resolve_device
    from wtal_kit.training import train

    config = preset_config(name, layout, device=device)
    folder = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="wtal-time-"))
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        result = train(config, folder, quiet=True)
        cpu_seconds, used = time.process_time() - cpu_started, torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
        if run_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    # the 1-minute load average at the end: other jobs on the same cores slow a run down (say so beside the time)
    return {"preset": name, "layout": layout, "seconds": time.perf_counter() - started, "cpu_seconds": cpu_seconds,
            "load": os.getloadavg()[0], "iterations": config.iterations,
            "feature_dim": config.feature_dim, "threads": used, "cpus": os.cpu_count(),
            "device": str(resolve_device(device)), "map_avg": float(result.mean_ap["avg"])}


# 0.1's names of this module that moved (wtal_kit/legacy.py): they warn, and go away in 0.3
from wtal_kit import legacy  # noqa: E402

__getattr__ = legacy.old_names("wtal_kit.apps.sessions")  # its own name, also when run as __main__
