"""The reproduction's tables: our numbers with their seed spread beside the published ones, the
claims check, and the protocol audit. Pure pandas / numpy (no plotting, no Jupyter).

Everything here reads :class:`wtal_kit.experiments.ArtefactResults` (``experiments.collect``):

- :func:`summary_table`: one row per variant, mAP (%) at each tIoU and their average as
  "mean ± std" over seeds (sample std, ddof = 1), with the numeric mean and std beside.
- :func:`with_published`: the same rows with the paper's printed row beside each variant
  that has one (variants without a printed number get none; nothing is invented).
- :func:`claims`: one row per conclusion the paper draws from an ablation: what it claims,
  what we measure (a paired difference over seeds, with its spread) and a verdict.
- :func:`protocol_audit`: the same trained models scored with each evaluation choice the
  paper's and the released code's numbers differ by.
- :func:`figure5_views`: the videos and classes of Figure 5, as :class:`wtal_kit.VideoView`.

Every row says where its numbers come from: ours with ``results.label()`` (dataset, synthetic or
real features, mode, preset, iterations, protocol, seeds); published ones with
:data:`PUBLISHED_SOURCE`. mAP values here are in % (the store keeps fractions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wtal_kit import experiments
from wtal_kit.errors import InputError
from wtal_kit.report import published_results, published_row

TIOUS = (0.1, 0.3, 0.5, 0.7, "avg")  # the columns of every table, in this order
PAPER_DATASETS = {"thumos14": "THUMOS14", "activitynet12": "ActivityNet1.2"}  # layout -> published dataset name
PAPER_METHOD = "Islam & Radke (paper)"
PUBLISHED_SOURCE = "published (paper, real {dataset} I3D features, single run)"
OTHER_SOURCE = "published (as printed in the paper's Table {table}; {supervision} supervised; that method's own features)"
SUPERVISION = {"full": "fully", "weak": "weakly"}
DERIVED_AVG = "avg = mean of the four printed tIoU values (the paper prints no avg for this row)"
SPREAD_FACTOR = 2.0  # a difference counts when |mean| > SPREAD_FACTOR x its standard error
FIGURE5_CLASSES = ("HammerThrow", "LongJump", "CliffDiving", "GolfSwing")  # Figure 5 (a)-(d)


def column(tiou) -> str:
    """The display column of a tIoU threshold ("0.1", ...) or of the average ("avg")."""
    return "avg" if tiou == "avg" else f"{float(tiou):g}"


def _format(mean: float, std: float) -> str:
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
            row[column(tiou)] = _format(mean, std)
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


# -- published numbers -------------------------------------------------------------------------
def _published_dataset(variant) -> str:
    return PAPER_DATASETS[variant.layout]


def published_for(variant) -> pd.Series | None:
    """The paper's printed row of a variant (mAP in %, index :data:`TIOUS`), or None if it has none."""
    if variant.published is None:
        return None
    table, name = variant.published
    return published_row(table=table, dataset=_published_dataset(variant), method=PAPER_METHOD, variant=name)


def _avg_is_printed(variant) -> bool:
    table, name = variant.published
    rows = published_results()
    hit = rows[(rows["table"] == table) & (rows["dataset"] == _published_dataset(variant))
               & (rows["method"] == PAPER_METHOD) & (rows["variant"] == name)]
    return bool(len(hit)) and not pd.isna(hit.iloc[0]["avg"])


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
        note = [] if _avg_is_printed(variant) else [DERIVED_AVG]
        if variant.published[0] != results.artefact.table:
            note.insert(0, f"the paper's Table {variant.published[0]} row (the same configuration)")
        rows.append(_published_table_row(values, PUBLISHED_SOURCE.format(dataset=_published_dataset(variant)),
                                         variant.label, "; ".join(note)))
    if other_methods and results.artefact.table is not None:
        dataset = _published_dataset(results.artefact.variants[0])
        printed = published_results()
        printed = printed[(printed["table"] == results.artefact.table) & (printed["dataset"] == dataset)
                          & (printed["method"] != PAPER_METHOD)]
        for _, other in printed.iterrows():
            values = pd.Series({t: float(other[f"iou_{t}"]) for t in (0.1, 0.3, 0.5, 0.7)})
            values["avg"] = float(other["avg"])  # NaN unless printed: never averaged over missing values
            rows.append(_published_table_row(values, OTHER_SOURCE.format(table=int(other["table"]), supervision=SUPERVISION.get(other["supervision"], other["supervision"])),
                                             other["method"], ""))
    return pd.DataFrame(rows, columns=_columns())


