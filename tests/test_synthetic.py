"""Tests of wtal_kit.data.synthetic: determinism, the layout on the segment grid, the planted signal, knobs.

Grid: seconds_per_segment = 16/25 = 0.64 s, so segment i covers [0.64 i, 0.64 (i + 1)).
Most tests use small d (the difficulty knobs do not depend on d) to stay fast.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtal_kit import timegrid
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data import synthetic
from wtal_kit.data.synthetic import (
    SyntheticSpec,
    class_vectors,
    cooccurrence_rates,
    instance_segment_weights,
    make_synthetic_dataset,
    planted_activity,
    synthesize_video,
)
from wtal_kit.errors import InputError

SPS = 16 / 25  # 0.64
REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = SyntheticSpec(feature_dim=32)


def make_annotations(durations, instances, classes=("A", "B", "C"), extra_labels=None) -> Annotations:
    """A tiny layout: videos v0, v1, ... with the given durations; instances (video, label, start, end)."""
    videos = np.array([f"v{i}" for i in range(len(durations))], dtype=object)
    table = pd.DataFrame(instances, columns=["video", "label", "t_start", "t_end"])
    labels = np.zeros((len(videos), len(classes)), dtype=bool)
    for video, label, _, _ in instances:
        labels[int(video[1:]), classes.index(label)] = True
    for video_index, label in extra_labels or []:
        labels[video_index, classes.index(label)] = True
    return Annotations(
        name="tiny",
        videos=videos,
        subsets=np.array(["validation"] * len(videos), dtype=object),
        classes=tuple(classes),
        durations=np.asarray(durations, dtype=np.float64),
        video_labels=labels,
        instances=table,
    )


def covered_by_overlap(t_start: float, t_end: float, count: int) -> np.ndarray:
    """(count,) bool: segments whose [start, end) overlaps [t_start, t_end] with positive length;
    a zero-length instance: the segment containing it. Independent of the implementation's formula."""
    index = np.arange(count)
    tol = 1e-7  # annotation times are multiples of >= 1e-5 s; this only absorbs float noise of i * 0.64
    if t_end == t_start:
        return index == timegrid.segment_containing(t_start, SPS)
    starts = timegrid.segment_start_seconds(index, SPS)
    ends = timegrid.segment_end_seconds(index, SPS)
    return (starts < t_end - tol) & (ends > t_start + tol)


def expected_planted_mask(annotations: Annotations, index: int) -> np.ndarray:
    """(n, C) bool from the ground truth, through timegrid."""
    video = annotations.videos[index]
    count = timegrid.num_segments(annotations.durations[index], SPS)
    mask = np.zeros((count, annotations.num_classes), dtype=bool)
    truth = annotations.ground_truth()
    for row in truth[truth["video"] == video].itertuples(index=False):
        mask[:, annotations.classes.index(row.label)] |= covered_by_overlap(row.t_start, row.t_end, count)
    return mask


# -- hand-computed layout on the grid -------------------------------------------------------


