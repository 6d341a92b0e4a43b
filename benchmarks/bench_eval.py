"""Benchmark: vectorized evaluator vs the plain loop reference on THUMOS14-test-sized input.

    python benchmarks/bench_eval.py            # ~50 000 detections, tIoU 0.1:0.1:0.9
    python benchmarks/bench_eval.py --quick    # ~5 000 detections, one reference run (smoke test)

Ground truth: the real THUMOS14 test annotations (212 videos, 3358 instances, 20 classes)
from ``data/thumos14``. Detections: seeded synthetic ones, jittered copies of the ground
truth plus random false positives, 10 % of the scores rounded to 2 decimals (so some tie).
Both evaluators run side by side in this process (best of a few repeats each); the
per-class AP must agree to 1e-9, else the script exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from wtal_kit.reference import reference_per_class_ap  # noqa: E402
from wtal_kit.data import load_wtalc_annotations  # noqa: E402
from wtal_kit.config import EVAL_PROTOCOLS, FINE_TIOUS  # noqa: E402
from wtal_kit.evaluate import per_class_ap  # noqa: E402

THRESHOLDS = np.asarray(FINE_TIOUS)  # 0.1:0.1:0.9
TARGET_SPEEDUP = 10.0
TOLERANCE = 1e-9


def synthetic_detections(gt: pd.DataFrame, n_detections: int, seed: int) -> pd.DataFrame:
    """Jittered copies of ``gt`` (about 4 per instance, fewer in --quick) plus random false positives."""
    rng = np.random.default_rng(seed)
    n_copies_mean = min(4.0, 0.3 * n_detections / len(gt))
    copies = rng.poisson(n_copies_mean, len(gt))  # (G,)
    source = np.repeat(np.arange(len(gt)), copies)  # (J,)
    gt_start, gt_end = gt["t_start"].to_numpy()[source], gt["t_end"].to_numpy()[source]
    length = np.maximum(gt_end - gt_start, 0.1)
    center = (gt_start + gt_end) / 2 + rng.normal(0, 0.25, len(source)) * length
    new_length = length * rng.lognormal(0, 0.35, len(source))
    jittered = pd.DataFrame(
        {
            "video": gt["video"].to_numpy()[source],
            "label": gt["label"].to_numpy()[source],
            "t_start": np.maximum(center - new_length / 2, 0),
            "t_end": np.maximum(center + new_length / 2, 0),
            "score": rng.beta(5, 2, len(source)),  # true-positive-like scores, mostly high
        }
    )

    n_false = max(n_detections - len(jittered), 0)
    videos = gt["video"].unique()
    video_end = gt.groupby("video")["t_end"].max().reindex(videos).to_numpy() + 30.0
    video_index = rng.integers(0, len(videos), n_false)
    # 70 % in a class the video really has, the rest in any class
    same_class = gt["label"].to_numpy()[rng.integers(0, len(gt), n_false)]
    any_class = rng.choice(gt["label"].unique(), n_false)
    label = np.where(rng.random(n_false) < 0.7, same_class, any_class)
    start = rng.random(n_false) * video_end[video_index]
    false_positives = pd.DataFrame(
        {
            "video": videos[video_index],
            "label": label,
            "t_start": start,
            "t_end": start + rng.lognormal(1.0, 0.8, n_false),  # median ~2.7 s, like THUMOS actions
            "score": rng.beta(2, 5, n_false),  # mostly low
        }
    )
    detections = pd.concat([jittered, false_positives], ignore_index=True)
    detections = detections.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    coarse = rng.random(len(detections)) < 0.1  # 10 % of the scores on a 0.01 grid: some ties
    detections["score"] = np.where(coarse, detections["score"].round(2), detections["score"].round(6))
    return detections


def best_time(function, repeats: int):
    best, result = np.inf, None
    for _ in range(repeats):
        began = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - began)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~5 000 detections and one reference run")
    parser.add_argument("--data", default=str(REPO_ROOT / "data" / "thumos14"), help="W-TALC THUMOS14 annotation folder")
    parser.add_argument("--detections", type=int, default=None, help="number of detections (default 50 000, 5 000 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_detections = args.detections or (5_000 if args.quick else 50_000)
    repeats_fast, repeats_reference = (3, 1) if args.quick else (5, 2)

    gt = load_wtalc_annotations(args.data).ground_truth("test")
    detections = synthetic_detections(gt, n_detections, args.seed)
    n_tied = int(detections["score"].duplicated(keep=False).sum())
    print(
        f"ground truth: {gt['video'].nunique()} videos, {len(gt)} instances, {gt['label'].nunique()} classes; "
        f"detections: {len(detections)} ({n_tied} with a tied score); tIoU {THRESHOLDS.tolist()}"
    )

    all_agree, all_fast = True, True
    for protocol in EVAL_PROTOCOLS:
        fast_s, fast = best_time(lambda: per_class_ap(gt, detections, THRESHOLDS, protocol), repeats_fast)
        reference_s, reference = best_time(
            lambda: reference_per_class_ap(gt, detections, THRESHOLDS, protocol), repeats_reference
        )
        difference = float(np.max(np.abs(fast.to_numpy() - reference.loc[fast.index].to_numpy())))
        agree = difference <= TOLERANCE and list(fast.index) == list(reference.index)
        speedup = reference_s / fast_s
        all_agree &= agree
        all_fast &= speedup >= TARGET_SPEEDUP
        print(
            f"{protocol:12s} vectorized {fast_s:8.4f} s (best of {repeats_fast})   "
            f"reference loop {reference_s:8.3f} s (best of {repeats_reference})   "
            f"speed-up {speedup:7.1f}x   mAP@0.5 {fast[0.5].mean():.4f}   "
            f"max |AP difference| {difference:.1e} -> {'agree' if agree else 'DISAGREE'}"
        )
    print(f">= {TARGET_SPEEDUP:.0f}x target: {'met' if all_fast else 'NOT met'}")
    if not all_agree:
        print(f"FAIL: the per-class AP of the two implementations differ by more than {TOLERANCE}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
