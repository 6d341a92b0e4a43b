"""Features from one's own video files: decoding, the backbone, extraction into a feature store, `wtal features`.

Every clip is generated here with PyAV (mpeg4 in .mp4, 30 fps, 64x48, a keyframe every 12 frames).
A frame's index is written into it as 8 black/white stripes (bit b of the index: stripe b white),
so that a test can read back which source frame it got. Nothing is downloaded: the backbone
uses random weights, and the one test of --weights default replaces torch's downloader.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from clips import FPS, H, W, frame_index, write_clip  # noqa: E402

from wtal_kit import timegrid  # noqa: E402
from wtal_kit.data.hdf5 import feature_store_attrs, open_feature_store, write_feature_store  # noqa: E402
from wtal_kit.errors import InputError, WtalError  # noqa: E402
from wtal_kit.video import backbone as bb  # noqa: E402
from wtal_kit.video import command, decode, extract  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = 16  # the clip side the extraction tests use (112 is the real one)
TEST_BACKBONE = "r3d_18"  # the cheapest per clip on this CPU at that size (about half of r2plus1d_18)


# -- clips ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """a.mp4: 2.0 s (60 frames), b.mp4: 3.3 s (99 frames), both 30 fps."""
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "a.mp4", 2.0)
    write_clip(folder / "b.mp4", 3.3)
    return folder


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path


def one_line(error) -> str:
    text = str(error)
    assert "\n" not in text
    return text


# -- decode --------------------------------------------------------------------------------------
def test_probe(clips):
    a, b = decode.probe(clips / "a.mp4"), decode.probe(clips / "b.mp4")
    assert (a.duration, a.fps, a.frame_count, a.width, a.height) == (pytest.approx(2.0), 30.0, 60, W, H)
    assert (b.duration, b.frame_count) == (pytest.approx(3.3), 99)


def test_probe_bad_files_are_one_line(tmp_path, bad_file):
    with pytest.raises(InputError) as error:
        decode.probe(bad_file)
    assert "x.mp4" in one_line(error.value) and "not a readable video" in str(error.value)
    with pytest.raises(InputError, match="file not found"):
        decode.probe(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="not a file"):
        decode.probe(tmp_path)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(bad_file.read_bytes()[:100])
    with pytest.raises(InputError, match="truncated.mp4"):
        decode.probe(truncated)


def test_iter_frames_25fps_takes_the_nearest_frame(clips):
    # output frame k is at k / 25 s; source frames are at i / 30 s: nearest i = round(30 k / 25) = round(1.2 k)
    # k = 0..5 -> 0, 1.2, 2.4, 3.6, 4.8, 6.0 -> 0, 1, 2, 4, 5, 6
    frames = list(decode.iter_frames_25fps(clips / "b.mp4"))
    indices = [frame_index(f) for f in frames]
    assert indices[:6] == [0, 1, 2, 4, 5, 6]
    assert indices == [min(98, round(1.2 * k)) for k in range(len(frames))]
    # frames while k / 25 < 3.3 s (the last frame's end: 98 / 30 + 1 / 30): k = 0 .. 82
    assert len(frames) == 83
    assert frames[0].shape == (H, W, 3) and frames[0].dtype == np.uint8
    assert len(list(decode.iter_frames_25fps(clips / "a.mp4"))) == 50  # k / 25 < 2.0
    small = next(decode.iter_frames_25fps(clips / "a.mp4", size=(32, 24)))
    assert small.shape == (24, 32, 3)


def test_frame_at_gives_the_frame_on_screen(clips):
    decode.clear_frame_cache()
    path = clips / "b.mp4"  # frame i is on screen during [i / 30, (i + 1) / 30)
    for seconds, expected in [(0.0, 0), (0.02, 0), (0.034, 1), (0.99, 29), (1.0, 30), (1.01, 30), (2.51, 75),
                              (3.28, 98), (-1.0, 0), (99.0, 98), (0.45, 13), (0.3999, 11)]:
        assert frame_index(decode.frame_at(path, seconds)) == expected, seconds
    assert decode.frame_at(path, 1.0, width=32).shape == (24, 32, 3)
    with pytest.raises(InputError, match="finite"):
        decode.frame_at(path, float("nan"))


def test_frame_at_is_cached_and_bounded(clips):
    decode.clear_frame_cache()
    path = clips / "b.mp4"
    first = decode.frame_at(path, 1.51)  # frame 45: decoded from the keyframe 36
    assert decode.frame_cache_stats()["misses"] == 1
    again = decode.frame_at(path, 1.51)
    assert decode.frame_cache_stats()["hits"] == 1 and again is first
    # the cursor's next and previous steps were decoded on the way: no more decoding
    assert frame_index(decode.frame_at(path, 1.51 + 1 / 30)) == 46
    assert frame_index(decode.frame_at(path, 1.51 - 1 / 30)) == 44
    stats = decode.frame_cache_stats()
    assert {k: stats[k] for k in ("hits", "misses", "videos", "frames")} == {"hits": 3, "misses": 1, "videos": 1, "frames": 10}
    for seconds in np.linspace(0, 3.2, 40):
        decode.frame_at(path, seconds)
    assert decode.frame_cache_stats()["frames"] <= decode.CACHE_FRAMES


def test_frame_at_from_threads(clips):
    decode.clear_frame_cache()
    path = clips / "b.mp4"
    times = np.random.default_rng(1).uniform(0, 3.29, 120)
    times = times[np.abs(times * 30 - np.round(times * 30)) > 0.01]  # not within 0.3 ms of a frame boundary
    wrong = []

    def look(part):
        for seconds in part:
            if frame_index(decode.frame_at(path, seconds)) != math.floor(seconds * 30):
                wrong.append(seconds)

    threads = [threading.Thread(target=look, args=(times[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_thumbnails(clips):
    # 4 thumbnails of 2.0 s: the centres of [0, 0.5), ... -> 0.25, 0.75, 1.25, 1.75 s -> frames 7, 22, 37, 52
    shots = decode.thumbnails(clips / "a.mp4", 4, 32)
    assert [t for t, _ in shots] == pytest.approx([0.25, 0.75, 1.25, 1.75])
    assert [frame_index(image) for _, image in shots] == [7, 22, 37, 52]
    assert shots[0][1].shape == (24, 32, 3)


def test_find_videos(tmp_path):
    for name in ("a.MP4", "b.mkv", "b.avi", "c.txt", "d.Mov", "e.webm.bak"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.mp4").write_bytes(b"")
    found = decode.find_videos(tmp_path, ["a", "b", "c", "d", "e", "f", "missing"])
    # stems match; any case of the extension; .avi before .mkv; other extensions and subfolders not looked at
    assert found == {"a": tmp_path / "a.MP4", "b": tmp_path / "b.avi", "d": tmp_path / "d.Mov"}
    with pytest.raises(InputError, match="not a folder"):
        decode.find_videos(tmp_path / "nope", ["a"])


# -- backbone ------------------------------------------------------------------------------------
def torchvision_keys(name: str) -> dict:
    """The state-dict names and shapes of torchvision's VideoResNet-18 models, written from its architecture table
    (not from our module): stem, four stages of two BasicBlocks, fc 512 -> 400."""
    keys = {}

    def conv(prefix, out, inp, kernel):
        keys[f"{prefix}.weight"] = (out, inp, *kernel)

    def bn(prefix, channels):
        keys.update({f"{prefix}.weight": (channels,), f"{prefix}.bias": (channels,), f"{prefix}.running_mean": (channels,),
                     f"{prefix}.running_var": (channels,), f"{prefix}.num_batches_tracked": ()})

    def block_conv(prefix, kind, out, inp, mid):
        if kind == "3d":
            conv(prefix, out, inp, (3, 3, 3))
        elif kind == "2d":
            conv(prefix, out, inp, (1, 3, 3))
        else:  # (2+1)D: prefix.0 spatial, .1 BN, .3 temporal
            conv(f"{prefix}.0", mid, inp, (1, 3, 3))
            bn(f"{prefix}.1", mid)
            conv(f"{prefix}.3", out, mid, (3, 1, 1))

    if name == "r2plus1d_18":
        conv("stem.0", 45, 3, (1, 7, 7)), bn("stem.1", 45), conv("stem.3", 64, 45, (3, 1, 1)), bn("stem.4", 64)
        kinds = ["2+1d"] * 4
    else:
        conv("stem.0", 64, 3, (3, 7, 7)), bn("stem.1", 64)
        kinds = ["3d"] * 4 if name == "r3d_18" else ["3d", "2d", "2d", "2d"]
    inp = 64
    for stage, (out, kind) in enumerate(zip((64, 128, 256, 512), kinds), start=1):
        for block in range(2):
            prefix = f"layer{stage}.{block}"
            mid = inp * out * 27 // (inp * 9 + 3 * out)
            block_conv(f"{prefix}.conv1.0", kind, out, inp, mid), bn(f"{prefix}.conv1.1", out)
            block_conv(f"{prefix}.conv2.0", kind, out, out, mid), bn(f"{prefix}.conv2.1", out)
            if block == 0 and stage > 1:
                conv(f"{prefix}.downsample.0", out, inp, (1, 1, 1)), bn(f"{prefix}.downsample.1", out)
            inp = out
    keys["fc.weight"], keys["fc.bias"] = (400, 512), (400,)
    return keys


# torchvision's documented parameter counts (the weights' meta "num_params"), 400-class fc included
DOCUMENTED_PARAMETERS = {"r3d_18": 33_371_472, "mc3_18": 11_695_440, "r2plus1d_18": 31_505_325}


@pytest.mark.parametrize("name", bb.BACKBONES)
def test_backbone_has_torchvision_names_and_shapes(name):
    expected = torchvision_keys(name)
    model = bb.VideoResNet(name)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected
    assert sum(math.prod(shape) for key, shape in expected.items() if "running" not in key and "num_batches" not in key) \
        == DOCUMENTED_PARAMETERS[name]
    assert sum(p.numel() for p in model.parameters()) == DOCUMENTED_PARAMETERS[name]
    # a state dict made only from the expected names and shapes loads strictly
    generator = torch.Generator().manual_seed(0)
    state = {k: (torch.tensor(5) if not shape else torch.randn(shape, generator=generator)) for k, shape in expected.items()}
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.layer4[1].conv2[1].running_var, state["layer4.1.conv2.1.running_var"])


@pytest.mark.slow
@pytest.mark.parametrize("name", bb.BACKBONES)
def test_backbone_gives_512_features(name):
    model = bb.load_backbone(name, "random")
    with torch.inference_mode():
        features = model(torch.randn(2, 3, 8, 16, 16, generator=torch.Generator().manual_seed(0)))  # (B, 3, T, H, W), small
        logits = model.classify(torch.zeros(1, 3, 8, 16, 16))
    assert features.shape == (2, bb.FEATURE_DIM) and torch.isfinite(features).all()
    assert logits.shape == (1, 400)


def test_random_weights_are_seeded():
    first, again = bb.load_backbone("mc3_18", "random"), bb.load_backbone("mc3_18", "random")  # the same network every time
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))


def test_preprocess_by_hand():
    clip = torch.zeros(1, 16, 128, 171, 3, dtype=torch.uint8)  # (B, T, H, W, 3), frames resized to 128 x 171
    clip[..., 0], clip[..., 2] = 255, 128
    clip[0, 3, 8, 29] = torch.tensor([0, 255, 0], dtype=torch.uint8)  # the crop starts at row (128-112)//2 = 8, column (171-112)//2 = 29
    clip[0, 3, 7, 28] = torch.tensor([0, 255, 0], dtype=torch.uint8)  # just outside the crop
    x = bb.preprocess(clip)
    assert x.shape == (1, 3, 16, 112, 112)
    # red (1 - 0.43216) / 0.22803 = 2.490198; green (0 - 0.394666) / 0.22145 = -1.782190; blue (128/255 - 0.37645) / 0.216989 = 0.1255108 / 0.216989 = 0.578420
    assert x[0, 0, 0, 50, 50].item() == pytest.approx(2.490198, abs=1e-5)
    assert x[0, 1, 0, 50, 50].item() == pytest.approx(-1.782190, abs=1e-5)
    assert x[0, 2, 0, 50, 50].item() == pytest.approx(0.578420, abs=1e-5)
    # the green pixel at (8, 29) is the crop's corner: green (1 - 0.394666) / 0.22145 = 2.733501
    assert x[0, 1, 3, 0, 0].item() == pytest.approx(2.733501, abs=1e-5)
    assert (x[0, 1, :, :, :] > 0).sum() == 1  # and (7, 28) was cropped away


def test_weights_from_a_file(tmp_path):
    model = bb.load_backbone("mc3_18", "random")
    good = tmp_path / "mc3.pth"
    torch.save(model.state_dict(), good)
    loaded = bb.load_backbone("mc3_18", good)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    headless = tmp_path / "headless.pth"  # a state dict without fc: the feature needs none
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}, headless)
    assert bb.load_backbone("mc3_18", headless).fc is None
    with pytest.raises(InputError) as error:  # r3d weights are not mc3 weights
        bb.load_backbone("r3d_18", good)
    assert "mc3.pth" in one_line(error.value) and "wrong shape" in str(error.value)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError) as error:
        bb.load_backbone("r3d_18", junk)
    assert "junk.pth" in one_line(error.value)
    with pytest.raises(InputError, match="not found"):
        bb.load_backbone("r3d_18", tmp_path / "missing.pth")
    with pytest.raises(InputError, match="unknown backbone"):
        bb.load_backbone("resnet50", "random")


def test_default_weights_use_torchs_downloader(monkeypatch):
    calls = []
    state = bb.VideoResNet("r3d_18").state_dict()

    def fake_download(url, **kwargs):  # nothing is downloaded in the tests
        calls.append((url, kwargs))
        return state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    bb.load_backbone("r3d_18", "default", progress=False)
    assert calls[0][0] == "https://download.pytorch.org/models/r3d_18-b3b3357e.pth"
    assert calls[0][1]["check_hash"] is True and calls[0][1]["weights_only"] is True

    def offline(url, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(InputError) as error:
        bb.load_backbone("r2plus1d_18", "default", progress=False)
    assert "r2plus1d_18-91a641e6.pth" in one_line(error.value) and "--weights FILE" in str(error.value)


# -- extraction ----------------------------------------------------------------------------------
def test_segment_clips_by_hand():
    frames = [np.full((2, 2, 3), k, np.uint8) for k in range(50)]  # 2.0 s at 25 fps: 50 frames, 4 segments
    clips = list(extract.segment_clips(iter(frames), timegrid.num_segments(2.0)))
    assert len(clips) == 4 and clips[0].shape == (16, 2, 2, 3)
    assert [c[0, 0, 0, 0] for c in clips] == [0, 16, 32, 48]  # segment i starts at frame 16 i = 0.64 i s
    assert list(clips[3][:, 0, 0, 0]) == [48, 49] + [49] * 14  # the last segment padded with its last frame
    source = iter(frames)
    assert len(list(extract.segment_clips(source, 2))) == 2 and next(source)[0, 0, 0] == 32  # reads no further


def test_clips_follow_the_time_grid(clips):
    """Segment i of a 30 fps video holds the 25 fps frames 16 i .. 16 i + 15, i.e. times [0.64 i, 0.64 (i + 1))."""
    count = timegrid.num_segments(3.3)  # ceil(3.3 / 0.64) = ceil(5.156) = 6
    segments = list(extract.segment_clips(decode.iter_frames_25fps(clips / "b.mp4"), count))
    assert count == 6 and len(segments) == 6
    for i, clip in enumerate(segments):
        for j, image in enumerate(clip):
            k = min(16 * i + j, 82)  # 83 frames (k / 25 < 3.3 s), then the padding repeats frame 82
            assert frame_index(image) == min(98, round(1.2 * k))
            if 16 * i + j <= 82:
                assert timegrid.segment_containing((16 * i + j) / 25) == i


def test_prefetch_passes_items_and_errors():
    def items():
        yield 1
        yield 2
        raise InputError("broken", file="v.mp4")

    seen = []
    with pytest.raises(InputError, match="v.mp4: broken"):
        for item in extract.prefetch(items()):
            seen.append(item)
    assert seen == [1, 2]
    before = threading.active_count()
    for item in extract.prefetch(iter(range(1000)), depth=2):
        if item == 3:
            break  # the producer stops too
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def run_small(videos, out, **kwargs):
    kwargs = {"backbone": TEST_BACKBONE, "weights": "random", "device": "cpu", "progress": False, "crop": SMALL, "batch_size": 4,
              **kwargs}
    return extract.run_extraction(videos, out, **kwargs)


def expected_features(path, duration):
    """The features of one video computed by hand: 25 fps frames -> 16-frame clips -> preprocess -> the network."""
    model = bb.load_backbone(TEST_BACKBONE, "random")
    frames = decode.iter_frames_25fps(path, size=extract.resize_size(SMALL))
    batch = np.stack(list(extract.segment_clips(frames, timegrid.num_segments(duration))))  # (n, 16, H, W, 3)
    with torch.inference_mode():
        return model(bb.preprocess(torch.from_numpy(batch), SMALL)).numpy()  # (n, 512)


@pytest.mark.slow
def test_extract_a_store_without_annotations(clips, tmp_path):
    out = tmp_path / "mine.h5"
    assert extract.extract_features(clips, out, backbone=TEST_BACKBONE, weights="random", device="cpu", progress=False, crop=SMALL,
                                    batch_size=4) == out
    store = open_feature_store(out)
    assert store.seconds_per_segment == 0.64 and store.feature_dim == 512
    ann = store.annotations
    assert list(ann.videos) == ["a", "b"] and ann.classes == () and list(ann.subsets) == ["test", "test"]
    np.testing.assert_allclose(ann.durations, [2.0, 3.3])
    # ceil(2.0 / 0.64) = ceil(3.125) = 4, ceil(3.3 / 0.64) = ceil(5.156) = 6
    assert [store.features(i).shape for i in range(2)] == [(4, 512), (6, 512)]
    assert list(timegrid.num_segments(ann.durations)) == [4, 6]
    np.testing.assert_allclose(store.features(1), expected_features(clips / "b.mp4", 3.3), rtol=1e-4, atol=1e-5)
    assert not np.allclose(store.features(1)[0], store.features(1)[1])  # the moving content gives different segments
    settings = json.loads(feature_store_attrs(out)["extractor"])
    assert settings == {"backbone": TEST_BACKBONE, "weights": "random", "frames_per_segment": 16, "fps": 25.0,
                        "resize": [24, 18], "crop": SMALL}  # 171 x 128 scaled by 16 / 112: 24.4 x 18.3, rounded
    assert not (tmp_path / ".mine.h5.parts").exists()  # the scratch folder is removed once the store is written


@pytest.mark.slow
def test_rerun_skips_finished_videos(clips, tmp_path, monkeypatch):
    out = tmp_path / "store.h5"
    first = run_small([clips / "a.mp4"], out)
    assert first.written == ["a"] and first.skipped == []
    features_a = open_feature_store(out).features(0)
    computed = []
    original = extract.extract_video
    monkeypatch.setattr(extract, "extract_video", lambda model, path, *a, **k: computed.append(Path(path).stem) or original(model, path, *a, **k))
    second = run_small(clips, out)
    assert (second.written, second.skipped, computed) == (["b"], ["a"], ["b"])
    store = open_feature_store(out)
    assert list(store.annotations.videos) == ["a", "b"]
    np.testing.assert_array_equal(store.features(0), features_a)
    computed.clear()
    third = run_small(clips, out)  # everything done: nothing is computed, no network is even built
    assert (third.written, third.skipped, computed) == ([], ["a", "b"], [])


KILLED_RUN = """
import sys, time
from wtal_kit.video import extract
save = extract.Scratch.save
def save_then_hang(self, name, features, duration):
    save(self, name, features, duration)
    time.sleep(600)  # killed here, after the first video is safe
