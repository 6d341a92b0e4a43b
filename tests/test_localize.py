"""Tests of wtal_kit.localization: hand-computed examples and hypothesis properties.

Default grid: seconds_per_segment = 16/25 = 0.64 s, so segment i covers [0.64 i, 0.64 (i + 1)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wtal_kit import timegrid
from wtal_kit.data.tables import DETECTION_COLUMNS
from wtal_kit.config import LOCALIZATIONS
from wtal_kit.errors import InputError
from wtal_kit.localization import (
    block_topk_mean,
    localize,
    localize_videos,
    localize_wsad_code,
    top_per_video,
)

SPS = 16 / 25  # 0.64


def rows(table: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in table[["label", "t_start", "t_end", "score"]].itertuples(index=False)]


def assert_rows(table: pd.DataFrame, expected: list[tuple]) -> None:
    assert list(table.columns) == ["label", "t_start", "t_end", "score"]
    got = rows(table)
    assert len(got) == len(expected), got
    for (label, start, end, score), (e_label, e_start, e_end, e_score) in zip(got, expected):
        assert label == e_label
        assert start == pytest.approx(e_start, abs=1e-12)
        assert end == pytest.approx(e_end, abs=1e-12)
        assert score == pytest.approx(e_score, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# paper protocol: hand-computed examples


def test_paper_runs_at_both_edges_single_segment_and_two_runs():
    # class 0: y = [0.9, 0.2, 0.6, 0.7, 0.1, 0.55], threshold 0.5 -> kept 0, 2, 3, 5
    #   runs [0, 0] (first segment, single), [2, 3], [5, 5] (last segment, single)
    # video score 0.4, gamma 0.7 -> bonus 0.28
    #   [0,0]: max 0.9  + 0.28 = 1.18, seconds [0, 0.64]
    #   [2,3]: max 0.7  + 0.28 = 0.98, seconds [2 * 0.64, 4 * 0.64] = [1.28, 2.56]
    #   [5,5]: max 0.55 + 0.28 = 0.83, seconds [5 * 0.64, 6 * 0.64] = [3.2, 3.84]
    y = np.array([[0.9], [0.2], [0.6], [0.7], [0.1], [0.55]])
    found = localize(y, [0.4])
    assert_rows(found, [(0, 0.0, 0.64, 1.18), (0, 1.28, 2.56, 0.98), (0, 3.2, 3.84, 0.83)])
    assert found["label"].dtype == np.int64


def test_paper_threshold_equality_keeps_the_segment():
    # y = 0.5 exactly is kept at threshold 0.5 (the paper discards scores *less than* 0.5);
    # 0.49 is not. Runs: [1, 1] only; score 0.5 + 0.7 * 0.0 = 0.5, seconds [0.64, 1.28]
    y = np.array([[0.49], [0.5], [0.49]])
    assert_rows(localize(y, [0.0]), [(0, 0.64, 1.28, 0.5)])
    # threshold 0.3 keeps all three: one run [0, 2], max 0.5, seconds [0, 1.92]
    assert_rows(localize(y, [0.0], threshold=0.3), [(0, 0.0, 1.92, 0.5)])


def test_paper_several_classes_ordered_by_class_then_start():
    # class 0: [0.1, 0.8, 0.9, 0.1] -> run [1, 2], max 0.9; P = 0.2 -> 0.9 + 0.14 = 1.04
    # class 1: [0.7, 0.1, 0.1, 0.6] -> runs [0, 0] (0.7) and [3, 3] (0.6); P = 1.0 -> +0.7
    # class 2: all below 0.5 -> nothing
    y = np.array(
        [
            [0.1, 0.7, 0.3],
            [0.8, 0.1, 0.3],
            [0.9, 0.1, 0.3],
            [0.1, 0.6, 0.3],
        ]
    )
    found = localize(y, [0.2, 1.0, 0.9])
    assert_rows(
        found,
        [
            (0, 0.64, 1.92, 1.04),  # [1 * 0.64, 3 * 0.64]
            (1, 0.0, 0.64, 1.4),  # 0.7 + 0.7
            (1, 1.92, 2.56, 1.3),  # 0.6 + 0.7, [3 * 0.64, 4 * 0.64]
        ],
    )


def test_paper_score_formula_uses_gamma_and_the_run_maximum():
    # one run [0, 2] with y = [0.6, 0.95, 0.7]; max 0.95; video score 0.5
    y = np.array([[0.6], [0.95], [0.7]])
    assert localize(y, [0.5], gamma=0.0)["score"].tolist() == pytest.approx([0.95])  # 0.95 + 0 * 0.5
    assert localize(y, [0.5], gamma=1.0)["score"].tolist() == pytest.approx([1.45])  # 0.95 + 1 * 0.5
    assert localize(y, [0.5])["score"].tolist() == pytest.approx([1.3])  # 0.95 + 0.7 * 0.5


def test_paper_times_follow_the_segment_grid():
    # sps = 1.5 s: run [2, 3] -> [2 * 1.5, 4 * 1.5] = [3.0, 6.0]
    y = np.array([[0.1], [0.1], [0.8], [0.8], [0.1]])
    assert_rows(localize(y, [0.0], seconds_per_segment=1.5), [(0, 3.0, 6.0, 0.8)])
    # the default grid agrees with wtal_kit.timegrid
    found = localize(y, [0.0])
    assert found["t_start"].iat[0] == timegrid.segment_start_seconds(2)
    assert found["t_end"].iat[0] == timegrid.segment_end_seconds(3)


def test_paper_nothing_kept_gives_an_empty_table():
    found = localize(np.full((4, 2), 0.2), [0.9, 0.9])
    assert list(found.columns) == ["label", "t_start", "t_end", "score"]
    assert len(found) == 0


def test_paper_whole_video_one_run():
    # T = 3 all kept -> one run [0, 2], seconds [0, 1.92]
    assert_rows(localize(np.full((3, 1), 0.9), [0.0]), [(0, 0.0, 1.92, 0.9)])


@pytest.mark.parametrize(
    "scores, video_probs, kwargs, field",
    [
        (np.full(5, 0.6), [0.5], {}, "probs"),  # 1-D
        (np.full((2, 3, 1), 0.6), [0.5], {}, "probs"),  # 3-D
        (np.zeros((0, 2)), [0.5, 0.5], {}, "probs"),  # no segments
        (np.full((4, 2), 0.6), [0.5], {}, "video_probs"),  # length != C
        (np.full((4, 2), 0.6), [[0.5, 0.5]], {}, "video_probs"),  # wrong ndim
        (np.array([[0.6], [np.nan]]), [0.5], {}, "probs"),
        (np.array([[0.6], [np.inf]]), [0.5], {}, "probs"),
        (np.array([[0.6], [1.2]]), [0.5], {}, "probs"),  # not a probability
        (np.full((2, 1), 0.6), [np.nan], {}, "video_probs"),
        (np.full((2, 1), 0.6), [0.5], {"threshold": 0.0}, "threshold"),
        (np.full((2, 1), 0.6), [0.5], {"threshold": 1.0}, "threshold"),
        (np.full((2, 1), 0.6), [0.5], {"threshold": -0.2}, "threshold"),
        (np.full((2, 1), 0.6), [0.5], {"threshold": float("nan")}, "threshold"),
        (np.full((2, 1), 0.6), [0.5], {"seconds_per_segment": 0.0}, "seconds_per_segment"),
    ],
)
def test_paper_rejects_bad_input(scores, video_probs, kwargs, field):
    with pytest.raises(InputError) as info:
        localize(scores, video_probs, **kwargs)
    assert info.value.field == field


# ---------------------------------------------------------------------------------------------
# block rule (Eq. 2-4) in numpy


def test_block_topk_mean_remainder_goes_to_the_last_block():
    # T = 185, l_w = 60 -> n_B = floor(185 / 60) = 3: blocks [0, 60), [60, 120), [120, 185) (65 segments)
    # x_i = 184 - i (descending, so "top k" is not "last k"):
    #   block 0 holds 184..125 -> top 10 = 184..175 -> mean 179.5
    #   block 1 holds 124..65  -> top 10 = 124..115 -> mean 119.5
    #   block 2 holds 64..0    -> top 10 = 64..55   -> mean 59.5
    x = (184.0 - np.arange(185.0))[:, None]
    np.testing.assert_allclose(block_topk_mean(x, 60, 10), [[179.5], [119.5], [59.5]])


def test_block_topk_mean_two_blocks():
    # T = 130, l_w = 60 -> n_B = 2: [0, 60) and [60, 130) (70 segments); x_i = i
    #   top 10 of 0..59 = 50..59 -> 54.5; top 10 of 60..129 = 120..129 -> 124.5
    x = np.arange(130.0)[:, None]
    np.testing.assert_allclose(block_topk_mean(x, 60, 10), [[54.5], [124.5]])


def test_block_topk_mean_short_video_is_one_block():
    # T = 119 < 2 * 60 -> n_B = max(1, 1) = 1: the whole video; top 10 of 0..118 = 109..118 -> 113.5
    np.testing.assert_allclose(block_topk_mean(np.arange(119.0)[:, None], 60, 10), [[113.5]])
    # T = 59 < 60 -> n_B = max(1, 0) = 1; top 10 of 0..58 = 49..58 -> 53.5
    np.testing.assert_allclose(block_topk_mean(np.arange(59.0)[:, None], 60, 10), [[53.5]])


def test_block_topk_mean_k_larger_than_the_block():
    # T = 5, k = 10 > |B| = 5 -> mean of all five: (5 + 1 + 4 + 2 + 3) / 5 = 3
    x = np.array([[5.0, 0.0], [1.0, 0.0], [4.0, 0.0], [2.0, 0.0], [3.0, 10.0]])
    np.testing.assert_allclose(block_topk_mean(x, 60, 10), [[3.0, 2.0]])  # class 1: 10 / 5 = 2
    # k = 3: class 0 top 3 = 5, 4, 3 -> 4; class 1 top 3 = 10, 0, 0 -> 10 / 3
    np.testing.assert_allclose(block_topk_mean(x, 60, 3), [[4.0, 10.0 / 3.0]])
    # l_w = 2, k = 10: n_B = floor(5 / 2) = 2: [0, 2) and [2, 5); k_eff = 2 and 3
    #   class 0: (5 + 1) / 2 = 3, (4 + 2 + 3) / 3 = 3; class 1: 0, 10 / 3
    np.testing.assert_allclose(block_topk_mean(x, 2, 10), [[3.0, 0.0], [3.0, 10.0 / 3.0]])


@pytest.mark.parametrize("kwargs", [{"block_size": 0}, {"k": 0}, {"k": 2.5}, {"block_size": -3}])
def test_block_topk_mean_rejects_bad_sizes(kwargs):
    with pytest.raises(InputError):
        block_topk_mean(np.ones((4, 2)), **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(np.float64, st.tuples(st.integers(1, 200), st.integers(1, 3)), elements=st.floats(-20, 20)),
    block_size=st.integers(1, 70),
)
def test_block_topk_mean_shape_and_k1_is_the_maximum(x, block_size):
    means = block_topk_mean(x, block_size, k=1)
    # n_B = max(1, floor(T / l_w)) rows
    assert means.shape == (max(1, x.shape[0] // block_size), x.shape[1])
    # with k = 1 each row is a block maximum; the blocks partition the video
    np.testing.assert_array_equal(means.max(axis=0), x.max(axis=0))
    # a top-k mean never exceeds the block's top-1
    top_k = block_topk_mean(x, block_size, k=4)
    assert np.all(top_k <= means + 1e-9)


# ---------------------------------------------------------------------------------------------
# wsad_code protocol: hand-computed examples

# logits of one class: min 0, max 4 -> threshold 4 - (4 - 0) * 0.5 = 2
#   kept (strictly > 2): index 1 (4), 3 (3), 5 (4), 6 (4); index 2 equals 2 and is dropped
#   runs on the grid: [1, 2), [3, 4), [5, 7)
# video score: T = 7 < 60 -> one block, k = 10 > 7 -> mean of all = (0+4+2+3+1+4+4) / 7 = 18 / 7
WSAD_LOGITS = np.array([[0.0], [4.0], [2.0], [3.0], [1.0], [4.0], [4.0]])


def test_wsad_midpoint_strict_threshold_and_min_length():
    # min_length 2 keeps only [5, 7): seconds [5 * 0.64, 7 * 0.64] = [3.2, 4.48]
    # score = 4 + 0.7 * 18 / 7 = 4 + 1.8 = 5.8
    assert_rows(localize_wsad_code(WSAD_LOGITS), [(0, 3.2, 4.48, 5.8)])
    # min_length 1 keeps all three runs; [1, 2) -> [0.64, 1.28], [3, 4) -> [1.92, 2.56]
    # scores: 4 + 1.8 = 5.8, 3 + 1.8 = 4.8, 5.8 (had the comparison been >=, [1, 4) would be one run)
    assert_rows(
        localize_wsad_code(WSAD_LOGITS, min_length=1),
        [(0, 0.64, 1.28, 5.8), (0, 1.92, 2.56, 4.8), (0, 3.2, 4.48, 5.8)],
    )
    # min_length 3 keeps nothing
    assert len(localize_wsad_code(WSAD_LOGITS, min_length=3)) == 0


def test_wsad_midpoint_of_negative_logits_and_every_class():
    # class 0: [-6, -2, -1, -5]: threshold -1 - (-1 + 6) * 0.5 = -3.5 -> kept 1, 2 -> run [1, 3)
    #   video score: mean of all 4 = -14 / 4 = -3.5; score -1 + 0.7 * -3.5 = -3.45
    # class 1: constant -> threshold = max, nothing is > max -> no detection
    # class 2: [1, 1, 3, 3]: threshold 2 -> run [2, 4) (last segment, end at T), mean 2 -> 3 + 1.4 = 4.4
    logits = np.array([[-6.0, 7.0, 1.0], [-2.0, 7.0, 1.0], [-1.0, 7.0, 3.0], [-5.0, 7.0, 3.0]])
    assert_rows(
        localize_wsad_code(logits),
        [(0, 0.64, 1.92, -3.45), (2, 1.28, 2.56, 4.4)],  # [1, 3) * 0.64, [2, 4) * 0.64
    )


def test_wsad_score_uses_the_best_block():
    # T = 130, l_w = 60, k = 10: blocks [0, 60), [60, 130)
    # logits: 0 everywhere except 10 at segments 70 and 71 and 1 at segments 0..9
    #   block 0 top-10 mean = 1; block 1 top-10 mean = (10 + 10) / 10 = 2 -> video score 2
    #   min 0, max 10 -> threshold 5 -> run [70, 72) -> seconds [44.8, 46.08]
    #   score = 10 + 0.7 * 2 = 11.4
    logits = np.zeros((130, 1))
    logits[70:72] = 10.0
    logits[:10] = 1.0
    assert_rows(localize_wsad_code(logits), [(0, 70 * SPS, 72 * SPS, 11.4)])
    # gamma = 0 leaves the raw maximum; k = 2: block 1 top-2 mean = 10 -> 10 + 0.7 * 10 = 17
    assert localize_wsad_code(logits, gamma=0.0)["score"].tolist() == pytest.approx([10.0])
    assert localize_wsad_code(logits, k=2)["score"].tolist() == pytest.approx([17.0])


def test_wsad_ambiguous_intervals_drop_overlapping_detections():
    # the detection is grid range [5, 7) = {5, 6}, seconds [3.2, 4.48]
    # [4.0, 4.2]: round(4.0 / 0.64) = round(6.25) = 6, round(4.2 / 0.64) = round(6.5625) = 7 -> {6}: shared -> drop
    assert len(localize_wsad_code(WSAD_LOGITS, ambiguous=[[4.0, 4.2]])) == 0
    # [4.48, 5.0]: round(7.0) = 7, round(7.8125) = 8 -> {7}: disjoint from {5, 6} -> keep (touching ends)
    assert len(localize_wsad_code(WSAD_LOGITS, ambiguous=[[4.48, 5.0]])) == 1
    # [0.0, 0.3]: round(0) = 0, round(0.46875) = 0 -> empty range -> keep
    assert len(localize_wsad_code(WSAD_LOGITS, ambiguous=[[0.0, 0.3]])) == 1
    # [2.0, 3.3]: round(3.125) = 3, round(5.15625) = 5 -> {3, 4}: disjoint -> keep
    # [1.0, 3.5]: round(1.5625) = 2, round(5.46875) = 5 -> {2, 3, 4}: disjoint -> keep
    assert len(localize_wsad_code(WSAD_LOGITS, ambiguous=[[2.0, 3.3], [1.0, 3.5]])) == 1
    # [3.5, 3.6]: round(5.46875) = 5, round(5.625) = 6 -> {5}: shared -> drop; with min_length 1 the
    # runs [1, 2) and [3, 4) survive
    assert_rows(
        localize_wsad_code(WSAD_LOGITS, min_length=1, ambiguous=np.array([[3.5, 3.6]])),
        [(0, 0.64, 1.28, 5.8), (0, 1.92, 2.56, 4.8)],
    )
    # an empty list of intervals drops nothing
    assert len(localize_wsad_code(WSAD_LOGITS, ambiguous=np.zeros((0, 2)))) == 1


@pytest.mark.parametrize(
    "logits, kwargs, field",
    [
        (np.ones(4), {}, "logits"),
        (np.array([[1.0], [np.nan]]), {}, "logits"),
        (np.array([[1.0], [-np.inf]]), {}, "logits"),
        (np.ones((4, 1)), {"min_length": 0}, "min_length"),
        (np.ones((4, 1)), {"ambiguous": [1.0, 2.0]}, "ambiguous"),
        (np.ones((4, 1)), {"ambiguous": [[2.0, 1.0]]}, "ambiguous"),
        (np.ones((4, 1)), {"ambiguous": [[np.nan, 1.0]]}, "ambiguous"),
        (np.ones((4, 1)), {"block_size": 0}, "block_size"),
    ],
)
def test_wsad_rejects_bad_input(logits, kwargs, field):
    with pytest.raises(InputError) as info:
        localize_wsad_code(logits, **kwargs)
    assert info.value.field == field


# ---------------------------------------------------------------------------------------------
# many videos


def test_localize_videos_paper_table_form_with_class_names():
    # video "a", classes ["Diving", "Golf"]:
    #   Diving logits [0, 10, -3]: clipped to [-4, 4] -> y = [0.5, sigmoid(4), sigmoid(-3)]
    #     sigmoid(4) = 1 / (1 + e^-4) = 0.98201379...; 0.5 >= 0.5 is kept -> run [0, 1]
    #     score = sigmoid(4) + 0.7 * 0.5 = 1.33201379...
    #   Golf logits all -1 -> y = 0.2689 < 0.5 -> nothing
    # video "b": Golf logits [2, -2]: y = [0.8808, 0.1192] -> run [0, 0], score sigmoid(2) + 0.7 * 0.1
    logits = {
        "a": np.array([[0.0, -1.0], [10.0, -1.0], [-3.0, -1.0]]),
        "b": np.array([[-5.0, 2.0], [-5.0, -2.0]]),
    }
    video_probs = {"a": np.array([0.5, 0.3]), "b": np.array([0.0, 0.1])}
    sigmoid4 = 1 / (1 + np.exp(-4.0))
    sigmoid2 = 1 / (1 + np.exp(-2.0))
    found = localize_videos(logits, video_probs, ["Diving", "Golf"])
    assert list(found.columns) == DETECTION_COLUMNS
    assert found["video"].tolist() == ["a", "b"]
    assert found["label"].tolist() == ["Diving", "Golf"]
    np.testing.assert_allclose(found["t_start"], [0.0, 0.0])
    np.testing.assert_allclose(found["t_end"], [1.28, 0.64])  # 2 * 0.64, 1 * 0.64
    np.testing.assert_allclose(found["score"], [sigmoid4 + 0.35, sigmoid2 + 0.07])
    # kappa=None: no clipping -> sigmoid(10) = 0.9999546
    unclipped = localize_videos(logits, video_probs, ["Diving", "Golf"], kappa=None)
    np.testing.assert_allclose(unclipped["score"], [1 / (1 + np.exp(-10.0)) + 0.35, sigmoid2 + 0.07])


def test_localize_videos_wsad_code_with_ambiguous_table():
    # both videos hold WSAD_LOGITS: one detection [3.2, 4.48], score 5.8 each;
    # the Ambiguous interval [4.0, 4.2] of video "v2" drops its detection only
    logits = {"v1": WSAD_LOGITS, "v2": WSAD_LOGITS}
    ambiguous = pd.DataFrame({"video": ["v2", "v9"], "t_start": [4.0, 0.0], "t_end": [4.2, 100.0]})
    found = localize_videos(logits, None, ["Shotput"], protocol="wsad_code", ambiguous=ambiguous)
    assert list(found.columns) == DETECTION_COLUMNS
    assert found["video"].tolist() == ["v1"]
    assert found["label"].tolist() == ["Shotput"]
    np.testing.assert_allclose(found[["t_start", "t_end", "score"]].to_numpy(), [[3.2, 4.48, 5.8]])
    # without the ambiguous table both videos report it
    assert localize_videos(logits, None, ["Shotput"], protocol="wsad_code")["video"].tolist() == ["v1", "v2"]


def test_localize_videos_paper_with_ambiguous_table():
    # y = sigmoid(4) > 0.5 on segments 5, 6 only -> [3.2, 4.48]; [4.0, 4.2] shares grid index 6 -> dropped
    logits = {"v": np.array([[-9.0]] * 5 + [[9.0], [9.0], [-9.0]])}
    scores = {"v": np.array([0.5])}
    assert len(localize_videos(logits, scores, ["A"])) == 1
    ambiguous = pd.DataFrame({"video": ["v"], "t_start": [4.0], "t_end": [4.2]})
    assert len(localize_videos(logits, scores, ["A"], ambiguous=ambiguous)) == 0


def test_localize_videos_empty_result_is_a_typed_table():
    found = localize_videos({"v": np.full((3, 2), -5.0)}, {"v": np.zeros(2)}, ["A", "B"])
    assert list(found.columns) == DETECTION_COLUMNS
    assert len(found) == 0
    assert found["score"].dtype == np.float64


def test_localize_videos_validation_names_the_video_and_field():
    good = {"v1": np.zeros((3, 2))}
    with pytest.raises(InputError) as info:
        localize_videos(good, {"v1": np.zeros(2)}, ["A", "B"], protocol="softmax")
    assert info.value.field == "protocol"

    with pytest.raises(InputError) as info:
        localize_videos({"v1": np.zeros((3, 2)), "v2": np.zeros((3, 2))}, {"v1": np.zeros(2)}, ["A", "B"])
    assert (info.value.video, info.value.field) == ("v2", "video_probs")

    with pytest.raises(InputError) as info:
        localize_videos(good, {"v1": np.zeros(2)}, ["A", "B", "C"])
    assert (info.value.video, info.value.field) == ("v1", "logits")
    assert "v1" in str(info.value)

    with pytest.raises(InputError) as info:
        localize_videos({"v1": np.array([[0.0, np.nan]])}, None, ["A", "B"], protocol="wsad_code")
    assert (info.value.video, info.value.field) == ("v1", "logits")

    with pytest.raises(InputError) as info:
        localize_videos(good, {"v1": np.zeros(3)}, ["A", "B"])
    assert (info.value.video, info.value.field) == ("v1", "video_probs")

    with pytest.raises(InputError) as info:
        localize_videos(good, None, ["A", "B"], protocol="paper")
    assert info.value.field == "video_probs"

    with pytest.raises(InputError) as info:
        localize_videos(good, {"v1": np.zeros(2)}, ["A", "B"], kappa=0.0)
    assert info.value.field == "kappa"

    bad_ambiguous = pd.DataFrame({"video": ["v1"], "t_start": [3.0], "t_end": [1.0]})
    with pytest.raises(InputError) as info:
        localize_videos(good, None, ["A", "B"], protocol="wsad_code", ambiguous=bad_ambiguous)
    assert (info.value.video, info.value.field) == ("v1", "ambiguous")


def test_protocols_constant():
    assert LOCALIZATIONS == ("paper", "wsad_code")


# ---------------------------------------------------------------------------------------------
# hypothesis properties (paper protocol)


@st.composite
def paper_inputs(draw):
    num_segments = draw(st.integers(1, 40))
    num_classes = draw(st.integers(1, 4))
    # probabilities on a coarse grid so that ties with the threshold happen
    scores = draw(arrays(np.float64, (num_segments, num_classes), elements=st.integers(0, 20).map(lambda i: i / 20)))
    video_probs = draw(arrays(np.float64, (num_classes,), elements=st.floats(0, 1)))
    threshold = draw(st.integers(1, 19).map(lambda i: i / 20))
    return scores, video_probs, threshold


def covered_counts(found: pd.DataFrame, shape) -> np.ndarray:
    """(T, C) how many detections cover each segment (naive loop: an independent oracle)."""
    counts = np.zeros(shape, dtype=int)
    for label, start, end in found[["label", "t_start", "t_end"]].itertuples(index=False):
        first = timegrid.seconds_to_feature_grid(start)
        stop = timegrid.seconds_to_feature_grid(end)  # exclusive
        counts[first:stop, label] += 1
    return counts


@settings(max_examples=150, deadline=None)
@given(paper_inputs())
def test_property_runs_are_disjoint_separated_and_cover_exactly_the_kept_segments(data):
    scores, video_probs, threshold = data
    found = localize(scores, video_probs, threshold=threshold)
    kept = scores >= threshold
    # every kept segment is covered by exactly one detection, every dropped one by none
    np.testing.assert_array_equal(covered_counts(found, scores.shape), kept.astype(int))
    for label, group in found.groupby("label"):
        first = timegrid.seconds_to_feature_grid(group["t_start"].to_numpy())
        stop = timegrid.seconds_to_feature_grid(group["t_end"].to_numpy())
        assert np.all(np.diff(first) > 0)  # ordered by start
        # next run starts after at least one dropped segment: first[j + 1] >= stop[j] + 1
        assert np.all(first[1:] >= stop[:-1] + 1)
        # maximality: the neighbours of each run are dropped (or outside the video)
        before, after = first - 1, stop
        assert not kept[before[before >= 0], label].any()
        assert not kept[after[after < len(scores)], label].any()
        # score = max over the run + 0.7 * P(c|V), checked against a plain slice
        for f, s, score in zip(first, stop, group["score"]):
            assert score == pytest.approx(scores[f:s, label].max() + 0.7 * video_probs[label])


@settings(max_examples=150, deadline=None)
@given(paper_inputs(), st.integers(0, 19).map(lambda i: i / 20))
def test_property_raising_the_threshold_never_adds_covered_segments(data, step):
    scores, video_probs, threshold = data
    higher = min(threshold + step, 0.95)
    low = covered_counts(localize(scores, video_probs, threshold=threshold), scores.shape)
    high = covered_counts(localize(scores, video_probs, threshold=higher), scores.shape)
    assert np.all(high <= low)


@settings(max_examples=150, deadline=None)
@given(paper_inputs(), st.floats(0, 2))
def test_property_scores_lie_between_threshold_and_one_plus_the_video_bonus(data, gamma):
    scores, video_probs, threshold = data
    found = localize(scores, video_probs, threshold=threshold, gamma=gamma)
    bonus = gamma * video_probs[found["label"].to_numpy()]
    assert np.all(found["score"].to_numpy() >= threshold + bonus - 1e-12)
    assert np.all(found["score"].to_numpy() <= 1 + bonus + 1e-12)


@settings(max_examples=100, deadline=None)
@given(paper_inputs(), st.randoms(use_true_random=False))
def test_property_class_permutation_only_relabels(data, rng):
    scores, video_probs, threshold = data
    num_classes = scores.shape[1]
    order = list(range(num_classes))
    rng.shuffle(order)
    order = np.array(order)  # new class j is old class order[j]
    found = localize(scores, video_probs, threshold=threshold)
    permuted = localize(scores[:, order], video_probs[order], threshold=threshold)
    relabelled = permuted.assign(label=order[permuted["label"].to_numpy()])
    key = ["label", "t_start"]
    pd.testing.assert_frame_equal(
        found.sort_values(key).reset_index(drop=True), relabelled.sort_values(key).reset_index(drop=True)
    )


# ---------------------------------------------------------------------------------------------
# hypothesis properties (wsad_code protocol)


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(
    logits=arrays(
        np.float64,
        st.tuples(st.integers(1, 150), st.integers(1, 3)),
        elements=st.integers(-8, 8).map(float),
    ),
    min_length=st.integers(1, 4),
)
def test_property_wsad_runs_are_maximal_above_the_midpoint(logits, min_length):
    found = localize_wsad_code(logits, min_length=min_length)
    midpoint = (logits.max(axis=0) + logits.min(axis=0)) / 2  # integers: exact in float
    kept = logits > midpoint
    video_score = block_topk_mean(logits).max(axis=0)
    counts = covered_counts(found, logits.shape)
    assert counts.max(initial=0) <= 1  # no two detections of a class overlap
    assert np.all(kept[counts == 1])  # every covered segment is above the midpoint
    for label, start, end, score in found.itertuples(index=False):
        first = timegrid.seconds_to_feature_grid(start)
        stop = timegrid.seconds_to_feature_grid(end)
        assert stop - first >= min_length
        assert first == 0 or not kept[first - 1, label]
        assert stop == len(logits) or not kept[stop, label]
        assert score == pytest.approx(logits[first:stop, label].max() + 0.7 * video_score[label])
    # with min_length 1 the covered segments are exactly the kept ones
    np.testing.assert_array_equal(covered_counts(localize_wsad_code(logits, min_length=1), logits.shape), kept)


# ---------------------------------------------------------------------------------------------
# vectorization: a long input localizes at once (no timing assert)


def test_long_input_localizes():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(10_000, 20))
    probs = 1 / (1 + np.exp(-logits))
    found = localize(probs, np.full(20, 0.5))
    # each class: ~half the 10 000 segments kept; detections cover them exactly
    assert found["t_end"].max() <= timegrid.segment_end_seconds(9_999) + 1e-9
    np.testing.assert_array_equal(
        np.bincount(found["label"], minlength=20) > 1000, np.ones(20, dtype=bool)
    )
    assert len(localize_wsad_code(logits)) > 0
    assert len(localize_videos({"long": logits}, {"long": np.full(20, 0.5)}, [str(c) for c in range(20)])) == len(found)


# ----------------------------------------------------------------------------------------------
# the per-video cap (top-k by score)
def test_top_per_video_by_hand():
    video = np.array(["a", "a", "a", "b", "b"], dtype=object)
    score = np.array([0.5, 0.9, 0.5, 0.1, 0.2])
    # video a: 0.9 first, then the two 0.5s in list order (the earlier one wins the tie)
    assert top_per_video(video, score, 2).tolist() == [True, True, False, True, True]
    assert top_per_video(video, score, 1).tolist() == [False, True, False, False, True]
    assert top_per_video(video, score, None).all() and top_per_video(video, score, 3).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), max_size=40), st.integers(1, 6))
def test_property_top_per_video_keeps_min_count_and_the_best(pairs, cap):
    video = np.array([v for v, _ in pairs], dtype=np.int64)
    score = np.array([s / 5 for _, s in pairs], dtype=np.float64)  # few distinct values: ties are common
    keep = top_per_video(video, score, cap)
    for v in np.unique(video):
        mine = video == v
        assert keep[mine].sum() == min(mine.sum(), cap)
        if (~keep[mine]).any():
            assert score[mine & keep].min() >= score[mine & ~keep].max()


def test_localize_videos_cap_per_video():
    logits = {"v1": np.array([[5.0, 5.0], [-5, -5], [5, -5], [-5, -5], [5, 5]]), "v2": np.array([[5.0, -5.0]])}
    probs = {"v1": np.array([0.9, 0.1]), "v2": np.array([0.5, 0.5])}
    full = localize_videos(logits, probs, ["A", "B"], "paper")
    assert full.groupby("video").size().to_dict() == {"v1": 5, "v2": 1}
    capped = localize_videos(logits, probs, ["A", "B"], "paper", max_per_video=2)
    # v1's class A runs score max y + 0.7 * 0.9, above class B's (0.7 * 0.1): A's three runs tie, the first two stay
    assert capped[capped["video"] == "v1"][["label", "t_start"]].values.tolist() == [["A", 0.0], ["A", 2 * 0.64]]
    assert (capped["video"] == "v2").sum() == 1
    with pytest.raises(InputError, match="max_per_video"):
        localize_videos(logits, probs, ["A", "B"], "paper", max_per_video=0)