# -- differences over seeds ------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """A paired difference over seeds, in mAP points: d_i = a_i - b_i for the seeds both have.

    mean: the mean of d_i; std: their sample std (ddof = 1; NaN with one seed);
    se: std / sqrt(n), the standard error of the mean; n: the number of paired seeds.
    """

    mean: float
    std: float
    se: float
    n: int

    @property
    def beyond_spread(self) -> int:
        """+1 when mean > SPREAD_FACTOR x se, -1 when mean < -SPREAD_FACTOR x se, else 0 (also with one seed)."""
        if self.n < 2 or np.isnan(self.se):
            return 0
        if self.mean > SPREAD_FACTOR * self.se:
            return 1
        if self.mean < -SPREAD_FACTOR * self.se:
            return -1
        return 0

    def text(self) -> str:
        if self.n == 0:
            return "no paired seeds"
        if self.n == 1:
            return f"{_points(self.mean)} points (1 seed: no spread)"
        return (f"{_points(self.mean)} ± {_points(self.std, sign=False)} points "
                f"(std of {self.n} paired seeds; SE {_points(self.se, sign=False)})")


def _points(value: float, sign: bool = True) -> str:
    """A difference in mAP points: two decimals, or two significant digits below 0.05 (so it never reads 0.00)."""
    if value == 0 or abs(value) >= 0.05:
        return f"{value:+.2f}" if sign else f"{value:.2f}"
    return f"{value:+.2g}" if sign else f"{value:.2g}"


def paired_difference(a: pd.Series, b: pd.Series) -> Difference:
    """:class:`Difference` of two per-seed series (index: seed), on the seeds both hold."""
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    d = (both["a"] - both["b"]).to_numpy(dtype=float)
    n = len(d)
    if n == 0:
        return Difference(float("nan"), float("nan"), float("nan"), 0)
    std = float(np.std(d, ddof=1)) if n > 1 else float("nan")
    return Difference(float(np.mean(d)), std, std / np.sqrt(n) if n > 1 else float("nan"), n)


def verdict_better(difference: Difference) -> str:
    """The verdict on "A beats B" from the paired difference A - B (avg mAP points).

    - "not run": no seed has both A and B;
    - "cannot tell": one seed only (no spread), or |mean| <= 2 x SE (the difference lies within
      twice the standard error of the paired per-seed differences);
    - "agrees": mean > 2 x SE; "disagrees": mean < -2 x SE.

    The 2 x SE rule is a rough screen, not a significance test at a set level: with 3 seeds it
    corresponds to about 82 % two-sided confidence under a t distribution (2 degrees of freedom).
    "A >= B" claims use the same rule: a tie within the spread cannot tell >= from <.
    """
    if difference.n == 0:
        return "not run"
    return {1: "agrees", -1: "disagrees", 0: "cannot tell"}[difference.beyond_spread]


def verdict_best(best: str, per_seed: dict[str, pd.Series]) -> tuple[str, str, Difference | None]:
    """The verdict on "``best`` is the best of ``per_seed``'s variants" (avg mAP per seed, points).

    Returns (verdict, measured text, difference against the runner-up). The runner-up is the
    other variant with the highest mean. Rules, each difference paired over seeds as in
    :func:`verdict_better`:

    - "disagrees" if some other variant beats ``best`` beyond the spread (its difference over
      ``best`` > 2 x SE);
    - "agrees" if ``best`` has the highest mean and beats every other variant beyond the spread
      (stricter than beating the runner-up alone: a noisy third variant can still leave it open);
    - "cannot tell" otherwise (also with one seed);
    - "not run" if any variant has no result.
    """
    if best not in per_seed or any(len(v.dropna()) == 0 for v in per_seed.values()) or len(per_seed) < 2:
        return "not run", "not run", None
    means = {name: float(values.mean()) for name, values in per_seed.items()}
    others = {name: paired_difference(per_seed[best], values) for name, values in per_seed.items() if name != best}
    runner_up = max((name for name in others), key=lambda name: means[name])
    worse_than = [name for name, d in others.items() if d.beyond_spread == -1]
    leads = means[best] >= max(means.values())
    highest = max(means, key=means.get)
    measured = (f"{best} − runner-up ({runner_up}): {others[runner_up].text()}; "
                f"highest mean: {highest} ({means[highest]:.2f})")
    if worse_than:
        verdict = "disagrees"
        measured += f"; beaten beyond the spread by {', '.join(worse_than)}"
    elif leads and all(d.beyond_spread == 1 for d in others.values()):
        verdict = "agrees"
    else:
        verdict = "cannot tell"
    return verdict, measured, others[runner_up]


# -- the claims ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One conclusion the paper draws: ``better`` beats ``worse`` (or ``better`` is the best of ``among``)."""

    claim: str
    source: str
    paper: str
    artefact: str
    better: str
    worse: str | None = None  # "A beats B"
    among: tuple | None = None  # "A is the best of these" (variant labels, A included)


