"""The reproduction's tables (wtal_kit.experiments): hand-built results with hand-computed expectations,
one smoke run for the protocol audit, and the committed notebooks against their generator."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from wtal_kit import experiments as E
from wtal_kit import experiments as R

REPO = Path(__file__).resolve().parents[1]


def fake_results(name: str, values: dict, seeds=(0, 1, 2), missing=()) -> E.ArtefactResults:
    """ArtefactResults of ``name`` built by hand: values[variant label] = {tiou: [mAP fraction per seed]}.

    A tIoU left out of a variant's dict gets that variant's "avg" values (enough for these tests).
    """
    artefact = E.ARTEFACTS[name]
    rows = []
    for variant in reversed(artefact.variants):  # reversed: the table's row order must not matter
        per_tiou = values.get(variant.label)
        if per_tiou is None:
            continue
        for tiou in R.TIOUS:
            for seed, value in zip(seeds, per_tiou.get(tiou, per_tiou["avg"])):
                if (variant.label, seed) in missing or value is None:
                    continue
                rows.append({"variant": variant.label, "seed": seed, "key": f"k{seed}", "tiou": tiou, "map": value})
    base = E.base_config("smoke", artefact.variants[0].layout)
    configs = {v.label: E.variant_config(base, v, seeds[0]) for v in artefact.variants}
    return E.ArtefactResults(artefact, "smoke", tuple(seeds), pd.DataFrame(rows, columns=["variant", "seed", "key", "tiou", "map"]),
                             {}, configs, list(missing))


# -- summary_table ---------------------------------------------------------------------------------
def test_summary_table_gives_mean_and_sample_std_in_percent_per_variant_in_the_artefact_order():
    results = fake_results("table3", {
        "BBCE": {0.1: [0.30, 0.30, 0.36], "avg": [0.10, 0.12, 0.14]},
        "BBCE + triplet": {"avg": [0.20, 0.20, 0.20]},
        "BBCE + contrastive": {"avg": [0.40, 0.50, None]},  # seed 2 has no value
    })
    table = R.summary_table(results)
    assert list(table["variant"]) == ["BBCE", "BBCE + contrastive", "BBCE + triplet"]  # Table 3's order
    bbce = table.iloc[0]
    # avg 10, 12, 14 %: mean 12, sample std sqrt((4 + 0 + 4) / 2) = 2
    assert bbce["mean avg"] == pytest.approx(12.0) and bbce["std avg"] == pytest.approx(2.0)
    assert bbce["avg"] == "12.0 ± 2.0"
    # tIoU 0.1: 30, 30, 36 %: mean 32, std sqrt((4 + 4 + 16) / 2) = sqrt(12) = 3.464
    assert bbce["mean 0.1"] == pytest.approx(32.0) and bbce["std 0.1"] == pytest.approx(math.sqrt(12))
    assert bbce["0.1"] == "32.0 ± 3.5"
    assert bbce["seeds"] == 3
    triplet = table.iloc[2]
    assert triplet["std avg"] == pytest.approx(0.0) and triplet["avg"] == "20.0 ± 0.0"
    contrastive = table.iloc[1]
    assert contrastive["seeds"] == 2 and contrastive["mean avg"] == pytest.approx(45.0)
    assert contrastive["std avg"] == pytest.approx(math.sqrt(50))  # 40, 50: sqrt((25 + 25) / 1)
    assert set(table["source"]) == {results.label()} and "synthetic" in results.label()


def test_one_seed_shows_the_mean_without_a_spread_and_a_missing_run_is_noted():
    results = fake_results("table4", {"no block-based processing": {"avg": [0.25]}, "block-based processing": {"avg": [0.5]}},
                           seeds=(0,))
    table = R.summary_table(results)
    assert list(table["avg"]) == ["25.0", "50.0"] and table["std avg"].isna().all()
    results = fake_results("table4", {"no block-based processing": {"avg": [0.25, 0.35]},
                                      "block-based processing": {"avg": [0.5, 0.6]}},
                           seeds=(0, 1), missing=[("block-based processing", 1)])
    table = R.summary_table(results)
    assert table.iloc[1]["seeds"] == 1 and "[1]" in table.iloc[1]["note"]
    assert table.iloc[1]["mean avg"] == pytest.approx(50.0)


# -- published rows ----------------------------------------------------------------------------
def test_published_rows_sit_beside_ours_labelled_and_with_the_printed_numbers():
    results = fake_results("table3", {label: {"avg": [0.1, 0.2, 0.3]} for label in ("BBCE", "BBCE + contrastive", "BBCE + triplet")})
    table = R.with_published(results)
    assert len(table) == 6
    published = table[table["source"].str.startswith("published")]
    assert list(published["variant"]) == ["BBCE", "BBCE + contrastive", "BBCE + triplet"]
    assert set(published["source"]) == {"published (paper, real THUMOS14 I3D features, single run)"}
    bbce = published.iloc[0]  # Table 3 of the paper: 48.7 29.3 14.0 3.1, Avg 23.78
    assert [bbce[c] for c in ("0.1", "0.3", "0.5", "0.7", "avg")] == ["48.7", "29.3", "14", "3.1", "23.78"]
    assert bbce["mean avg"] == pytest.approx(23.78) and bbce["note"] == ""
    assert pd.isna(bbce["seeds"])
    ours = table[~table["source"].str.startswith("published")]
    assert set(ours["source"]) == {results.label()}
    assert list(table["variant"]) == ["BBCE", "BBCE", "BBCE + contrastive", "BBCE + contrastive", "BBCE + triplet", "BBCE + triplet"]


def test_a_printed_row_from_another_table_and_a_derived_average_say_so():
    results = fake_results("table4", {"no block-based processing": {"avg": [0.1, 0.2, 0.3]},
                                      "block-based processing": {"avg": [0.1, 0.2, 0.3]}})
    table = R.with_published(results)
    published = table[table["source"].str.startswith("published")].set_index("variant")
    # The full method's row is Table 1's: 62.3 46.8 29.6 9.7; the paper prints no average: (sum) / 4 = 37.1
    blocks = published.loc["block-based processing"]
    assert blocks["mean 0.1"] == pytest.approx(62.3) and blocks["mean avg"] == pytest.approx(37.1)
    assert "Table 1" in blocks["note"] and R.DERIVED_AVG in blocks["note"]
    no_blocks = published.loc["no block-based processing"]  # 59.0 43.2 25.5 7.9 -> 33.9
    assert no_blocks["mean avg"] == pytest.approx(33.9)


def test_variants_without_a_printed_number_get_no_published_row():
    results = fake_results("figure2", {label: {"avg": [0.1, 0.2, 0.3]} for label in ("BCE", "Softmax", "BBCE")})
    table = R.with_published(results)
    assert len(table) == 3 and not table["source"].str.startswith("published").any()


def test_activitynet_rows_and_the_other_methods_of_the_table():
    results = fake_results("table2", {E.FULL_METHOD: {"avg": [0.1, 0.2, 0.3]}})
    table = R.with_published(results, other_methods=True)
    mine = table[table["source"] == "published (paper, real ActivityNet1.2 I3D features, single run)"]
    assert len(mine) == 1 and mine.iloc[0]["mean 0.5"] == pytest.approx(35.2)
    wtalc = table[table["variant"] == "W-TALC"].iloc[0]  # printed 53.9 45.5 37.0 14.6, no average
    assert wtalc["mean 0.1"] == pytest.approx(53.9) and wtalc["avg"] == "—" and "weakly" in wtalc["source"]
    ssn = table[table["variant"] == "SSN"].iloc[0]
    assert "fully" in ssn["source"] and ssn["0.1"] == "—"


def test_readable_drops_only_the_numeric_twins():
    results = fake_results("table4", {"no block-based processing": {"avg": [0.1, 0.2, 0.3]}})
    assert list(R.readable(R.summary_table(results)).columns) == ["source", "variant", "seeds", "0.1", "0.3", "0.5", "0.7", "avg", "note"]


# -- differences and verdicts -----------------------------------------------------------------
def _s(values, seeds=(0, 1, 2)):
    return pd.Series(values, index=list(seeds), dtype=float)


def test_paired_difference_by_hand():
    d = R.paired_difference(_s([10, 12, 14]), _s([9, 10, 11]))  # differences 1, 2, 3
    assert (d.mean, d.std, d.n) == (pytest.approx(2.0), pytest.approx(1.0), 3)
    assert d.se == pytest.approx(1 / math.sqrt(3))
    # only the seeds both have are paired: seed 2 is missing on one side
    d = R.paired_difference(_s([10, 12, 14]), _s([9, 10], seeds=(0, 1)))
    assert (d.mean, d.n) == (pytest.approx(1.5), 2)


@pytest.mark.parametrize("a, b, verdict", [
    ([10, 12, 14], [9, 10, 11], "agrees"),  # d = 1, 2, 3: mean 2 > 2 x 0.577
    ([9, 10, 11], [10, 12, 14], "disagrees"),  # the same, reversed
    ([10, 12, 14], [9, 13, 12], "cannot tell"),  # d = 1, -1, 2: mean 0.667 <= 2 x 0.882
    ([10, 10, 10], [10, 10, 10], "cannot tell"),  # a tie with no spread
])
def test_verdict_of_a_beats_b(a, b, verdict):
    assert R.verdict_better(R.paired_difference(_s(a), _s(b))) == verdict


def test_one_seed_cannot_tell_and_no_shared_seed_is_not_run():
    assert R.verdict_better(R.paired_difference(_s([50], seeds=(0,)), _s([10], seeds=(0,)))) == "cannot tell"
    assert R.verdict_better(R.paired_difference(_s([50], seeds=(0,)), _s([10], seeds=(1,)))) == "not run"


def test_verdict_of_x_is_the_best():
    x, clear_second, far = _s([10, 11, 12]), _s([5, 6, 7]), _s([1, 2, 3])
    assert R.verdict_best("x", {"x": x, "y": clear_second, "z": far})[0] == "agrees"
    # y beats x by 5 on every seed: disagrees, and the text names who beats it
    verdict, measured, difference = R.verdict_best("x", {"x": x, "y": _s([15, 16, 17]), "z": far})
    assert verdict == "disagrees" and "beaten beyond the spread by y" in measured
    assert difference.mean == pytest.approx(-5.0)
    # x has the highest mean (11 vs 10.67) but y is within the spread (d = 1, -1, 1): cannot tell
    verdict, measured, difference = R.verdict_best("x", {"x": x, "y": _s([9, 12, 11]), "z": far})
    assert verdict == "cannot tell" and difference.mean == pytest.approx(1 / 3) and "runner-up (y)" in measured
    # the runner-up is beaten but a noisier third value is not: "best" is not shown
    assert R.verdict_best("x", {"x": x, "y": _s([8, 9, 10]), "z": _s([0, 20, 0])})[0] == "cannot tell"
    assert R.verdict_best("x", {"x": x, "y": _s([], seeds=())})[0] == "not run"


# -- claims ------------------------------------------------------------------------------------
def test_claims_table_on_constructed_results():
    table3 = fake_results("table3", {
        "BBCE": {"avg": [0.10, 0.11, 0.12]},
        "BBCE + contrastive": {"avg": [0.20, 0.23, 0.21]},
        "BBCE + triplet": {"avg": [0.21, 0.22, 0.22]},  # vs contrastive: +1, -1, +1 points -> cannot tell
    })
    table4 = fake_results("table4", {  # blocks lose by 2 points on every seed -> disagrees
        "no block-based processing": {"avg": [0.30, 0.31, 0.32]},
        "block-based processing": {"avg": [0.28, 0.29, 0.30]},
    })
    rows = R.claims({"table3": table3, "table4": table4}).set_index("claim")
    assert len(rows) == 13 and list(rows.columns) == R.CLAIM_COLUMNS[1:]
    triplet = rows.loc["the triplet loss adds to BBCE"]  # +11, +11, +10 points
    assert triplet["verdict"] == "agrees" and triplet["difference"] == pytest.approx(32 / 3)
    assert triplet["seeds"] == 3 and "37.10" in triplet["paper"] and "23.78" in triplet["paper"]
    assert triplet["measured on"] == table3.label()
    assert rows.loc["triplet >= contrastive", "verdict"] == "cannot tell"
    assert rows.loc["triplet >= contrastive", "difference"] == pytest.approx(1 / 3)
    blocks = rows.loc["block-based processing helps"]
    assert blocks["verdict"] == "disagrees" and blocks["difference"] == pytest.approx(-2.0)
    assert blocks["spread"] == pytest.approx(0.0, abs=1e-9)
    assert "37.10" in blocks["paper"] and "33.90" in blocks["paper"]  # Table 1's row vs Table 4's, averaged
    # artefacts not given: not run
    for claim in ("BBCE beats BCE (each + triplet)", "κ = 4 is the best clipping value",
                  "k = 10 is the best k at block size 60", "the class-specific distance beats the custom distance"):
        assert rows.loc[claim, "verdict"] == "not run" and rows.loc[claim, "seeds"] == 0


def test_best_claims_read_the_sweep():
    values = {f"k={k}": {"avg": [v, v + 0.001, v + 0.002]} for k, v in ((2, 0.10), (5, 0.12), (10, 0.20), (15, 0.15), (20, 0.11))}
    rows = R.claims({"figure4a": fake_results("figure4a", values)}).set_index("claim")
    row = rows.loc["k = 10 is the best k at block size 60"]
    assert row["verdict"] == "agrees" and row["difference"] == pytest.approx(5.0)  # 20 % vs k=15's 15 %
    assert "runner-up (k=15)" in row["measured"]
    values["k=5"] = {"avg": [0.30, 0.31, 0.32]}
    rows = R.claims({"figure4a": fake_results("figure4a", values)}).set_index("claim")
    assert rows.loc["k = 10 is the best k at block size 60", "verdict"] == "disagrees"


# -- the protocol audit ------------------------------------------------------------------------
def test_best_test_row_takes_the_highest_map_05_plus_07_first_on_ties():
    metrics = pd.DataFrame({"iteration": [3, 6, 9, 12], "map@0.5": [0.2, 0.25, 0.3, 0.2], "map@0.7": [0.1, 0.1, 0.05, 0.15]})
    assert R.best_test_row(metrics)["iteration"] == 6  # sums 0.30, 0.35, 0.35, 0.35: the first of the ties


@pytest.fixture(scope="module")
def smoke_table1(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    summary = E.run_artefacts(["table1"], "smoke", (0, 1), store, device="cpu", progress=False)
    assert not summary.failed, summary.line()
    return E.collect("table1", "smoke", (0, 1), store, device="cpu")


@pytest.mark.slow
def test_protocol_audit_of_the_smoke_table1_runs(smoke_table1):
    audit = R.protocol_audit(smoke_table1)
    assert list(audit["choice"]) == ["a", "b", "c", "b+c", "d: last", "d: best test"]
    for column in ("what", "seeds", "0.1", "0.3", "0.5", "0.7", "avg", R.CHANGE_FROM_A, "mean avg", "change avg", "note", "source"):
        assert column in audit.columns
    assert (audit["seeds"] == 2).all()
    rows = audit.set_index("choice")
    # (a) rescored from the scores files equals what training stored as the run's results
    stored = {t: np.mean([100 * e.results["map"][str(t)] for e in smoke_table1.entries.values()]) for t in R.TIOUS}
    for t in R.TIOUS:
        assert rows.loc["a", f"mean {R.column(t)}"] == pytest.approx(stored[t], rel=1e-9)
        assert rows.loc["d: last", f"mean {R.column(t)}"] == pytest.approx(stored[t], rel=1e-9)  # the log's last row
    assert rows.loc["a", "change avg"] == 0 and rows.loc["a", R.CHANGE_FROM_A] == "—"
    assert rows.loc["b", "change avg"] == pytest.approx(rows.loc["b", "mean avg"] - rows.loc["a", "mean avg"])
    # the test-selected checkpoint is never worse than the last one on the quantity it maximises
    best, last = rows.loc["d: best test"], rows.loc["d: last"]
    assert best["mean 0.5"] + best["mean 0.7"] >= last["mean 0.5"] + last["mean 0.7"] - 1e-9
    assert "seed 0" in best["note"] and "synthetic" in best["source"]


# -- Figure 5's choice of video -----------------------------------------------------------------
def test_pick_video_takes_the_most_instances_then_the_first_name():
    gt = pd.DataFrame({"video": ["v3", "v1", "v1", "v2", "v2", "v3", "v3"],
                       "label": ["LongJump", "HammerThrow", "HammerThrow", "HammerThrow", "HammerThrow", "HammerThrow", "LongJump"]})
    assert R.pick_video(gt, "HammerThrow") == "v1"  # v1 and v2 have two each: v1 first by name
    assert R.pick_video(gt, "LongJump") == "v3"
    assert R.pick_video(gt, "GolfSwing") is None


# -- the notebooks -------------------------------------------------------------------------------
def _generator():
    spec = importlib.util.spec_from_file_location("make_reproduction_notebooks", REPO / "notebooks" / "make_reproduction_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", E.ALL_NAMES)
def test_committed_notebooks_are_what_the_generator_writes(name):
    generator = _generator()
    committed = (REPO / "notebooks" / f"reproduce_{name}.ipynb").read_text()
    assert committed == generator.text(name), f"run notebooks/make_reproduction_notebooks.py ({name})"
    notebook = nbformat.reads(committed, as_version=4)
    nbformat.validate(notebook)
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and parameters[0].source == generator.PARAMETERS
    assert notebook.cells[0].cell_type == "markdown" and "not THUMOS14" in notebook.cells[0].source
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert f'"{name}"' in code and f'out / "{name}' in code  # trains its grid and writes <name>.csv / figures
