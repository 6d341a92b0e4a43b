"""How the command line and the demo print an mAP table: one labelled row per result, in %.

A number measured on the embedded synthetic benchmark is labelled as such and never presented as a
THUMOS14 result; published numbers (:mod:`wtal_kit.experiments.published`) are labelled "published".
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
