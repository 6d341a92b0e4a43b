"""Tables for people: our mAP beside the published numbers, each clearly labelled.

A number measured on the embedded synthetic benchmark is labelled as such and
never presented as a THUMOS14 result; published numbers (the paper's Tables 1-5,
``data/published_results.csv``) are labelled "published".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from wtal_kit.bundled import bundled_path

PUBLISHED_CSV = "published_results.csv"  # a shipped data file: bundled_path(PUBLISHED_CSV)
PUBLISHED_COLUMNS = {"iou_0.1": 0.1, "iou_0.3": 0.3, "iou_0.5": 0.5, "iou_0.7": 0.7, "avg": "avg"}


def published_results(path=None) -> pd.DataFrame:
    """The paper's printed numbers (mAP in %, NaN = not reported); by default the shipped CSV."""
    if path is not None:
        return _read_published(path)
    return _shipped_published().copy()  # read once: the sliders look rows up on every control change


@lru_cache(maxsize=1)
def _shipped_published() -> pd.DataFrame:
    return _read_published(bundled_path(PUBLISHED_CSV))


def _read_published(path) -> pd.DataFrame:
    table = pd.read_csv(path)
    table["variant"] = table["variant"].fillna("")
    return table


def published_row(table: int = 1, dataset: str = "THUMOS14", method: str = "Islam & Radke (paper)", variant: str = "") -> pd.Series:
    """One published row as a Series indexed like our mAP series (0.1, 0.3, 0.5, 0.7, "avg"), in %."""
    rows = published_results()
    hit = rows[(rows["table"] == table) & (rows["dataset"] == dataset) & (rows["method"] == method) & (rows["variant"] == variant)]
    if hit.empty:
        raise KeyError(f"no published row for table {table}, {dataset}, {method!r}, {variant!r}")
    row = hit.iloc[0]
    values = {key: float(row[column]) for column, key in PUBLISHED_COLUMNS.items()}
    if np.isnan(values["avg"]):
        known = [values[t] for t in (0.1, 0.3, 0.5, 0.7)]
        values["avg"] = float(np.mean(known)) if not any(np.isnan(known)) else float("nan")
    return pd.Series(values)


def format_map_rows(rows: list[tuple[str, pd.Series]], percent_rows: set[str] = frozenset()) -> str:
    """A plain-text table: one labelled row per (label, mAP series); values shown in %.

    Series of fractions are multiplied by 100 unless their label is in ``percent_rows``.
    """
    columns = []
    for _, series in rows:
        for key in series.index:
            if key not in columns:
                columns.append(key)
    numeric = sorted(c for c in columns if c != "avg")
    columns = numeric + (["avg"] if "avg" in columns else [])
    width = max(len(label) for label, _ in rows)
    header = "mAP (%)".ljust(width) + "".join(f"{('@' + format(c, 'g')) if c != 'avg' else 'avg':>8}" for c in columns)
    lines = [header, "-" * len(header)]
    for label, series in rows:
        scale = 1.0 if label in percent_rows else 100.0
        cells = []
        for c in columns:
            value = series.get(c, np.nan)
            cells.append(f"{'—' if pd.isna(value) else format(scale * float(value), '.1f'):>8}")
        lines.append(label.ljust(width) + "".join(cells))
    return "\n".join(lines)
