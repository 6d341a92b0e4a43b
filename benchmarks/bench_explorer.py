"""What a slider move costs: the Localizer against composing the public functions, side by side.

    python benchmarks/bench_explorer.py                 # on runs/demo (trained by `make demo`), else trains it
    python benchmarks/bench_explorer.py --scores S.h5   # any scores file
    python benchmarks/bench_explorer.py --quick         # fewer repeats (the test suite runs this)

Workload: a trained run's held-out split (THUMOS14 layout: 212 test videos, 20 classes),
paper localization, ActivityNet-style evaluation at tIoU 0.1, 0.3, 0.5, 0.7. Each "move"
re-localizes and re-evaluates the WHOLE split, as the explorer does:

- naive:      per-video ``localize`` (sigmoid of clipped logits computed per video) + ``detection_map``
- composed:   ``localize_videos`` + ``per_class_ap`` (one call each, what the CLI did before the Localizer)
- Localizer:  after a threshold move (new runs), after a gamma move (runs reused), one ``view()``,
              one ``video_table()`` (the explorer's sortable list)

Every figure is a median over distinct settings (no cached result is reused between the
timed calls of a threshold move). Targets on a 2-core CPU: threshold move <= 30 ms and at
least 4x faster than naive; gamma move <= 15 ms; one view <= 5 ms. Absolute times vary across
machines of one kind; the ratios printed are measured side by side in this run.
An ActivityNet-sized split (100 classes: the ActivityNet1.2 layout's 2383 validation videos, with
``--scores`` of such a run) is held to issue #12's targets instead: threshold move <= 250 ms,
gamma move <= 100 ms, one view <= 10 ms, and peak memory under 1 GB once the scores file is open
and the Localizer built.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from wtal_kit.config import Config  # noqa: E402
from wtal_kit.data.hdf5 import read_scores  # noqa: E402
from wtal_kit.evaluate import detection_map, per_class_ap  # noqa: E402
from wtal_kit.localization import _sigmoid, localize, localize_videos  # noqa: E402
from wtal_kit.pipeline import Localizer  # noqa: E402

THRESHOLDS = Config.iou_thresholds
# Medians in ms on a 2-core machine: the explorer's targets (issue #7) and, for an ActivityNet-sized split, issue #12's.
TARGETS_THUMOS14 = {"threshold": 30, "gamma": 15, "view": 5}
TARGETS_ACTIVITYNET = {"threshold": 250, "gamma": 100, "view": 10}
MEMORY_TARGET_MB = 1000  # peak memory once the ActivityNet scores file is open and the Localizer built


def median_ms(function, settings) -> float:
    times = []
    for setting in settings:
        started = time.perf_counter()
        function(setting)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def naive(scores, threshold, gamma):
    """The obvious composition of public functions: one video at a time."""
    parts = []
    for i, video in enumerate(scores.annotations.videos):
        logits = np.asarray(scores.logits[video], dtype=np.float64)
        probs = _sigmoid(np.clip(logits, -scores.kappa, scores.kappa)) if scores.kappa is not None else _sigmoid(logits)
        table = localize(probs, scores.video_probs[i], threshold=threshold, gamma=gamma, seconds_per_segment=scores.seconds_per_segment)
        table.insert(0, "video", video)
        table["label"] = np.asarray(scores.annotations.classes, dtype=object)[table["label"].to_numpy()]
        parts.append(table)
    return detection_map(scores.annotations.ground_truth(), pd.concat(parts, ignore_index=True), THRESHOLDS)


def composed(scores, threshold, gamma):
    detections = localize_videos(
        scores.logits, scores.video_probs_by_video(), list(scores.annotations.classes), "paper",
        kappa=scores.kappa, threshold=threshold, gamma=gamma, seconds_per_segment=scores.seconds_per_segment,
    )
    return per_class_ap(scores.annotations.ground_truth(), detections, THRESHOLDS).mean(axis=0)


def scores_path(args) -> Path:
    if args.scores is not None:
        return args.scores
    run_dir = REPO_ROOT / "runs" / "demo"
    path = run_dir / "scores_test.h5"
    if not path.is_file():
        from wtal_kit.demo import demo_config
        from wtal_kit.training import train

        print(f"no {path}: training the demo model first (quick preset, a few minutes on CPU) ...")
        train(demo_config(), run_dir, progress=True)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", type=Path, default=None, help="a scores file [runs/demo/scores_test.h5]")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    scores = read_scores(scores_path(args))
    steps = 7 if args.quick else 21
    rng = np.random.default_rng(0)
    thresholds = rng.permutation(np.linspace(0.3, 0.7, steps))  # distinct: every Localizer call finds new runs
    gammas = rng.permutation(np.linspace(0.0, 1.5, steps))
    videos = scores.annotations.videos[rng.choice(scores.annotations.num_videos, steps, replace=False)]

    started = time.perf_counter()
    localizer = Localizer(scores)
    build_ms = 1000 * (time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the scores file opened and the Localizer built
    # Issue #12's targets for an ActivityNet-sized split (about 100 classes, 2383 videos); THUMOS14's otherwise.
    large = scores.annotations.num_classes >= 100
    targets = TARGETS_ACTIVITYNET if large else TARGETS_THUMOS14
    localizer.evaluate()  # warm-up
    # the same numbers three ways, once, before timing
    check = 0.45
    a = naive(scores, check, 0.7).to_numpy()
    b = composed(scores, check, 0.7).to_numpy()
    c = localizer.evaluate(threshold=check).per_class.mean(axis=0).to_numpy()
    assert np.array_equal(b, c) and np.allclose(a, c, atol=1e-12), (a, b, c)

    naive_ms = median_ms(lambda t: naive(scores, t, 0.7), thresholds[: max(3, steps // 3)])
    composed_ms = median_ms(lambda t: composed(scores, t, 0.7), thresholds)
    threshold_ms = median_ms(lambda t: localizer.evaluate(threshold=t, gamma=0.7), thresholds)
    localizer.evaluate(threshold=0.5)
    gamma_ms = median_ms(lambda g: localizer.evaluate(threshold=0.5, gamma=g), gammas)
    view_ms = median_ms(lambda v: localizer.view(v, threshold=0.5, gamma=0.7), videos)
    table_ms = median_ms(lambda t: localizer.video_table(threshold=t, gamma=0.7), thresholds)
    detections = len(localizer.detections())

    print(f"workload: {scores.annotations.num_videos} videos x {scores.annotations.num_classes} classes, "
          f"{sum(len(v) for v in scores.logits.values())} segments, {detections} detections at threshold 0.5; "
          f"paper localization, activitynet evaluation at tIoU {list(THRESHOLDS)}")
    print(f"Localizer built once in {build_ms:.0f} ms; peak memory so far {peak_mb:.0f} MB"
          + (f" (target < {MEMORY_TARGET_MB} MB: {'met' if peak_mb < MEMORY_TARGET_MB else 'NOT met'})" if large else ""))
    print(f"targets: {'ActivityNet' if large else 'THUMOS14'}-sized split")
    rows = [
        ("naive: per-video localize + detection_map (threshold move)", naive_ms, None),
        ("composed: localize_videos + per_class_ap (threshold move)", composed_ms, None),
        ("Localizer.evaluate after a threshold move", threshold_ms, targets["threshold"]),
        ("Localizer.evaluate after a gamma move", gamma_ms, targets["gamma"]),
        ("Localizer.view (one video, one class)", view_ms, targets["view"]),
        ("Localizer.video_table after a threshold move", table_ms, None),
    ]
    width = max(len(name) for name, _, _ in rows)
    for name, ms, target in rows:
        goal = f"  (target <= {target} ms: {'met' if ms <= target else 'NOT met'})" if target else ""
        print(f"{name.ljust(width)}  median {ms:8.2f} ms{goal}")
    ratio = naive_ms / threshold_ms
    print(f"threshold move: Localizer is {ratio:.1f}x faster than naive (target >= 4x: {'met' if ratio >= 4 else 'NOT met'}), "
          f"{composed_ms / threshold_ms:.1f}x faster than composed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
