"""The Localizer: exact agreement with localize_videos + per_class_ap, views, per-video table.

Grid: seconds_per_segment = 16/25 = 0.64 s, so segment i covers [0.64 i, 0.64 (i + 1)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wtal_kit.data.annotations import Annotations
from wtal_kit.data.hdf5 import Scores, read_scores
from wtal_kit.errors import InputError
from wtal_kit.evaluate import per_class_ap
from wtal_kit.localization import sigmoid, localize_videos
from wtal_kit.localizer import Localizer

from conftest import make_scores

SPS = 16 / 25


@pytest.fixture(scope="module")
def test_split(thumos_annotations):
    return thumos_annotations.select(thumos_annotations.indices("test"))


@pytest.fixture(scope="module")
def random_scores(test_split):
    return make_scores(test_split, seed=1)


def reference(scores: Scores, localization, threshold=0.5, gamma=0.7, min_length=None, kappa="from scores", max_per_video=None):
    """The existing functions, composed as before the Localizer existed."""
    return localize_videos(
        scores.logits,
        scores.video_probs_by_video(),
        list(scores.annotations.classes),
        protocol=localization,
        kappa=scores.kappa if kappa == "from scores" else kappa,
        threshold=threshold,
        gamma=gamma,
        seconds_per_segment=scores.seconds_per_segment,
        block_size=60,
        k=10,
        min_length=min_length,
        ambiguous=scores.annotations.ambiguous if localization == "wsad_code" else None,
        max_per_video=max_per_video,
    )


SETTINGS = [
    dict(localization="paper", threshold=0.5, gamma=0.7),
    dict(localization="paper", threshold=0.2, gamma=0.0),
    dict(localization="paper", threshold=0.85, gamma=2.5, min_length=3),
    dict(localization="wsad_code", threshold=0.5, gamma=0.7),
    dict(localization="wsad_code", threshold=0.5, gamma=0.3, min_length=1),
    dict(localization="paper", threshold=0.2, gamma=0.7, max_per_video=3),
    dict(localization="wsad_code", threshold=0.5, gamma=0.7, max_per_video=2),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_detections_equal_localize_videos(random_scores, settings):
    expected = reference(random_scores, **settings)
    found = Localizer(random_scores).detections(**settings)
    assert len(found) > 100
    pd.testing.assert_frame_equal(found, expected, check_exact=True)


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("eval_protocol", ["activitynet", "wtalc"])
def test_evaluate_equals_per_class_ap(random_scores, settings, eval_protocol):
    thresholds = (0.1, 0.3, 0.5, 0.7, 0.9)
    expected = per_class_ap(random_scores.annotations.ground_truth(), reference(random_scores, **settings), thresholds, eval_protocol)
    evaluation = Localizer(random_scores).evaluate(**settings, iou_thresholds=thresholds, eval_protocol=eval_protocol)
    pd.testing.assert_frame_equal(evaluation.per_class, expected, check_exact=True)
    mean = expected.mean(axis=0)
    assert [evaluation.mean_ap[t] for t in thresholds] == mean.tolist()
    assert evaluation.mean_ap["avg"] == mean[[0.1, 0.3, 0.5, 0.7]].mean()  # "avg" is the paper's four, always
    assert evaluation.mean_ap["avg 0.1:0.2:0.9"] == mean.mean()  # the mean over the five, labelled with them


def test_no_clipping_and_other_kappa(random_scores):
    for kappa in (None, 1.0):
        found = Localizer(random_scores, kappa=kappa).detections(threshold=0.6)
        pd.testing.assert_frame_equal(found, reference(random_scores, "paper", threshold=0.6, kappa=kappa), check_exact=True)


def test_trained_run_agrees(trained_quick_run):
    """On a trained model's scores file, the same agreement (the demo's kind of run)."""
    scores = read_scores(trained_quick_run.run_dir / "scores_test.h5")
    localizer = Localizer(scores)
    for settings in SETTINGS[:2] + SETTINGS[3:4]:
        detections = reference(scores, **settings)
        pd.testing.assert_frame_equal(localizer.detections(**settings), detections, check_exact=True)
        expected = per_class_ap(scores.annotations.ground_truth(), detections)
        pd.testing.assert_frame_equal(localizer.evaluate(**settings).per_class, expected, check_exact=True)
    # the run's own report came through the same path
    assert localizer.evaluate().mean_ap.tolist() == trained_quick_run.mean_ap.tolist()


def count_run_searches(monkeypatch) -> list:
    """A list that grows by one each time the Localizer searches runs (a new threshold, no cached run set)."""
    import wtal_kit.localizer as pipeline

    calls = []
    original = pipeline.runs_in_rows
    monkeypatch.setattr(pipeline, "runs_in_rows", lambda kept: calls.append(1) or original(kept))
    return calls


def test_gamma_change_only_rescores(random_scores, monkeypatch):
    localizer = Localizer(random_scores)
    localizer.evaluate(threshold=0.5, gamma=0.7)
    calls = count_run_searches(monkeypatch)
    for gamma in (0.0, 0.3, 1.5):
        localizer.evaluate(threshold=0.5, gamma=gamma)
        localizer.detections(threshold=0.5, gamma=gamma)
    assert calls == []  # gamma moves reuse the runs
    localizer.evaluate(threshold=0.6, gamma=0.7)
    assert calls == [1]  # a threshold move finds runs once


def test_bad_settings_are_input_errors(random_scores):
    localizer = Localizer(random_scores)
    for kwargs, field in [
        (dict(threshold=1.5), "threshold"),
        (dict(gamma=float("nan")), "gamma"),
        (dict(localization="nms"), "localization"),
        (dict(min_length=0), "min_length"),
        (dict(treshold=0.4), "settings"),  # a misspelt setting name
    ]:
        with pytest.raises(InputError) as info:
            localizer.detections(**kwargs)
        assert info.value.field == field
    with pytest.raises(InputError, match="no such video"):
        localizer.view("nope")
    with pytest.raises(InputError, match="unknown class"):
        localizer.view(random_scores.annotations.videos[0], label="Juggling")


def test_old_positional_settings_still_work_with_a_warning(random_scores):
    """0.1's ``localizer.evaluate(threshold, gamma, ...)``: the same numbers as the keywords, with a
    FutureWarning, until 0.3."""
    localizer = Localizer(random_scores)
    video = random_scores.annotations.videos[0]
    with pytest.warns(FutureWarning, match="positional"):
        old = localizer.evaluate(0.4, 0.2, "paper", None, None, (0.3, 0.5), "wtalc")
    new = localizer.evaluate(threshold=0.4, gamma=0.2, iou_thresholds=(0.3, 0.5), eval_protocol="wtalc")
    assert old.mean_ap.equals(new.mean_ap) and old.per_class.equals(new.per_class)
    with pytest.warns(FutureWarning):
        assert localizer.detections(0.4, 0.2).equals(localizer.detections(threshold=0.4, gamma=0.2))
    with pytest.warns(FutureWarning):
        assert localizer.video_table(0.4, 0.2, "paper", None, None, 0.3).equals(
            localizer.video_table(threshold=0.4, gamma=0.2, tiou=0.3))
    with pytest.warns(FutureWarning):
        old_view = localizer.view(video, None, 0.4, 0.2)
    assert old_view.detections.equals(localizer.view(video, threshold=0.4, gamma=0.2).detections)
    with pytest.raises(TypeError, match="multiple values"):
        localizer.evaluate(0.4, threshold=0.5)
    with pytest.raises(TypeError, match="at most"):
        localizer.detections(0.4, 0.2, "paper", None, None, "extra")


# -- one video, by hand ---------------------------------------------------------------------
@pytest.fixture()
def tiny():
    """Two videos, two classes. Video a (10 segments = 6.4 s): class Diving high on segments 2-4
    and 7; ground truth Diving [1.28, 3.2] (segments 2-4 exactly) and [5.12, 5.76]; an ambiguous
    interval [8.0, 9.0]. Video b: nothing above 0.5, ground truth Golf [0, 1]."""
    logits_a = np.full((10, 2), -3.0, dtype=np.float32)
    logits_a[2:5, 0] = [1.0, 2.0, 1.5]
    logits_a[7, 0] = 3.0
    logits_b = np.full((5, 2), -2.0, dtype=np.float32)
    annotations = Annotations(
        name="tiny",
        videos=np.array(["a", "b"], dtype=object),
        subsets=np.array(["test", "test"], dtype=object),
        classes=("Diving", "Golf"),
        durations=np.array([6.4, 3.2]),
        video_labels=np.array([[True, False], [False, True]]),
        instances=pd.DataFrame({"video": ["a", "a", "b"], "label": ["Diving", "Diving", "Golf"],
                                "t_start": [1.28, 5.12, 0.0], "t_end": [3.2, 5.76, 1.0]}),
        ambiguous=pd.DataFrame({"video": ["a"], "t_start": [8.0], "t_end": [9.0]}),
    )
    attrs = {"seconds_per_segment": SPS, "kappa": 4.0, "block_size": 60, "k": 10}
    video_probs = np.array([[0.9, 0.1], [0.2, 0.3]], dtype=np.float32)
    return Scores(annotations=annotations, logits={"a": logits_a, "b": logits_b}, video_probs=video_probs, attrs=attrs)


def test_view_by_hand(tiny):
    view = Localizer(tiny).view("a", tiou=0.5)
    assert view.label == "Diving"  # its ground-truth class first
    assert view.segment.tolist() == list(range(10))
    np.testing.assert_allclose(view.t_start, np.arange(10) * SPS)
    np.testing.assert_allclose(view.t_end, (np.arange(10) + 1) * SPS)
    np.testing.assert_allclose(view.probs, sigmoid(np.clip(tiny.logits["a"][:, 0].astype(np.float64), -4, 4)))
    assert view.video_prob == pytest.approx(0.9)
    assert view.curve_threshold == 0.5
    # detections: segments 2-4 -> [1.28, 3.2] (a perfect match), segment 7 -> [4.48, 5.12] (touches, IoU 0)
    det = view.detections
    assert det["t_start"].tolist() == pytest.approx([1.28, 4.48]) and det["t_end"].tolist() == pytest.approx([3.2, 5.12])
    assert det["score"].tolist() == pytest.approx([sigmoid(np.array(2.0)) + 0.7 * 0.9, sigmoid(np.array(3.0)) + 0.7 * 0.9])
    assert det["true_positive"].tolist() == [True, False]
    assert view.ground_truth["matched"].tolist() == [True, False]
    assert view.ambiguous[["t_start", "t_end"]].values.tolist() == [[8.0, 9.0]]


def test_video_table_by_hand(tiny):
    table = Localizer(tiny).video_table(tiou=0.5).set_index("video")
    assert table.loc["a", ["ground_truth", "detections", "true_positives", "false_positives", "missed"]].tolist() == [2, 2, 1, 1, 1]
    assert table.loc["b", ["ground_truth", "detections", "true_positives", "false_positives", "missed"]].tolist() == [1, 0, 0, 0, 1]
    # video a, class Diving: ranked [FP (score higher: peak 3.0), TP]; precision at the TP 1/2, recall 1/2 -> AP 0.25
    assert table.loc["a", "ap"] == pytest.approx(0.25)
    assert table.loc["b", "ap"] == 0.0


def test_video_table_matches_per_video_evaluation(random_scores):
    localizer = Localizer(random_scores)
    table = localizer.video_table(threshold=0.4, gamma=0.7, tiou=0.3).set_index("video")
    detections = localizer.detections(threshold=0.4, gamma=0.7)
    ground_truth = random_scores.annotations.ground_truth()
    for video in random_scores.annotations.videos[::25]:
        gt = ground_truth[ground_truth["video"] == video]
        det = detections[detections["video"] == video]
        det = det[det["label"].isin(gt["label"])]  # other classes do not enter this video's AP
        expected = per_class_ap(gt, det, [0.3])[0.3].mean()
        assert table.loc[video, "ap"] == pytest.approx(expected, abs=1e-12), video
        assert table.loc[video, "ground_truth"] == len(gt)
    # true positives over the split = what the split-wide evaluation matched
    assert table["true_positives"].sum() + table["false_positives"].sum() == len(detections)


def test_views_agree_with_the_table(random_scores):
    localizer = Localizer(random_scores)
    table = localizer.video_table(tiou=0.5).set_index("video")
    for video in random_scores.annotations.videos[:30:3]:
        tp = sum(int(localizer.view(video, label, tiou=0.5).detections["true_positive"].sum()) for label in random_scores.annotations.classes)
        assert tp == table.loc[video, "true_positives"], video


def test_top_classes(tiny):
    localizer = Localizer(tiny)
    assert localizer.top_classes("a") == ["Diving", "Golf"]
    assert localizer.top_classes("b") == ["Golf", "Diving"]


@pytest.mark.parametrize("cap", [1, 4])
def test_cap_keeps_each_videos_best(random_scores, cap):
    """A cap keeps, per video, the ``cap`` highest scores of the uncapped detections, and only those."""
    localizer = Localizer(random_scores)
    full = localizer.detections(threshold=0.2, gamma=0.4)
    capped = localizer.detections(threshold=0.2, gamma=0.4, max_per_video=cap)
    counts = full.groupby("video").size()
    assert (counts > cap).any()  # the cap does bite somewhere
    assert capped.groupby("video").size().to_dict() == counts.clip(upper=cap).to_dict()
    assert len(capped.merge(full, how="left", indicator=True).query("_merge != 'both'")) == 0  # a subset
    for video, mine in full.groupby("video"):
        kept = capped[capped["video"] == video]["score"]
        dropped = mine["score"].sort_values(ascending=False).iloc[cap:]
        if len(dropped):
            assert kept.min() >= dropped.max()
    # every view of the page agrees with the capped split
    table = localizer.video_table(threshold=0.2, gamma=0.4, max_per_video=cap)
    assert table.set_index("video")["detections"].max() <= cap
    video = counts.idxmax()
    view = localizer.view(video, threshold=0.2, gamma=0.4, max_per_video=cap)
    assert len(view.detections) <= cap


def test_cap_changes_with_gamma_not_runs(random_scores, monkeypatch):
    """The cap ranks by score, which gamma changes: a gamma move re-ranks the cached runs, no new runs."""
    localizer = Localizer(random_scores)
    localizer.evaluate(threshold=0.3, max_per_video=2)
    calls = count_run_searches(monkeypatch)
    for gamma in (0.0, 3.0):
        expected = reference(random_scores, "paper", threshold=0.3, gamma=gamma, max_per_video=2)
        pd.testing.assert_frame_equal(localizer.detections(threshold=0.3, gamma=gamma, max_per_video=2), expected, check_exact=True)
    assert calls == []


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "ten"])
def test_cap_refuses_bad_values(random_scores, bad):
    with pytest.raises(InputError, match="max_per_video"):
        Localizer(random_scores).detections(max_per_video=bad)


def test_scores_without_ground_truth_localize_but_do_not_evaluate():
    """One's own videos (no annotations) scored by a model: detections, the table and views work, mAP does not."""
    annotations = Annotations.without_labels("mine", ["walk", "jump"], [5 * SPS, 9 * SPS]).with_classes(["A", "B"])
    rng = np.random.default_rng(0)
    logits = {"walk": rng.normal(size=(5, 2)).astype(np.float32), "jump": rng.normal(size=(9, 2)).astype(np.float32)}
    scores = Scores(annotations=annotations, logits=logits, video_probs=rng.random((2, 2)).astype(np.float32),
                    attrs={"seconds_per_segment": SPS, "kappa": 4.0})
    localizer = Localizer(scores)
    assert not localizer.has_ground_truth
    detections = localizer.detections(threshold=0.3)
    assert len(detections) > 0 and set(detections["video"]) <= {"walk", "jump"}
    table = localizer.video_table(threshold=0.3)
    assert table["ground_truth"].sum() == 0 and table["ap"].isna().all()
    assert (table["false_positives"] == table["detections"]).all()  # nothing to match
    assert localizer.view("walk").ground_truth.empty
    with pytest.raises(InputError, match="ground truth is empty"):
        localizer.evaluate()
