"""The `wtal` command line: help, the train -> infer -> localize -> evaluate chain, bad input, torch-free paths."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, THUMOS_DIR, write_release_npy
from wtal_kit.apps.cli import main
from wtal_kit.data.hdf5 import open_feature_store

TINY = ["--preset", "quick", "--feature-dim", "16", "--iterations", "4", "--eval-every", "2", "--no-progress"]


def run_cli(*args, block=()):
    """Run `python -m wtal_kit.apps.cli ARGS` in a fresh interpreter; ``block`` lists modules made unimportable."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in block)
    code = prelude + "from wtal_kit.apps.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.mark.parametrize("command", ["train", "infer", "localize", "evaluate", "convert", "demo", "explore"])
def test_help_explains_each_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: wtal " + command in text and "--" in text


def test_train_help_documents_config_fields(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("--kappa", "--metric-loss {triplet,contrastive,none}", "--checkpoint-selection", "paper: 0.0001", "Eq. 5-6"):
        assert phrase in text, phrase


@pytest.mark.slow
def test_train_infer_localize_evaluate_chain(tiny_run, tmp_path, capsys):
    assert (tiny_run / "results.json").is_file()
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["feature_dim"] == 16 and config["preset"] == "quick"

    scores = tmp_path / "scores.h5"
    assert main(["infer", "--checkpoint", str(tiny_run / "checkpoint.pt"), "--out", str(scores), "--no-progress"]) == 0
    detections = tmp_path / "det.json"
    assert main(["localize", "--scores", str(scores), "--out", str(detections)]) == 0
    results = json.loads(detections.read_text())["results"]
    assert len(results) == 212  # every test video, with or without detections
    capsys.readouterr()

    assert main(["evaluate", "--scores", str(scores), "--iou", "0.1", "0.5"]) == 0
    from_scores = capsys.readouterr().out
    assert main(["evaluate", "--results", str(detections), "--ground-truth", str(THUMOS_DIR), "--subset", "test",
                 "--iou", "0.1", "0.5"]) == 0
    from_json = capsys.readouterr().out
    # the same numbers both ways (the row labels differ)
    assert from_scores.splitlines()[-1].split()[-3:] == from_json.splitlines()[-1].split()[-3:]


def test_infer_scores_a_store_without_annotations(tiny_run, tmp_path, capsys):
    """One's own videos (no classes, no labels: what `wtal features` writes without --annotations) are scored
    under the model's classes, which the checkpoint records."""
    from wtal_kit.data.annotations import Annotations
    from wtal_kit.data.dataset import FeatureDataset
    from wtal_kit.data.hdf5 import read_scores, write_feature_store
    from wtal_kit.training.runs import checkpoint_classes

    rng = np.random.default_rng(0)
    arrays = [rng.random((n, 16), dtype=np.float32) for n in (5, 9)]
    annotations = Annotations.without_labels("mine", ["walk", "jump"], [5 * 0.64, 9 * 0.64])
    store = tmp_path / "mine.h5"
    write_feature_store(store, FeatureDataset(annotations, 0.64, 16, lambda i: arrays[i]), progress=False)
    assert open_feature_store(store).annotations.num_classes == 0
    scores = tmp_path / "scores_mine.h5"
    assert main(["infer", "--checkpoint", str(tiny_run / "checkpoint.pt"), "--dataset", str(store), "--out", str(scores),
                 "--no-progress"]) == 0
    assert "2 videos of subset 'test'" in capsys.readouterr().out
    read = read_scores(scores)
    classes = checkpoint_classes(tiny_run / "checkpoint.pt", None)
    assert len(classes) == 20 and read.annotations.classes == classes  # THUMOS14's 20, in the model's order
    assert [len(read.logits[v]) for v in ("walk", "jump")] == [5, 9] and read.video_probs.shape == (2, 20)
    assert read.annotations.ground_truth().empty


def test_evaluate_both_protocols_and_csv(tiny_run, tmp_path, capsys):
    out = tmp_path / "ap.csv"
    assert main(["evaluate", "--scores", str(tiny_run / "scores_test.h5"), "--protocol", "both", "--per-class", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[activitynet protocol]" in text and "[wtalc protocol]" in text and "not comparable" in text
    import pandas as pd

    table = pd.read_csv(out)
    assert set(table["protocol"]) == {"activitynet", "wtalc"} and len(table) == 40


@pytest.mark.slow
def test_scores_paths_run_without_torch(tiny_run, tmp_path):
    scores = tiny_run / "scores_test.h5"
    done = run_cli("evaluate", "--scores", scores, block=["torch"])
    assert done.returncode == 0, done.stderr
    assert "@0.5" in done.stdout
    done = run_cli("localize", "--scores", scores, "--out", tmp_path / "d.json", "--protocol", "wsad_code", block=["torch"])
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_core_imports_without_ui_packages():
    code = (
        "import sys\n"
        "for name in ('ipywidgets', 'plotly', 'voila', 'IPython', 'jupyter_client'):\n"
        "    sys.modules[name] = None\n"
        "import wtal_kit, wtal_kit.data, wtal_kit.data.synthetic, wtal_kit.evaluate, wtal_kit.localization, wtal_kit.losses\n"
        "import wtal_kit.model, wtal_kit.training, wtal_kit.training.runs, wtal_kit.training.inference, wtal_kit.data.catalog, wtal_kit.apps.cli\n"
        "import wtal_kit.apps.demo, wtal_kit.experiments.published, wtal_kit.localizer\n"
        "assert wtal_kit.Localizer and wtal_kit.load_run and wtal_kit.train and callable(wtal_kit.localize)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr


def _assert_one_line_error(done, *fragments):
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(tmp_path):
    _assert_one_line_error(run_cli("evaluate", "--results", tmp_path / "missing.json", "--ground-truth", THUMOS_DIR),
                           "missing.json", "file not found")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": {"video_test_0000004": [{"label": "Juggling", "score": 0.5, "segment": [1, 2]}]}}))
    _assert_one_line_error(run_cli("evaluate", "--results", bad, "--ground-truth", THUMOS_DIR, "--subset", "test"),
                           "bad.json", "video_test_0000004", "unknown label 'Juggling'")
    _assert_one_line_error(run_cli("train", "--dataset", tmp_path / "nope.h5", "--feature-dim", "8", "--run-dir", tmp_path / "run"),
                           "nope.h5", "file not found")
    assert not (tmp_path / "run").exists()  # nothing written, not even the run folder
    _assert_one_line_error(run_cli("train", "--lr", "-1"), "lr", "must be > 0")
    _assert_one_line_error(run_cli("infer", "--checkpoint", tmp_path / "none.pt"), "none.pt", "checkpoint not found")
    _assert_one_line_error(run_cli("localize", "--scores", bad), "bad.json")


@pytest.mark.slow
def test_convert_needs_trust_and_writes_nothing(tmp_path, thumos_annotations):
    features = tmp_path / "Thumos14reduced-I3D-JOINTFeatures.npy"
    rng = np.random.default_rng(0)
    write_release_npy(features, [rng.random((3, 8), dtype=np.float32) for _ in range(thumos_annotations.num_videos)])
    out = tmp_path / "store.h5"
    done = run_cli("convert", "--annotations", THUMOS_DIR, "--features", features, "--out", out)
    _assert_one_line_error(done, "pickle", "--trust-pickle")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [features.name]

    done = run_cli("convert", "--annotations", THUMOS_DIR, "--features", features, "--out", out, "--trust-pickle", "--no-progress")
    assert done.returncode == 0, done.stderr
    store = open_feature_store(out)
    assert len(store) == 412 and store.feature_dim == 8
    _assert_one_line_error(run_cli("convert", "--annotations", THUMOS_DIR, "--features", features, "--out", out, "--trust-pickle"),
                           "output exists")


@pytest.mark.slow
def test_train_on_a_converted_synthetic_store(tmp_path, capsys):
    store = tmp_path / "synthetic.h5"
    assert main(["convert", "--synthetic", "thumos14", "--feature-dim", "8", "--out", str(store), "--no-progress"]) == 0
    run_dir = tmp_path / "run"
    assert main(["train", "--dataset", str(store), "--feature-dim", "8", "--iterations", "2", "--eval-every", "2",
                 "--run-dir", str(run_dir), "--no-progress"]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["synthetic"] is False and store.name in results["dataset"] and results["preset"] == "paper"
    assert str(tmp_path) not in results["dataset"]  # no absolute machine path in results


@pytest.mark.slow
def test_kappa_none_flag(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--kappa", "none", "--iterations", "2", "--run-dir", str(run_dir)]) == 0
    assert json.loads((run_dir / "config.json").read_text())["kappa"] is None


@pytest.mark.slow
def test_demo_caches_and_labels_its_numbers(tmp_path, capsys, monkeypatch):
    from wtal_kit.apps import demo
    from wtal_kit.config import Config

    config = Config.from_preset("quick", feature_dim=16, iterations=4, eval_every=2)
    assert demo.run_demo(tmp_path, progress=False, config=config) == 0
    first = capsys.readouterr().out
    assert "embedded synthetic benchmark" in first and "published (real THUMOS14" in first and "untrained model" in first
    assert "62.3" in first  # the paper's Table 1 mAP@0.1, shown as published
    assert "vary by machine" in first  # the CPU spread is stated with the numbers

    def no_training(*args, **kwargs):
        raise AssertionError("a cached demo must not train again")

    monkeypatch.setattr("wtal_kit.apps.demo.train", no_training)
    assert demo.run_demo(tmp_path, progress=False, config=config) == 0
    second = capsys.readouterr().out
    assert "Using the finished demo run" in second
    assert first.splitlines()[-6:] == second.splitlines()[-6:]


def test_evaluate_warns_when_detections_miss_the_ground_truth(tiny_run):
    # test-split detections against the validation ground truth: one warning line, the table still printed
    done = run_cli("evaluate", "--results", tiny_run / "detections_test.json", "--ground-truth", THUMOS_DIR,
                   "--subset", "validation")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wtal: warning:") and "no ground-truth instance" in lines[0]
    assert "mAP (%)" in done.stdout


@pytest.mark.slow
def test_localization_flags_come_from_the_config(tiny_run, tmp_path):
    from wtal_kit.config import field_help

    help_text = run_cli("localize", "--help").stdout
    for name in ("threshold", "gamma", "min_length"):
        assert field_help(name)[:30] in " ".join(help_text.split()), name
    scores = tiny_run / "scores_test.h5"
    counts = {}
    for flags in (["--min-length", "1"], ["--min-length", "4"], ["--localization", "wsad_code"], ["--protocol", "wsad_code"]):
        out = tmp_path / f"d{len(counts)}.json"
        done = run_cli("localize", "--scores", scores, "--out", out, "--threshold", "0.3", *flags)
        assert done.returncode == 0, done.stderr
        counts[" ".join(flags)] = sum(len(v) for v in json.loads(out.read_text())["results"].values())
    assert counts["--min-length 4"] <= counts["--min-length 1"]
    assert counts["--localization wsad_code"] == counts["--protocol wsad_code"]  # --protocol: the old spelling
    _assert_one_line_error(run_cli("localize", "--scores", scores, "--min-length", "0"), "min_length")
    _assert_one_line_error(run_cli("localize", "--scores", scores, "--threshold", "2"), "threshold")


def test_evaluate_both_protocols_from_scores(tiny_run):
    done = run_cli("evaluate", "--scores", tiny_run / "scores_test.h5", "--eval-protocol", "both", "--iou-thresholds", "0.3", "0.5")
    assert done.returncode == 0, done.stderr
    assert "[activitynet protocol]" in done.stdout and "[wtalc protocol]" in done.stdout and "@0.3" in done.stdout
    assert "not comparable" in done.stdout


@pytest.mark.slow
def test_explore_refuses_bad_input_in_one_line(tiny_run, tmp_path):
    not_scores = tmp_path / "x.h5"
    not_scores.write_text("hello")
    _assert_one_line_error(run_cli("explore", not_scores), "x.h5")
    _assert_one_line_error(run_cli("explore", tmp_path), "not a run folder")
    _assert_one_line_error(run_cli("explore", tiny_run, "--compare", "nameonly"), "NAME=RESULTS.json")
    _assert_one_line_error(run_cli("explore", tiny_run / "scores_test.h5", "--compare", f"x={tmp_path / 'none.json'}"), "none.json")
    _assert_one_line_error(run_cli("explore", tiny_run, "--videos", tmp_path / "no-such-folder"), "not a folder of videos")


@pytest.mark.slow
def test_explore_serves_until_interrupted(tiny_run):
    import signal
    import time
    import urllib.request

    pytest.importorskip("voila")
    # started with SIGINT ignored, as a background job of a non-interactive shell is: Ctrl-C must still stop it
    process = subprocess.Popen([sys.executable, "-m", "wtal_kit.apps.cli", "explore", str(tiny_run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "served at" not in line and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
        assert "served at http://127.0.0.1:" in line, process.stderr.read() if process.poll() is not None else line
        url = line.split("served at ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=120) as reply:
            assert reply.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0


@pytest.mark.slow
def test_max_per_video_flag_caps_and_is_reported(tiny_run, tmp_path, capsys):
    scores = tiny_run / "scores_test.h5"
    out_full, out_capped = tmp_path / "full.json", tmp_path / "capped.json"
    assert main(["localize", "--scores", str(scores), "--out", str(out_full), "--threshold", "0.2"]) == 0
    assert main(["localize", "--scores", str(scores), "--out", str(out_capped), "--threshold", "0.2", "--max-per-video", "2"]) == 0
    assert "at most 2 detections per video" in capsys.readouterr().out
    full, capped = (json.loads(path.read_text()) for path in (out_full, out_capped))
    assert max(len(v) for v in full["results"].values()) > 2  # the cap bites on this run
    assert max(len(v) for v in capped["results"].values()) == 2
    assert capped["external_data"]["max_per_video"] == 2 and full["external_data"]["max_per_video"] is None
    assert main(["evaluate", "--scores", str(scores), "--max-per-video", "2"]) == 0
    assert "at most 2 detections per video" in capsys.readouterr().out
    assert main(["evaluate", "--scores", str(scores), "--max-per-video", "none"]) == 0
    assert "detections per video" not in capsys.readouterr().out
    _assert_one_line_error(run_cli("localize", "--scores", scores, "--max-per-video", "0"), "max_per_video")


def test_served_apps_take_the_pool_size_and_idle_timeout(tiny_run, tmp_path, monkeypatch, capsys):
    from wtal_kit.apps import cli

    served = []
    monkeypatch.setattr(cli, "serve_explorer", lambda *args, **kwargs: served.append(kwargs) or 0)
    monkeypatch.setattr(cli, "serve_app", lambda *args, **kwargs: served.append(kwargs) or 0)
    assert main(["explore", str(tiny_run), "--pool-size", "2", "--idle-timeout", "30"]) == 0
    assert main(["sliders", "--store", str(tmp_path / "store"), "--pool-size", "0", "--no-browser"]) == 0
    assert [(s["pool_size"], s["idle_timeout"]) for s in served] == [(2, 30.0), (0, 120.0)]  # 120 s: the default
    for command in ("explore", "sliders", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--pool-size N" in text and "[1]" in text and "--idle-timeout SECONDS" in text and "[120]" in text
    _assert_one_line_error(run_cli("explore", tiny_run, "--pool-size", "-1"), "--pool-size")
    _assert_one_line_error(run_cli("sliders", "--idle-timeout", "0"), "--idle-timeout")
