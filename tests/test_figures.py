"""The paper's figures (widgets.figures): hand-built results for Figures 2-4, one smoke run for Figure 5."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from wtal_kit import experiments as E  # noqa: E402
from wtal_kit import experiments as R  # noqa: E402
from widgets import figures as F  # noqa: E402


def fake_results(name: str, avg_by_variant: dict, seeds=(0, 1, 2)) -> E.ArtefactResults:
    """ArtefactResults by hand: every tIoU of variant v at seed i is avg_by_variant[v][i] + 0.01 * (tIoU index)."""
    artefact = E.ARTEFACTS[name]
    rows = []
    for variant in artefact.variants:
        for seed, value in zip(seeds, avg_by_variant[variant.label]):
            for j, tiou in enumerate(R.TIOUS):
                rows.append({"variant": variant.label, "seed": seed, "key": "k", "tiou": tiou, "map": value + 0.01 * j})
    base = E.base_config("smoke")
    configs = {v.label: E.variant_config(base, v, seeds[0]) for v in artefact.variants}
    return E.ArtefactResults(artefact, "smoke", tuple(seeds), pd.DataFrame(rows), {}, configs, [])


FIGURE2 = {"BCE": [0.10, 0.12, 0.14], "Softmax": [0.20, 0.20, 0.20], "BBCE": [0.30, 0.33, 0.36]}


def test_figure2_bars_hold_the_mean_and_std_over_seeds():
    results = fake_results("figure2", FIGURE2)
    fig = F.tiou_bars(results)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, matplotlib.container.BarContainer)]
    assert len(bars) == 3 and all(len(c.patches) == 4 for c in bars)
    # BCE at tIoU 0.3 (index 1): 11, 13, 15 % -> 13; BBCE at 0.7 (index 3): 33, 36, 39 % -> 36
    assert bars[0].patches[1].get_height() == pytest.approx(13.0)
    assert bars[2].patches[3].get_height() == pytest.approx(36.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["BCE", "Softmax", "BBCE"]
    assert results.label() in " ".join(t.get_text().replace("\n", " ") for t in fig.texts)

    interactive = F.tiou_bars_plotly(results)
    assert [trace.name for trace in interactive.data] == ["BCE", "Softmax", "BBCE"]
    assert list(interactive.data[0].x) == ["0.1", "0.3", "0.5", "0.7"]
    np.testing.assert_allclose(interactive.data[0].error_y.array, [2.0] * 4)  # 10, 12, 14 (+ j): sample std 2
    np.testing.assert_allclose(interactive.data[1].error_y.array, [0.0] * 4)
    np.testing.assert_allclose(interactive.data[2].y, [33.0, 34.0, 35.0, 36.0])
    assert "synthetic" in interactive.layout.title.text


def test_figure3_has_one_bar_group_per_distance():
    results = fake_results("figure3", {v.label: [0.1, 0.2, 0.3] for v in E.ARTEFACTS["figure3"].variants})
    fig = F.paper_figure(results)
    assert len(fig.axes[0].patches) == 4 * 4
    assert len(F.interactive_figure(results).data) == 4


def test_figure4_sweeps_put_the_swept_value_on_x():
    values = {f"k={k}": [v, v + 0.02, v + 0.04] for k, v in ((2, 0.10), (5, 0.12), (10, 0.20), (15, 0.15), (20, 0.11))}
    results = fake_results("figure4a", values)
    data = F.sweep_data(results)
    np.testing.assert_array_equal(data["x"], [2, 5, 10, 15, 20])
    np.testing.assert_allclose(data["mean"], [16.0, 18.0, 26.0, 21.0, 17.0])  # avg = value + 0.04 (index 4), + 2
    np.testing.assert_allclose(data["std"], [2.0] * 5)
    line = F.sweep_plotly(results).data[0]
    np.testing.assert_array_equal(line.x, [2, 5, 10, 15, 20])
    fig = F.sweep(results)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), data["mean"])

    blocks = fake_results("figure4b", {f"block {b}": [0.1, 0.1, 0.1] for b in (20, 40, 60, 80, 100)})
    data = F.sweep_data(blocks)
    np.testing.assert_array_equal(data["x"], [20, 40, 60, 80, 100])
    assert data["k"] == [1, 2, 4, 5, 6]  # 6 % of the block, rounded
    ticks = [t.get_text() for t in F.sweep(blocks).axes[0].get_xticklabels()]
    assert ticks[2] == "60\n(k=4)"


def test_one_seed_draws_no_error_bars():
    results = fake_results("figure2", {k: v[:1] for k, v in FIGURE2.items()}, seeds=(0,))
    assert not any(trace.error_y.visible for trace in F.tiou_bars_plotly(results).data)
    F.tiou_bars(results)  # draws without error bars (NaN std) rather than failing


def test_only_figures_have_a_bar_or_sweep_figure():
    with pytest.raises(ValueError):
        F.paper_figure(fake_results("table3", {v.label: [0.1, 0.1, 0.1] for v in E.ARTEFACTS["table3"].variants}))


def test_files_are_written_and_the_page_works_offline(tmp_path):
    results = fake_results("figure2", FIGURE2)
    png, pdf = F.save_figure(F.tiou_bars(results), tmp_path / "sub" / "figure2")
    assert png.name == "figure2.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.name == "figure2.pdf" and pdf.read_bytes()[:5] == b"%PDF-"
    page = F.write_html(F.tiou_bars_plotly(results), tmp_path / "figure2_interactive.html")
    text = page.read_text()
    assert 'src="plotly.min.js"' in text and "cdn.plot.ly" not in text and 'src="http' not in text
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000


# -- Figure 5 on a smoke run ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def figure5_results(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    summary = E.run_artefacts(["figure5"], "smoke", (0,), store, device="cpu", progress=False)
    assert not summary.failed, summary.line()
    return E.collect("figure5", "smoke", (0,), store, device="cpu")


@pytest.mark.slow
def test_figure5_picks_the_video_with_most_instances_of_each_class(figure5_results):
    views = R.figure5_views(figure5_results)
    assert [name for name, _ in views] == list(R.FIGURE5_CLASSES)
    ground_truth = figure5_results.entries[(E.FULL_METHOD, 0)].run().localizer().ground_truth
    for name, view in views:
        counts = ground_truth[ground_truth["label"] == name].groupby("video").size()
        assert view.label == name and counts[view.video] == counts.max()
        assert len(view.ground_truth) == counts.max()
    table = R.figure5_table(views, figure5_results)
    assert list(table["class"]) == list(R.FIGURE5_CLASSES) and (table["ground truth"] > 0).all()
    assert R.figure5_label(figure5_results).endswith("the run of seed 0 (its test split)")


@pytest.mark.slow
def test_figure5_stacks_four_rows_per_class(figure5_results, tmp_path):
    views = R.figure5_views(figure5_results)
    label = figure5_results.label()
    fig = F.timelines(views, label)
    assert len(fig.axes) == 4 * 4
    assert [ax.get_ylabel() for ax in fig.axes[:4]] == list(F.TIMELINE_ROWS)
    assert fig.axes[0].get_title(loc="left").startswith("(a) Hammer Throw")
    # the activation row draws the view's probabilities (sigmoid of the clipped CAS)
    np.testing.assert_allclose(fig.axes[3].lines[0].get_ydata(), views[0][1].probs)
    interactive = F.timelines_plotly(views, label)
    assert len(interactive.data) == 6 * 4
    assert "synthetic" in interactive.layout.title.text
    png, pdf = F.save_figure(fig, tmp_path / "figure5")
    assert png.stat().st_size > 10_000 and pdf.stat().st_size > 1000


def test_class_titles():
    assert [F.class_title(c) for c in R.FIGURE5_CLASSES] == ["Hammer Throw", "Long Jump", "Cliff Diving", "Golf Swing"]