def _variant(artefact: str, prefix: str) -> str:
    """The label of an artefact's variant that starts with ``prefix`` (labels are defined in experiments)."""
    labels = [v.label for v in experiments.ARTEFACTS[artefact].variants]
    hits = [label for label in labels if label == prefix] or [label for label in labels if label.startswith(prefix)]
    if len(hits) != 1:
        raise KeyError(f"{artefact} has no single variant {prefix!r}: {labels}")
    return hits[0]


def _labels(artefact: str) -> tuple:
    return tuple(v.label for v in experiments.ARTEFACTS[artefact].variants)


def _printed_avg(table: int, variant: str) -> float:
    return float(published_row(table=table, variant=variant)["avg"])


def _claims() -> tuple[Claim, ...]:
    t3 = {name: _printed_avg(3, name) for name in ("BBCE", "BBCE + contrastive", "BBCE + triplet")}
    full, no_blocks = _printed_avg(1, ""), _printed_avg(4, "no block-based processing")
    no_clip = _printed_avg(5, "kappa=none (no clip)")
    kappas = {k: _printed_avg(5, f"kappa={k}") for k in (2, 3, 4, 5, 10)}
    kappa_text = ", ".join(f"κ={k} {v:.2f}" for k, v in kappas.items())
    return (
        Claim("BBCE beats BCE (each + triplet)", "Figure 2",
              "BBCE performs better than BCE at every tIoU (values only plotted)",
              "figure2", _variant("figure2", "BBCE"), _variant("figure2", "BCE")),
        Claim("BBCE beats Softmax-MIL (each + triplet)", "Figure 2",
              "BBCE performs better than the Softmax (MIL) loss at every tIoU (values only plotted)",
              "figure2", _variant("figure2", "BBCE"), _variant("figure2", "Softmax")),
        Claim("the triplet loss adds to BBCE", "Table 3",
              f"BBCE + triplet {t3['BBCE + triplet']:.2f} vs BBCE {t3['BBCE']:.2f} avg mAP "
              f"(+{t3['BBCE + triplet'] - t3['BBCE']:.2f})",
              "table3", "BBCE + triplet", "BBCE"),
        Claim("the contrastive loss adds to BBCE", "Table 3",
              f"BBCE + contrastive {t3['BBCE + contrastive']:.2f} vs BBCE {t3['BBCE']:.2f} avg mAP "
              f"(+{t3['BBCE + contrastive'] - t3['BBCE']:.2f})",
              "table3", "BBCE + contrastive", "BBCE"),
        Claim("triplet >= contrastive", "Table 3",
              f"BBCE + triplet {t3['BBCE + triplet']:.2f} vs BBCE + contrastive {t3['BBCE + contrastive']:.2f} avg mAP "
              f"(+{t3['BBCE + triplet'] - t3['BBCE + contrastive']:.2f})",
              "table3", "BBCE + triplet", "BBCE + contrastive"),
        *(Claim(f"the class-specific distance beats the {name} distance", "Figure 3",
                f"ours performs better than {name} at every tIoU (values only plotted)",
                "figure3", _variant("figure3", "class-specific"), _variant("figure3", name))
          for name in ("cosine", "Euclidean", "custom")),
        Claim("clipping helps (κ = 4 beats no clipping)", "Table 5",
              f"κ=4 {kappas[4]:.2f} vs no clip {no_clip:.2f} avg mAP (+{kappas[4] - no_clip:.2f}; "
              f"+2.5 at tIoU 0.5 in the text); avg = mean of the printed tIoUs",
              "table5", "kappa=4", "kappa=none"),
        Claim("κ = 4 is the best clipping value", "Table 5",
              f"κ=4 highest: no clip {no_clip:.2f}, {kappa_text} avg mAP (mean of the printed tIoUs)",
              "table5", "kappa=4", among=_labels("table5")),
        Claim("block-based processing helps", "Table 4",
              f"with blocks {full:.2f} vs without {no_blocks:.2f} avg mAP (+{full - no_blocks:.2f}; "
              f"mean of the printed tIoUs)",
              "table4", "block-based processing", "no block-based processing"),
        Claim("k = 10 is the best k at block size 60", "Figure 4a",
              "the highest average mAP at k = 10 (values only plotted)",
              "figure4a", "k=10", among=_labels("figure4a")),
        Claim("block size 60 is the best (k = 6 % of the block)", "Figure 4b",
              "the best performance at around block size 60 (values only plotted)",
              "figure4b", "block 60", among=_labels("figure4b")),
    )


CLAIM_COLUMNS = ["claim", "source", "paper", "measured", "verdict", "difference", "spread", "standard error", "seeds",
                 "compared", "measured on"]