def test_planted_activity_hand_computed():
    # Video v0: 10 s -> ceil(10 / 0.64) = ceil(15.625) = 16 segments.
    # A [1.0, 3.0]: first = floor(1.0 / 0.64) = floor(1.5625) = 1; 3.0 / 0.64 = 4.6875 -> last = 4: m = 4
    #   softness 0.25 -> ramp over 0.25 * 4 = 1 segment; depth = min(k, 3 - k) + 0.5 = 0.5, 1.5, 1.5, 0.5
    #   -> weights min(1, depth / 1) = 0.5, 1, 1, 0.5 on segments 1..4.
    # B [6.4, 6.4] (zero length): segment_containing(6.4) = 10 -> weight 1 (m = 1, ramp 0.25, 0.5 / 0.25 > 1).
    # B [0, 1.28]: 1.28 / 0.64 = 2 exactly -> segments 0, 1 (segment 2 starts at 1.28: no overlap); m = 2,
    #   ramp 0.5 segment: depths 0.5, 0.5 -> 1, 1.
    # C [12, 13]: starts after the last segment ends (16 * 0.64 = 10.24 s) -> nothing.
    layout = make_annotations(
        [10.0], [("v0", "A", 1.0, 3.0), ("v0", "B", 6.4, 6.4), ("v0", "B", 0.0, 1.28), ("v0", "C", 12.0, 13.0)]
    )
    planted = planted_activity(layout, 0, SPS, boundary_softness=0.25)
    assert planted.shape == (16, 3)
    expected = np.zeros((16, 3))
    expected[1:5, 0] = [0.5, 1, 1, 0.5]
    expected[[0, 1, 10], 1] = 1
    np.testing.assert_allclose(planted, expected)
    # times before 0: [-1, -0.5] covers nothing; [-1, 0.5]: first = floor(-1 / 0.64) = -2, last = 0 -> only
    # segment 0 lies in the video; m = 3 (unclipped), ramp 0.25 * 3 = 0.75, depth of k = 2: 0 + 0.5 -> 0.5 / 0.75
    before = instance_segment_weights([-1.0, -1.0], [-0.5, 0.5], 3, 0.25, SPS)
    np.testing.assert_allclose(before, [[0, 0.5 / 0.75], [0, 0], [0, 0]])
    # boundary_softness = 0: 1 on every covered segment
    hard = planted_activity(layout, 0, SPS, boundary_softness=0.0)
    np.testing.assert_array_equal(hard, (expected > 0).astype(np.float32))


def test_overlapping_instances_of_one_class_take_the_maximum():
    # A [0, 6.4] -> segments 0..9 (m = 10, ramp 0.25 * 10 = 2.5 segments: depths 0.5, 1.5, 2.5, ...)
    #   -> 0.2, 0.6, 1, ..., 1, 0.6, 0.2 ; A [0, 0.64] -> segment 0 only (m = 1) -> 1.
    # Segment 0 = max(0.2, 1) = 1; segment 1 = 0.6.
    layout = make_annotations([6.4], [("v0", "A", 0.0, 6.4), ("v0", "A", 0.0, 0.64)])
    planted = planted_activity(layout, 0, SPS, boundary_softness=0.25)
    np.testing.assert_allclose(planted[:, 0], [1, 0.6, 1, 1, 1, 1, 1, 1, 0.6, 0.2], rtol=1e-6)


