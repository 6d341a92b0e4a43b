"""Crashes and full disks: a killed `wtal` loses no finished work and leaves no half-written file.

- `wtal train` SIGKILLed at a seeded random point (after an iteration, while a checkpoint is
  on its way to disk, or from outside at a random moment), then `--resume`: the same metrics,
  results and weights as an uninterrupted run, bit for bit (CPU).
- `wtal reproduce` SIGKILLed mid-grid: the rerun trains only the missing entries, leaves the
  finished ones untouched, and never takes a killed scratch folder for an entry.
- `wtal convert` SIGKILLed mid-write: the target stays the previous valid file; a rerun succeeds.
- A full disk, a file size limit or a read-only output folder: exit code 2, one line on stderr,
  no traceback, no half-written file.

Every child runs in its own process group and is killed if a test fails; every wait has a timeout.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from wtal_kit import experiments as E
from wtal_kit.config import Config
from wtal_kit.data.hdf5 import open_feature_store, read_scores
from wtal_kit.training.runs import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
WTAL = [sys.executable, "-m", "wtal_kit.apps.cli"]
# One thread per child: the same arithmetic in every run, and room for the rest of the suite.
# No bytecode caches from the children: one run under a file size limit (below) would leave truncated .pyc
# files in the shared tree, and every later import would fail on them.
ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
TIMEOUT = 300  # seconds any one child may take before the test fails

ITERATIONS, EVAL_EVERY = 9, 3


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """A feature store of 60 + 30 videos of the embedded benchmark (d = 16): evaluations take a moment, not seconds."""
    from wtal_kit.data.dataset import FeatureDataset
    from wtal_kit.data.hdf5 import write_feature_store
    from wtal_kit.data.catalog import load_dataset

    full = load_dataset(Config.from_preset("quick", feature_dim=16))
    annotations = full.annotations
    keep = np.concatenate([annotations.indices("validation")[:60], annotations.indices("test")[:30]])
    small = FeatureDataset(annotations.select(keep), full.seconds_per_segment, 16,
                           lambda index: full.features(int(keep[index])), "small")
    return write_feature_store(tmp_path_factory.mktemp("store") / "small.h5", small, progress=False)


@pytest.fixture(scope="module")
def train_flags(small_store) -> list[str]:
    return ["--preset", "quick", "--dataset", str(small_store), "--feature-dim", "16", "--batch-videos", "8", "--batch-classes", "2",
            "--max-segments", "200", "--iterations", str(ITERATIONS), "--eval-every", str(EVAL_EVERY), "--seed", "5",
            "--device", "cpu", "--no-progress"]


# -- children ------------------------------------------------------------------------------
@pytest.fixture
def children():
    """Start children in their own process group; whatever is still running at the end is killed."""
    started = []

    def start(command, **kwargs):
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        process = subprocess.Popen(command, cwd=REPO, env=ENV, text=True, start_new_session=True, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=TIMEOUT)


def run(command, *, timeout=TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    """Run a child to its end; past ``timeout`` its whole process group is killed and the test fails."""
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, **kwargs)
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def finish(process, timeout=TIMEOUT) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out, err


def kill(process) -> None:
    """SIGKILL the child's whole process group and reap it."""
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=TIMEOUT)
    assert process.returncode == -signal.SIGKILL