def _avg_per_seed(results, label: str) -> pd.Series:
    """avg mAP (points) of one variant, indexed by seed (empty when it has no result)."""
    table = results.table
    rows = table[(table["variant"] == label) & (table["tiou"] == "avg")]
    return pd.Series(100.0 * rows["map"].to_numpy(dtype=float), index=rows["seed"].to_numpy(), dtype=float)


def claims(results_by_name: dict) -> pd.DataFrame:
    """One row per claim the paper makes from its ablations, checked on our results.

    ``results_by_name``: artefact name -> :class:`~wtal_kit.experiments.ArtefactResults`
    (:func:`collect_all` of ``experiments.REPORT_SOURCES["claims"]``).

    Columns: claim, source (the paper's table or figure), paper (what it claims, with its
    printed numbers where it prints any), measured (text), verdict, difference (mean paired
    difference in avg mAP points, better − worse; for "best" claims: the claimed best − the
    runner-up), spread (std of the paired per-seed differences), standard error (spread /
    sqrt(seeds)), seeds (paired seeds), compared (the variants), measured on (``results.label()``).

    Verdicts ("agrees", "disagrees", "cannot tell", "not run"): :func:`verdict_better` for
    "A beats B" and "A >= B"; :func:`verdict_best` for "A is the best". A claim whose artefact
    is absent from ``results_by_name`` or has no result for a variant it needs is "not run".
    Nothing here (nor in the benchmark) is tuned toward a claim: it reports what comes out.
    """
    rows = []
    for claim in _claims():
        row = {"claim": claim.claim, "source": claim.source, "paper": claim.paper}
        results = results_by_name.get(claim.artefact)
        if claim.among is None:
            row["compared"] = f"{claim.better} vs {claim.worse}"
            difference = (paired_difference(_avg_per_seed(results, claim.better), _avg_per_seed(results, claim.worse))
                          if results is not None else Difference(float("nan"), float("nan"), float("nan"), 0))
            verdict = verdict_better(difference)
            measured = "not run" if verdict == "not run" else f"{claim.better} − {claim.worse}: {difference.text()}"
        else:
            row["compared"] = f"{claim.better} among {', '.join(claim.among)}"
            if results is None:
                verdict, measured, difference = "not run", "not run", None
            else:
                verdict, measured, difference = verdict_best(
                    claim.better, {label: _avg_per_seed(results, label) for label in claim.among})
        row["measured"] = measured
        row["verdict"] = verdict
        row["measured on"] = "not run" if results is None else results.label()
        difference = difference or Difference(float("nan"), float("nan"), float("nan"), 0)
        row.update({"difference": difference.mean, "spread": difference.std, "standard error": difference.se,
                    "seeds": difference.n})
        rows.append(row)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def collect_all(names, mode: str = "quick", seeds=experiments.DEFAULT_SEEDS, store=experiments.DEFAULT_STORE, *,
                features=None, activitynet_features=None, device: str = "auto") -> dict:
    """``experiments.collect`` of each named artefact: name -> ArtefactResults (reports expand to what they read)."""
    return {name: experiments.collect(name, mode, seeds, store, features=features,
                                      activitynet_features=activitynet_features, device=device)
            for name in experiments.training_artefacts(names)}


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
METRIC_COLUMNS = {0.1: "map@0.1", 0.3: "map@0.3", 0.5: "map@0.5", 0.7: "map@0.7", "avg": "map_avg"}


def best_test_row(metrics: pd.DataFrame) -> pd.Series:
    """The training log's row the released code would keep: the highest test mAP@0.5 + mAP@0.7 (first on ties)."""
    if metrics.empty:
        raise InputError("the training log has no evaluation", field="metrics")
    selection = metrics["map@0.5"] + metrics["map@0.7"]
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
            evaluation = localizer.evaluate(threshold=config.threshold, gamma=config.gamma, localization=localization,
                                            min_length=config.min_length, max_per_video=config.max_per_video,
                                            iou_thresholds=config.iou_thresholds,
                                            eval_protocol=protocol)
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
            row[column(tiou)] = _format(mean, std)
            numeric.update({f"mean {column(tiou)}": mean, f"std {column(tiou)}": std,
                            f"change {column(tiou)}": change.mean, f"change std {column(tiou)}": change.std})
        change_avg = paired_difference(values["avg"], reference["avg"])
        row[CHANGE_FROM_A] = ("—" if choice == "a" else _points(change_avg.mean) if change_avg.n < 2
                              else f"{_points(change_avg.mean)} ± {_points(change_avg.std, sign=False)}")
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
        views.append((name, localizer.view(video, name, threshold=config.threshold, gamma=config.gamma,
                                           localization=config.localization, min_length=config.min_length,
                                           max_per_video=config.max_per_video, tiou=tiou, eval_protocol=config.eval_protocol)))
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
