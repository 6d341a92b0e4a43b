"""Malformed and hostile inputs, everywhere: the corpus of tests/bad_inputs/make_corpus.py through the CLI,
the readers' Python API and the explorer page; pickle payloads that must never run; a damaged results store.

Each corpus case is a bad file (or flag) and the `wtal` command that reads it. The CLI must answer with
exit code 2 and exactly one line on stderr naming the file (or the flag), no traceback, and write nothing.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(Path(__file__).parent / "bad_inputs"))
from make_corpus import CLASSES, PAYLOAD_MARKER, TINY_TRAIN, Payload, make_corpus, write_wtalc_folder  # noqa: E402

from wtal_kit.apps.cli import main  # noqa: E402
from wtal_kit.errors import InputError  # noqa: E402

CORPUS = Path(__file__).parent / "bad_inputs" / "corpus"  # generated, git-ignored
CASES = make_corpus(CORPUS, write=False)  # names and commands only: the files are written by the fixture


@pytest.fixture(scope="module")
def corpus():
    cases = make_corpus(CORPUS)
    assert len(cases) == len(CASES) >= 40
    return {case.name: case for case in cases}


def _written(output: str | None) -> list[str]:
    """What a case left at its output path: the file, or the folder (empty or not) that it made."""
    if output is None:
        return []
    path = Path(output)
    if path.is_file():
        return [str(path)]
    return [str(path)] + [str(p) for p in path.rglob("*")] if path.is_dir() else []


def test_the_corpus_covers_every_reader_and_the_numeric_flags():
    readers = {case.reader for case in CASES}
    assert readers == {"wtalc-annotations", "wtalc-features", "hdf5-store", "hdf5-scores", "hdf5-annotations", "results-json",
                       "gt-json", "checkpoint", "config-json", "flags"}
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_cli_rejects_in_one_line_and_writes_nothing(case, corpus, capsys):
    try:
        code = main(case.argv)
    except SystemExit as exit:  # argparse's own refusals (an int flag given 'nan')
        code = exit.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (case.argv, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"wtal {case.argv[0]}: error: "), lines[0]
    assert case.expect in lines[0], (case.expect, lines[0])
    assert "wrote" not in out
    assert _written(case.output) == []
    assert not (CORPUS / PAYLOAD_MARKER).exists(), "a pickle payload ran"


# -- the readers' Python API: only wtal_kit errors -----------------------------------------------------
def _read(case, good):
    """Call the Python reader a case exercises on its bad file."""
    from wtal_kit.config import Config
    from wtal_kit.data import load_ground_truth, load_wtalc_annotations, load_wtalc_features
    from wtal_kit.data.hdf5 import open_feature_store, read_scores
    from wtal_kit.data.jsonio import read_detections_json, read_ground_truth_json
    from wtal_kit.training.runs import load_model

    argv = case.argv
    value = lambda flag: argv[argv.index(flag) + 1]  # noqa: E731
    if case.reader == "wtalc-annotations":
        load_wtalc_annotations(value("--ground-truth"))
    elif case.reader == "wtalc-features":
        load_wtalc_features(value("--features"), load_wtalc_annotations(good / "annotations"), trust_pickle=True)
    elif case.reader == "hdf5-store":
        dataset = open_feature_store(value("--dataset"))
        for index in range(len(dataset)):
            dataset.features(index)
    elif case.reader == "hdf5-scores":
        read_scores(value("--scores"))
    elif case.reader == "results-json":
        read_detections_json(value("--results"), classes=CLASSES)
    elif case.reader == "gt-json":
        read_ground_truth_json(value("--ground-truth"))
    elif case.reader == "hdf5-annotations":
        load_ground_truth(value("--ground-truth"))
    elif case.reader == "checkpoint":
        load_model(value("--checkpoint"))
    elif case.reader == "config-json":
        Config.from_json(value("--config"))
    else:
        raise AssertionError(case.reader)


FILE_CASES = [case for case in CASES if case.reader != "flags"]


@pytest.mark.parametrize("case", FILE_CASES, ids=[case.name for case in FILE_CASES])
def test_python_readers_raise_only_input_errors_naming_the_file(case, corpus):
    with pytest.raises(InputError) as raised:
        _read(case, CORPUS / "good")
    assert Path(case.expect).name in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not (CORPUS / PAYLOAD_MARKER).exists()


# -- real processes: the exit code, and no stray lines from torch, numpy or h5py ------------------------
SUBPROCESS_CASES = ["ann_npy_is_a_pickle", "ckpt_torch_file_with_payload", "store_truncated", "flag_iterations_float"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_a_real_process_exits_2_with_one_line(name, corpus):
    case = corpus[name]
    done = subprocess.run([sys.executable, "-m", "wtal_kit.apps.cli", *case.argv], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and case.expect in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert _written(case.output) == [] and not (CORPUS / PAYLOAD_MARKER).exists()


def test_library_warnings_never_reach_the_terminal(monkeypatch, capsys):
    import wtal_kit.apps.cli as cli

    def noisy(args):
        # what torch, numpy and h5py do: warnings (some of several lines) from their own files, and
        # a numpy RuntimeWarning raised by a computation in wtal_kit
        warnings.warn_explicit("TypedStorage is deprecated.\nIt will be removed.", UserWarning, "/x/torch/storage.py", 1)
        warnings.warn_explicit("h5py is running against HDF5 1.14", UserWarning, "/x/h5py/__init__.py", 1)
        warnings.warn_explicit("overflow encountered in exp", RuntimeWarning, cli.__file__, 1)
        warnings.warn_explicit("3 of the 9 videos have no ground truth;\nwrong --subset?", UserWarning, cli.__file__, 2)
        return 0

    monkeypatch.setattr(cli, "cmd_localize", noisy)
    assert main(["localize", "--scores", "any.h5"]) == 0
    assert capsys.readouterr().err == "wtal: warning: 3 of the 9 videos have no ground truth; wrong --subset?\n"

    def noisy_then_fails(args):
        warnings.warn_explicit("TypedStorage is deprecated.", UserWarning, "/x/torch/storage.py", 1)
        raise InputError("broken", file="x.h5")

    monkeypatch.setattr(cli, "cmd_localize", noisy_then_fails)
    assert main(["localize", "--scores", "any.h5"]) == 2
    assert capsys.readouterr().err == "wtal localize: error: x.h5: broken\n"


# -- pickle payloads never run -------------------------------------------------------------------------
def test_pickle_payloads_never_run(tmp_path):
    import h5py
    import torch

    from wtal_kit.data import load_wtalc_annotations, load_wtalc_features
    from wtal_kit.data.hdf5 import read_scores
    from wtal_kit.data.npyfile import load_npy
    from wtal_kit.training.runs import load_checkpoint

    # the control: this payload does create its file when unpickled the ordinary way
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.exists()

    marker = tmp_path / PAYLOAD_MARKER
    payload = pickle.dumps(Payload(marker), protocol=2)
    annotations = tmp_path / "annotations"
    write_wtalc_folder(annotations)

    checkpoint = tmp_path / "model.pt"
    torch.save({"model": Payload(marker), "config": "{}"}, checkpoint)
    raw_checkpoint = tmp_path / "raw.pt"
    raw_checkpoint.write_bytes(payload)
    for path in (checkpoint, raw_checkpoint):
        with pytest.raises(InputError, match="nothing was run"):
            load_checkpoint(path)

    object_npy = tmp_path / "segments.npy"  # a well-formed .npy header before the pickle
    with open(object_npy, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|O", "fortran_order": False, "shape": (6,)})
        handle.write(payload)
    with pytest.raises(InputError, match="builtin.*exec"):
        load_npy(object_npy)
    (annotations / "labels.npy").write_bytes(object_npy.read_bytes())
    with pytest.raises(InputError, match="labels.npy"):
        load_wtalc_annotations(annotations)
    write_wtalc_folder(tmp_path / "clean")
    with pytest.raises(InputError, match="exec"):  # even with the opt-in, the feature pickle may only build arrays
        load_wtalc_features(object_npy, load_wtalc_annotations(tmp_path / "clean"), trust_pickle=True)

    scores = tmp_path / "scores.h5"  # HDF5 holds no pickle; one smuggled into an attribute is only bytes
    with h5py.File(scores, "w") as handle:
        handle.attrs["format"] = "wtal-kit-scores"
        handle.attrs["config"] = np.void(payload)
    with pytest.raises(InputError):
        read_scores(scores)
    assert not marker.exists()


def test_an_object_array_of_arrays_strings_and_numbers_still_loads(tmp_path):
    from wtal_kit.data.npyfile import load_npy

    values = np.empty(3, dtype=object)
    values[:] = [np.zeros((2, 3), np.float32), [b"Diving", "Jump"], [[1.5, np.float64(2.5)]]]
    for protocol in (2, 3, 5):  # Python 2's release files, np.save's, and the newest
        path = tmp_path / f"p{protocol}.npy"
        with open(path, "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, {"descr": "|O", "fortran_order": False, "shape": (3,)})
            pickle.dump(values, handle, protocol=protocol)
        loaded = load_npy(path)
        assert loaded[0].dtype == np.float32 and loaded[0].shape == (2, 3)
        assert loaded[1] == [b"Diving", "Jump"] and loaded[2] == [[1.5, 2.5]]


# -- the results store ---------------------------------------------------------------------------------
def test_a_damaged_store_entry_is_one_line_and_its_checkpoint_runs_no_code(tmp_path):
    import torch

    from wtal_kit import experiments

    job = experiments.grid(["table1"], "smoke", (0,))[0]
    store = experiments.ResultsStore(tmp_path / "store")
    folder = store.path(job.key)
    folder.mkdir(parents=True)
    (folder / experiments.ENTRY).write_bytes(b"\x00{not json")
    (folder / "results.json").write_text(json.dumps({"map": {"0.5": "high"}}))
    job.config.to_json(folder / "config.json")
    marker = tmp_path / PAYLOAD_MARKER
    torch.save({"model": Payload(marker), "config": "{}"}, folder / "checkpoint.pt")

    entry = store.get(job.key)
    for read, name in ((lambda: entry.info, "entry.json"), (lambda: entry.results, "results.json"),
                       (lambda: entry.metrics, "metrics.csv"), (lambda: entry.run().model(), "checkpoint.pt")):
        with pytest.raises(InputError) as raised:
            read()
        assert name in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(InputError, match="results.json"):  # what the reproduction notebooks call
        experiments.collect("table1", "smoke", (0,), store)
    assert not marker.exists()


# -- the explorer page ---------------------------------------------------------------------------------
def test_the_explorer_shows_a_bad_file_as_one_line_and_keeps_working(corpus):
    pytest.importorskip("ipywidgets")
    pytest.importorskip("plotly")
    from widgets.explorer import Explorer, PathPolicy

    from wtal_kit.data.hdf5 import read_scores
    from wtal_kit.localizer import Localizer

    app = Explorer(Localizer(read_scores(CORPUS / "good" / "scores.h5")), path_policy=PathPolicy([CORPUS]))
    for case in corpus.values():
        if case.reader == "hdf5-scores":
            app.open_path.value = case.argv[case.argv.index("--scores") + 1]
            app._on_open(None)
        elif case.reader == "results-json":
            app.compare_path.value = f"{case.name}={case.argv[case.argv.index('--results') + 1]}"
            app._on_compare(None)
        else:
            continue
        message = app.message.value
        assert case.expect in message and "\n" not in message and "Traceback" not in message, (case.name, message)
    escape = CORPUS / "escape.h5"  # a link inside the allowed folder to a file outside it
    escape.unlink(missing_ok=True)
    escape.symlink_to(REPO_ROOT / "README.md")
    app.open_path.value = str(escape)
    app._on_open(None)
    assert "outside the folders" in app.message.value
    app.threshold.value = 0.4  # the page still answers
    app.wait()
    assert app.message.value == "" and "<table" in app.map_table.value


# -- every numeric flag ------------------------------------------------------------------------------
def _numeric_config_flags() -> list[str]:
    import dataclasses
    import typing

    from wtal_kit.config import Config

    hints = typing.get_type_hints(Config)
    numeric = (int, float, int | None, float | None)
    return [f.name for f in dataclasses.fields(Config) if hints[f.name] in numeric or f.name == "iou_thresholds"]


NUMERIC_FIELDS = _numeric_config_flags()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
@pytest.mark.parametrize("name", NUMERIC_FIELDS)
def test_every_numeric_config_flag_refuses_non_finite_and_negative_values(name, value, tmp_path, capsys):
    flag = "--" + name.replace("_", "-")
    try:
        # tiny settings first (the flag under test, given last, overrides its own): a value wrongly let through trains for seconds
        code = main(["train", *TINY_TRAIN, flag, value, "--run-dir", str(tmp_path / "run")])
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and (name in err or flag in err), err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags", [["--threshold", "0"], ["--threshold", "1"], ["--gamma", "-inf"], ["--gamma", "nan"],
                                   ["--min-length", "-2"], ["--max-per-video", "0"], ["--max-per-video", "nan"]])
def test_localize_flags_refuse_bad_values_and_write_nothing(flags, corpus, tmp_path, capsys):
    out = tmp_path / "d.json"
    try:
        code = main(["localize", "--scores", str(CORPUS / "good" / "scores.h5"), "--out", str(out), *flags])
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and flags[0].strip("-").replace("-", "_") in err.replace("-", "_"), err
    assert not out.exists()


MEMORY_PICKLES = r'''
import io, pickle, sys
import numpy as np
from wtal_kit.data.npyfile import load_npy
from wtal_kit.errors import InputError


class Reduce:
    def __init__(self, *value):
        self.value = value

    def __reduce__(self):
        return self.value


state = np.array([1.0]).__reduce__()
hostile = {
    # NumPy trusts these arguments: each would turn the bytes b"AAAAAAAA" into an object pointer
    "ndarray called with an object dtype and a buffer": Reduce(np.ndarray, ((1,), np.dtype("O"), b"A" * 8)),
    "an object array state holding raw bytes": Reduce(state[0], state[1], (1, (1,), np.dtype("O"), False, b"A" * 8)),
    "a dtype state with an object field overlapping an integer": Reduce(
        np.dtype, ("V16", False, True),
        (3, "|", None, ("a", "b"), {"a": (np.dtype("O"), 4), "b": (np.dtype("i8"), 8)}, 16, 1, 63)),
}
refused = 0
for number, (name, value) in enumerate(hostile.items()):
    path = f"{sys.argv[1]}/{number}.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        pickle.dump(np.array([value], dtype=object), handle, protocol=2)
    try:
        load_npy(path)
    except InputError as error:
        refused += "(refused)" in str(error)
print(refused)
'''


def test_npy_pickles_that_numpy_would_turn_into_a_crash_are_refused(tmp_path):
    # in a child process: were one of them let through, the crash must not take the test session with it
    done = subprocess.run([sys.executable, "-c", MEMORY_PICKLES, str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3"]


def test_a_damaged_run_folder_is_one_line(tmp_path):
    from wtal_kit.config import Config
    from wtal_kit.training.runs import load_run

    Config.from_preset("quick").to_json(tmp_path / "config.json")
    (tmp_path / "metrics.csv").write_bytes(b"\xff\xfe\x00iteration\n")
    (tmp_path / "results.json").write_text(json.dumps({"map": ["0.5", 0.3]}))
    run = load_run(tmp_path)
    for read, name in ((lambda: run.metrics, "metrics.csv"), (lambda: run.mean_ap, "results.json")):
        with pytest.raises(InputError, match=name):
            read()
    (tmp_path / "results.json").write_bytes(b"[" * 50000)
    with pytest.raises(InputError, match="results.json"):
        load_run(tmp_path)
