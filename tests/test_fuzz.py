"""Property and fuzz tests on a bounded budget (about half a minute on 2 cores).

Valid random inputs: the Localizer of a random scores file and the evaluator never raise and keep
their invariants (detections inside their video, mAP in [0, 1], one class's detections never move
another class's AP, the order of the videos changes nothing). The evaluator's other properties (AP in
[0, 1], row order, false positives) are in test_evaluate.py, the localizer's run structure in
test_localize.py.

Malformed random inputs: the W-TALC, npy, JSON and HDF5 readers raise only wtal_kit errors (WtalError),
never another exception type. HDF5 is mutated structurally and truncated, not bit-flipped: the HDF5 C
library is not hardened against arbitrary corruption (README, "Safety").
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wtal_kit.data.annotations import Annotations
from wtal_kit.data.hdf5 import Scores, open_feature_store, read_scores
from wtal_kit.data.jsonio import read_detections_json, read_ground_truth_json
from wtal_kit.data.npyfile import load_npy
from wtal_kit.data.tables import check_detections
from wtal_kit.data.wtalc import load_wtalc_annotations
from wtal_kit.errors import WtalError
from wtal_kit.evaluate import average_label, detection_map, is_average, per_class_ap, with_average
from wtal_kit.localizer import Localizer

sys.path.insert(0, str(Path(__file__).parent / "bad_inputs"))
from make_corpus import write_valid_files, write_wtalc_folder  # noqa: E402

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
SPS = 0.64


# -- random valid scores -> Localizer ---------------------------------------------------------------
@st.composite
def random_scores(draw):
    num_videos = draw(st.integers(1, 4))
    classes = tuple(f"c{i}" for i in range(draw(st.integers(1, 3))))
    videos = np.array([f"v{i}" for i in range(num_videos)], dtype=object)
    lengths = [draw(st.integers(1, 30)) for _ in range(num_videos)]
    durations = np.array([n * SPS - draw(st.floats(0, SPS * 0.9)) for n in lengths])
    rows = []
    for video, duration in zip(videos, durations):
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.floats(0, float(duration)))
            rows.append((video, draw(st.sampled_from(classes)), start, draw(st.floats(start, float(duration)))))
    labels = np.zeros((num_videos, len(classes)), dtype=bool)
    for video, label, _, _ in rows:
        labels[int(video[1:]), classes.index(label)] = True
    annotations = Annotations(name="fuzz", videos=videos, subsets=np.array(["test"] * num_videos, dtype=object), classes=classes,
                              durations=durations, video_labels=labels,
                              instances=pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end"]))
    logit = st.floats(-12, 12, allow_nan=False).map(np.float32)
    logits = {v: draw(arrays(np.float32, (n, len(classes)), elements=logit)) for v, n in zip(videos, lengths)}
    video_probs = draw(arrays(np.float32, (num_videos, len(classes)), elements=st.floats(0, 1, width=32)))
    kappa = draw(st.sampled_from([None, 1.0, 4.0]))
    attrs = {"seconds_per_segment": SPS, "kappa": kappa, "block_size": draw(st.integers(1, 60)), "k": draw(st.integers(1, 10))}
    return Scores(annotations=annotations, logits=logits, video_probs=video_probs, attrs=attrs)


localizer_settings = st.fixed_dictionaries({
    "threshold": st.floats(0.01, 0.99),
    "gamma": st.floats(0, 2),
    "localization": st.sampled_from(["paper", "wsad_code"]),
    "min_length": st.none() | st.integers(1, 4),
    "max_per_video": st.none() | st.integers(1, 5),
})


@pytest.mark.slow
@FUZZ
@given(scores=random_scores(), chosen=localizer_settings, protocol=st.sampled_from(["activitynet", "wtalc"]))
def test_localizer_on_random_scores_keeps_its_invariants(scores, chosen, protocol):
    localizer = Localizer(scores)
    detections = check_detections(localizer.detections(**chosen))  # a valid table, or InputError
    lengths = {v: len(scores.logits[v]) for v in scores.annotations.videos}
    assert set(detections["label"]) <= set(scores.annotations.classes)
    ends = detections["video"].map(lengths).to_numpy(dtype=float) * SPS
    assert (detections["t_start"] >= 0).all() and (detections["t_end"] <= ends + 1e-9).all()
    assert (detections["t_end"] > detections["t_start"]).all()
    if chosen["max_per_video"] is not None and len(detections):
        assert detections["video"].value_counts().max() <= chosen["max_per_video"]
    if len(scores.annotations.instances) == 0:
        return  # nothing to evaluate (the Localizer says so with an InputError)
    evaluation = localizer.evaluate(**chosen, eval_protocol=protocol)
    mean_ap = evaluation.mean_ap.to_numpy()
    assert ((mean_ap >= 0) & (mean_ap <= 1 + 1e-12)).all()

    # the order of the videos in the scores file changes nothing
    order = np.arange(scores.annotations.num_videos)[::-1]
    reordered = Scores(annotations=scores.annotations.select(order), logits=scores.logits,
                       video_probs=scores.video_probs[order], attrs=scores.attrs)
    other = Localizer(reordered)
    key = ["video", "label", "t_start"]
    pd.testing.assert_frame_equal(
        detections.sort_values(key).reset_index(drop=True),
        check_detections(other.detections(**chosen)).sort_values(key).reset_index(drop=True),
    )
    if detections["score"].is_unique:  # tied scores keep input order, which the video order changes
        np.testing.assert_allclose(other.evaluate(**chosen, eval_protocol=protocol).mean_ap.to_numpy(), mean_ap, atol=1e-12)


# -- the evaluator ------------------------------------------------------------------------------------
LABELS = ["x", "y", "z"]
rows_gt = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(LABELS), st.integers(0, 40), st.integers(1, 10)),
                   min_size=1, max_size=15)
rows_det = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(LABELS), st.integers(0, 40),
                              st.integers(0, 10), st.floats(0, 1)), max_size=25)
thresholds = st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]), min_size=1, max_size=3, unique=True)


def _gt(rows):
    return pd.DataFrame([(v, c, s / 2, (s + n) / 2) for v, c, s, n in rows], columns=["video", "label", "t_start", "t_end"])


def _det(rows):
    return pd.DataFrame([(v, c, s / 2, (s + n) / 2, q) for v, c, s, n, q in rows],
                        columns=["video", "label", "t_start", "t_end", "score"])


@pytest.mark.slow
@FUZZ
@given(gt=rows_gt, det=rows_det, extra=rows_det.filter(bool), iou=thresholds, protocol=st.sampled_from(["activitynet", "wtalc"]))
def test_detections_of_one_class_never_change_another_class_ap(gt, det, extra, iou, protocol):
    gt, det = _gt(gt), _det(det)
    label = extra[0][1]
    added = _det([(v, label, s, n, q) for v, _, s, n, q in extra])  # all of one class
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a detection label absent from the ground truth is ignored, with a warning
        before = per_class_ap(gt, det, iou, protocol)
        after = per_class_ap(gt, pd.concat([det, added], ignore_index=True), iou, protocol)
    others = [c for c in before.index if c != label]
    pd.testing.assert_frame_equal(after.loc[others], before.loc[others], check_exact=True)


@FUZZ
@given(gt=rows_gt, det=rows_det, iou=thresholds, protocol=st.sampled_from(["activitynet", "wtalc"]))
def test_map_is_the_mean_class_ap_and_lies_in_the_unit_interval(gt, det, iou, protocol):
    gt, det = _gt(gt), _det(det)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean_ap = with_average(detection_map(gt, det, iou, protocol))
        per_class = per_class_ap(gt, det, iou, protocol)
    values = mean_ap.to_numpy(dtype=float)
    assert ((values >= 0) & (values <= 1 + 1e-12)).all()
    average = average_label(iou)  # "avg" only for the paper's four thresholds; any other set is named with it
    thresholds = [key for key in mean_ap.index if not is_average(key)]
    np.testing.assert_allclose(mean_ap[thresholds].to_numpy(dtype=float), per_class.mean(axis=0).to_numpy(), atol=1e-12)
    assert mean_ap[average] == pytest.approx(per_class.to_numpy().mean())


# -- malformed random input: only WtalError -------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**400), 10**400) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _only_wtal_errors(read, *args, **kwargs):
    """Call a reader; anything but success or a WtalError fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(*args, **kwargs)
    except WtalError as error:
        assert "\n" not in str(error)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.slow