def wait_for(condition, process, what: str, poll=0.01):
    """Poll until ``condition()`` is true; fail if the child ends (or TIMEOUT passes) first."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the child ended (exit code {process.returncode}) before {what}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- what a valid run directory holds ---------------------------------------------------------------
def assert_valid_run_dir(run_dir: Path) -> None:
    """Every file is absent or valid; a killed writer's temporary file is hidden and named *.tmp."""
    for path in sorted(run_dir.iterdir()):
        name = path.name
        if name.startswith("."):
            assert re.fullmatch(r"\..+\.tmp", name), name  # never read as a run file
        elif name == "checkpoint.pt":
            iteration = load_checkpoint(path)["iteration"]
            assert iteration % EVAL_EVERY == 0 or iteration == ITERATIONS, iteration
        elif name == "config.json":
            assert Config.from_json(path).iterations == ITERATIONS
        elif name == "metrics.csv":
            table = pd.read_csv(path)
            assert list(table.columns[:2]) == ["iteration", "loss_total"] and not table.isna().any().any()
            assert (table["iteration"] % EVAL_EVERY == 0).all() and table["iteration"].is_monotonic_increasing
        elif name.endswith(".h5"):
            read_scores(path)
        elif name.endswith(".json"):
            json.loads(path.read_text())
        else:
            pytest.fail(f"unexpected file in the run directory: {name}")


