"""Data layer: W-TALC reader, HDF5 store, ActivityNet JSON, time grid, bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT, THUMOS_DIR, write_release_npy as _write_release_npy
from wtal_kit import timegrid
from wtal_kit.atomic import atomic_path, atomic_write_text
from wtal_kit.data import FeatureDataset, load_ground_truth, load_wtalc_annotations, load_wtalc_features, load_wtalc_release
from wtal_kit.data.hdf5 import open_feature_store, read_scores, write_feature_store, write_scores
from wtal_kit.data.jsonio import read_detections_json, read_ground_truth_json, write_detections_json, write_ground_truth_json
from wtal_kit.data.tables import check_detections, check_ground_truth
from wtal_kit.errors import InputError

FEATURE_DIM = 2048
SCORES_ATTRS = {"seconds_per_segment": 0.64, "kappa": None, "block_size": 60, "k": 10, "config": {"a": 1}, "subset": "test"}


def _write_small_scores(path, annotations, subset="test", count=5, seed=1):
    indices = annotations.indices(subset)[:count]
    rng = np.random.default_rng(seed)
    logits = [rng.normal(size=(int(n), annotations.num_classes)).astype(np.float32) for n in rng.integers(3, 9, size=count)]
    video_probs = rng.random((count, annotations.num_classes)).astype(np.float32)
    return write_scores(path, annotations, indices, logits, video_probs, SCORES_ATTRS), indices, logits, video_probs


def _strings_in_hdf5(path) -> list[str]:
    """Every string attribute and string dataset value of an HDF5 file, and every object name."""
    found = []

    def collect(name, obj):
        found.append(name)
        for value in obj.attrs.values():
            found.extend(str(v) for v in np.atleast_1d(value))
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "OSU":
            found.extend(obj.asstr()[()].reshape(-1).tolist())

    with h5py.File(path, "r") as handle:
        found.extend(str(v) for v in handle.attrs.values())
        handle.visititems(collect)
    return found


@pytest.fixture(scope="module")
def release(tmp_path_factory, thumos_annotations):
    """Small random features for the real THUMOS14 annotations, in the exact release format."""
    folder = tmp_path_factory.mktemp("release")
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 4, size=thumos_annotations.num_videos)
    features = [rng.random((int(n), FEATURE_DIM), dtype=np.float32) for n in counts]
    path = folder / "Thumos14reduced-I3D-JOINTFeatures.npy"
    _write_release_npy(path, features)
    return path, features


# -- annotations ----------------------------------------------------------------------
def test_thumos_counts_match_method_md(thumos_annotations):
    summary = thumos_annotations.summary()
    assert summary == {"validation": {"videos": 200, "instances": 3007}, "test": {"videos": 212, "instances": 3358}}
    assert thumos_annotations.num_classes == 20
    assert "video_test_0001292" not in set(thumos_annotations.videos)
    assert len(thumos_annotations.ambiguous) == 99
    assert thumos_annotations.durations.shape == (412,)  # (412, 1) on disk


def test_thumos_label_facts(thumos_annotations):
    a = thumos_annotations
    i = a.index_of("video_test_0000270")
    assert not a.video_labels[i].any()  # empty labels_all
    # labels_all differs from the instance labels for 28 videos
    from_instances = np.zeros_like(a.video_labels)
    index = {c: j for j, c in enumerate(a.classes)}
    for video, label in zip(a.instances["video"], a.instances["label"]):
        from_instances[a.index_of(video), index[label]] = True
    assert int((from_instances != a.video_labels).any(axis=1).sum()) == 28
    assert all(isinstance(v, str) for v in a.videos) and all(isinstance(c, str) for c in a.classes)


def test_activitynet_counts(activitynet_annotations):
    a = activitynet_annotations
    assert a.summary()["training"]["videos"] == 4819 and a.summary()["validation"]["videos"] == 2383
    assert len(a.instances) == 10733 and a.num_classes == 100
    assert int((a.instances["t_end"] == a.instances["t_start"]).sum()) == 10  # zero-length segments are kept


def test_duration_shapes_both_accepted(tmp_path):
    folder = tmp_path / "ann"
    shutil.copytree(THUMOS_DIR, folder)
    column = np.load(folder / "duration.npy")
    np.save(folder / "duration.npy", column.reshape(-1))
    flat = load_wtalc_annotations(folder)
    np.testing.assert_array_equal(flat.durations, column[:, 0])


# -- features (pickle opt-in) ---------------------------------------------------------------
def test_features_need_explicit_trust(release, thumos_annotations):
    path, _ = release
    with pytest.raises(InputError, match="pickle.*trust_pickle=True.*--trust-pickle"):
        load_wtalc_features(path, thumos_annotations)


def test_release_reader_round_trip(release, thumos_annotations):
    path, features = release
    dataset = load_wtalc_release(THUMOS_DIR, path, trust_pickle=True)
    assert len(dataset) == 412 and dataset.feature_dim == FEATURE_DIM
    for i in (0, 200, 411):
        np.testing.assert_array_equal(dataset.features(i), features[i])
    assert dataset.annotations.summary() == thumos_annotations.summary()


def test_release_length_mismatch(tmp_path, thumos_annotations):
    path = tmp_path / "short.npy"
    _write_release_npy(path, [np.zeros((2, 4), np.float32)] * 5)
    with pytest.raises(InputError, match="5 videos but the annotations"):
        load_wtalc_features(path, thumos_annotations, trust_pickle=True)


def test_release_nan_names_video(tmp_path, thumos_annotations):
    values = [np.ones((2, 4), np.float32) for _ in range(thumos_annotations.num_videos)]
    values[7] = values[7].copy()
    values[7][1, 2] = np.nan
    path = tmp_path / "nan.npy"
    _write_release_npy(path, values)
    with pytest.raises(InputError) as info:
        load_wtalc_features(path, thumos_annotations, trust_pickle=True)
    assert thumos_annotations.videos[7] in str(info.value) and "NaN" in str(info.value) and "nan.npy" in str(info.value)


def test_release_wrong_shape(tmp_path, thumos_annotations):
    values = [np.ones((2, 4), np.float32) for _ in range(thumos_annotations.num_videos)]
    values[3] = np.ones((2, 5), np.float32)
    path = tmp_path / "dims.npy"
    _write_release_npy(path, values)
    with pytest.raises(InputError, match="feature dimension 5 differs"):
        load_wtalc_features(path, thumos_annotations, trust_pickle=True)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: (f / "segments.npy").unlink(), "missing annotation file"),
        (lambda f: np.save(f / "duration.npy", np.ones((412, 2))), "shape \\(412, 2\\)"),
        (lambda f: np.save(f / "subset.npy", np.array([b"test"] * 5)), "has 5 entries but videoname.npy has 412"),
    ],
)
def test_bad_annotation_folder(tmp_path, mutate, message):
    folder = tmp_path / "ann"
    shutil.copytree(THUMOS_DIR, folder)
    mutate(folder)
    with pytest.raises(InputError, match=message):
        load_wtalc_annotations(folder)


def _edit_object_array(folder, name, index, value):
    array = np.load(folder / f"{name}.npy", allow_pickle=True, encoding="bytes")
    array[index] = value
    _write_release_npy(folder / f"{name}.npy", list(array))


def test_bad_segment_and_label_name_the_video(tmp_path):
    folder = tmp_path / "ann"
    shutil.copytree(THUMOS_DIR, folder)
    _edit_object_array(folder, "segments", 4, [[10.0, 5.0]] + list(np.load(folder / "segments.npy", allow_pickle=True)[4])[1:])
    with pytest.raises(InputError) as info:
        load_wtalc_annotations(folder)
    video = np.load(THUMOS_DIR / "videoname.npy")[4].decode()
    assert "end < start" in str(info.value) and video in str(info.value) and "segments" in str(info.value)

    shutil.rmtree(folder)
    shutil.copytree(THUMOS_DIR, folder)
    labels = list(np.load(folder / "labels.npy", allow_pickle=True, encoding="bytes")[9])
    _edit_object_array(folder, "labels", 9, [b"Juggling"] + labels[1:])
    with pytest.raises(InputError, match="unknown label 'Juggling'"):
        load_wtalc_annotations(folder)


def test_nonpositive_duration(tmp_path):
    folder = tmp_path / "ann"
    shutil.copytree(THUMOS_DIR, folder)
    duration = np.load(folder / "duration.npy")
    duration[2, 0] = 0.0
    np.save(folder / "duration.npy", duration)
    with pytest.raises(InputError, match="duration must be > 0"):
        load_wtalc_annotations(folder)


# -- HDF5 ------------------------------------------------------------------------------------
def test_feature_store_round_trip(tmp_path, release):
    path, features = release
    dataset = load_wtalc_release(THUMOS_DIR, path, trust_pickle=True)
    store = write_feature_store(tmp_path / "store.h5", dataset, progress=False)
    reopened = open_feature_store(store)
    assert reopened.feature_dim == FEATURE_DIM and reopened.seconds_per_segment == pytest.approx(0.64)
    assert list(reopened.annotations.videos) == list(dataset.annotations.videos)
    assert reopened.annotations.classes == dataset.annotations.classes
    pd.testing.assert_frame_equal(reopened.annotations.instances, dataset.annotations.instances)
    np.testing.assert_array_equal(reopened.annotations.video_labels, dataset.annotations.video_labels)
    np.testing.assert_array_equal(reopened.annotations.durations, dataset.annotations.durations)
    for i in (0, 57, 411):
        np.testing.assert_array_equal(reopened.features(i), features[i])
    with h5py.File(store) as handle:  # self-contained: attributes say what the store is
        assert handle.attrs["feature_dim"] == FEATURE_DIM
        assert json.loads(handle.attrs["classes"]) == list(dataset.annotations.classes)
        assert handle["features"][dataset.annotations.videos[0]].dtype == np.float32


def test_store_without_annotations_round_trip(tmp_path):
    """Videos with names and durations only (one's own videos, for inference): zero classes, no labels, no instances."""
    from wtal_kit.data import Annotations
    from wtal_kit.data.hdf5 import feature_store_attrs
    from wtal_kit.data.ground_truth import load_ground_truth

    annotations = Annotations.without_labels("mine", ["a", "b"], [2.0, 3.3], source="mine.h5")
    assert annotations.classes == () and annotations.video_labels.shape == (2, 0) and len(annotations.instances) == 0
    assert list(annotations.subsets) == ["test", "test"]
    counts = {0: 4, 1: 6}  # ceil(2.0 / 0.64) = ceil(3.125), ceil(3.3 / 0.64) = ceil(5.16)
    dataset = FeatureDataset(annotations, 0.64, 3, lambda i: np.full((counts[i], 3), i, np.float32), "mine")
    store = write_feature_store(tmp_path / "mine.h5", dataset, progress=False, attrs={"extractor": "{}", "note": 7})
    reopened = open_feature_store(store)
    assert list(reopened.annotations.videos) == ["a", "b"] and reopened.annotations.classes == ()
    assert reopened.annotations.video_labels.shape == (2, 0) and len(reopened.annotations.instances) == 0
    np.testing.assert_array_equal(reopened.annotations.durations, [2.0, 3.3])
    assert reopened.features(1).shape == (6, 3)
    attrs = feature_store_attrs(store)
    assert attrs["extractor"] == "{}" and attrs["note"] == 7 and attrs["feature_dim"] == 3
    for own in ("format", "feature_dim", "description"):  # extra attributes never replace the store's own
        with pytest.raises(ValueError, match="cannot replace"):
            write_feature_store(tmp_path / "other.h5", dataset, progress=False, attrs={own: 1})
    assert not (tmp_path / "other.h5").exists()
    table, classes = load_ground_truth(store)
    assert classes == () and len(table) == 0
    with pytest.raises(ValueError, match="feature_dim"):  # the format's own attributes cannot be replaced
        write_feature_store(tmp_path / "other.h5", dataset, progress=False, attrs={"feature_dim": 9})
    assert not (tmp_path / "other.h5").exists()


def test_store_rejection_writes_nothing(tmp_path, thumos_annotations):
    def read(index):
        if index == 3:
            return np.full((2, 4), np.inf, np.float32)
        return np.ones((2, 4), np.float32)

    dataset = FeatureDataset(thumos_annotations, 0.64, 4, read, "bad source")
    target = tmp_path / "store.h5"
    with pytest.raises(InputError, match="NaN or inf"):
        write_feature_store(target, dataset, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_open_store_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        open_feature_store(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5"):
        open_feature_store(tmp_path / "junk.h5")


def test_scores_round_trip(tmp_path, thumos_annotations):
    path, indices, logits, video_probs = _write_small_scores(tmp_path / "s.h5", thumos_annotations)
    scores = read_scores(path)
    assert list(scores.annotations.videos) == list(thumos_annotations.videos[indices])
    assert scores.kappa is None and scores.attrs["config"] == {"a": 1}
    for video, array in zip(thumos_annotations.videos[indices], logits):
        np.testing.assert_array_equal(scores.logits[video], array)
    np.testing.assert_array_equal(scores.video_probs, video_probs)
    expected_gt = thumos_annotations.instances[thumos_annotations.instances["video"].isin(set(thumos_annotations.videos[indices]))]
    assert len(scores.annotations.ground_truth()) == len(expected_gt)


def test_outputs_store_no_absolute_path(tmp_path, thumos_annotations):
    """The annotations were read from an absolute path; neither output file may record it."""
    source = thumos_annotations.source
    assert Path(source).is_absolute()
    scores_path, *_ = _write_small_scores(tmp_path / "s.h5", thumos_annotations)
    dataset = FeatureDataset(thumos_annotations.select(np.arange(4)), 0.64, 4, lambda i: np.ones((2, 4), np.float32), source)
    store_path = write_feature_store(tmp_path / "store.h5", dataset, progress=False)
    for path in (scores_path, store_path):
        strings = _strings_in_hdf5(path)
        assert not [s for s in strings if source in s or str(tmp_path) in s], path
        with h5py.File(path) as handle:
            assert handle["annotations"].attrs["source"] == "thumos14"  # the name of what they were read from
    # readers keep the path they read (in memory only), so that errors name it
    assert read_scores(scores_path).annotations.source == str(scores_path)
    assert open_feature_store(store_path).annotations.source == str(store_path)
    with h5py.File(scores_path, "a") as handle:
        del handle["annotations/instances/t_end"]
    with pytest.raises(InputError, match="missing dataset /annotations/instances/t_end") as info:
        read_scores(scores_path)
    assert str(scores_path) in str(info.value)


def test_wtalc_release_store_has_no_absolute_path(tmp_path, release):
    path, _ = release
    dataset = load_wtalc_release(THUMOS_DIR, path, trust_pickle=True, name="Thumos14reduced")
    store = write_feature_store(tmp_path / "store.h5", dataset, progress=False)
    strings = _strings_in_hdf5(store)
    assert not [s for s in strings if str(path.parent) in s or str(THUMOS_DIR) in s]
    with h5py.File(store) as handle:
        assert handle.attrs["description"] == f"W-TALC release {path.name}"


# -- atomic writes --------------------------------------------------------------------------------
def test_atomic_write_text(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    assert atomic_write_text(target, "héllo\n") == target and target.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "second" and sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_json_writing_does_not_import_h5py(tmp_path):
    code = (
        "import sys; import pandas as pd; from wtal_kit.data.jsonio import write_detections_json;"
        "write_detections_json(sys.argv[1], pd.DataFrame({'video': ['a'], 'label': ['X'], 't_start': [0.0], 't_end': [1.0], 'score': [0.5]}));"
        "assert 'h5py' not in sys.modules, 'h5py imported'"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.json")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "d.json").read_text())["results"]["a"][0]["score"] == 0.5


# -- JSON -------------------------------------------------------------------------------------
def test_ground_truth_json_round_trip(tmp_path, thumos_annotations):
    path = write_ground_truth_json(tmp_path / "gt.json", thumos_annotations, "test")
    data = json.loads(path.read_text())
    first = thumos_annotations.videos[thumos_annotations.indices("test")[0]]
    assert set(data["database"][first]) == {"subset", "duration", "annotations"}
    back = read_ground_truth_json(path, classes=thumos_annotations.classes)
    pd.testing.assert_frame_equal(back.ground_truth(), thumos_annotations.ground_truth("test"))


def test_detections_json_round_trip(tmp_path):
    table = pd.DataFrame({"video": ["a", "a", "b"], "label": ["X", "Y", "X"], "t_start": [0.0, 1.5, 2.0],
                          "t_end": [1.0, 3.0, 2.5], "score": [0.9, 0.2, 0.5]})
    path = write_detections_json(tmp_path / "det.json", table, videos=["a", "b", "c"])
    data = json.loads(path.read_text())
    assert data["results"]["c"] == [] and data["results"]["a"][1] == {"label": "Y", "score": 0.2, "segment": [1.5, 3.0]}
    pd.testing.assert_frame_equal(read_detections_json(path, classes=["X", "Y"]), check_detections(table))


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"label": "Nope", "score": 0.5, "segment": [0, 1]}, "unknown label 'Nope'"),
        ({"label": "X", "score": float("nan"), "segment": [0, 1]}, "score must be a finite number"),
        ({"label": "X", "score": 0.5, "segment": [2, 1]}, "end < start"),
        ({"label": "X", "score": 0.5, "segment": [0]}, "must be \\[start, end\\]"),
    ],
)
def test_bad_results_file(tmp_path, entry, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"results": {"vid7": [entry]}}))
    with pytest.raises(InputError) as info:
        read_detections_json(path, classes=["X"])
    assert "bad.json" in str(info.value) and "vid7" in str(info.value)
    assert pytest.importorskip("re").search(message, str(info.value))


