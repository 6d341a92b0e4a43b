"""Write the corpus of malformed inputs that tests/test_bad_inputs.py feeds to `wtal`.

    python tests/bad_inputs/make_corpus.py FOLDER

Nothing here is committed but this script: the files are made at test time. Each case is a bad
file (or a bad flag) and the `wtal` command that reads it; every one must end in exit code 2 and
one line on stderr that names the file (or the flag), with no output written. The hostile cases
carry a pickle payload that would create ``FOLDER/PAYLOAD_RAN`` if it were ever run.
FOLDER/cases.json lists the cases (name, reader, argv, expect, output).
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

PAYLOAD_MARKER = "PAYLOAD_RAN"
CLASSES = ("Diving", "Jump")
VIDEOS = ("v0", "v1", "v2", "v3", "v4", "v5")
SUBSETS = ("validation",) * 3 + ("test",) * 3
FEATURE_DIM = 8
# train as small as possible, so that a case the readers wrongly let through costs seconds, not hours
TINY_TRAIN = ["--feature-dim", str(FEATURE_DIM), "--iterations", "1", "--eval-every", "1", "--batch-videos", "2",
              "--batch-classes", "1", "--no-progress"]


@dataclass
class Case:
    name: str
    reader: str  # which reader (or flag check) the case exercises
    argv: list  # `wtal` arguments
    expect: str  # text the one error line must contain: the bad file's name, or the flag
    output: str | None  # a path that must not exist afterwards


class Payload:
    """Unpickling this runs exec(): it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


# -- valid pieces the bad files are made from ------------------------------------------------------
def _annotations():
    from wtal_kit.data.annotations import Annotations

    rows = [(v, CLASSES[i % 2], 1.0 + i, 3.0 + i) for i, v in enumerate(VIDEOS)]
    labels = np.zeros((len(VIDEOS), len(CLASSES)), dtype=bool)
    for i in range(len(VIDEOS)):
        labels[i, i % 2] = True
    return Annotations(
        name="tiny", videos=np.array(VIDEOS, dtype=object), subsets=np.array(SUBSETS, dtype=object), classes=CLASSES,
        durations=np.full(len(VIDEOS), 10.0), video_labels=labels,
        instances=pd.DataFrame(rows, columns=["video", "label", "t_start", "t_end"]), source="tiny",
    )


