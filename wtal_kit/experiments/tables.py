"""The reproduction's tables: our numbers with their seed spread beside the published ones.
Pure pandas / numpy (no plotting, no Jupyter).

Everything here reads :class:`~wtal_kit.experiments.runner.ArtefactResults` (``experiments.collect``):

- :func:`summary_table`: one row per variant, mAP (%) at each tIoU and their average as
  "mean ± std" over seeds (sample std, ddof = 1), with the numeric mean and std beside.
- :func:`with_published`: the same rows with the paper's printed row beside each variant
  that has one (variants without a printed number get none; nothing is invented).

The claims check is :mod:`wtal_kit.experiments.claims`, the protocol audit and Figure 5's views
:mod:`wtal_kit.experiments.audit`. Every row says where its numbers come from: ours with
``results.label()`` (dataset, synthetic or real features, mode, iterations, protocol, seeds);
published ones with :data:`~wtal_kit.experiments.published.PUBLISHED_SOURCE`. mAP values here are
in % (the store keeps fractions).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from wtal_kit.config import PAPER_TIOUS
from wtal_kit.experiments.published import (
    DERIVED_AVG,
    OTHER_SOURCE,
    PAPER_METHOD,
    PUBLISHED_SOURCE,
    SUPERVISION,
    avg_is_printed,
    published_dataset,
    published_for,
    published_results,
)

TIOUS = (*PAPER_TIOUS, "avg")  # the columns of every table, in this order


def column(tiou) -> str:
    """The display column of a tIoU threshold ("0.1", ...) or of the average ("avg")."""
    return "avg" if tiou == "avg" else f"{float(tiou):g}"


def format_spread(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "—"
    return f"{mean:.1f}" if pd.isna(std) else f"{mean:.1f} ± {std:.1f}"


# -- our numbers -----------------------------------------------------------------------------
def seed_table(results) -> pd.DataFrame:
    """mAP (%) of every (variant, seed): index (variant, seed), columns :data:`TIOUS`."""
    table = results.table
    if table.empty:
        return pd.DataFrame(columns=list(TIOUS), index=pd.MultiIndex.from_tuples([], names=["variant", "seed"]))
    wide = table.assign(map=100.0 * table["map"].astype(float)).pivot_table(
        index=["variant", "seed"], columns="tiou", values="map", aggfunc="first")
    return wide.reindex(columns=[t for t in TIOUS])


def summary_table(results) -> pd.DataFrame:
    """One row per variant, in the artefact's order: mAP (%) per tIoU and avg over seeds.

    Columns: source (``results.label()``), variant, seeds (how many seeds have a result),
    "0.1" ... "0.7", "avg" ("mean ± std"), then numeric "mean 0.1", "std 0.1", ... "mean avg",
    "std avg", and note (the seeds whose run is missing). std is the sample standard deviation
    (ddof = 1); with one seed it is NaN and only the mean is shown.
    """
    per_seed = seed_table(results)
    missing = {}
    for label, seed in results.missing:
        missing.setdefault(label, []).append(seed)
    rows = []
    for variant in results.artefact.variants:
        values = per_seed.loc[variant.label] if variant.label in per_seed.index.get_level_values(0) else None
        row = {"source": results.label(), "variant": variant.label, "seeds": 0 if values is None else len(values)}
        numbers = {}
        for tiou in TIOUS:
            series = pd.Series(dtype=float) if values is None else values[tiou].dropna()
            mean = float(series.mean()) if len(series) else float("nan")
            std = float(series.std(ddof=1)) if len(series) > 1 else float("nan")
            row[column(tiou)] = format_spread(mean, std)
            numbers[f"mean {column(tiou)}"] = mean
            numbers[f"std {column(tiou)}"] = std
        row.update(numbers)
        row["note"] = f"no result for seeds {missing[variant.label]}" if variant.label in missing else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=_columns())


def _columns() -> list[str]:
    numeric = [f"{kind} {column(t)}" for t in TIOUS for kind in ("mean", "std")]
    return ["source", "variant", "seeds", *(column(t) for t in TIOUS), *numeric, "note"]


NUMERIC_TWIN = re.compile(r"^(mean|std|change std) |^change (avg|[0-9.]+)$")


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader looks at: a table of this module without the numeric twins of its text columns."""
    return table[[c for c in table.columns if not NUMERIC_TWIN.match(str(c))]]


def _published_table_row(values: pd.Series, source: str, variant: str, note: str) -> dict:
    row = {"source": source, "variant": variant, "seeds": pd.NA}
    for tiou in TIOUS:
        value = float(values.get(tiou, np.nan))
        row[column(tiou)] = "—" if np.isnan(value) else f"{round(value, 2):g}"
        row[f"mean {column(tiou)}"] = value
        row[f"std {column(tiou)}"] = float("nan")
    row["note"] = note
    return row


def with_published(results, other_methods: bool = False) -> pd.DataFrame:
    """:func:`summary_table` with the paper's printed row after each variant that has one.

    Published rows are labelled :data:`PUBLISHED_SOURCE` (the paper reports single runs on real
    I3D features); "seeds" is empty for them. A variant without a printed number gets no published
    row. ``other_methods``: also the other methods the paper's table prints (Tables 1 and 2),
    labelled as printed there.
    """
    ours = summary_table(results)
    rows = []
    for variant, (_, row) in zip(results.artefact.variants, ours.iterrows()):
        rows.append(row.to_dict())
        values = published_for(variant)
        if values is None:
            continue
        note = [] if avg_is_printed(variant) else [DERIVED_AVG]
        if variant.published[0] != results.artefact.table:
            note.insert(0, f"the paper's Table {variant.published[0]} row (the same configuration)")
        rows.append(_published_table_row(values, PUBLISHED_SOURCE.format(dataset=published_dataset(variant)),
                                         variant.label, "; ".join(note)))
    if other_methods and results.artefact.table is not None:
        dataset = published_dataset(results.artefact.variants[0])
        printed = published_results()
        printed = printed[(printed["table"] == results.artefact.table) & (printed["dataset"] == dataset)
                          & (printed["method"] != PAPER_METHOD)]
        for _, other in printed.iterrows():
            values = pd.Series({t: float(other[f"iou_{t:g}"]) for t in PAPER_TIOUS})
            values["avg"] = float(other["avg"])  # NaN unless printed: never averaged over missing values
            rows.append(_published_table_row(values, OTHER_SOURCE.format(table=int(other["table"]), supervision=SUPERVISION.get(other["supervision"], other["supervision"])),
                                             other["method"], ""))
    return pd.DataFrame(rows, columns=_columns())