def assert_same_run(a: Path, b: Path) -> None:
    """Two run directories hold the same metrics, results and weights, to the last bit."""
    pd.testing.assert_frame_equal(pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv"), check_exact=True)
    results = [json.loads((d / "results.json").read_text()) for d in (a, b)]
    for key in ("map", "per_class_ap", "iterations_done", "completed"):
        assert results[0][key] == results[1][key], key
    weights = [load_checkpoint(d / "checkpoint.pt")["model"] for d in (a, b)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    np.testing.assert_array_equal(read_scores(a / "scores_test.h5").video_probs, read_scores(b / "scores_test.h5").video_probs)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, train_flags) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    done = run(WTAL + ["train", *train_flags, "--run-dir", str(run_dir)])
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


# -- training killed, then resumed ----------------------------------------------------------
# Runs `wtal train` with a trap that SIGKILLs the process itself at a chosen point:
#   iteration N         after the N-th optimisation step (a Callback, as a notebook would add one);
#   checkpoint-write N  while the N-th torch.save is on disk only halfway (the rest never written).
_TRAPPED = """
import os, signal, sys
mode, count, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "iteration":
    import wtal_kit.training as training
    class Trap(training.Callback):
        def on_iteration(self, event):
            if event.iteration == count:
                die()
    train = training.train
    training.train = lambda *a, **k: train(*a, callbacks=[Trap()], **k)
else:
    import torch
    save, calls = torch.save, []
    def trapped_save(obj, f, *a, **k):
        save(obj, f, *a, **k)
        calls.append(f)
        if len(calls) == count:
            os.truncate(f, os.path.getsize(f) // 2)
            die()
    torch.save = trapped_save
from wtal_kit.apps.cli import main
sys.exit(main(args))
"""


@pytest.mark.slow
@pytest.mark.parametrize("how, seed", [("iteration", 0), ("checkpoint-write", 7), ("outside", 2)])
def test_a_killed_training_resumes_to_the_uninterrupted_result(how, seed, uninterrupted, train_flags, tmp_path, children):
    rng = random.Random(seed)  # the kill point is random but repeatable
    run_dir = tmp_path / "run"
    command = ["train", *train_flags, "--run-dir", str(run_dir)]
    evaluations = ITERATIONS // EVAL_EVERY
    if how == "outside":  # from the test process, at a random moment after a random number of evaluations
        process = children(WTAL + command)
        rows = rng.randint(1, evaluations - 1)
        metrics = run_dir / "metrics.csv"
        wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) > rows, process, f"{rows} evaluations")
        time.sleep(rng.uniform(0.0, 0.2))
        kill(process)
    else:
        count = rng.randint(1, ITERATIONS - 1) if how == "iteration" else rng.randint(1, evaluations)
        process = children([sys.executable, "-c", _TRAPPED, how, str(count), *command])
        process.communicate(timeout=TIMEOUT)
        assert process.returncode == -signal.SIGKILL, process.stderr
        if how == "checkpoint-write":
            # the half-written checkpoint is a hidden temporary file; checkpoint.pt is the previous one (or none)
            assert any(name.startswith(".checkpoint.pt.") for name in hidden(run_dir))
            if count == 1:
                assert not (run_dir / "checkpoint.pt").exists()
            else:
                assert load_checkpoint(run_dir / "checkpoint.pt")["iteration"] == (count - 1) * EVAL_EVERY
    assert not (run_dir / "results.json").exists()
    assert_valid_run_dir(run_dir)

    resumed = run(WTAL + command + ["--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_valid_run_dir(run_dir)
    assert hidden(run_dir) == []  # the killed writer's temporary file is gone too
    assert_same_run(uninterrupted, run_dir)


# -- a reproduction grid killed mid-run ----------------------------------------------------------
SEEDS = ("0", "1")
_REFERENCE = """
import sys
from wtal_kit import experiments as E
store, keys = E.ResultsStore(sys.argv[1]), sys.argv[2].split(",")
for job in E.grid(["table1"], "smoke", (0, 1), device="cpu"):
    if job.key in keys:
        assert store.compute(job)[0] == "trained"
"""


@pytest.mark.slow
def test_a_killed_grid_completes_what_is_missing_and_keeps_what_finished(tmp_path, children):
    store = tmp_path / "store"
    command = WTAL + ["reproduce", "--mode", "smoke", "--only", "table1", "--seeds", *SEEDS, "--workers", "1",
                      "--device", "cpu", "--store", str(store), "--out", str(tmp_path / "reports"), "--no-progress"]
    keys = {job.key for job in E.grid(["table1"], "smoke", tuple(map(int, SEEDS)), device="cpu")}
    assert len(keys) == len(SEEDS)

    # Kill once an entry is finished and the next one is mid-training in its scratch folder
    # (which file the scratch folder must show first is drawn at random).
    waits_for = random.Random(3).choice(["config.json", "metrics.csv", "checkpoint.pt"])
    process = children(command)
    scratch = store / ".tmp"
    wait_for(lambda: E.ResultsStore(store).keys() and scratch.is_dir()
             and any((folder / waits_for).is_file() for folder in scratch.iterdir()), process, f"a second entry's {waits_for}")
    kill(process)

    finished = E.ResultsStore(store).keys()
    assert len(finished) == 1
    killed = [folder for folder in scratch.iterdir()]
    assert len(killed) == 1 and killed[0].name.split(".")[0] in keys - set(finished)
    missing = sorted(keys - set(finished))
    assert E.ResultsStore(store).get(missing[0]) is None  # a killed scratch folder is never an entry
    before = {key: (store / key).stat() for key in finished}
    entry_before = {key: (store / key / E.ENTRY).stat() for key in finished}

    # the uninterrupted reference of what is missing, trained beside the rerun
    reference = children([sys.executable, "-c", _REFERENCE, str(tmp_path / "reference"), ",".join(missing)])
    out, _ = finish(children(command))
    finish(reference)
    assert re.search(rf"grid: {len(missing)} trained, {len(finished)} cached, 0 failed", out), out

    assert set(E.ResultsStore(store).keys()) == keys
    for key in finished:  # untouched: the same folder and entry.json, not rewritten
        now, entry_now = (store / key).stat(), (store / key / E.ENTRY).stat()
        assert (now.st_ino, now.st_mtime_ns) == (before[key].st_ino, before[key].st_mtime_ns)
        assert (entry_now.st_ino, entry_now.st_mtime_ns) == (entry_before[key].st_ino, entry_before[key].st_mtime_ns)
    for key in missing:
        assert_same_run(tmp_path / "reference" / key, store / key)
    assert not list(scratch.iterdir())  # the killed scratch folder is cleared when its key is trained again


# -- a conversion killed mid-write ----------------------------------------------------------
@pytest.mark.slow
def test_a_killed_convert_leaves_the_previous_file_and_a_rerun_succeeds(tmp_path, children):
    target = tmp_path / "features.h5"
    first = run(WTAL + ["convert", "--synthetic", "thumos14", "--feature-dim", "8", "--out", str(target), "--no-progress"])
    assert first.returncode == 0, first.stderr
    previous = target.read_bytes()

    command = WTAL + ["convert", "--synthetic", "thumos14", "--feature-dim", "64", "--out", str(target), "--overwrite", "--no-progress"]
    process = children(command)
    fraction = random.Random(4).uniform(0.05, 0.5)  # of the ~35 MB the new file will hold

    def temporary_big_enough():
        return any(p.stat().st_size > fraction * 35e6 for p in tmp_path.glob(".features.h5.*.tmp"))

    wait_for(temporary_big_enough, process, f"{fraction:.0%} of the new file on disk")
    kill(process)
    assert target.read_bytes() == previous  # the target is the previous, valid file
    assert open_feature_store(target).feature_dim == 8
    assert len(hidden(tmp_path)) == 1  # the half-written file is hidden beside it

    again = run(command)
    assert again.returncode == 0, again.stderr
    assert open_feature_store(target).feature_dim == 64
    assert hidden(tmp_path) == []  # the killed writer's temporary file is removed


# -- full disk, file size limit, read-only folder ----------------------------------------------------
@functools.lru_cache(maxsize=None)
def private_mount_prefix() -> tuple[str, ...] | None:
    """A command prefix under which a shell may mount a tmpfs of its own (nothing leaks out), or None."""
    if shutil.which("unshare") is None:
        return None
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    for prefix in (("unshare", "--mount"), ("unshare", "--user", "--map-root-user", "--mount")):
        done = subprocess.run([*prefix, "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$1"', "sh", str(probe)],
                              capture_output=True, timeout=60)
        if done.returncode == 0:
            return prefix
    return None


def run_on_tmpfs(command, folder: Path, snapshot: Path, options: str) -> subprocess.CompletedProcess:
    """Run ``command`` with a tmpfs (mount ``options``) mounted on ``folder``; copy what it left into ``snapshot``."""
    prefix = private_mount_prefix()
    if prefix is None:
        pytest.skip("cannot mount a private tmpfs here (unshare/mount not permitted)")
    script = ('mount -t tmpfs -o "$1" tmpfs "$2" || exit 99; folder=$2; snapshot=$3; shift 3; '
              '"$@"; rc=$?; cp -a "$folder/." "$snapshot/" || exit 98; exit $rc')
    snapshot.mkdir()
    done = run([*prefix, "sh", "-c", script, "sh", options, str(folder), str(snapshot), *command])
    assert done.returncode not in (98, 99), done.stderr
    return done


def assert_one_line_error(done, command: str, *causes: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(f"wtal {command}: error: ") and "Traceback" not in done.stderr
    assert any(cause in lines[0] for cause in causes), lines[0]
    return lines[0]


def output_commands(uninterrupted: Path, train_flags: list, out: Path) -> dict:
    """Each command that writes outputs, writing them into ``out``."""
    return {
        "train": ["train", *train_flags, "--run-dir", str(out)],
        "convert": ["convert", "--synthetic", "thumos14", "--feature-dim", "16", "--out", str(out / "features.h5"), "--no-progress"],
        "infer": ["infer", "--checkpoint", str(uninterrupted / "checkpoint.pt"), "--out", str(out / "scores.h5"),
                  "--device", "cpu", "--no-progress"],
        "localize": ["localize", "--scores", str(uninterrupted / "scores_test.h5"), "--out", str(out / "detections.json")],
    }


def run_with_file_size_limit(command, limit: int) -> subprocess.CompletedProcess:
    """RLIMIT_FSIZE in the child: a write past ``limit`` bytes fails with EFBIG (SIGXFSZ ignored, as Python does)."""
    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return run(command, preexec_fn=limited)


def assert_nothing_half_written(folder: Path, command: str) -> None:
    if command == "train":
        assert_valid_run_dir(folder)
        assert hidden(folder) == []
    else:
        assert list(folder.iterdir()) == []  # no output, no temporary file


# 16 KiB: room for config.json and the metrics log, not for a checkpoint or any output file
ROOM = 16 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "convert", "infer", "localize"])
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(command, uninterrupted, train_flags, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    argv = WTAL + output_commands(uninterrupted, train_flags, out)[command]
    if private_mount_prefix() is not None:
        done = run_on_tmpfs(argv, out, tmp_path / "out.snapshot", f"size={ROOM}")
        line = assert_one_line_error(done, command, "No space left on device")
        assert "disk full" in line
        out = tmp_path / "out.snapshot"
    else:  # no tmpfs of our own here: a file size limit stands in for the full disk
        line = assert_one_line_error(run_with_file_size_limit(argv, ROOM), command, "File too large")
    assert str(tmp_path / "out") in line
    assert_nothing_half_written(out, command)


@pytest.mark.slow
@pytest.mark.parametrize("command, limit, target", [("convert", ROOM, "features.h5"), ("train", 512, "config.json")])
def test_a_file_size_limit_is_one_line_and_leaves_nothing_half_written(command, limit, target, uninterrupted, train_flags,
                                                                        tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = run_with_file_size_limit(WTAL + output_commands(uninterrupted, train_flags, out)[command], limit)
    line = assert_one_line_error(done, command, "File too large")
    assert str(out / target) in line
    assert not (out / target).exists()
    assert_nothing_half_written(out, command)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "convert", "localize"])
def test_a_read_only_output_folder_is_one_line_and_writes_nothing(command, uninterrupted, train_flags, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    argv = WTAL + output_commands(uninterrupted, train_flags, out)[command]
    if os.geteuid() != 0:
        out.chmod(0o555)
        try:
            done = run(argv)
        finally:
            out.chmod(0o755)
        snapshot = out
    else:  # root ignores permission bits: a read-only tmpfs instead
        done = run_on_tmpfs(argv, out, tmp_path / "out.snapshot", "ro")
        snapshot = tmp_path / "out.snapshot"
    line = assert_one_line_error(done, command, "Read-only file system", "Permission denied")
    assert str(out) in line
    assert list(snapshot.iterdir()) == []


# -- the atomic writer itself ---------------------------------------------------------------------
def test_a_dead_writers_temporary_file_is_removed_and_a_live_ones_kept(tmp_path):
    import socket

    from wtal_kit.atomic import atomic_write_text

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    dead = tmp_path / f".a.txt.{host}.{gone.pid}.x1.tmp"
    alive = tmp_path / f".a.txt.{host}.{os.getppid()}.x2.tmp"  # the process that started pytest is alive
    other = tmp_path / f".b.txt.{host}.{gone.pid}.x3.tmp"  # another target's: not this write's business
    for path in (dead, alive, other):
        path.write_text("half")
    atomic_write_text(tmp_path / "a.txt", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "a.txt"])


def test_what_cannot_fit_is_refused_before_anything_is_written(tmp_path):
    import errno
    import pickle

    from wtal_kit.atomic import OutputError, atomic_path

    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(OutputError) as raised:
        with atomic_path(tmp_path / "big.h5", expected_bytes=free + 2**30) as tmp:
            tmp.write_bytes(b"never")
    assert raised.value.errno == errno.ENOSPC and isinstance(raised.value, OSError)
    assert str(raised.value) == f"{tmp_path / 'big.h5'}: cannot write: No space left on device (disk full)"
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)  # crosses a process pool intact
    assert list(tmp_path.iterdir()) == []


def test_bad_input_found_while_writing_is_reported_as_it_is_without_probing_the_disk(tmp_path, monkeypatch):
    import wtal_kit.atomic as atomic
    from wtal_kit.errors import InputError

    monkeypatch.setattr(atomic, "_disk_problem", lambda tmp: pytest.fail("the disk was probed for an input error"))
    with pytest.raises(InputError, match="video 'v3'"):
        with atomic.atomic_path(tmp_path / "store.h5") as tmp:
            tmp.write_bytes(b"half of it")
            raise InputError("non-finite features", video="v3")
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone, no target