def _write_object_npy(path: Path, values, protocol: int = 2) -> None:
    """An object array the way the W-TALC release stores one: a .npy header, then a pickle."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    _write_npy_header(path, array.shape, object, pickle.dumps(array, protocol=protocol))


def _write_npy_header(path: Path, shape, dtype, body: bytes) -> None:
    with open(path, "wb") as handle:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(body)


def write_wtalc_folder(folder: Path) -> None:
    """A valid W-TALC annotation folder of the six tiny videos."""
    folder.mkdir(parents=True)
    np.save(folder / "videoname.npy", np.array([v.encode() for v in VIDEOS]))
    np.save(folder / "subset.npy", np.array([s.encode() for s in SUBSETS]))
    np.save(folder / "classlist.npy", np.array([c.encode() for c in CLASSES]))
    np.save(folder / "duration.npy", np.full((len(VIDEOS), 1), 10.0))
    _write_object_npy(folder / "segments.npy", [[[1.0 + i, 3.0 + i]] for i in range(len(VIDEOS))])
    _write_object_npy(folder / "labels.npy", [[CLASSES[i % 2].encode()] for i in range(len(VIDEOS))])
    _write_object_npy(folder / "labels_all.npy", [[CLASSES[i % 2].encode()] for i in range(len(VIDEOS))])


def _features(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.random((5, FEATURE_DIM), dtype=np.float32) for _ in VIDEOS]


def write_valid_files(folder: Path, write: bool = True) -> dict:
    """The valid inputs every case starts from; returns their paths (``write=False``: only the paths)."""
    from wtal_kit.data.dataset import FeatureDataset
    from wtal_kit.data.hdf5 import write_feature_store, write_scores
    from wtal_kit.data.jsonio import write_detections_json, write_ground_truth_json

    good = folder / "good"
    paths = {"annotations": good / "annotations", "features": good / "features.npy", "store": good / "store.h5",
             "scores": good / "scores.h5", "gt": good / "gt.json", "det": good / "det.json"}
    if not write:
        return paths
    annotations = _annotations()
    features = _features()
    good.mkdir(parents=True)
    write_wtalc_folder(paths["annotations"])
    _write_object_npy(paths["features"], features)
    dataset = FeatureDataset(annotations=annotations, seconds_per_segment=0.64, feature_dim=FEATURE_DIM,
                             read_features=features.__getitem__, description="tiny")
    write_feature_store(paths["store"], dataset, progress=False)
    rng = np.random.default_rng(1)
    indices = np.arange(3, 6)
    logits = [rng.normal(size=(16, len(CLASSES))).astype(np.float32) for _ in indices]
    attrs = {"seconds_per_segment": 0.64, "kappa": 4.0, "block_size": 60, "k": 10, "subset": "test", "config": {"a": 1}}
    write_scores(paths["scores"], annotations, indices, logits, rng.random((3, len(CLASSES))), attrs)
    write_ground_truth_json(paths["gt"], annotations, "test")
    detections = pd.DataFrame({"video": ["v3", "v4"], "label": ["Jump", "Diving"], "t_start": [4.0, 5.0],
                               "t_end": [6.0, 7.0], "score": [0.9, 0.8]})
    write_detections_json(paths["det"], detections)
    return paths


# -- the corpus --------------------------------------------------------------------------------------
def make_corpus(folder, *, write: bool = True) -> list[Case]:
    """Write every bad file into ``folder`` (emptied first) and return the cases.

    ``write=False`` only lists the cases (what pytest needs to collect them), writing nothing.
    """
    folder = Path(folder).resolve()
    torch = None
    if write:
        import torch

        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    good = write_valid_files(folder, write)
    out = folder / "out"
    marker = folder / PAYLOAD_MARKER
    payload = pickle.dumps(Payload(marker), protocol=2)
    rng = np.random.default_rng(0)
    cases: list[Case] = []

    def case(name, reader, argv, expect, output=None):
        cases.append(Case(name, reader, [str(a) for a in argv], str(expect), None if output is None else str(output)))

    # W-TALC annotation folders, read as ground truth by `wtal evaluate`
    def annotation_case(name, mutate, expect_file):
        target = folder / name
        if write:
            shutil.copytree(good["annotations"], target)
            mutate(target)
        csv = out / f"{name}.csv"
        case(name, "wtalc-annotations", ["evaluate", "--results", good["det"], "--ground-truth", target, "--csv", csv],
             f"{name}/{expect_file}", csv)

    annotation_case("ann_npy_is_a_pickle", lambda f: (f / "videoname.npy").write_bytes(payload), "videoname.npy")
    annotation_case("ann_npy_object_array_with_payload",
                    lambda f: _write_npy_header(f / "segments.npy", (len(VIDEOS),), object, payload), "segments.npy")
    annotation_case("ann_npy_random_bytes", lambda f: (f / "labels.npy").write_bytes(rng.bytes(300)), "labels.npy")
    annotation_case("ann_npy_empty", lambda f: (f / "subset.npy").write_bytes(b""), "subset.npy")
    annotation_case("ann_npy_truncated",
                    lambda f: (f / "segments.npy").write_bytes((f / "segments.npy").read_bytes()[:90]), "segments.npy")
    annotation_case("ann_npy_header_claims_huge_shape",
                    lambda f: _write_npy_header(f / "duration.npy", (10**12,), np.float64, b"\0" * 64), "duration.npy")
    annotation_case("ann_duration_nan", lambda f: np.save(f / "duration.npy", np.full(len(VIDEOS), np.nan)), "duration.npy")
    annotation_case("ann_duration_text", lambda f: np.save(f / "duration.npy", np.array([b"ten"] * len(VIDEOS))), "duration.npy")
    annotation_case("ann_segments_not_lists", lambda f: _write_object_npy(f / "segments.npy", list(range(len(VIDEOS)))),
                    "segments.npy")
    annotation_case("ann_segment_end_before_start",
                    lambda f: _write_object_npy(f / "segments.npy", [[[5.0, 1.0]]] * len(VIDEOS)), "segments.npy")
    annotation_case("ann_unknown_label",
                    lambda f: _write_object_npy(f / "labels.npy", [[b"Juggling"]] * len(VIDEOS)), "labels.npy")
    annotation_case("ann_label_not_utf8", lambda f: _write_object_npy(f / "labels_all.npy", [[b"\xff\xfe"]] * len(VIDEOS)),
                    "labels_all.npy")
    annotation_case("ann_length_mismatch", lambda f: np.save(f / "subset.npy", np.array([b"test"] * 2)), "subset.npy")
    annotation_case("ann_videoname_0d", lambda f: np.save(f / "videoname.npy", np.array(b"v0")), "videoname.npy")
    annotation_case("ann_ambiguous_bad_line", lambda f: (f / "Ambiguous_test.txt").write_text("v3 1.0\n"), "Ambiguous_test.txt")
    annotation_case("ann_ambiguous_not_text", lambda f: (f / "Ambiguous_test.txt").write_bytes(b"\xff\xfe\x00 1 2\n"),
                    "Ambiguous_test.txt")

    # the W-TALC pickled feature file, with the explicit opt-in, converted by `wtal convert`
    def feature_case(name, make):
        path = folder / f"{name}.npy"
        if write:
            make(path)
        store = out / f"{name}.h5"
        case(name, "wtalc-features", ["convert", "--annotations", good["annotations"], "--features", path, "--trust-pickle",
                                      "--out", store, "--no-progress"], path.name, store)

    feature_case("feat_pickle_with_payload", lambda p: _write_npy_header(p, (len(VIDEOS),), object, payload))
    feature_case("feat_plain_pickle_with_payload", lambda p: p.write_bytes(payload))
    feature_case("feat_random_bytes", lambda p: p.write_bytes(rng.bytes(1000)))
    feature_case("feat_wrong_video_count", lambda p: _write_object_npy(p, _features()[:4]))
    feature_case("feat_nan", lambda p: _write_object_npy(p, [np.full((5, FEATURE_DIM), np.nan, np.float32)] * len(VIDEOS)))
    feature_case("feat_one_dimensional", lambda p: _write_object_npy(p, [np.zeros(FEATURE_DIM, np.float32)] * len(VIDEOS)))
    feature_case("feat_text", lambda p: _write_object_npy(p, [["a", "b"]] * len(VIDEOS)))
    feature_case("feat_dimension_changes", lambda p: _write_object_npy(p, _features()[:5] + [np.zeros((5, 3), np.float32)]))

    def damaged_h5(name, source, mutate=None, raw=None):
        """folder/NAME.h5: ``raw`` bytes, or a copy of a good file changed by ``mutate(handle)``."""
        path = folder / f"{name}.h5"
        if not write:
            pass
        elif raw is not None:
            path.write_bytes(raw)
        else:
            shutil.copy(source, path)
            with h5py.File(path, "a") as handle:
                mutate(handle)
        return path

    # HDF5 feature stores, trained on by `wtal train --dataset`
    def store_case(name, mutate=None, raw=None):
        path = damaged_h5(name, good["store"], mutate, raw)
        run = out / name
        case(name, "hdf5-store", ["train", "--dataset", path, *TINY_TRAIN, "--run-dir", run], path.name, run)

    store_bytes = good["store"].read_bytes() if write else b""
    store_case("store_truncated", raw=store_bytes[: len(store_bytes) // 3])
    store_case("store_random_bytes", raw=rng.bytes(4096))
    store_case("store_empty_file", raw=b"")
    store_case("store_text_file", raw=b"videoname,features\nv0,1 2 3\n")
    store_case("store_no_features_group", lambda h: h.__delitem__("features"))
    store_case("store_video_without_features", lambda h: h["features"].__delitem__("v1"))
    store_case("store_features_nan", lambda h: h["features/v0"].__setitem__((0, 0), np.nan))

    def replace(handle, name, data):
        del handle[name]
        handle[name] = data

    store_case("store_features_text", lambda h: replace(h, "features/v0", np.array([b"x"] * 5)))
    store_case("store_features_wrong_dim", lambda h: replace(h, "features/v0", np.zeros((5, 3), np.float32)))
    store_case("store_features_a_group", lambda h: (h["features"].__delitem__("v0"), h["features"].create_group("v0")))
    store_case("store_features_external_link", lambda h: (h["features"].__delitem__("v0"),
                                                          h["features"].__setitem__("v0", h5py.ExternalLink("/etc/passwd", "/x"))))
    store_case("store_seconds_per_segment_negative", lambda h: h.attrs.__setitem__("seconds_per_segment", -0.64))
    store_case("store_seconds_per_segment_nan", lambda h: h.attrs.__setitem__("seconds_per_segment", np.nan))
    store_case("store_feature_dim_text", lambda h: h.attrs.__setitem__("feature_dim", "eight"))
    store_case("store_classes_not_json", lambda h: h["annotations"].attrs.__setitem__("classes", "[Diving, Jump"))
    store_case("store_durations_nan", lambda h: h["annotations/durations"].__setitem__(0, np.nan))
    store_case("store_label_index_out_of_range", lambda h: h["annotations/instances/label_index"].__setitem__(0, 7))
    store_case("store_negative_video_index", lambda h: h["annotations/instances/video_index"].__setitem__(0, -1))
    store_case("store_videos_not_text", lambda h: replace(h, "annotations/videos", np.arange(len(VIDEOS))))
    store_case("store_wrong_format_attribute", lambda h: h.attrs.__setitem__("format", "something-else"))
    store_case("store_annotations_missing", lambda h: h.__delitem__("annotations"))

    # HDF5 scores files, localized by `wtal localize`
    def scores_case(name, mutate=None, raw=None):
        path = damaged_h5(name, good["scores"], mutate, raw)
        detections = out / f"{name}.json"
        case(name, "hdf5-scores", ["localize", "--scores", path, "--out", detections], path.name, detections)

    scores_bytes = good["scores"].read_bytes() if write else b""
    scores_case("scores_truncated", raw=scores_bytes[: len(scores_bytes) // 2])
    scores_case("scores_logits_nan", lambda h: h["logits/v3"].__setitem__((0, 0), np.nan))
    scores_case("scores_logits_missing_video", lambda h: h["logits"].__delitem__("v4"))
    scores_case("scores_logits_wrong_classes", lambda h: replace(h, "logits/v3", np.zeros((4, 5), np.float32)))
    scores_case("scores_logits_no_segments", lambda h: replace(h, "logits/v3", np.zeros((0, 2), np.float32)))
    scores_case("scores_video_probs_wrong_shape", lambda h: replace(h, "video_probs", np.zeros((2, 2), np.float32)))
    scores_case("scores_config_is_a_pickle", lambda h: h.attrs.__setitem__("config", np.void(payload)))
    scores_case("scores_kappa_text", lambda h: h.attrs.__setitem__("kappa", "four"))
    scores_case("scores_block_size_zero", lambda h: h.attrs.__setitem__("block_size", 0))
    scores_case("scores_seconds_per_segment_missing", lambda h: h.attrs.__delitem__("seconds_per_segment"))

    # ActivityNet-style results JSON, evaluated by `wtal evaluate`
    def results_case(name, content):
        path = folder / f"{name}.json"
        if write:
            path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        csv = out / f"{name}.csv"
        case(name, "results-json", ["evaluate", "--results", path, "--ground-truth", good["gt"], "--csv", csv], path.name, csv)

    def results(**entry):
        return {"results": {"v3": [{"label": "Jump", "score": 0.5, "segment": [1.0, 2.0], **entry}]}}

    results_case("det_random_bytes", rng.bytes(200))
    results_case("det_empty_file", b"")
    results_case("det_top_level_list", [1, 2, 3])
    results_case("det_end_before_start", results(segment=[5.0, 1.0]))
    results_case("det_score_nan", b'{"results": {"v3": [{"label": "Jump", "score": NaN, "segment": [1, 2]}]}}')
    results_case("det_segment_beyond_float", b'{"results": {"v3": [{"label": "Jump", "score": 1, "segment": [1, 1e999]}]}}')
    results_case("det_integer_of_5000_digits", b'{"results": {"v3": [{"label": "Jump", "score": 1, "segment": [1, '
                 + b"9" * 5000 + b"]}]}}")
    results_case("det_integer_beyond_float", results(segment=[1, 10**400]))
    results_case("det_deep_nesting", b"[" * 100000 + b"]" * 100000)
    results_case("det_unknown_label", results(label="Juggling"))
    results_case("det_segment_text", results(segment=["one", "two"]))
    results_case("det_score_text", results(score="high"))
    results_case("det_not_utf8", b'{"results": {"\xff": []}}')

    # ActivityNet-style ground truth, read by `wtal evaluate --ground-truth`
    def gt_case(name, content):
        path = folder / f"{name}.json"
        if write:
            path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        csv = out / f"{name}.csv"
        case(name, "gt-json", ["evaluate", "--results", good["det"], "--ground-truth", path, "--csv", csv], path.name, csv)

    def database(**info):
        return {"database": {"v3": {"subset": "test", "duration": 10.0,
                                    "annotations": [{"segment": [1.0, 2.0], "label": "Jump"}], **info}}}

    gt_case("gt_duration_negative", database(duration=-3))
    gt_case("gt_duration_beyond_float", database(duration=10**400))
    gt_case("gt_annotations_not_a_list", database(annotations={"segment": [1, 2]}))
    gt_case("gt_segment_nan", b'{"database": {"v3": {"duration": 10, "annotations": [{"segment": [NaN, 2], "label": "Jump"}]}}}')
    gt_case("gt_no_database", {"videos": []})
    gt_case("gt_label_not_text", database(annotations=[{"segment": [1, 2], "label": 7}]))

    # HDF5 files read as ground truth by `wtal evaluate --ground-truth`
    def hdf5_gt_case(name, mutate):
        path = folder / f"{name}.h5"
        if write:
            shutil.copy(good["scores"], path)
            with h5py.File(path, "a") as handle:
                mutate(handle)
        csv = out / f"{name}.csv"
        case(name, "hdf5-annotations", ["evaluate", "--results", good["det"], "--ground-truth", path, "--csv", csv],
             path.name, csv)

    def link_annotations(handle):
        del handle["annotations"]
        handle["annotations"] = h5py.ExternalLink(str(good["store"]), "/annotations")

    hdf5_gt_case("gt_hdf5_annotations_link_to_another_file", link_annotations)
    hdf5_gt_case("gt_hdf5_no_annotations", lambda h: h.__delitem__("annotations"))
    hdf5_gt_case("gt_hdf5_instances_end_is_text", lambda h: replace(h, "annotations/instances/t_end", np.array([b"x"] * 3)))

    # checkpoints, loaded by `wtal infer`
    def checkpoint_case(name, make):
        path = folder / f"{name}.pt"
        if write:
            make(path)
        scores = out / f"{name}.h5"
        case(name, "checkpoint", ["infer", "--checkpoint", path, "--out", scores, "--device", "cpu", "--no-progress"],
             path.name, scores)

    checkpoint_case("ckpt_random_bytes", lambda p: p.write_bytes(rng.bytes(2048)))
    checkpoint_case("ckpt_empty", lambda p: p.write_bytes(b""))
    checkpoint_case("ckpt_foreign_pickle_with_payload", lambda p: p.write_bytes(payload))
    checkpoint_case("ckpt_torch_file_with_payload", lambda p: torch.save({"model": Payload(marker)}, p))
    checkpoint_case("ckpt_tensor_not_dict", lambda p: torch.save(torch.zeros(3), p))
    checkpoint_case("ckpt_dict_without_model", lambda p: torch.save({"iteration": 3}, p))
    checkpoint_case("ckpt_config_not_json", lambda p: torch.save({"model": {}, "config": "lr=1"}, p))
    checkpoint_case("ckpt_weights_do_not_fit", lambda p: torch.save(
        {"model": {"classifier.weight": torch.zeros(2, 3)}, "config": json.dumps({"feature_dim": 8})}, p))

    def truncated_checkpoint(path):
        torch.save({"model": {"w": torch.zeros(64, 64)}, "config": "{}"}, path)
        path.write_bytes(path.read_bytes()[:3000])

    checkpoint_case("ckpt_truncated_zip", truncated_checkpoint)

    # config JSON, read by `wtal train --config`
    def config_case(name, content):
        path = folder / f"{name}.json"
        if write:
            path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        run = out / name
        case(name, "config-json", ["train", "--config", path, "--run-dir", run, "--no-progress"], path.name, run)

    config_case("config_unknown_key", {"learning_rate": 0.1})
    config_case("config_negative_lr", {"lr": -1})
    config_case("config_not_an_object", ["lr", 0.1])
    config_case("config_thresholds_text", {"iou_thresholds": ["a", "b"]})
    config_case("config_huge_integer", b'{"iterations": ' + b"9" * 5000 + b"}")
    config_case("config_iterations_float", {"iterations": 1.5})
    config_case("config_random_bytes", rng.bytes(100))
    config_case("config_seed_negative", {"seed": -1})

    # numeric flags
    def flag_case(name, argv, expect, output=None):
        case(name, "flags", argv, expect, output)

    run = out / "flags-run"
    scores = good["scores"]
    train = ["train", "--run-dir", run, "--no-progress"]
    flag_case("flag_iterations_negative", [*train, "--iterations", "-1"], "iterations", run)
    flag_case("flag_iterations_nan", [*train, "--iterations", "nan"], "--iterations", run)
    flag_case("flag_iterations_huge", [*train, "--iterations", str(10**30)], "iterations", run)
    flag_case("flag_iterations_float", [*train, "--iterations", "1e30"], "--iterations", run)
    flag_case("flag_lr_inf", [*train, "--lr", "inf"], "lr", run)
    flag_case("flag_lr_nan", [*train, "--lr", "nan"], "lr", run)
    flag_case("flag_seed_negative", [*train, "--seed", "-1"], "seed", run)
    flag_case("flag_dropout_one", [*train, "--dropout", "1"], "dropout", run)
    flag_case("flag_kappa_inf", [*train, "--kappa", "inf"], "kappa", run)
    flag_case("flag_margin_nan", [*train, "--margin", "nan"], "margin", run)
    flag_case("flag_feature_cache_negative", [*train, "--feature-cache-mb", "-1"], "feature_cache_mb", run)
    flag_case("flag_threshold_above_one", ["localize", "--scores", scores, "--out", out / "f.json", "--threshold", "1.5"],
              "threshold", out / "f.json")
    flag_case("flag_threshold_nan", ["localize", "--scores", scores, "--out", out / "f.json", "--threshold", "nan"],
              "threshold", out / "f.json")
    flag_case("flag_gamma_inf", ["localize", "--scores", scores, "--out", out / "f.json", "--gamma", "inf"],
              "gamma", out / "f.json")
    flag_case("flag_min_length_zero", ["localize", "--scores", scores, "--out", out / "f.json", "--min-length", "0"],
              "min_length", out / "f.json")
    flag_case("flag_iou_above_one", ["evaluate", "--scores", scores, "--iou", "1.5", "--csv", out / "f.csv"],
              "iou_thresholds", out / "f.csv")
    flag_case("flag_iou_nan", ["evaluate", "--scores", scores, "--iou", "nan", "--csv", out / "f.csv"],
              "iou_thresholds", out / "f.csv")
    flag_case("flag_seconds_per_segment_negative", ["convert", "--annotations", good["annotations"], "--features",
                                                    good["features"], "--trust-pickle", "--seconds-per-segment", "-1",
                                                    "--out", out / "sps.h5", "--no-progress"], "seconds_per_segment", out / "sps.h5")
    flag_case("flag_seconds_per_segment_nan", ["convert", "--annotations", good["annotations"], "--features", good["features"],
                                               "--trust-pickle", "--seconds-per-segment", "nan", "--out", out / "sps.h5",
                                               "--no-progress"], "seconds_per_segment", out / "sps.h5")
    flag_case("flag_convert_feature_dim_zero", ["convert", "--synthetic", "thumos14", "--feature-dim", "0", "--out",
                                                out / "dim.h5", "--no-progress"], "feature-dim", out / "dim.h5")
    flag_case("flag_demo_iterations_negative", ["demo", "--iterations", "-5", "--no-serve", "--run-dir", run], "iterations", run)
    flag_case("flag_explore_port_out_of_range", ["explore", scores, "--port", "70000"], "--port")
    flag_case("flag_reproduce_workers_zero", ["reproduce", "--mode", "smoke", "--workers", "0", "--store", out / "store",
                                              "--out", out / "reports"], "workers", out / "store")
    flag_case("flag_reproduce_seed_negative", ["reproduce", "--mode", "smoke", "--seeds", "-1", "--store", out / "store",
                                               "--out", out / "reports"], "seeds", out / "store")

    if write:
        (folder / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=1))
    return cases


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    made = make_corpus(sys.argv[1])
    print(f"{len(made)} cases in {sys.argv[1]}")
