"""What the explorer's text parts show, as plain functions of the library's tables: the mAP table, the video
list's labels, the summary line. No widget here; :mod:`widgets.explorer` writes their results into its widgets.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from wtal_kit.config import ACTIVITYNET_TIOUS, FINE_TIOUS
from wtal_kit.evaluate import AVERAGE, average_label, with_average

TABLE_THRESHOLDS = FINE_TIOUS  # the mAP table's rows: tIoU 0.1 ... 0.9, then the averages
SORT_KEYS = {
    "AP (lowest first)": ("ap", True),
    "missed ground truth (most first)": ("missed", False),
    "false positives (most first)": ("false_positives", False),
    "duration (longest first)": ("duration", False),
    "name": ("video", True),
}


def average_sets(activitynet: bool) -> list[tuple]:
    """The labelled averages of the table besides the paper's "avg": 0.1:0.1:0.9, and ActivityNet's 0.5:0.05:0.95 on its layout."""
    return [FINE_TIOUS, ACTIVITYNET_TIOUS] if activitynet else [FINE_TIOUS]


def evaluated_thresholds(activitynet: bool) -> tuple:
    """Every tIoU threshold the table needs evaluated: its rows and the thresholds of its averages."""
    return tuple(sorted(set(TABLE_THRESHOLDS).union(*average_sets(activitynet))))


def table_keys(activitynet: bool) -> list:
    """The table's rows: the thresholds, "avg" (the paper's four), then each labelled average."""
    return [*TABLE_THRESHOLDS, AVERAGE, *(average_label(s) for s in average_sets(activitynet))]


def map_column(per_threshold: pd.Series, activitynet: bool) -> pd.Series:
    """One method's column of the table: mAP per evaluated threshold (fractions), with the table's averages."""
    return with_average(per_threshold, sets=average_sets(activitynet))


def map_table_html(columns: dict, keys: list) -> str:
    """An HTML table (copyable numbers): one row per key (``@0.1`` ... and the named averages), one column per method, in %."""
    names = list(columns)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    rows = []
    for key in keys:
        label = key if isinstance(key, str) else f"@{key:g}"
        cells = "".join(f"<td>{100 * float(columns[name].get(key, np.nan)):.1f}</td>" for name in names)
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    note = ("<caption style='caption-side:bottom;text-align:left;font-size:90%;color:#555'>"
            "avg: the paper's, mean over 0.1, 0.3, 0.5, 0.7</caption>")
    return (
        '<table class="wtal-map" style="border-collapse:collapse;text-align:right">'
        f"{note}<thead><tr><th>mAP (%)</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def video_options(video_table: pd.DataFrame, search: str, sort: str) -> list[tuple[str, str]]:
    """The video list's (label, video) pairs: matching ``search``, ordered by ``sort`` (a key of SORT_KEYS)."""
    table = video_table
    needle = search.strip().lower()
    if needle:
        table = table[table["video"].str.lower().str.contains(needle, regex=False)]
    column, ascending = SORT_KEYS[sort]
    table = table.sort_values([column, "video"], ascending=[ascending, True], na_position="last")
    ap = table["ap"].to_numpy()
    shown_ap = ["—" if np.isnan(value) else f"{100 * value:.0f}" for value in ap]
    return [
        (f"{video}  AP {a}  missed {missed}  FP {fp}  {duration:.0f}s", video)
        for video, a, missed, fp, duration in zip(table["video"].to_numpy(), shown_ap, table["missed"].to_numpy(),
                                                  table["false_positives"].to_numpy(), table["duration"].to_numpy())
    ]


NO_GROUND_TRUTH = ("no ground truth for these videos (one's own videos, scored without annotations): detections "
                   "and curves only; mAP, true and false positives, and the error charts need annotations")


def summary_html(video_table: pd.DataFrame, cap, tiou: float, protocol: str, ground_truth: bool = True) -> str:
    """One line: detections, true positives, missed ground truth of the whole split."""
    if not ground_truth:
        return (f"<div>{int(video_table['detections'].sum())} detections"
                f"{'' if cap is None else f' (at most {cap} per video)'} in {len(video_table)} videos; "
                f"{html.escape(NO_GROUND_TRUTH)}</div>")
    return (f"<div>{int(video_table['detections'].sum())} detections"
            f"{'' if cap is None else f' (at most {cap} per video)'}; "
            f"{int(video_table['true_positives'].sum())} true positives at tIoU {tiou:g}; "
            f"{int(video_table['missed'].sum())} of {int(video_table['ground_truth'].sum())} "
            f"ground-truth instances missed ({protocol} evaluation)</div>")
