"""The claims check: one row per conclusion the paper draws from an ablation, what it claims,
what we measure (a paired difference over seeds, with its spread) and a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from wtal_kit.experiments import runner
from wtal_kit.experiments.artefacts import ARTEFACTS, DEFAULT_MODE, DEFAULT_SEEDS, training_artefacts
from wtal_kit.experiments.published import published_row
from wtal_kit.experiments.store import DEFAULT_STORE

SPREAD_FACTOR = 2.0  # a difference counts when |mean| > SPREAD_FACTOR x its standard error


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
            return f"{points(self.mean)} points (1 seed: no spread)"
        return (f"{points(self.mean)} ± {points(self.std, sign=False)} points "
                f"(std of {self.n} paired seeds; SE {points(self.se, sign=False)})")


def points(value: float, sign: bool = True) -> str:
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
    labels = [v.label for v in ARTEFACTS[artefact].variants]
    hits = [label for label in labels if label == prefix] or [label for label in labels if label.startswith(prefix)]
    if len(hits) != 1:
        raise KeyError(f"{artefact} has no single variant {prefix!r}: {labels}")
    return hits[0]


def _labels(artefact: str) -> tuple:
    return tuple(v.label for v in ARTEFACTS[artefact].variants)


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


def collect_all(names, mode: str = DEFAULT_MODE, seeds=DEFAULT_SEEDS, store=DEFAULT_STORE, *,
                features=None, activitynet_features=None, device: str = "auto") -> dict:
    """``experiments.collect`` of each named artefact: name -> ArtefactResults (reports expand to what they read)."""
    return {name: runner.collect(name, mode, seeds, store, features=features,
                                      activitynet_features=activitynet_features, device=device)
            for name in training_artefacts(names)}
