"""The paper's Figures 2-5 from the reproduction's results: matplotlib (PNG, PDF) and plotly (interactive).

- Figures 2 and 3 (:func:`tiou_bars`, :func:`tiou_bars_plotly`): mAP at each tIoU threshold,
  one bar per variant, error bars = std over seeds.
- Figure 4a / 4b (:func:`sweep`, :func:`sweep_plotly`): average mAP against k or the block
  size, error bars = std over seeds; a dotted line marks the paper's optimum.
- Figure 5 (:func:`timelines`, :func:`timelines_plotly`): for each class, the paper's stacked
  timeline of one test video: ground truth, detections, detection score and class activation
  (sigmoid of the clipped CAS), from :func:`wtal_kit.experiments.figure5_views`.

Every figure carries the provenance label of its results (``results.label()``): on the embedded
benchmark these are synthetic-benchmark numbers, not THUMOS14 ones. matplotlib is imported
inside the functions (figures are made without pyplot, so nothing global is kept);
:func:`save_figure` writes PNG and PDF, :func:`write_html` a page that works offline.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from wtal_kit import experiments
from wtal_kit.config import PAPER_TIOUS

BAR_TIOUS = PAPER_TIOUS  # the x axis of Figures 2 and 3 (the paper plots no average there)
PAPER_OPTIMUM = {"figure4a": 10, "figure4b": 60}  # what the paper reports as best (Sec. 4.4)
AXIS_NAMES = {"k": "k (segments averaged per block)", "block_size": "block size (segments), k = 6% of it"}
TIMELINE_ROWS = ("ground truth", "detections", "detection score", "class activation")
COLORS = {"ground truth": "#2ca02c", "tp": "#1f77b4", "fp": "#d62728", "score": "#9467bd", "activation": "#ff7f0e",
          "threshold": "#7f7f7f", "optimum": "#7f7f7f"}


# -- numbers -------------------------------------------------------------------------------
def tiou_bar_data(results) -> dict:
    """{"variants": labels, "tious": BAR_TIOUS, "mean": (V, 4) mAP %, "std": (V, 4) (NaN with one seed)}."""
    table = experiments.summary_table(results)
    keys = [experiments.column(t) for t in BAR_TIOUS]
    return {
        "variants": list(table["variant"]),
        "tious": BAR_TIOUS,
        "mean": table[[f"mean {k}" for k in keys]].to_numpy(dtype=float),
        "std": table[[f"std {k}" for k in keys]].to_numpy(dtype=float),
    }


def sweep_data(results) -> dict:
    """{"x": the swept field's value per variant, "variants", "mean", "std" (avg mAP %), "field", "k"}."""
    field = results.artefact.x
    if field is None:
        raise ValueError(f"{results.artefact.name} is not a sweep")
    table = experiments.summary_table(results)
    configs = [results.configs[label] for label in table["variant"]]
    return {
        "x": np.array([getattr(c, field) for c in configs], dtype=float),
        "k": [c.k for c in configs],
        "variants": list(table["variant"]),
        "mean": table["mean avg"].to_numpy(dtype=float),
        "std": table["std avg"].to_numpy(dtype=float),
        "field": field,
    }


def _errors(std: np.ndarray):
    """Error bars for matplotlib: None when no variant has a spread (one seed), NaN -> 0 otherwise."""
    return None if np.all(np.isnan(std)) else np.nan_to_num(std)


def _caption(fig, label: str, width: int = 150) -> None:
    fig.text(0.01, 0.005, textwrap.fill(label, width), fontsize=6.5, va="bottom", ha="left", color="#444444")


def _html_label(label: str, width: int = 140) -> str:
    return "<br>".join(textwrap.wrap(label, width))


# -- Figures 2 and 3 -------------------------------------------------------------------------
def tiou_bars(results):
    """Figure 2 / 3: grouped bars, mAP (%) at each tIoU per variant, error bars = std over seeds."""
    from matplotlib.figure import Figure

    data = tiou_bar_data(results)
    n = len(data["variants"])
    fig = Figure(figsize=(7.5, 5.0))
    ax = fig.add_axes((0.09, 0.2, 0.88, 0.68))
    width = 0.8 / max(n, 1)
    positions = np.arange(len(BAR_TIOUS))
    for i, variant in enumerate(data["variants"]):
        ax.bar(positions + (i - (n - 1) / 2) * width, data["mean"][i], width, yerr=_errors(data["std"][i]),
               capsize=3, label=variant)
    ax.set_xticks(positions, [f"{t:g}" for t in BAR_TIOUS])
    ax.set_xlabel("tIoU threshold")
    ax.set_ylabel("mAP (%)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(results.artefact.title, fontsize=11)
    _caption(fig, results.label() + ". Error bars: std over seeds.")
    return fig


def tiou_bars_plotly(results) -> go.Figure:
    """The interactive Figure 2 / 3: one bar trace per variant, x = tIoU threshold."""
    data = tiou_bar_data(results)
    x = [f"{t:g}" for t in BAR_TIOUS]
    traces = [
        go.Bar(name=variant, x=x, y=data["mean"][i],
               error_y=dict(type="data", array=np.nan_to_num(data["std"][i]), visible=not np.all(np.isnan(data["std"][i]))),
               hovertemplate="tIoU %{x}: %{y:.2f} ± %{error_y.array:.2f}<extra>" + variant + "</extra>")
        for i, variant in enumerate(data["variants"])
    ]
    return go.Figure(traces, layout=go.Layout(
        barmode="group", xaxis_title="tIoU threshold", yaxis_title="mAP (%)", height=520, width=900,
        title=dict(text=f"{results.artefact.title}<br><sup>{_html_label(results.label())}</sup>", font=dict(size=14)),
        margin=dict(t=110)))


# -- Figure 4 --------------------------------------------------------------------------------
def _tick(field: str, x: float, k: int) -> str:
    return f"{x:g}" if field == "k" else f"{x:g}\n(k={k})"


def sweep(results):
    """Figure 4a / 4b: average mAP (%) against k or the block size, error bars = std over seeds."""
    from matplotlib.figure import Figure

    data = sweep_data(results)
    fig = Figure(figsize=(6.5, 4.8))
    ax = fig.add_axes((0.11, 0.24, 0.85, 0.64))
    ax.errorbar(data["x"], data["mean"], yerr=_errors(data["std"]), marker="o", capsize=4, label="ours (mean ± std)")
    optimum = PAPER_OPTIMUM.get(results.artefact.name)
    if optimum is not None:
        ax.axvline(optimum, color=COLORS["optimum"], linestyle=":", label=f"the paper's best ({optimum:g})")
    ax.set_xticks(data["x"], [_tick(data["field"], x, k) for x, k in zip(data["x"], data["k"])])
    ax.set_xlabel(AXIS_NAMES.get(data["field"], data["field"]))
    ax.set_ylabel("average mAP (%), tIoU 0.1-0.7")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(results.artefact.title, fontsize=11)
    _caption(fig, results.label() + ". Error bars: std over seeds.", width=120)
    return fig


def sweep_plotly(results) -> go.Figure:
    """The interactive Figure 4a / 4b: one line with error bars; the paper's optimum as a dotted line."""
    data = sweep_data(results)
    fig = go.Figure(go.Scatter(
        x=data["x"], y=data["mean"], mode="lines+markers", name="ours (mean ± std)",
        error_y=dict(type="data", array=np.nan_to_num(data["std"]), visible=not np.all(np.isnan(data["std"]))),
        customdata=data["k"], hovertemplate=f"{data['field']} %{{x}} (k=%{{customdata}}): %{{y:.2f}}<extra></extra>"))
    optimum = PAPER_OPTIMUM.get(results.artefact.name)
    if optimum is not None:
        fig.add_vline(x=optimum, line_dash="dot", line_color=COLORS["optimum"],
                      annotation_text=f"the paper's best ({optimum:g})")
    fig.update_layout(
        xaxis_title=AXIS_NAMES.get(data["field"], data["field"]), yaxis_title="average mAP (%), tIoU 0.1-0.7",
        height=500, width=800, margin=dict(t=110),
        title=dict(text=f"{results.artefact.title}<br><sup>{_html_label(results.label(), 120)}</sup>", font=dict(size=14)))
    return fig


# -- Figure 5 --------------------------------------------------------------------------------
def class_title(name: str) -> str:
    """"HammerThrow" -> "Hammer Throw"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)


def _panel_title(index: int, name: str, view) -> str:
    tp = int(view.detections["true_positive"].sum())
    return (f"({'abcdefgh'[index]}) {class_title(name)}: {view.video}, {len(view.ground_truth)} ground truth, "
            f"{len(view.detections)} detections ({tp} true positive at tIoU {view.tiou:g})")


def timelines(views, label: str):
    """Figure 5: per class, four stacked rows over time: ground truth, detections (true positives
    blue, false positives red), detection score, class activation (sigmoid of the clipped CAS, with
    the localization threshold). ``views``: [(class, VideoView)] (experiments.figure5_views)."""
    from matplotlib.figure import Figure

    n = len(views)
    fig = Figure(figsize=(11, 2.9 * max(n, 1) + 0.6))
    outer = fig.add_gridspec(max(n, 1), 1, hspace=0.32, top=1 - 0.45 / fig.get_figheight(),
                             bottom=0.95 / fig.get_figheight(), left=0.12, right=0.98)
    for p, (name, view) in enumerate(views):
        rows = outer[p, 0].subgridspec(4, 1, height_ratios=[0.45, 0.45, 1.0, 1.0], hspace=0.12)
        axes = [fig.add_subplot(rows[r, 0]) for r in range(4)]
        for ax in axes[1:]:
            ax.sharex(axes[0])
        end = float(view.t_end[-1]) if len(view.t_end) else view.duration
        gt = view.ground_truth
        axes[0].broken_barh(list(zip(gt["t_start"], gt["t_end"] - gt["t_start"])), (0, 1), color=COLORS["ground truth"])
        det = view.detections
        colors = [COLORS["tp"] if tp else COLORS["fp"] for tp in det["true_positive"]]
        axes[1].broken_barh(list(zip(det["t_start"], det["t_end"] - det["t_start"])), (0, 1), color=colors)
        axes[2].bar(det["t_start"], det["score"], width=det["t_end"] - det["t_start"], align="edge",
                    color=COLORS["score"], alpha=0.6)
        axes[3].step(view.t_start, view.probs, where="post", color=COLORS["activation"], linewidth=0.8)
        if view.localization == "paper":
            axes[3].axhline(view.threshold, color=COLORS["threshold"], linestyle="--", linewidth=0.8)
        axes[3].set_ylim(0, 1.02)
        for ax, row in zip(axes, TIMELINE_ROWS):
            ax.set_ylabel(row, rotation=0, ha="right", va="center", fontsize=8)
            ax.set_xlim(0, end)
            ax.tick_params(labelsize=7)
            if row in ("ground truth", "detections"):
                ax.set_yticks([])
            if row != "class activation":
                ax.tick_params(labelbottom=False)
        axes[0].set_title(_panel_title(p, name, view), fontsize=9, loc="left")
        axes[3].set_xlabel("time (s)", fontsize=8)
    fig.suptitle("Figure 5: qualitative results of the full method", fontsize=11, y=1 - 0.08 / fig.get_figheight())
    _caption(fig, label + ". Rows: ground truth; detections (blue: true positive, red: false positive); detection "
             "score (max + gamma·P(c|V)); class activation sigmoid(clip(CAS)) with the threshold (dashed).")
    return fig


def timelines_plotly(views, label: str) -> go.Figure:
    """The interactive Figure 5: for each class, the four rows of :func:`timelines` as subplots (6 traces a class)."""
    from plotly.subplots import make_subplots

    n = max(len(views), 1)
    titles = []
    for p, (name, view) in enumerate(views):
        titles += [_panel_title(p, name, view), "", "", ""]
    fig = make_subplots(rows=4 * n, cols=1, row_heights=[0.45, 0.45, 1.0, 1.0] * n, vertical_spacing=0.012,
                        subplot_titles=titles or None)
    for p, (name, view) in enumerate(views):
        row = 4 * p + 1
        gt, det = view.ground_truth, view.detections
        tp, fp = det[det["true_positive"]], det[~det["true_positive"]]

        def bars(table, what, color):
            return go.Bar(orientation="h", base=table["t_start"], x=table["t_end"] - table["t_start"],
                          y=[what] * len(table), marker_color=color, name=what, showlegend=p == 0, legendgroup=what,
                          hovertext=[f"{what}: {s:.1f}-{e:.1f} s" for s, e in zip(table["t_start"], table["t_end"])],
                          hoverinfo="text")

        fig.add_trace(bars(gt, "ground truth", COLORS["ground truth"]), row=row, col=1)
        fig.add_trace(bars(tp, "true positive", COLORS["tp"]), row=row + 1, col=1)
        fig.add_trace(bars(fp, "false positive", COLORS["fp"]), row=row + 1, col=1)
        fig.add_trace(go.Bar(x=det["t_start"], y=det["score"], width=det["t_end"] - det["t_start"], offset=0,
                             marker_color=COLORS["score"], opacity=0.6, name="detection score", showlegend=p == 0,
                             legendgroup="score", hovertemplate="%{x:.1f} s: score %{y:.3f}<extra></extra>"),
                      row=row + 2, col=1)
        fig.add_trace(go.Scatter(x=view.t_start, y=view.probs, line=dict(shape="hv", color=COLORS["activation"], width=1),
                                 name="class activation", showlegend=p == 0, legendgroup="activation",
                                 hovertemplate="%{x:.1f} s: %{y:.3f}<extra></extra>"), row=row + 3, col=1)
        end = float(view.t_end[-1]) if len(view.t_end) else view.duration
        fig.add_trace(go.Scatter(x=[0, end], y=[view.threshold] * 2, mode="lines", name="threshold",
                                 line=dict(dash="dash", color=COLORS["threshold"], width=1), showlegend=p == 0,
                                 legendgroup="threshold", visible=view.localization == "paper"), row=row + 3, col=1)
        for r in range(row, row + 4):
            fig.update_xaxes(range=[0, end], row=r, col=1, matches=f"x{row if row > 1 else ''}" if r > row else None,
                             showticklabels=r == row + 3)
        fig.update_yaxes(title_text="score", row=row + 2, col=1)
        fig.update_yaxes(title_text="activation", range=[0, 1.02], row=row + 3, col=1)
    fig.update_layout(barmode="overlay", height=330 * n + 150, width=1100, margin=dict(t=120),
                      title=dict(text=f"Figure 5: qualitative results<br><sup>{_html_label(label)}</sup>",
                                 font=dict(size=14)))
    return fig


# -- dispatch, display and files ----------------------------------------------------------------
# artefact -> (matplotlib figure, plotly figure) of its results; Figure 5 is drawn by timelines()
FIGURES = {
    "figure2": (tiou_bars, tiou_bars_plotly),
    "figure3": (tiou_bars, tiou_bars_plotly),
    "figure4a": (sweep, sweep_plotly),
    "figure4b": (sweep, sweep_plotly),
}


def _drawers(results):
    name = results.artefact.name
    if name not in FIGURES:
        raise ValueError(f"no bar or sweep figure for {name!r} (Figure 5: timelines(figure5_views(results), label))")
    return FIGURES[name]


def paper_figure(results):
    """The matplotlib figure of Figure 2, 3, 4a or 4b's results (Figure 5: :func:`timelines`)."""
    return _drawers(results)[0](results)


def interactive_figure(results) -> go.Figure:
    """The plotly figure of Figure 2, 3, 4a or 4b's results."""
    return _drawers(results)[1](results)


def save_figure(fig, path_without_suffix) -> list[Path]:
    """Write ``<path>.png`` (150 dpi) and ``<path>.pdf``; returns both paths."""
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_name(base.name + ".png"), base.with_name(base.name + ".pdf")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths


PLOTLY_JS = "plotly.min.js"


def write_html(fig: go.Figure, path) -> Path:
    """A page of the interactive figure that needs no network: it loads plotly.min.js from its folder.

    The bundle is written beside the page when missing (atomically, as is the page: several
    notebooks may write into one folder at once).
    """
    from plotly.offline import get_plotlyjs

    from wtal_kit.atomic import atomic_write_text

    path = Path(path)
    bundle = path.parent / PLOTLY_JS
    if not bundle.is_file():
        atomic_write_text(bundle, get_plotlyjs())
    atomic_write_text(path, fig.to_html(include_plotlyjs="directory", full_html=True))
    return path


def show(fig) -> None:
    """Display a matplotlib figure in a notebook (as PNG; figures here are made without pyplot)."""
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    display(Image(buffer.getvalue()))


__all__ = ["interactive_figure", "paper_figure", "save_figure", "show", "sweep", "sweep_data", "sweep_plotly",
           "tiou_bar_data", "tiou_bars", "tiou_bars_plotly", "timelines", "timelines_plotly", "write_html"]
