"""Training, inference, checkpoints and the scores file on the embedded benchmark."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from wtal_kit.config import Config
from wtal_kit.data.hdf5 import read_scores
from wtal_kit.errors import InputError
from wtal_kit.evaluate import detection_map
from wtal_kit.pipeline import detections_from_scores
from wtal_kit.train import (
    BatchSampler,
    infer,
    load_checkpoint,
    load_dataset,
    load_model,
    make_batch,
    train,
    untrained_result,
)

# Mechanics run on a tiny configuration (d = 32, a few iterations) on the real THUMOS14 layout;
# the learning check runs the quick preset (d = 256) for 600 iterations (about 40 s on 2 cores).
SMALL = dict(feature_dim=32, iterations=6, eval_every=3, seed=3)
LEARNING = dict(iterations=600, eval_every=300, seed=3)


@pytest.fixture(scope="module")
def small_config():
    return Config.from_preset("quick", **SMALL)


@pytest.fixture(scope="module")
def small_dataset(small_config):
    return load_dataset(small_config)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_config, small_dataset):
    run_dir = tmp_path_factory.mktemp("run")
    return train(small_config, run_dir, progress=False, dataset=small_dataset)


@pytest.fixture(scope="module")
def learning_run(tmp_path_factory):
    config = Config.from_preset("quick", **LEARNING)
    dataset = load_dataset(config)
    result = train(config, tmp_path_factory.mktemp("learn"), progress=False, dataset=dataset)
    return config, dataset, result


def test_sampler_batches_share_classes():
    config = Config()  # paper: 20 videos, 4 classes, 5 each
    rng = np.random.default_rng(0)
    labels = np.zeros((60, 6), dtype=bool)
    for c in range(6):
        labels[c * 10 : (c + 1) * 10, c] = True
    sampler = BatchSampler(labels, config)
    for _ in range(20):
        batch = sampler.sample(rng)
        assert len(batch) == 20
        per_class = labels[batch].sum(axis=0)
        assert sorted(per_class[per_class > 0].tolist()) == [5, 5, 5, 5]  # 4 classes x 5 videos, no strays
        assert len(set(batch.tolist())) == 20
    code = BatchSampler(labels, config.replace(sampler="code"))
    assert len(code.sample(rng)) == 20  # 5 classes (with replacement) x 4 videos


def test_sampler_is_deterministic_for_a_seed():
    labels = np.random.default_rng(1).random((40, 5)) < 0.3
    sampler = BatchSampler(labels, Config())
    a = [sampler.sample(np.random.default_rng(7)).tolist() for _ in range(2)]
    assert a[0] == a[1]


def test_make_batch_windows_and_padding():
    rng = np.random.default_rng(0)
    arrays = [np.arange(500 * 2, dtype=np.float32).reshape(500, 2), np.ones((7, 2), np.float32)]
    batch, lengths = make_batch(arrays, 300, rng)
    assert batch.shape == (2, 300, 2) and lengths.tolist() == [300, 7]
    first = batch[0, :, 0] / 2  # a contiguous window of the long video
    assert np.all(np.diff(first) == 1) and 0 <= first[0] <= 200
    assert np.all(batch[1, 7:] == 0) and np.all(batch[1, :7] == 1)


def test_training_learns(learning_run):
    config, dataset, result = learning_run
    assert list(result.metrics["iteration"]) == [300, 600]
    untrained, _ = untrained_result(config, dataset)
    assert untrained[0.5] < 0.02
    # trained clearly above the untrained model
    assert result.mean_ap[0.1] > untrained[0.1] + 0.2
    assert result.mean_ap[0.5] > untrained[0.5] + 0.08
    assert result.checkpoint == "last"


def test_training_lowers_the_loss(learning_run):
    _, _, result = learning_run
    losses = result.metrics["loss_total"].to_numpy()
    assert losses[-1] < losses[0] - 0.3


def test_run_directory_contents(trained, small_config):
    run_dir = trained.run_dir
    for name in ("config.json", "checkpoint.pt", "metrics.csv", "scores_test.h5", "detections_test.json", "results.json"):
        assert (run_dir / name).is_file(), name
    assert Config.from_json(run_dir / "config.json") == small_config
    results = json.loads((run_dir / "results.json").read_text())
    assert results["synthetic"] is True and "synthetic" in results["dataset"] and results["preset"] == "quick"
    assert results["checkpoint"] == "last" and results["test_subset"] == "test"
    state = load_checkpoint(run_dir / "checkpoint.pt")  # weights_only=True load
    assert state["iteration"] == small_config.iterations


def test_scores_file_reproduces_reported_map(trained, small_config):
    scores = read_scores(trained.run_dir / "scores_test.h5")
    assert scores.annotations.num_videos == 212 and scores.kappa == small_config.kappa
    detections = detections_from_scores(scores, "paper")
    mean_ap = detection_map(scores.annotations.ground_truth(), detections, small_config.iou_thresholds)
    for t in small_config.iou_thresholds:
        assert mean_ap[t] == pytest.approx(trained.mean_ap[t], abs=1e-12)


def test_infer_matches_checkpoint(trained, small_config, small_dataset):
    model, config = load_model(trained.run_dir / "checkpoint.pt")
    assert config == small_config
    indices = small_dataset.annotations.indices("test")[:4]
    logits, video_scores = infer(model, small_dataset, indices, config)
    scores = read_scores(trained.run_dir / "scores_test.h5")
    for i, index in enumerate(indices):
        video = small_dataset.annotations.videos[index]
        np.testing.assert_allclose(logits[i], scores.logits[video], rtol=1e-5, atol=1e-5)
    assert video_scores.shape == (4, 20) and np.all((video_scores >= 0) & (video_scores <= 1))


def test_same_seed_same_numbers(tmp_path, small_config, small_dataset):
    config = small_config.replace(iterations=8, eval_every=4)
    a = train(config, tmp_path / "a", progress=False, dataset=small_dataset)
    b = train(config, tmp_path / "b", progress=False, dataset=small_dataset)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)


def test_resume_equals_uninterrupted(tmp_path, small_config, small_dataset):
    config = small_config.replace(iterations=12, eval_every=4, distance="class")
    full = train(config, tmp_path / "full", progress=False, dataset=small_dataset)
    assert train(config, tmp_path / "cut", progress=False, stop_after=4, dataset=small_dataset) is None
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["iteration"] == 4
    resumed = train(config, tmp_path / "cut", resume=True, progress=False, dataset=small_dataset)
    pd.testing.assert_frame_equal(full.metrics, resumed.metrics, check_exact=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resume_with_other_config_is_refused(tmp_path, small_config, small_dataset):
    config = small_config.replace(iterations=4, eval_every=2)
    train(config, tmp_path, progress=False, stop_after=2, dataset=small_dataset)
    with pytest.raises(InputError, match="different config.*lr"):
        train(config.replace(lr=0.5), tmp_path, resume=True, progress=False, dataset=small_dataset)


def test_best_test_map_selection_is_named(tmp_path, small_config, small_dataset):
    config = small_config.replace(iterations=6, eval_every=3, checkpoint_selection="best_test_map")
    result = train(config, tmp_path, progress=False, dataset=small_dataset)
    assert result.checkpoint.startswith("best_test_map") and "test split" in result.checkpoint
    assert (tmp_path / "checkpoint_best.pt").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["checkpoint"] == result.checkpoint


@pytest.mark.parametrize(
    "changes",
    [
        dict(classification_loss="bce"),
        dict(classification_loss="softmax_mil", metric_loss="contrastive"),
        dict(distance="cosine"),
        dict(distance="euclidean"),
        dict(distance="custom", custom_rank=4),
        dict(metric_loss="none", block_processing=False, kappa=None),
        dict(sampler="code", localization="wsad_code", eval_protocol="wtalc"),
    ],
)
def test_variants_train(tmp_path, small_config, small_dataset, changes):
    config = small_config.replace(iterations=3, eval_every=3).replace(**changes)
    if "kappa" in changes:
        import dataclasses

        config = dataclasses.replace(config, kappa=None)
    result = train(config, tmp_path, progress=False, dataset=small_dataset)
    assert np.isfinite(result.metrics["loss_total"]).all()
    assert set(result.mean_ap.index) == {0.1, 0.3, 0.5, 0.7, "avg"}


def test_unknown_dataset_is_an_input_error():
    with pytest.raises(InputError, match="unknown dataset"):
        load_dataset(Config(dataset="imagenet"))


def test_activitynet_layout_trains(tmp_path):
    """The ActivityNet1.2 layout (100 classes; train on training, test on validation) runs end to end."""
    config = Config.from_preset("quick", dataset="synthetic-activitynet12", feature_dim=8, iterations=2, eval_every=2)
    result = train(config, tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["train_subset"] == "training" and results["test_subset"] == "validation"
    assert "ActivityNet1.2 layout" in results["dataset"]
    assert len(result.per_class) == 100  # every class has validation ground truth
    assert read_scores(tmp_path / "scores_validation.h5").annotations.num_videos == 2383