@FUZZ
@given(segment=json_values, score=json_values, label=json_values, duration=json_values, whole=json_values)
def test_json_readers_on_random_structures(scratch, segment, score, label, duration, whole):
    path = scratch / "fuzz.json"
    for payload in (
        {"results": {"v": [{"segment": segment, "score": score, "label": label}]}},
        {"database": {"v": {"duration": duration, "subset": label, "annotations": [{"segment": segment, "label": label}]}}},
        {"results": whole, "database": whole},
        whole,
    ):
        path.write_text(json.dumps(payload))  # NaN, Infinity and 400-digit integers included
        _only_wtal_errors(read_detections_json, path, classes=["x"])
        _only_wtal_errors(read_ground_truth_json, path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_json_and_npy_readers_on_random_bytes(scratch, data):
    for name, read in (("fuzz.json", read_detections_json), ("gt.json", read_ground_truth_json), ("fuzz.npy", load_npy)):
        path = scratch / name
        path.write_bytes(data)
        _only_wtal_errors(read, path)
    npy = scratch / "header.npy"  # past the magic string: a random header and body
    npy.write_bytes(b"\x93NUMPY\x01\x00" + data)
    _only_wtal_errors(load_npy, npy)


npy_values = st.recursive(
    st.none() | st.integers(-5, 5) | st.floats() | st.text(max_size=5) | st.binary(max_size=5)
    | arrays(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]), st.tuples(st.integers(0, 3), st.integers(0, 3))),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=8,
)
WTALC_FILES = ["videoname", "subset", "classlist", "segments", "labels", "labels_all", "duration"]


