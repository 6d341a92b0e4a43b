"""The protocol audit (the same trained models scored with each evaluation choice the paper's
and the released code's numbers differ by) and Figure 5's qualitative views.
"""

from __future__ import annotations

import pandas as pd

from wtal_kit.data.runfolder import metric_column
from wtal_kit.errors import InputError
from wtal_kit.experiments.claims import paired_difference, points
from wtal_kit.experiments.tables import TIOUS, column, format_spread

FIGURE5_CLASSES = ("HammerThrow", "LongJump", "CliffDiving", "GolfSwing")  # Figure 5 (a)-(d)


# -- the protocol audit -----------------------------------------------------------------------------
AUDIT_CHOICES = (
    # (id, what, localization, eval_protocol)
    ("a", "paper localization (sigmoid >= threshold), ActivityNet interpolated AP: the default", "paper", "activitynet"),
    ("b", "the authors' released localization (midpoint threshold on raw logits, ambiguous intervals "
          "filtered), ActivityNet AP", "wsad_code", "activitynet"),
    ("c", "paper localization, W-TALC's non-interpolated AP", "paper", "wtalc"),
    ("b+c", "released localization and W-TALC's AP together", "wsad_code", "wtalc"),
)
CHECKPOINT_LAST = ("d: last", "last checkpoint, from the training log (the reported model; the log's own scoring, as (a))")
CHECKPOINT_BEST = ("d: best test", "checkpoint with the best test mAP@0.5 + mAP@0.7 in the training log "
                                   "(the released code's choice: model selection on the test set)")
CHANGE_FROM_A = "change from (a), avg"
METRIC_COLUMNS = {t: metric_column(t) for t in TIOUS}  # metrics.csv's column of each: "map@0.1", ..., "map_avg"


def best_test_row(metrics: pd.DataFrame) -> pd.Series:
    """The training log's row the released code would keep: the highest test mAP@0.5 + mAP@0.7 (first on ties)."""
    if metrics.empty:
        raise InputError("the training log has no evaluation", field="metrics")
    selection = metrics[metric_column(0.5)] + metrics[metric_column(0.7)]
    return metrics.loc[selection.idxmax()]


def protocol_audit(results, variant: str | None = None) -> pd.DataFrame:
    """The same trained models scored with each evaluation choice; one row per choice.

    For every seed's entry of ``variant`` (default: the artefact's first, the full method of
    Table 1): its test-split scores are localized and evaluated with (a) the paper's
    localization and ActivityNet AP, (b) the released code's localization, (c) W-TALC's AP,
    (b+c) both; and (d) the training log's evaluations (on the test split, with (a)'s scoring)
    at the last checkpoint and at the one with the best test mAP@0.5 + 0.7.
    threshold, gamma and min_length are each run's config values.

    Columns: choice (a, b, c, b+c, d: last, d: best test), what, seeds, "0.1" ... "avg"
    ("mean ± std" in %), "change from (a), avg" (mean ± std of the per-seed change, points),
    numeric "mean <t>", "std <t>", "change <t>" and "change std <t>" per tIoU, note, source.
    """
    label = variant or results.artefact.variants[0].label
    entries = {seed: entry for (name, seed), entry in results.entries.items() if name == label}
    if not entries:
        raise InputError(f"no result of {label!r} to audit (train it first)", field="variant")
    per_choice: dict[str, dict[int, pd.Series]] = {}
    notes: dict[str, str] = {}
    best_iterations = {}
    for seed, entry in sorted(entries.items()):
        config = entry.config
        localizer = entry.run().localizer()
        for choice, _, localization, protocol in AUDIT_CHOICES:
            evaluation = localizer.evaluate(config.localization_settings.replace(localization=localization),
                                            iou_thresholds=config.iou_thresholds, eval_protocol=protocol)
            per_choice.setdefault(choice, {})[seed] = 100.0 * evaluation.mean_ap.reindex(list(TIOUS))
        metrics = entry.metrics
        last, best = metrics.iloc[-1], best_test_row(metrics)
        for (choice, _), row in ((CHECKPOINT_LAST, last), (CHECKPOINT_BEST, best)):
            per_choice.setdefault(choice, {})[seed] = pd.Series(
                {t: 100.0 * float(row[METRIC_COLUMNS[t]]) for t in TIOUS}, dtype=float)
        best_iterations[seed] = (int(best["iteration"]), int(last["iteration"]))
    notes[CHECKPOINT_BEST[0]] = "chosen iteration (of last) per seed: " + ", ".join(
        f"seed {seed}: {b} (of {last})" for seed, (b, last) in best_iterations.items())
    whats = {choice: what for choice, what, _, _ in AUDIT_CHOICES} | dict([CHECKPOINT_LAST, CHECKPOINT_BEST])
    reference = pd.DataFrame(per_choice["a"]).T  # index seed, columns TIOUS
    rows = []
    for choice, seeds in per_choice.items():
        values = pd.DataFrame(seeds).T
        row = {"choice": choice, "what": whats[choice], "seeds": len(values)}
        numeric = {}
        for tiou in TIOUS:
            mean = float(values[tiou].mean())
            std = float(values[tiou].std(ddof=1)) if len(values) > 1 else float("nan")
            change = paired_difference(values[tiou], reference[tiou])
            row[column(tiou)] = format_spread(mean, std)
            numeric.update({f"mean {column(tiou)}": mean, f"std {column(tiou)}": std,
                            f"change {column(tiou)}": change.mean, f"change std {column(tiou)}": change.std})
        change_avg = paired_difference(values["avg"], reference["avg"])
        row[CHANGE_FROM_A] = ("—" if choice == "a" else points(change_avg.mean) if change_avg.n < 2
                              else f"{points(change_avg.mean)} ± {points(change_avg.std, sign=False)}")
        row.update(numeric)
        row["note"] = notes.get(choice, "")
        row["source"] = results.label().replace(f"{results.configs[label].localization} localization, "
                                                f"{results.configs[label].eval_protocol} AP; ", "")
        rows.append(row)
    return pd.DataFrame(rows)


