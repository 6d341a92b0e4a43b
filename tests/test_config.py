"""The Config dataclass: the paper's defaults (docs/method.md, 'Defaults'), presets, validation, JSON."""

import dataclasses
import json

import pytest

from wtal_kit.config import Config
from wtal_kit.errors import InputError


def test_paper_preset_has_the_papers_settings():
    config = Config.from_preset("paper")
    # docs/method.md "Defaults" (paper 4.2): 300 segments, lambda 1, alpha 3, l_w 60, k 10, kappa 4, batch 20 videos
    # of 4 classes, Adam lr 1e-4; mAP at tIoU 0.1/0.3/0.5/0.7; d = 2048 I3D features; 16 frames at 25 fps.
    expected = dict(max_segments=300, metric_weight=1.0, margin=3.0, block_size=60, k=10, kappa=4.0, batch_videos=20,
                    batch_classes=4, lr=1e-4, iou_thresholds=(0.1, 0.3, 0.5, 0.7), feature_dim=2048,
                    seconds_per_segment=0.64, classification_loss="bbce", metric_loss="triplet", distance="class",
                    block_processing=True, localization="paper", threshold=0.5, gamma=0.7, checkpoint_selection="last")
    for name, value in expected.items():
        assert getattr(config, name) == pytest.approx(value), name
    assert config == Config()
    # not in the paper: the embedding is centred on the training-feature mean (a reparametrization that
    # leaves the network and its initial function unchanged; docs/method.md, "Why training collapsed ...")
    assert config.center_features is True


def test_quick_preset_is_named_and_differs_only_in_budget():
    quick, paper = Config.from_preset("quick"), Config.from_preset("paper")
    differing = {f.name for f in dataclasses.fields(Config) if getattr(quick, f.name) != getattr(paper, f.name)}
    assert differing == {"preset", "feature_dim", "lr", "iterations"}
    assert quick.preset == "quick"


def test_json_round_trip(tmp_path):
    config = Config.from_preset("quick", seed=5, kappa=None, iou_thresholds=[0.5, 0.75])
    path = tmp_path / "config.json"
    config.to_json(path)
    assert Config.from_json(path) == config


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(distance="manhattan"), "distance"),
        (dict(lr=0.0), "lr"),
        (dict(kappa=-1.0), "kappa"),
        (dict(threshold=1.0), "threshold"),
        (dict(iou_thresholds=(0.0,)), "iou_thresholds"),
        (dict(k=0), "k"),
        (dict(batch_videos=5, batch_classes=4), "batch_videos"),
        (dict(dropout=1.0), "dropout"),
        (dict(max_per_video=0), "max_per_video"),
        (dict(max_per_video=2.5), "max_per_video"),
    ],
)
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(InputError) as info:
        Config(**changes)
    assert info.value.field == field


def test_replace_and_unknown_fields(tmp_path):
    config = Config().replace(kappa=None, seed=4)  # None is a value: no clipping
    assert config.kappa is None and config.seed == 4 and config.lr == 1e-4
    assert config.replace(kappa=2.0).kappa == 2.0 and config.replace(min_length=3).min_length == 3
    with pytest.raises(InputError) as info:
        Config().replace(lr=None)  # a field that cannot be None is refused, not silently kept
    assert info.value.field == "lr"
    with pytest.raises(InputError, match="unknown config field"):
        Config().replace(learning_rate=1.0)
    path = tmp_path / "c.json"
    path.write_text('{"lr": 0.1, "colour": "red"}')
    with pytest.raises(InputError, match="c.json.*unknown config field"):
        Config.from_json(path)


def test_every_field_has_help_in_its_metadata():
    import dataclasses

    from wtal_kit.config import field_help

    for field in dataclasses.fields(Config):
        assert len(field_help(field.name)) > 10, field.name


def test_a_config_saved_before_centring_existed_reads_as_uncentred(tmp_path):
    saved = Config.from_preset("quick").to_dict()
    del saved["center_features"]  # what config.json held before issue 12
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved))
    assert Config.from_json(path).center_features is False
    assert Config().center_features is True  # while a new config centres
    assert Config.from_dict({**saved, "center_features": True}).center_features is True


# -- wtal_kit.checks: the one validation module -------------------------------------------------------
def test_checks_take_numpy_numbers_and_refuse_bools():
    import numpy as np

    from wtal_kit import checks

    assert checks.integer(np.int64(3), "n", minimum=1) == 3 and type(checks.integer(np.int64(3), "n")) is int
    assert checks.number(np.float32(0.5), "t", above=0, below=1) == 0.5
    for bad in (True, np.bool_(True), 2.0, "2", None):
        with pytest.raises(InputError, match="field 'n': must be an integer >= 1 and <= 2147483647"):
            checks.integer(bad, "n", minimum=1)
    with pytest.raises(InputError, match=r"field 't': must be > 0 and <= 1, got 0.0"):
        checks.number(0.0, "t", above=0, maximum=1)
    with pytest.raises(InputError, match="must be > 0 and <= 1, got nan|must be a finite number"):
        checks.number(float("nan"), "t", above=0, maximum=1)
    with pytest.raises(InputError, match="field 'x': must be a number, got True"):
        checks.number(True, "x")
    assert checks.optional_integer(None, "cap", minimum=1) is None
    with pytest.raises(InputError, match=r"must be an integer >= 1 and <= 2147483647, got 0 \(or None\)"):
        checks.optional_integer(0, "cap", minimum=1)
    with pytest.raises(InputError, match=r"field 'mode': must be one of \('a', 'b'\), got \[1\]"):
        checks.one_of([1], ("a", "b"), "mode")  # unhashable: still one line
    np.testing.assert_array_equal(checks.tiou_thresholds([0.1, 0.5]), [0.1, 0.5])
    for bad in ([], [0.0], [1.5], [0.5, 0.5], ["x"]):
        with pytest.raises(InputError, match="tIoU thresholds"):
            checks.tiou_thresholds(bad)