extract.Scratch.save = save_then_hang
extract.run_extraction(sys.argv[1], sys.argv[2], backbone="r3d_18", weights="random", device="cpu", progress=False, crop=16,
                       batch_size=4)
"""


@pytest.mark.slow
def test_a_killed_run_keeps_its_finished_videos(clips, tmp_path):
    out = tmp_path / "store.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(clips), str(out)], env=env, stderr=subprocess.PIPE)
    part = tmp_path / ".store.h5.parts" / "a.npz"
    deadline = time.monotonic() + 120
    while not part.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert part.exists(), process.stderr.read().decode() if process.poll() is not None else "timed out"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    resumed = run_small(clips, out)
    assert (resumed.written, resumed.skipped) == (["b"], ["a"])
    store = open_feature_store(out)
    np.testing.assert_allclose(store.features(0), expected_features(clips / "a.mp4", 2.0), rtol=1e-4, atol=1e-5)
    assert [store.features(i).shape[0] for i in range(2)] == [4, 6]


@pytest.mark.slow
def test_a_damaged_video_is_one_line_and_the_others_are_written(clips, tmp_path, bad_file, capsys, monkeypatch):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).symlink_to(clips / name)
    bad_file.rename(folder / "x.mp4")
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["features", str(folder), "--out", str(tmp_path / "s.h5"), "--weights", "random",
                              "--backbone", TEST_BACKBONE, "--device", "cpu", "--no-progress"])
    # the CLI has no crop flag (the real size would be slow here): its call gets the small one
    monkeypatch.setattr(extract, "run_extraction", functools.partial(extract.run_extraction, crop=SMALL))
    assert args.func(args) == 1  # some failed; the store holds the others
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and "x.mp4" in errors[0] and "not a readable video" in errors[0]
    summary = captured.out.strip().splitlines()
    assert len(summary) == 1 and "2 videos; 2 written now, 0 skipped (done before), 1 failed" in summary[0]
    assert "s of video per second (cpu)" in summary[0]
    assert list(open_feature_store(tmp_path / "s.h5").annotations.videos) == ["a", "b"]


def test_nothing_readable_is_one_error(tmp_path, bad_file):
    with pytest.raises(InputError, match="no video could be read"):
        run_small([bad_file], tmp_path / "s.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]  # neither a store nor a scratch folder


@pytest.mark.slow
def test_a_store_with_annotations(clips, tmp_path, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {
        "b": {"subset": "validation", "duration": 3.3, "annotations": [{"segment": [0.5, 1.2], "label": "Jump"}]},
        "a": {"subset": "test", "duration": 2.0, "annotations": [{"segment": [1.0, 1.5], "label": "Run"}]},
        "c": {"subset": "test", "duration": 9.0, "annotations": []},
    }}))
    out = run_small(clips, tmp_path / "s.h5", annotations=gt).path
    store = open_feature_store(out)
    ann = store.annotations
    assert list(ann.videos) == ["b", "a"] and ann.classes == ("Jump", "Run") and list(ann.subsets) == ["validation", "test"]
    assert ann.video_labels.tolist() == [[True, False], [False, True]]
    assert ann.instances[["video", "label"]].values.tolist() == [["b", "Jump"], ["a", "Run"]]
    assert [store.features(i).shape[0] for i in range(2)] == [6, 4]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 annotated videos have no file" in err[0] and "'c'" in err[0]


def test_an_existing_file_is_never_overwritten(clips, tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("mine")
    with pytest.raises(InputError, match="not a feature store"):
        run_small(clips, text)
    assert text.read_text() == "mine"
    from wtal_kit.data import Annotations, FeatureDataset

    i3d = write_feature_store(tmp_path / "i3d.h5", FeatureDataset(Annotations.without_labels("i3d", ["a"], [2.0]), 0.64, 8,
                                                                  lambda i: np.ones((4, 8), np.float32)), progress=False)
    before = i3d.read_bytes()
    with pytest.raises(InputError) as error:
        run_small(clips, i3d)
    assert "made by another tool" in one_line(error.value) and i3d.read_bytes() == before
    assert not (tmp_path / ".i3d.h5.parts").exists()


def test_bad_arguments(clips, tmp_path):
    with pytest.raises(InputError, match=r"\.h5 or \.hdf5"):
        run_small(clips, tmp_path / "s.npy")
    with pytest.raises(InputError, match="field 'batch_size': must be an integer >= 1"):
        run_small(clips, tmp_path / "s.h5", batch_size=0)
    with pytest.raises(InputError, match="field 'backbone': must be one of"):
        run_small(clips, tmp_path / "s.h5", backbone="i3d")
    with pytest.raises(InputError, match="no such file or folder"):
        run_small([tmp_path / "missing.mp4"], tmp_path / "s.h5")
    with pytest.raises(InputError, match="no video files"):
        run_small([tmp_path], tmp_path / "s.h5")


@pytest.mark.slow
def test_the_real_input_size(tmp_path):
    """The defaults (112 x 112 crop of 128 x 171 frames, r2plus1d_18) on a 0.5 s clip: one segment."""
    clip = write_clip(tmp_path / "short.mp4", 0.5, size=(160, 120))
    summary = extract.run_extraction([clip], tmp_path / "s.h5", weights="random", device="cpu", progress=False)
    store = open_feature_store(summary.path)
    assert store.features(0).shape == (1, 512) and summary.written == ["short"]
    assert json.loads(feature_store_attrs(summary.path)["extractor"])["resize"] == [171, 128]


def test_command_flags_match_the_library(capsys):
    assert command.BACKBONES == bb.BACKBONES and command.DEFAULT_BATCH_SIZE == extract.DEFAULT_BATCH_SIZE
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["features", "v", "--out", "s.h5"])
    assert (args.backbone, args.weights, args.annotations, args.device, args.batch_size, args.no_progress) == \
        ("r2plus1d_18", "default", None, "auto", 16, False)
    assert args.func is command.run
    with pytest.raises(SystemExit):
        parser.parse_args(["features", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: r2plus1d_18)" in help_text and "(default: 16)" in help_text and "(default: auto)" in help_text


@pytest.mark.slow
def test_importing_the_package_needs_neither_pyav_nor_jupyter():
    code = ("import sys; import wtal_kit.video, wtal_kit.video.command, wtal_kit.video.backbone, wtal_kit.video.extract, "
            "wtal_kit.video.decode; bad = [m for m in ('av', 'ipywidgets', 'plotly', 'IPython') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    code = "import sys; import wtal_kit.video.command; sys.exit('torch' in sys.modules)"  # wtal's parser stays light
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}).returncode == 0


def test_missing_pyav_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    with pytest.raises(WtalError) as error:
        decode.probe(__file__)
    assert "pip install 'wtal-kit[video]'" in one_line(error.value)


def test_frame_at_decodes_on_from_where_it_stopped(clips):
    """A cursor moved a little forward decodes on without a seek; any order of times gives the frame on screen."""
    decode.clear_frame_cache()
    path = clips / "b.mp4"  # 99 frames at 30 fps, a keyframe every 12
    times = [0.1, 0.5, 1.2, 2.0, 3.2, 0.05, 1.9, 1.95, 3.29, 3.5, 0.0] + list(np.random.default_rng(3).uniform(0, 3.4, 30))
    for t in times:
        assert frame_index(decode.frame_at(path, float(t))) == min(int(t * FPS + 1e-9), 98), t
    decode.clear_frame_cache()
    decode.frame_at(path, 0.5)
    assert decode.frame_cache_stats()["seeks"] == 1 and decode.frame_cache_stats()["open_files"] == 1
    decode.frame_at(path, 1.5)  # one second on: decoded on from the open file
    decode.frame_at(path, 0.2)  # back: a seek
    decode.frame_at(path, 3.29)  # more than FORWARD_SECONDS (3 s) ahead of 0.2: a seek
    stats = decode.frame_cache_stats()
    assert (stats["seeks"], stats["decoded_on"], stats["open_files"]) == (3, 1, 1)