def test_instance_beyond_the_video_keeps_its_own_ramp():
    # 2 s video -> ceil(3.125) = 4 segments. A [0.7, 5.0]: first = 1, 5.0 / 0.64 = 7.8125 -> last = 7, m = 7,
    # ramp 0.25 * 7 = 1.75: depths 0.5, 1.5, 2.5 -> 0.5 / 1.75 = 0.2857.., 1.5 / 1.75 = 0.857.., 1; segments 1..3.
    layout = make_annotations([2.0], [("v0", "A", 0.7, 5.0)])
    planted = planted_activity(layout, 0, SPS, boundary_softness=0.25)
    np.testing.assert_allclose(planted[:, 0], [0, 0.5 / 1.75, 1.5 / 1.75, 1], rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    start_centi=st.integers(0, 3000),
    length_centi=st.integers(0, 2000),
    count=st.integers(1, 60),
    softness=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
)
def test_instance_weights_properties(start_centi, length_centi, count, softness):
    t_start, t_end = start_centi / 100, (start_centi + length_centi) / 100  # times in 0.01 s like real annotations
    weights = instance_segment_weights([t_start], [t_end], count, softness, SPS)[:, 0]
    covered = covered_by_overlap(t_start, t_end, count)
    np.testing.assert_array_equal(weights > 0, covered)  # support = the overlapped segments
    assert np.all((weights >= 0) & (weights <= 1))
    inside = weights[covered]
    first = timegrid.segment_containing(t_start, SPS)
    unclipped = covered.any() and first >= 0 and timegrid.num_segments(max(t_end, 1e-9), SPS) <= count
    if unclipped:
        np.testing.assert_allclose(inside, inside[::-1], rtol=1e-12)  # symmetric ramps
        # the middle reaches full evidence: an odd count has a segment at the instance's center (depth m / 2
        # >= softness * m); an even count's middle segments have depth (m - 1) / 2 >= m / 4 when m >= 2
        if len(inside) % 2 == 1 or softness <= 0.25:
            assert inside.max() == 1.0
        half = inside[: (len(inside) + 1) // 2]
        assert np.all(np.diff(half) >= 0)  # ramps up towards the middle
    if softness == 0:
        assert np.all(inside == 1.0)


# -- the real layouts ----------------------------------------------------------------------


def test_segment_counts_on_the_whole_thumos_layout(thumos_annotations):
    spec = SyntheticSpec(feature_dim=2)  # the cheap path: every video, tiny d
    dataset = make_synthetic_dataset(thumos_annotations, spec)
    expected = timegrid.num_segments(thumos_annotations.durations, SPS)
    for index in range(len(dataset)):
        assert dataset.features(index).shape == (expected[index], 2)
        assert planted_activity(thumos_annotations, index).shape == (expected[index], thumos_annotations.num_classes)
    # hand check: the shortest THUMOS14 video lasts 8.932 s -> 8.932 / 0.64 = 13.956 -> 14 segments
    shortest = int(np.argmin(thumos_annotations.durations))
    assert thumos_annotations.durations[shortest] == pytest.approx(8.932)
    assert dataset.features(shortest).shape[0] == 14


def thumos_probe_videos(annotations) -> list[int]:
    """A few THUMOS14 videos: one with CliffDiving + Diving, one whose instances start past its duration, two more."""
    truth = annotations.instances
    cliff = truth.loc[truth["label"] == "CliffDiving", "video"].iat[0]
    return [annotations.index_of(v) for v in (cliff, "video_validation_0000364", "video_test_0000270")] + [0, 5]


def test_planted_segments_match_the_thumos_ground_truth(thumos_annotations):
    for index in thumos_probe_videos(thumos_annotations):
        planted = planted_activity(thumos_annotations, index)
        expected = expected_planted_mask(thumos_annotations, index)
        np.testing.assert_array_equal(planted > 0, expected, err_msg=thumos_annotations.videos[index])
        video = thumos_annotations.videos[index]
        present = set(thumos_annotations.instances.loc[thumos_annotations.instances["video"] == video, "label"])
        absent = [c for i, c in enumerate(thumos_annotations.classes) if c not in present]
        assert all(not planted[:, thumos_annotations.classes.index(c)].any() for c in absent)
        assert np.all((planted >= 0) & (planted <= 1))


def test_activitynet_layout_works_with_zero_length_instances(activitynet_annotations):
    truth = activitynet_annotations.instances
    zero = truth[truth["t_end"] == truth["t_start"]]
    assert len(zero) == 10  # ActivityNet1.2 has 10 zero-length instances
    spec = SyntheticSpec(feature_dim=16)
    dataset = make_synthetic_dataset(activitynet_annotations, spec)
    probes = [activitynet_annotations.index_of(v) for v in zero["video"].iloc[[0, 5, 7]]] + [0, 1]
    for index in probes:
        features = dataset.features(index)
        count = timegrid.num_segments(activitynet_annotations.durations[index], SPS)
        assert features.shape == (count, 16) and features.dtype == np.float32
        assert np.isfinite(features).all() and (features >= 0).all()
        planted = planted_activity(activitynet_annotations, index)
        np.testing.assert_array_equal(planted > 0, expected_planted_mask(activitynet_annotations, index))
    # "Cleaning windows" at 19.91222 s (zero length) -> segment floor(19.91222 / 0.64) = floor(31.11) = 31 only
    row = zero[zero["label"] == "Cleaning windows"].iloc[0]
    index = activitynet_annotations.index_of(row["video"])
    count = timegrid.num_segments(activitynet_annotations.durations[index], SPS)
    alone = instance_segment_weights([row["t_start"]], [row["t_end"]], count, 0.25, SPS)[:, 0]
    assert np.flatnonzero(alone).tolist() == [31] and alone[31] == 1.0
    planted = planted_activity(activitynet_annotations, index)
    assert planted[31, activitynet_annotations.classes.index("Cleaning windows")] == 1.0


# -- determinism ---------------------------------------------------------------------------


def test_same_video_twice_is_identical(thumos_annotations):
    first = synthesize_video(thumos_annotations, 17, SMALL)
    second = synthesize_video(thumos_annotations, 17, SMALL)
    np.testing.assert_array_equal(first, second)


def test_independent_of_generation_order(thumos_annotations):
    synthetic.class_vectors.cache_clear()
    alone = make_synthetic_dataset(thumos_annotations, SMALL).features(17)
    synthetic.class_vectors.cache_clear()
    dataset = make_synthetic_dataset(thumos_annotations, SMALL)
    for index in range(17):
        dataset.features(index)
    np.testing.assert_array_equal(dataset.features(17), alone)


@settings(max_examples=8, deadline=None)
@given(order=st.permutations(list(range(6))))
def test_any_order_gives_the_same_videos(thumos_annotations, order):
    spec = SyntheticSpec(feature_dim=8)
    reference = [synthesize_video(thumos_annotations, i, spec) for i in range(6)]
    dataset = make_synthetic_dataset(thumos_annotations, spec)
    for index in order:
        np.testing.assert_array_equal(dataset.features(index), reference[index])


def test_stable_across_processes_and_hash_seeds(thumos_annotations):
    # a video's stream comes from a stable hash of its name, never from Python's salted hash()
    code = (
        "import numpy as np; from wtal_kit.data import load_wtalc_annotations;"
        "from wtal_kit.data.synthetic import SyntheticSpec, synthesize_video;"
        f"a = load_wtalc_annotations({str(REPO_ROOT / 'data' / 'thumos14')!r});"
        "x = synthesize_video(a, 3, SyntheticSpec(feature_dim=32));"
        "print(float(x.astype(np.float64).sum()).hex())"
    )
    local = float(synthesize_video(thumos_annotations, 3, SMALL).astype(np.float64).sum()).hex()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == local


def test_seeds_and_videos_differ(thumos_annotations):
    base = synthesize_video(thumos_annotations, 4, SMALL)
    other_seed = synthesize_video(thumos_annotations, 4, SMALL.replace(seed=1))
    assert base.shape == other_seed.shape and not np.array_equal(base, other_seed)
    other_video = synthesize_video(thumos_annotations, 5, SMALL)
    rows = min(len(base), len(other_video))
    assert not np.array_equal(base[:rows], other_video[:rows])
    # same layout, same seed, but a video of another name: its noise differs even on an identical layout
    layout = make_annotations([5.0, 5.0], [])
    assert not np.array_equal(synthesize_video(layout, 0, SMALL), synthesize_video(layout, 1, SMALL))


def test_dataset_is_lazy(thumos_annotations, monkeypatch):
    calls = []
    original = synthetic._synthesize
    monkeypatch.setattr(synthetic, "_synthesize", lambda *args: calls.append(args[1]) or original(*args))
    dataset = make_synthetic_dataset(thumos_annotations, SMALL)
    assert isinstance(dataset, FeatureDataset) and len(dataset) == 412 and calls == []
    dataset.features(7)
    assert calls == [7]
    assert "synthetic" in dataset.description and "default difficulty" in dataset.description
    assert dataset.feature_dim == 32


def test_reader_pickles_for_dataloader_workers(thumos_annotations):
    dataset = make_synthetic_dataset(thumos_annotations, SMALL.replace(noise_std=0.2))
    assert "noise_std=0.2" in dataset.description
    reader = pickle.loads(pickle.dumps(dataset.read_features))
    np.testing.assert_array_equal(reader(3), dataset.features(3))


# -- the signal and the knobs --------------------------------------------------------------


def test_features_are_finite_nonnegative_float32_with_a_realistic_scale(thumos_annotations):
    spec = SyntheticSpec.quick()
    features = np.concatenate([synthesize_video(thumos_annotations, i, spec) for i in (0, 10, 20, 30)])
    assert features.dtype == np.float32 and features.shape[1] == 256
    assert np.isfinite(features).all() and (features >= 0).all()
    assert 0.25 < features.mean() < 0.55  # pooled-activation scale
    assert 0.1 < (features == 0).mean() < 0.6  # sparse-ish: a fair share of exact zeros


def test_signal_projection_is_higher_inside_instances(thumos_annotations):
    spec = SyntheticSpec.quick()  # default difficulty knobs
    prototypes = class_vectors(thumos_annotations, spec).prototypes  # (C, d)
    margins = []
    for index in range(0, 412, 12):
        planted = planted_activity(thumos_annotations, index) > 0  # (n, C)
        background = ~planted.any(axis=1)
        if background.sum() < 5:
            continue
        projection = synthesize_video(thumos_annotations, index, spec) @ prototypes.T  # (n, C)
        for c in np.flatnonzero(planted.sum(axis=0) >= 5):
            margins.append(projection[planted[:, c], c].mean() - projection[background, c].mean())
    margins = np.array(margins)
    assert len(margins) >= 15
    assert margins.mean() > 0.1
    assert (margins > 0).mean() >= 0.8


def test_context_strength_zero_removes_the_label_background_correlation():
    # v0 has one A instance and is additionally labelled B (video-level only: no B instance).
    with_b = make_annotations([20.0], [("v0", "A", 5.0, 9.0)], extra_labels=[(0, "B")])
    without_b = make_annotations([20.0], [("v0", "A", 5.0, 9.0)])
    no_context = SMALL.replace(context_strength=0.0)
    np.testing.assert_array_equal(synthesize_video(with_b, 0, no_context), synthesize_video(without_b, 0, no_context))
    # with context, the label B raises the background along B's context direction
    context_b = class_vectors(with_b, SMALL).contexts[1]
    gain = (synthesize_video(with_b, 0, SMALL) - synthesize_video(without_b, 0, SMALL)) @ context_b  # (n,)
    assert gain.min() > 0


def test_context_correlates_background_with_video_labels(thumos_annotations):
    def label_gap(spec):
        contexts = class_vectors(thumos_annotations, spec).contexts  # (C, d)
        with_label, without_label = [], []
        for index in range(0, 412, 8):
            background = ~(planted_activity(thumos_annotations, index) > 0).any(axis=1)
            projection = synthesize_video(thumos_annotations, index, spec)[background] @ contexts.T  # (n_bg, C)
            labelled = thumos_annotations.video_labels[index]
            with_label.append(projection[:, labelled].mean(axis=0) - projection.mean())
            without_label.append(projection[:, ~labelled].mean(axis=0) - projection.mean())
        return np.concatenate(with_label).mean() - np.concatenate(without_label).mean()

    gap_default = label_gap(SyntheticSpec.quick())
    gap_none = label_gap(SyntheticSpec.quick(context_strength=0.0))
    assert gap_default > 0.15
    assert abs(gap_none) < gap_default / 3


def test_noise_std_increases_variance(thumos_annotations):
    # the action signal off, so that the segment-to-segment variance is the noise's (plus the slow drift)
    quiet = synthesize_video(thumos_annotations, 2, SMALL.replace(noise_std=0.1, action_strength=0.0))
    loud = synthesize_video(thumos_annotations, 2, SMALL.replace(noise_std=0.6, action_strength=0.0))
    assert loud.var(axis=0).mean() > 4 * quiet.var(axis=0).mean()


def test_instance_variation_makes_instances_differ():
    # two instances of A, nothing else varying: with noise, scene, drift and context off, a full-weight
    # segment of either instance is background_mean + amplitude * direction, so instances coincide iff
    # instance_variation = 0 (same direction, amplitude exp(0) = 1).
    layout = make_annotations([20.0], [("v0", "A", 1.0, 4.0), ("v0", "A", 10.0, 13.0)])
    still = SMALL.replace(noise_std=0.0, scene_std=0.0, drift_std=0.0, context_strength=0.0, boundary_softness=0.0)
    inside_first, inside_second = 3, 17  # 3 * 0.64 = 1.92 s in [1, 4]; 17 * 0.64 = 10.88 s in [10, 13]
    same = synthesize_video(layout, 0, still.replace(instance_variation=0.0))
    np.testing.assert_allclose(same[inside_first], same[inside_second], rtol=1e-6)
    varied = synthesize_video(layout, 0, still)
    assert np.abs(varied[inside_first] - varied[inside_second]).max() > 1e-3


def test_cooccurrence_rates_hand_computed():
    # v0: A [0, 2], B [1, 3] overlap; A [5, 6] alone. v1: C [0, 1], B [2, 3] do not overlap.
    # A: 1 of its 2 instances overlaps B -> 0.5; B: 1 of its 2 overlaps A -> 0.5; rate(A, B) = max = 0.5.
    layout = make_annotations(
        [10.0, 10.0], [("v0", "A", 0, 2), ("v0", "B", 1, 3), ("v0", "A", 5, 6), ("v1", "C", 0, 1), ("v1", "B", 2, 3)]
    )
    np.testing.assert_allclose(cooccurrence_rates(layout), [[0, 0.5, 0], [0.5, 0, 0], [0, 0, 0]])


def test_cooccurring_classes_share_their_prototypes(thumos_annotations):
    rates = cooccurrence_rates(thumos_annotations)
    cliff, diving = thumos_annotations.classes.index("CliffDiving"), thumos_annotations.classes.index("Diving")
    assert rates[cliff, diving] == 1.0  # every CliffDiving instance lies inside a Diving one

    def cosine(sharing):
        prototypes = class_vectors(thumos_annotations, SyntheticSpec.quick(cooccurrence_sharing=sharing)).prototypes
        return float(prototypes[cliff] @ prototypes[diving])

    # sharing s on a pair of rate 1 adds about s to the cosine (own parts weigh sqrt(1 - s), shared sqrt(s))
    assert cosine(0.0) < 0.2
    assert cosine(0.5) - cosine(0.0) == pytest.approx(0.5, abs=0.15)
    prototypes = class_vectors(thumos_annotations, SyntheticSpec.quick()).prototypes
    assert (prototypes >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(prototypes, axis=1), 1, rtol=1e-5)


def test_context_lives_in_the_rgb_half(thumos_annotations):
    contexts = class_vectors(thumos_annotations, SMALL).contexts  # (C, 32)
    assert (contexts[:, 16:] == 0).all() and (contexts[:, :16] > 0).any(axis=1).all()
    spread = class_vectors(thumos_annotations, SMALL.replace(context_rgb_only=False)).contexts
    assert (spread[:, 16:] > 0).any()


# -- presets, defaults and errors ---------------------------------------------------------


def test_quick_preset_keeps_the_difficulty_knobs():
    quick, default = SyntheticSpec.quick(), SyntheticSpec()
    assert quick.feature_dim == 256 and default.feature_dim == 2048
    assert quick.replace(feature_dim=2048) == default
    assert SyntheticSpec.quick(seed=3).seed == 3


def test_default_layout_is_thumos14():
    dataset = make_synthetic_dataset(spec=SMALL)
    assert dataset.annotations.num_videos == 412 and dataset.annotations.num_classes == 20
    assert dataset.features(0).shape[1] == 32


def test_missing_default_layout_raises(monkeypatch, tmp_path):
    from wtal_kit.data import bundled

    monkeypatch.setattr(bundled, "_CANDIDATES", (tmp_path / "nowhere",))  # the shipped data are not installed
    with pytest.raises(InputError, match="not installed"):
        make_synthetic_dataset(spec=SMALL)


@pytest.mark.parametrize(
    "changes",
    [
        {"feature_dim": 0},
        {"seed": -1},
        {"noise_std": -0.1},
        {"boundary_softness": 0.6},
        {"cooccurrence_sharing": 1.5},
        {"context_similarity": float("nan")},
        {"drift_seconds": 0.0},
    ],
)
def test_bad_spec_raises(changes):
    field = next(iter(changes))
    with pytest.raises(InputError, match=field):
        SyntheticSpec(**changes)


def test_bad_index_raises(thumos_annotations):
    with pytest.raises(InputError, match="video index"):
        synthesize_video(thumos_annotations, 412, SMALL)
    with pytest.raises(InputError, match="video index"):
        planted_activity(thumos_annotations, -1)
