"""The files of a run folder that can be read without torch: their names, and the held-out split's scores.

A run folder (written by :func:`wtal_kit.train`) holds ``config.json``, ``results.json`` (which names
the held-out split, ``test_subset``), ``metrics.csv`` (one row per evaluation; its mAP columns are
named by :func:`metric_column`) and ``scores_<subset>.h5``. The explorer opens a run through
:func:`held_out_scores` and so needs neither torch nor the model when the scores are already there;
:class:`wtal_kit.training.runs.Run` (torch) runs inference for a split that has none.
"""

from __future__ import annotations

import json
from pathlib import Path

CONFIG = "config.json"
RESULTS = "results.json"
METRICS = "metrics.csv"


def scores_file_name(subset: str) -> str:
    return f"scores_{subset}.h5"


def detections_file_name(subset: str) -> str:
    return f"detections_{subset}.json"


def metric_column(key) -> str:
    """metrics.csv's column of an mAP entry: 0.5 -> "map@0.5", "avg" -> "map_avg", "avg 0.1:0.1:0.9" -> "map_avg_0.1:0.1:0.9"."""
    if isinstance(key, str):
        return "map_" + key.replace(" ", "_")
    return f"map@{float(key):g}"


def metric_key(column: str):
    """The inverse of :func:`metric_column`: "map@0.5" -> 0.5, "map_avg" -> "avg", "map_avg_0.1:0.1:0.9" -> "avg 0.1:0.1:0.9"."""
    if column.startswith("map@"):
        return float(column[len("map@"):])
    if column.startswith("map_"):
        return column[len("map_"):].replace("_", " ", 1)
    raise ValueError(f"not an mAP column of metrics.csv: {column!r}")


def held_out_scores(run_dir) -> Path | None:
    """The held-out split's scores file of ``run_dir`` when ``results.json`` names that split and the file exists.

    None otherwise (no results yet, an unreadable results file, no scores file): the caller then
    opens the run with :func:`wtal_kit.load_run`, which says what is wrong or runs inference.
    """
    try:
        subset = json.loads((Path(run_dir) / RESULTS).read_text()).get("test_subset")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(subset, str) or not subset:
        return None
    path = Path(run_dir) / scores_file_name(subset)
    return path if path.is_file() else None
