"""The single table form for ground truth and detections.

Ground truth: a pandas DataFrame with columns ``video, label, t_start, t_end``;
detections add ``score``. Times are seconds, ``label`` is the class *name*
(str), ``video`` the video name (str). Row order carries meaning only where a
protocol says so (ties in the evaluator keep input order).

:func:`check_ground_truth` and :func:`check_detections` validate a table and
return a clean copy (str labels and videos, float64 times and scores) or raise
:class:`~wtal_kit.errors.InputError` naming the source, the video and the field.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wtal_kit.errors import InputError

GROUND_TRUTH_COLUMNS = ["video", "label", "t_start", "t_end"]
DETECTION_COLUMNS = ["video", "label", "t_start", "t_end", "score"]


def empty_detections() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in DETECTION_COLUMNS}), DETECTION_COLUMNS)


def _typed(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "video": table["video"].astype(str).to_numpy(dtype=object),
            "label": table["label"].astype(str).to_numpy(dtype=object),
            "t_start": table["t_start"].to_numpy(dtype=np.float64),
            "t_end": table["t_end"].to_numpy(dtype=np.float64),
        }
    )
    if "score" in columns:
        out["score"] = table["score"].to_numpy(dtype=np.float64)
    return out


def _check(table, columns: list[str], what: str, source) -> pd.DataFrame:
    source = source if source is not None else what
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(table).__name__}", file=source)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{what} table lacks column(s) {missing}; expected {columns}", file=source)
    try:
        out = _typed(table, columns)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} table has non-numeric times or scores ({exc})", file=source) from None
    numeric = ["t_start", "t_end"] + (["score"] if "score" in columns else [])
    for field in numeric:
        bad = ~np.isfinite(out[field].to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"non-finite value {out[field].iat[row]!r} (row {row})", file=source, video=out["video"].iat[row], field=field
            )
    bad = out["t_end"].to_numpy() < out["t_start"].to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"end < start ({out['t_end'].iat[row]} < {out['t_start'].iat[row]}, row {row})",
            file=source,
            video=out["video"].iat[row],
            field="t_end",
        )
    return out


def check_ground_truth(table, source=None) -> pd.DataFrame:
    """Validate a ground-truth table; return a clean, typed copy."""
    return _check(table, GROUND_TRUTH_COLUMNS, "ground truth", source)


def check_detections(table, source=None) -> pd.DataFrame:
    """Validate a detections table; return a clean, typed copy."""
    return _check(table, DETECTION_COLUMNS, "detections", source)