def test_bad_ground_truth_json(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"database": {"v": {"subset": "test", "duration": -1, "annotations": []}}}))
    with pytest.raises(InputError, match="duration must be > 0"):
        read_ground_truth_json(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_ground_truth_json(path)
    with pytest.raises(InputError, match="file not found"):
        read_ground_truth_json(tmp_path / "missing.json")


def test_table_checks():
    good = pd.DataFrame({"video": ["a"], "label": ["X"], "t_start": [0.0], "t_end": [1.0]})
    assert check_ground_truth(good).equals(check_ground_truth(good.copy()))
    with pytest.raises(InputError, match="lacks column"):
        check_ground_truth(good.drop(columns="label"))
    with pytest.raises(InputError, match="end < start"):
        check_ground_truth(good.assign(t_end=[-1.0]))
    with pytest.raises(InputError, match="non-finite"):
        check_detections(good.assign(score=[np.inf]))


# -- load_ground_truth: JSON, W-TALC folder, HDF5 ------------------------------------------------
def test_load_ground_truth_from_the_three_forms(tmp_path, thumos_annotations):
    expected = thumos_annotations.ground_truth("test")
    json_path = write_ground_truth_json(tmp_path / "gt.json", thumos_annotations)
    scores_path, indices, *_ = _write_small_scores(tmp_path / "scores.h5", thumos_annotations, count=30)
    for path in (json_path, str(json_path), THUMOS_DIR):
        table, classes = load_ground_truth(path, subset="test")
        pd.testing.assert_frame_equal(table, expected)
        assert classes == (tuple(sorted(thumos_annotations.classes)) if path != THUMOS_DIR else thumos_annotations.classes)
    table, classes = load_ground_truth(scores_path)
    keep = set(thumos_annotations.videos[indices])
    pd.testing.assert_frame_equal(table, expected[expected["video"].isin(keep)].reset_index(drop=True))
    assert classes == thumos_annotations.classes
    # a feature store (.hdf5 suffix) works as well
    dataset = FeatureDataset(thumos_annotations, 0.64, 4, lambda i: np.ones((2, 4), np.float32))
    store = write_feature_store(tmp_path / "store.hdf5", dataset, progress=False)
    table, classes = load_ground_truth(store, subset="validation")
    pd.testing.assert_frame_equal(table, thumos_annotations.ground_truth("validation"))
    # all subsets when subset is None
    assert len(load_ground_truth(THUMOS_DIR)[0]) == len(thumos_annotations.instances)
    assert len(load_ground_truth(json_path)[0]) == len(thumos_annotations.instances)


def test_load_ground_truth_with_the_detections_classes(tmp_path, thumos_annotations):
    order = tuple(reversed(thumos_annotations.classes))
    json_path = write_ground_truth_json(tmp_path / "gt.json", thumos_annotations, "test")
    for path in (json_path, THUMOS_DIR):
        table, classes = load_ground_truth(path, "test", classes=order)
        assert classes == order and len(table) == len(thumos_annotations.ground_truth("test"))
    fewer = thumos_annotations.classes[1:]
    for path in (json_path, THUMOS_DIR):
        with pytest.raises(InputError, match=thumos_annotations.classes[0]):
            load_ground_truth(path, "test", classes=fewer)


def test_load_ground_truth_bad_input(tmp_path, thumos_annotations):
    (tmp_path / "gt.csv").write_text("video,label\n")
    with pytest.raises(InputError, match="unknown ground-truth form") as info:
        load_ground_truth(tmp_path / "gt.csv")
    assert "gt.csv" in str(info.value)
    for missing in ("missing.json", "missing.h5", "missing_folder"):
        with pytest.raises(InputError, match="not found") as info:
            load_ground_truth(tmp_path / missing)
        assert missing in str(info.value)
    with h5py.File(tmp_path / "plain.h5", "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(InputError, match="no 'annotations' group"):
        load_ground_truth(tmp_path / "plain.h5")
    (tmp_path / "junk.hdf5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5"):
        load_ground_truth(tmp_path / "junk.hdf5")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(InputError, match="missing annotation file"):
        load_ground_truth(tmp_path / "empty_folder")
    with pytest.raises(InputError, match="no subset 'training'"):
        load_ground_truth(THUMOS_DIR, subset="training")
    json_path = write_ground_truth_json(tmp_path / "gt.json", thumos_annotations, "test")
    with pytest.raises(InputError, match="no videos in subset 'validation'"):
        load_ground_truth(json_path, subset="validation")


# -- time grid ----------------------------------------------------------------------------------
def test_time_grid_by_hand():
    sps = 16 / 25  # 0.64 s
    assert timegrid.num_segments(6.4, sps) == 10  # exactly 10 segments, not 11 from 10.000000000000002
    assert timegrid.num_segments(6.41, sps) == 11
    assert timegrid.num_segments(0.1, sps) == 1
    assert timegrid.segment_start_seconds(3, sps) == pytest.approx(1.92)
    assert timegrid.segment_end_seconds(3, sps) == pytest.approx(2.56)
    assert timegrid.segment_containing(1.92, sps) == 3 and timegrid.segment_containing(2.5599, sps) == 3
    assert timegrid.seconds_to_feature_grid(1.0, sps) == 2  # round(1.5625)
    np.testing.assert_array_equal(timegrid.num_segments(np.array([0.64, 1.0]), sps), [1, 2])
    with pytest.raises(ValueError):
        timegrid.num_segments(1.0, 0.0)