@pytest.fixture(scope="module")
def wtalc_folder(scratch):
    folder = scratch / "release"
    write_wtalc_folder(folder)
    return folder


@FUZZ
@given(name=st.sampled_from(WTALC_FILES), values=st.lists(npy_values, max_size=7) | npy_values, as_object=st.booleans())
def test_wtalc_reader_on_random_arrays(wtalc_folder, name, values, as_object):
    folder = wtalc_folder.parent / "mutated"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(wtalc_folder, folder)
    path = folder / f"{name}.npy"
    if as_object:
        array = np.empty(len(values) if isinstance(values, list) else 1, dtype=object)
        for i, value in enumerate(values if isinstance(values, list) else [values]):
            array[i] = value
        with open(path, "wb") as handle:  # as the release writes it: header, then a pickle
            np.lib.format.write_array_header_1_0(handle, np.lib.format.header_data_from_array_1_0(array))
            pickle.dump(array, handle, protocol=2)
    else:
        try:
            array = np.asarray(values)
        except ValueError:
            assume(False)
        assume(array.dtype != object)
        np.save(path, array)
    _only_wtal_errors(load_wtalc_annotations, folder)


# -- HDF5: structural mutations and truncation --------------------------------------------------------
@pytest.fixture(scope="module")
def hdf5_files(scratch):
    return write_valid_files(scratch / "valid")


hdf5_values = (
    arrays(st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint8, np.bool_]),
           st.tuples(st.integers(0, 4), st.integers(0, 4)) | st.tuples(st.integers(0, 6)) | st.just(()))
    | st.text(max_size=10) | st.integers(-(2**62), 2**62) | st.floats() | st.binary(max_size=10).map(np.void)
)


def _mutate(handle, target: str, action: str, value) -> None:
    names = []
    handle.visit(names.append)
    name = names[int(target) % len(names)] if target.isdigit() else target
    if action == "delete":
        del handle[name]
    elif action == "replace" and isinstance(handle.get(name), h5py.Dataset):
        del handle[name]
        handle[name] = value if isinstance(value, np.ndarray) else np.asarray(value)
    elif action == "attribute":
        obj = handle[name] if name in handle else handle
        keys = list(obj.attrs) or ["format"]
        obj.attrs[keys[len(name) % len(keys)]] = value


@FUZZ
@given(which=st.sampled_from(["store", "scores"]), target=st.integers(0, 60).map(str) | st.just("/"),
       action=st.sampled_from(["delete", "replace", "attribute"]), value=hdf5_values)
def test_hdf5_readers_on_random_structural_damage(scratch, hdf5_files, which, target, action, value):
    path = scratch / f"damaged_{which}.h5"
    shutil.copy(hdf5_files[which], path)
    try:
        with h5py.File(path, "a") as handle:
            _mutate(handle, "" if target == "/" else target, action, value)
    except (TypeError, ValueError, KeyError):
        assume(False)  # h5py could not store that value: not a file to read
    _read_hdf5(which, path)


def _read_hdf5(which: str, path: Path) -> None:
    def read_store(path):
        dataset = open_feature_store(path)
        for index in range(len(dataset)):
            dataset.features(index)

    _only_wtal_errors(read_store if which == "store" else read_scores, path)


@settings(max_examples=25, deadline=None)
@given(which=st.sampled_from(["store", "scores"]), fraction=st.floats(0, 1, exclude_max=True))
def test_hdf5_readers_on_truncated_files(scratch, hdf5_files, which, fraction):
    data = hdf5_files[which].read_bytes()
    path = scratch / f"truncated_{which}.h5"
    path.write_bytes(data[: math.floor(fraction * len(data))])
    _read_hdf5(which, path)