# -- Figure 5 ----------------------------------------------------------------------------------
def pick_video(ground_truth: pd.DataFrame, label: str) -> str | None:
    """The video with the most ground-truth instances of ``label`` (ties: the first name in sorted order); None if none."""
    counts = ground_truth.loc[ground_truth["label"] == label, "video"].value_counts()
    if counts.empty:
        return None
    most = counts[counts == counts.max()]
    return str(sorted(most.index)[0])


def figure5_views(results, classes=FIGURE5_CLASSES, seed: int | None = None, tiou: float = 0.5) -> list:
    """[(class, VideoView)] of Figure 5: for each class, :func:`pick_video` in the test split of one run.

    The run is ``seed``'s (default: the first seed with a result) of the artefact's first
    variant; the view uses the run's threshold, gamma and localization; true / false positives
    at ``tiou``. A class absent from the test split's ground truth is left out.
    """
    label = results.artefact.variants[0].label
    entry = results.entries[(label, figure5_seed(results, seed))]
    config = entry.config
    localizer = entry.run().localizer()
    views = []
    for name in classes:
        video = pick_video(localizer.ground_truth, name)
        if video is None:
            continue
        views.append((name, localizer.view(video, name, config.localization_settings, tiou=tiou,
                                           eval_protocol=config.eval_protocol)))
    return views


def figure5_seed(results, seed: int | None = None) -> int:
    """The seed whose run Figure 5 shows: ``seed``, else the first of ``results.seeds`` with a result."""
    label = results.artefact.variants[0].label
    seeds = [s for s in results.seeds if (label, s) in results.entries] if seed is None else [seed]
    if not seeds or (label, seeds[0]) not in results.entries:
        raise InputError(f"no result of {label!r} for Figure 5 (train it first)", field="seed")
    return seeds[0]


def figure5_label(results, seed: int | None = None) -> str:
    """``results.label()`` for Figure 5, which shows one run: it names that run's seed."""
    return f"{results.label()}; this figure: the run of seed {figure5_seed(results, seed)} (its test split)"


def figure5_table(views, results=None) -> pd.DataFrame:
    """One row per Figure 5 panel: class, video, duration (s), ground truth, detections, true positives, missed, P(c|V)."""
    rows = []
    for name, view in views:
        rows.append({
            "class": name, "video": view.video, "duration": view.duration,
            "ground truth": len(view.ground_truth), "detections": len(view.detections),
            f"true positives @{view.tiou:g}": int(view.detections["true_positive"].sum()),
            f"missed @{view.tiou:g}": int((~view.ground_truth["matched"].astype(bool)).sum()),
            "P(c|V)": view.video_prob,
            "source": "" if results is None else figure5_label(results),
        })
    return pd.DataFrame(rows)
