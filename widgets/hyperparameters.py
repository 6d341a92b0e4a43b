"""Live hyperparameter sliders: change the method's settings, train, and watch the effect.

:class:`Sliders` draws a :class:`wtal_kit.apps.sessions.Session` (the queue, the background trainings,
the results store); it holds only UI state. Set a control's ``value`` and press ``train`` (or call
:meth:`Sliders.train`) in tests as in the page.

- Every control is checked as it changes (``sessions.check``: Config's own validation, and k no
  larger than the block); a bad value gets its message next to its control and ``train`` is
  disabled until it is fixed.
- Before starting, the page says what the run costs: at once from the store, or the small preset's
  measured time scaled by the iterations.
- While runs train (in background threads; the page stays responsive) the page shows a progress
  bar per run and, for the latest run, the loss terms at every iteration and the mAP at every
  evaluation; redraws are throttled to one per ``throttle`` seconds.
- Every run that ends joins the comparison table and the mAP-vs-tIoU chart, with the paper's
  number beside a setting the paper prints (labelled: real features, single run), and opens in the
  explorer below the table.
"""

from __future__ import annotations

import html
import math
import os
import threading
import time

import ipywidgets as w
import plotly.graph_objects as go

import wtal_kit
from wtal_kit import experiments
from wtal_kit.apps import sessions
from wtal_kit.config import BUDGETS, PAPER_TIOUS, Config
from wtal_kit.data.catalog import layout_of
from wtal_kit.evaluate import is_average
from widgets.explorer import explorer_app
from widgets.livefigure import TEMPLATE, LiveFigure

THROTTLE = 0.2  # seconds between two redraws of the live charts
MAX_CURVE_POINTS = 600  # the loss curves are thinned to at most this many points
TIOU_LINES = 40  # lines of the mAP-vs-tIoU chart (runs and published rows)
ERROR = "#b00020"
LOSS_TERMS = sessions.LOSS_TERMS  # the live chart's loss traces, in this order
MAP_TRACE = len(LOSS_TERMS)  # the live chart's traces: the loss terms, then the mAP at each evaluation
CONTROL = dict(width="100%", max_width="400px")  # a control fills its column, up to this
CLASSIFICATION_LABELS = [("BBCE", "bbce"), ("BCE", "bce"), ("Softmax-MIL", "softmax_mil")]
METRIC_LABELS = [("triplet", "triplet"), ("contrastive", "contrastive"), ("none", "none")]
DISTANCE_LABELS = [("class-specific", "class"), ("cosine", "cosine"), ("Euclidean", "euclidean"), ("custom", "custom")]
# how the table names a changed field
SHORT = {"kappa": "κ", "k": "k", "block_size": "block", "metric_weight": "λ", "margin": "α", "classification_loss": "cls",
         "metric_loss": "metric", "distance": "distance", "lr": "lr", "threshold": "threshold", "gamma": "γ"}
STATUS_TEXT = {"queued": "queued", "running": "training", "finished": "trained", "store": "from the store",
               "stopped": "stopped", "cancelled": "cancelled", "failed": "failed"}


def _fmt(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def queue_text(running: int, waiting: int, workers: int) -> str:
    """When a run asked for now would start, from the session's queue (runs training, runs waiting, trainings at once)."""
    ahead = waiting + max(0, running - workers + 1)  # runs that start before it
    if ahead:
        return (f" It waits for {ahead} run{'s' if ahead != 1 else ''} ahead of it ({running} training, {waiting} queued; "
                f"{workers} at once).")
    return f" It starts at once, beside {running} run{'s' if running != 1 else ''} training." if running else ""


def cost_text(config: Config, preset: str, in_store: bool, queue: str = "") -> str:
    """What starting ``config`` will cost, said before it starts (only measured numbers); ``queue``: :func:`queue_text`."""
    if in_store:
        return "This setting is in the results store: its result is shown at once, without training."
    if preset == "small" and layout_of(config.dataset) == "thumos14":
        small = sessions.preset_config("small")
        measured = f"{sessions.SMALL_PRESET_SECONDS:.0f} s"
        if config.iterations == small.iterations:
            how = f"about {measured} of one CPU core (the small preset's {small.iterations} iterations, measured)"
        else:
            estimate = sessions.SMALL_PRESET_SECONDS * config.iterations / small.iterations
            how = (f"about {estimate:.0f} s of one CPU core ({config.iterations} iterations: the small preset's "
                   f"{small.iterations} measured {measured}, scaled)")
        return f"Cost: {how}; longer while other programs use the cores.{queue}"
    if preset == "smoke":
        return f"Cost: seconds (d={config.feature_dim}, {config.iterations} iterations).{queue}"
    return (f"Cost: not measured on this machine ({preset} preset, {layout_of(config.dataset) or config.dataset}, "
            f"d={config.feature_dim}, {config.iterations} iterations); the small preset on the THUMOS14 layout takes "
            f"about {sessions.SMALL_PRESET_SECONDS:.0f} s of one CPU core.{queue}")


def setting_text(config: Config, base: Config) -> str:
    """The fields of ``config`` that differ from its preset's full method, e.g. "κ=none, metric=none"."""
    parts = []
    if not config.block_processing:
        parts.append("no blocks")
    for name, short in SHORT.items():
        if name in ("block_size",) and not config.block_processing:
            continue
        if getattr(config, name) != getattr(base, name):
            parts.append(f"{short}={_fmt(getattr(config, name))}")
    return ", ".join(parts) or "full method"


def _cell(values, key, scale: float = 1.0) -> str:
    """One number of a table, to one decimal; "—" where there is none."""
    try:
        value = scale * float(values[key])
    except (KeyError, TypeError, ValueError):
        return "—"
    return "—" if math.isnan(value) else f"{value:.1f}"


class Sliders:
    """The app's widgets and state over a :class:`wtal_kit.apps.sessions.Session`."""

    def __init__(self, session: sessions.Session, *, preset: str = sessions.DEFAULT_PRESET, layout: str = "thumos14",
                 throttle: float = THROTTLE):
        self.session = session
        self.throttle = throttle
        self.base = sessions.preset_config(preset, layout)
        self.bases = {}  # run number -> (preset, layout, base config) it was asked from
        self.watched = None  # the run the live charts show
        self._drawn_final = set()  # run numbers already in the mAP-vs-tIoU chart
        self._published_traces = set()
        self._last_draw = 0.0
        self._draw_lock = threading.RLock()
        self._building = True
        self.problems = {}

        label = {"style": {"description_width": "150px"}, "layout": w.Layout(**CONTROL)}
        self.preset = w.Dropdown(options=[(f"{name}: {BUDGETS[name][1]}", name) for name in sessions.PRESETS],
                                 value=preset, description="preset", style={"description_width": "150px"},
                                 layout=w.Layout(width="100%", max_width="720px"))
        self.layout = w.ToggleButtons(options=[("THUMOS14 layout", "thumos14"), ("ActivityNet1.2 layout", "activitynet12")],
                                      value=layout, description="dataset layout", style={"description_width": "150px"})
        self.kappa = w.FloatSlider(min=0.5, max=10.0, step=0.5, description="κ (clipping)", continuous_update=False, **label)
        self.no_clipping = w.Checkbox(description="no clipping", indent=False, layout=w.Layout(width="auto"))
        self.k = w.IntSlider(min=1, max=100, description="k (top-k per block)", continuous_update=False, **label)
        self.block_size = w.IntSlider(min=5, max=300, step=5, description="block size", continuous_update=False, **label)
        self.no_blocks = w.Checkbox(description="no blocks", indent=False, layout=w.Layout(width="auto"))
        self.metric_weight = w.FloatText(description="λ (metric weight)", **label)
        self.margin = w.FloatText(description="margin α", **label)
        self.classification_loss = w.Dropdown(options=CLASSIFICATION_LABELS, description="classification loss", **label)
        self.metric_loss = w.Dropdown(options=METRIC_LABELS, description="metric loss", **label)
        self.distance = w.Dropdown(options=DISTANCE_LABELS, description="distance", **label)
        self.lr = w.FloatText(description="learning rate", **label)
        self.iterations = w.IntText(description="iterations", **label)
        self.seed = w.IntText(description="seed", **label)
        self.threshold = w.FloatSlider(min=0.05, max=0.95, step=0.01, description="threshold", continuous_update=False, **label)
        self.gamma = w.FloatSlider(min=0.0, max=2.0, step=0.05, description="γ (video score)", continuous_update=False, **label)
        self.fields = ("kappa", "k", "block_size", "metric_weight", "margin", "classification_loss", "metric_loss", "distance",
                       "lr", "iterations", "seed", "threshold", "gamma")
        self.notes = {name: w.HTML(layout=w.Layout(flex="1 1 200px", min_width="0")) for name in self.fields}
        self.notes["block_processing"] = self.notes["block_size"]

        self.cost = w.HTML()
        self.train_button = w.Button(description="train", button_style="primary", tooltip="queue a run of these settings")
        self.stop_button = w.Button(description="stop", tooltip="end every running run cleanly (it keeps what it reached) and empty the queue")
        self.message = w.HTML()
        self.progress_box = w.VBox()
        self.bars = {}  # run number -> (HTML label, IntProgress)
        self._bar_numbers = []  # the runs whose bars the page shows
        # Two charts, hidden until there is a run to draw (no empty axes before): the live run (loss terms,
        # mAP at each evaluation) and mAP vs tIoU of every finished run. Neither has a width: each fills its box.
        self.live = LiveFigure(layout=go.Layout(
            template=TEMPLATE, height=420, margin=dict(l=60, r=60, t=40, b=40), legend=dict(orientation="h", y=-0.2),
            xaxis=dict(title="iteration"), yaxis=dict(title="loss"),
            # its own round ticks from 0 (plotly.js 3 syncs an overlaying axis's ticks to the left one's by default)
            yaxis2=dict(title="mAP avg (%)", overlaying="y", side="right", rangemode="tozero", tickmode="auto",
                        showgrid=False),
            title=dict(text="no run yet", font=dict(size=13))))
        for term in LOSS_TERMS:
            self.live.add_scatter(name=f"loss: {term}", mode="lines", x=[], y=[])
        self.live.add_scatter(name="mAP avg at each evaluation", mode="lines+markers", x=[], y=[], yaxis="y2")
        self.tiou_chart = LiveFigure(layout=go.Layout(
            template=TEMPLATE, height=420, margin=dict(l=60, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.2),
            xaxis=dict(title="tIoU threshold (every finished run; diamonds: the paper)"),
            yaxis=dict(title="mAP (%)", rangemode="tozero"), title=dict(text="mAP vs tIoU", font=dict(size=13))))
        # a fixed set of lines, filled as runs end (a figure is updated in place, never grown after display)
        for _ in range(TIOU_LINES):
            self.tiou_chart.add_scatter(x=[], y=[], mode="lines+markers", visible=False)
        self.charts = w.HBox([w.VBox([figure], layout=w.Layout(flex="1 1 420px", min_width="0"))
                              for figure in (self.live, self.tiou_chart)],
                             layout=w.Layout(display="none", flex_flow="row wrap", width="100%"))
        self.table = w.HTML()
        self._tiou_used = 0
        self.explore_pick = w.Dropdown(options=[], description="run", layout=w.Layout(width="260px"))
        self.explore_button = w.Button(description="open in the explorer")
        self.explorer_box = w.VBox()

        self._set_controls(self.base)
        for name in self.fields:
            getattr(self, name).observe(self._on_control, names="value")
        for box in (self.no_clipping, self.no_blocks):
            box.observe(self._on_control, names="value")
        self.preset.observe(self._on_preset, names="value")
        self.layout.observe(self._on_preset, names="value")
        self.train_button.on_click(lambda button: self._guard(self.train))
        self.stop_button.on_click(lambda button: self._guard(self.session.stop))
        self.explore_button.on_click(lambda button: self._guard(self.open_in_explorer))
        session.subscribe(self._on_event)

        self.widget = self._layout_widgets()
        self._building = False
        self._guard(self.check)
        self._draw_table()

    # -- layout ---------------------------------------------------------------------------
    def _row(self, name, *extra) -> w.HBox:
        return w.HBox([getattr(self, name), *extra, self.notes[name]],
                      layout=w.Layout(flex_flow="row wrap", align_items="center", width="100%"))

    def _layout_widgets(self) -> w.Widget:
        """Rows that wrap: in a narrow output (a notebook's) the two columns stack, and the charts fill the width."""
        title = w.HTML("<h3 style='margin:4px 0'>wtal-kit live hyperparameter sliders</h3>"
                       "<div>Change the method's settings, train, and compare. Our numbers come from the embedded "
                       "synthetic benchmark (synthetic features, not I3D): they are not THUMOS14 results. "
                       "Published numbers are the paper's, on real features, single runs. "
                       "mAP avg: the paper's, the mean over tIoU 0.1, 0.3, 0.5, 0.7.</div>")
        column = dict(flex="1 1 440px", min_width="0")
        method = w.VBox([self._row("kappa", self.no_clipping), self._row("k"), self._row("block_size", self.no_blocks),
                         self._row("metric_weight"), self._row("margin"), self._row("classification_loss"),
                         self._row("metric_loss"), self._row("distance")], layout=w.Layout(**column))
        budget = w.VBox([self._row("lr"), self._row("iterations"), self._row("seed"), w.HTML("<b>localization</b>"),
                         self._row("threshold"), self._row("gamma")], layout=w.Layout(**column))
        return w.VBox([
            title, self.preset, self.layout,
            w.HBox([method, budget], layout=w.Layout(flex_flow="row wrap", width="100%")),
            self.cost,
            w.HBox([self.train_button, self.stop_button]),
            self.message,
            self.progress_box,
            self.charts,
            w.HTML("<b>Runs</b>: mAP (%) at each run's threshold and γ; ours on the embedded synthetic benchmark, "
                   "in grey the paper's row of the same setting (real features, single run); avg: the paper's "
                   "(0.1, 0.3, 0.5, 0.7)"),
            w.Box([self.table], layout=w.Layout(overflow="auto", width="100%")),
            w.HBox([self.explore_pick, self.explore_button], layout=w.Layout(flex_flow="row wrap")),
            self.explorer_box,
        ], layout=w.Layout(padding="6px", width="100%"))

    # -- the controls -----------------------------------------------------------------------
    def _set_controls(self, config: Config) -> None:
        building, self._building = self._building, True
        self.no_clipping.value = config.kappa is None
        self.kappa.value = 4.0 if config.kappa is None else config.kappa
        self.kappa.disabled = config.kappa is None
        self.no_blocks.value = not config.block_processing
        self.block_size.disabled = not config.block_processing
        for name in self.fields:
            if name != "kappa":
                getattr(self, name).value = getattr(config, name)
        self._building = building

    def changes(self) -> dict:
        """The config fields the controls set."""
        values = {name: getattr(self, name).value for name in self.fields}
        values["kappa"] = None if self.no_clipping.value else float(self.kappa.value)
        values["block_processing"] = not self.no_blocks.value
        values["eval_every"] = sessions.eval_every(self.base, values["iterations"])
        return values

    def check(self) -> Config | None:
        """Check the controls; show each problem next to its control; the config, or None while invalid."""
        config, self.problems = sessions.check(self.base, self.changes())
        for name, note in self.notes.items():
            problem = self.problems.get(name)
            note.value = f"<span style='color:{ERROR}'>{html.escape(problem)}</span>" if problem else ""
        unplaced = [f"{name}: {text}" for name, text in self.problems.items() if name not in self.notes]
        self.train_button.disabled = config is None
        if config is None:
            self.cost.value = ("<div style='color:%s'>Fix the settings marked in red to train%s</div>"
                               % (ERROR, html.escape(": " + "; ".join(unplaced)) if unplaced else "."))
            return None
        trained = sessions.training_config(config, self.base)
        in_store = self.session.store.get(experiments.config_key(trained)) is not None
        runs = list(self.session.runs)
        queue = queue_text(sum(run.status == "running" for run in runs), sum(run.status == "queued" for run in runs),
                           self.session.workers)
        self.cost.value = f"<div>{html.escape(cost_text(config, self.preset.value, in_store, queue))}</div>"
        return config

    def config(self) -> Config | None:
        return self.check()

    def _on_control(self, change) -> None:
        if self._building:
            return
        self.kappa.disabled = self.no_clipping.value
        self.block_size.disabled = self.no_blocks.value
        self._guard(self.check)

    def _on_preset(self, change) -> None:
        if self._building:
            return

        def reset():
            self.base = sessions.preset_config(self.preset.value, self.layout.value)
            self._set_controls(self.base)
            self.check()

        self._guard(reset)

    # -- actions --------------------------------------------------------------------------------
    def train(self) -> sessions.Request | None:
        """Queue a run of the current settings (or show its stored result at once)."""
        config = self.check()
        if config is None:
            return None
        base = self.base
        run = self.session.submit(config, base)
        self.bases.setdefault(run.number, (self.preset.value, self.layout.value, base))
        self.watched = run
        self._say(f"run #{run.number}: {STATUS_TEXT.get(run.status, run.status)}"
                  + (f" — {run.message}" if run.message else ""))
        self.redraw(force=True)  # with the cost line (its queue now holds this run)
        return run

    def open_in_explorer(self, number: int | None = None):
        """Show the explorer on a finished or stopped run below the table."""
        number = self.explore_pick.value if number is None else number
        if number is None:
            raise wtal_kit.InputError("no finished run to open yet")
        run = self.session.runs[number - 1]
        if run.run_dir is None:
            raise wtal_kit.InputError(f"run #{number} has no results to explore ({STATUS_TEXT.get(run.status, run.status)})")
        explorer = explorer_app(run.run_dir, roots=[run.run_dir])
        explorer.threshold.value, explorer.gamma.value = run.config.threshold, run.config.gamma
        self.explorer = explorer
        self.explorer_box.children = [w.HTML(f"<b>Run #{number} in the explorer</b>"), explorer.widget]
        return explorer

    # -- events from the session (training threads) ----------------------------------------------
    def _on_event(self, run: sessions.Request, kind: str) -> None:
        if kind == "started" and (self.watched is None or not self.watched.active or self.watched.status == "queued"):
            self.watched = run
        if kind in ("started", "finished"):
            status = STATUS_TEXT.get(run.status, run.status)
            self._say(f"run #{run.number}: {status}" + (f" — {run.message}" if run.message else ""),
                      error=run.status == "failed")
        if kind == "iteration" and time.monotonic() - self._last_draw < self.throttle:
            return
        self.redraw(force=kind != "iteration")

    def redraw(self, force: bool = True) -> None:
        """Draw the progress, the live charts and (force) the table and the tIoU chart."""
        with self._draw_lock:
            self._last_draw = time.monotonic()
            try:
                self._draw_progress()
                self._draw_curves()
                if force:
                    self._draw_table()
                    self._draw_tiou()
                    self._draw_pick()
                    if not self._building:
                        self.check()  # the cost line: the queue changed, or the store holds what just finished
            except Exception as error:  # noqa: BLE001 - the page keeps working
                self._say(f"{type(error).__name__}: {error}", error=True)

    def _draw_progress(self) -> None:
        active = [run for run in self.session.runs if run.active]
        numbers = [run.number for run in active]
        for run in active:
            if run.number not in self.bars:
                self.bars[run.number] = (w.HTML(layout=w.Layout(width="380px")), w.IntProgress(min=0, max=run.iterations))
            label, bar = self.bars[run.number]
            bar.value = run.iteration
            where = "queued" if run.status == "queued" else f"{run.iteration} / {run.iterations} iterations"
            label.value = f"run #{run.number} ({html.escape(self._setting(run))}): {where}"
        if self._bar_numbers != numbers:
            self._bar_numbers = numbers
            self.progress_box.children = [w.HBox(list(self.bars[n])) for n in numbers]

    def _draw_curves(self) -> None:
        run = self.watched
        if run is None:
            return
        losses = list(run.losses)
        step = max(1, len(losses) // MAX_CURVE_POINTS)
        shown = losses[::step]
        if losses and shown[-1] is not losses[-1]:
            shown.append(losses[-1])
        evaluations = list(run.evaluations)
        with self.live.batch_update():
            x = [i for i, _ in shown]
            for index, term in enumerate(LOSS_TERMS):
                self.live.data[index].update(x=x, y=[terms.get(term) for _, terms in shown])
            self.live.data[MAP_TRACE].update(x=[i for i, _ in evaluations], y=[100 * m["avg"] for _, m in evaluations])
            state = STATUS_TEXT.get(run.status, run.status)
            self.live.layout.title.text = (f"run #{run.number} ({self._setting(run)}): {state}, {run.iteration} / "
                                           f"{run.iterations} iterations — mAP at the preset's threshold "
                                           f"{run.trained_config.threshold:g}, γ {run.trained_config.gamma:g}")
        self.charts.layout.display = "flex"  # from the first run on

    def _setting(self, run) -> str:
        base = self.bases.get(run.number, (None, None, self.base))[2]
        return setting_text(run.config, base)

    def _draw_table(self) -> None:
        runs = list(self.session.runs)
        head = "".join(f"<th>@{t:g}</th>" for t in PAPER_TIOUS)
        rows = []
        for run in runs:
            preset, layout, _ = self.bases.get(run.number, ("?", "?", None))
            status = STATUS_TEXT.get(run.status, run.status)
            if run.status == "stopped":
                status = f"stopped at iteration {run.iteration}"
            elif run.status == "failed":
                status = f"failed: {run.message}"
            elif run.status == "running":
                status = f"training ({run.iteration} / {run.iterations})"
            values = run.mean_ap
            cells = "".join(f"<td>{_cell(values, t, 100)}</td>" for t in PAPER_TIOUS)
            cells += f"<td><b>{_cell(values, 'avg', 100)}</b></td>"
            seconds = "" if run.seconds is None or math.isnan(run.seconds) else f"{run.seconds:.0f} s"
            rows.append(
                f"<tr class='wtal-run' data-run='{run.number}'><td>#{run.number}</td><td>{html.escape(status)}</td>"
                f"<td>{html.escape(self._setting(run))}</td><td>{html.escape(f'{preset}, {layout}')}</td>"
                f"<td>{run.config.seed}</td><td>{run.config.iterations}</td>{cells}<td>{seconds}</td></tr>")
            for match in sessions.matches(run.config)[:1]:
                label = (f"<td></td><td colspan='5' style='text-align:left'>{html.escape(match.name)}<br>"
                         f"<small>{html.escape(match.source)}</small></td>")
                if match.published is None:
                    rows.append(f"<tr class='wtal-published' style='color:#666'>{label}<td colspan='6'></td></tr>")
                    continue
                published = "".join(f"<td>{_cell(match.published, t)}</td>" for t in PAPER_TIOUS)
                published += f"<td>{_cell(match.published, 'avg')}</td>"
                rows.append(f"<tr class='wtal-published' style='color:#666;font-style:italic'>{label}{published}<td></td></tr>")
        header = (f"<thead><tr><th>run</th><th>status</th><th>setting</th><th>preset, layout</th><th>seed</th>"
                  f"<th>iterations</th>{head}<th>avg</th><th>time</th></tr></thead>")
        body = "".join(rows) or "<tr><td colspan='12'>no run yet: press train</td></tr>"
        cell_padding = "<style>table.wtal-runs th, table.wtal-runs td {padding: 2px 8px}</style>"  # columns apart
        self.table.value = (f"{cell_padding}<table class='wtal-runs' style='border-collapse:collapse;text-align:right'>"
                            f"{header}<tbody>{body}</tbody></table>")

    def _draw_tiou(self) -> None:
        lines = []  # (name, x, y, style) of the lines this redraw adds
        for run in list(self.session.runs):
            if run.number in self._drawn_final or run.mean_ap is None or run.active:
                continue
            self._drawn_final.add(run.number)
            keys = [t for t in run.mean_ap.index if not is_average(t)]
            stopped = run.status == "stopped"
            lines.append((f"#{run.number} {self._setting(run)}" + (" (stopped)" if stopped else ""),
                          [float(t) for t in keys], [100 * float(run.mean_ap[t]) for t in keys],
                          dict(mode="lines+markers", line=dict(dash="dot" if stopped else "solid"), marker=dict(symbol="circle", size=6))))
            for match in sessions.matches(run.config)[:1]:
                if match.published is None or match.name in self._published_traces:
                    continue
                self._published_traces.add(match.name)
                points = [(t, match.published[t]) for t in PAPER_TIOUS if not math.isnan(match.published[t])]
                lines.append((f"paper: {match.name.split(' (')[0]}", [t for t, _ in points], [v for _, v in points],
                              dict(mode="markers", line=dict(dash="solid"), marker=dict(symbol="diamond-open", size=10))))
        if not lines:
            return
        with self.tiou_chart.batch_update():
            for name, x, y, style in lines:
                if self._tiou_used == TIOU_LINES:
                    self.tiou_chart.layout.xaxis.title.text = f"tIoU threshold (the first {TIOU_LINES} lines; the table has every run)"
                    break
                self.tiou_chart.data[self._tiou_used].update(name=name, x=x, y=y, visible=True, **style)
                self._tiou_used += 1
        self.charts.layout.display = "flex"

    def _draw_pick(self) -> None:
        options = [(f"#{run.number} {self._setting(run)}", run.number) for run in self.session.runs if run.run_dir is not None]
        values = [value for _, value in options]
        if values != [value for _, value in self.explore_pick.options]:
            current = self.explore_pick.value
            self.explore_pick.options = options
            self.explore_pick.value = current if current in values else (values[-1] if values else None)

    # -- messages ----------------------------------------------------------------------------------
    def _say(self, text: str = "", error: bool = False) -> None:
        color = ERROR if error else "#555"
        self.message.value = f"<div style='color:{color}'>{html.escape(text)}</div>" if text else ""

    def _guard(self, action, *args):
        """Run an action; any error becomes one line in the page (never a traceback)."""
        try:
            return action(*args)
        except wtal_kit.WtalError as error:
            self._say(str(error), error=True)
        except Exception as error:  # noqa: BLE001 - the page must keep working
            self._say(f"{type(error).__name__}: {error}", error=True)
        return None


ENV_STORE, ENV_PRESET, ENV_LAYOUT, ENV_WORKERS = ("WTAL_EXPLORE_STORE", "WTAL_EXPLORE_PRESET", "WTAL_EXPLORE_LAYOUT",
                                                  "WTAL_EXPLORE_WORKERS")


class Unavailable:
    """What the page shows when the app cannot start: one line, no traceback."""

    def __init__(self, problem: str):
        self.widget = w.HTML(f"<div style='color:{ERROR}'>The sliders could not start: {html.escape(problem)}</div>")


def sliders_app(store=experiments.DEFAULT_STORE, preset: str = sessions.DEFAULT_PRESET, layout: str = "thumos14",
                workers: int | None = None) -> Sliders:
    """The app on a results store (the reproduction's, by default)."""
    return Sliders(sessions.Session(store, workers=workers), preset=preset, layout=layout)


def sliders_from_parameters(store: str = "", preset: str = "", layout: str = "", workers: str = ""):
    """The Voila app's entry point: notebook parameters, else WTAL_EXPLORE_* variables (``wtal sliders``), else defaults."""
    store = store or os.environ.get(ENV_STORE, "") or experiments.DEFAULT_STORE
    preset = preset or os.environ.get(ENV_PRESET, "") or sessions.DEFAULT_PRESET
    layout = layout or os.environ.get(ENV_LAYOUT, "") or "thumos14"
    workers = str(workers or os.environ.get(ENV_WORKERS, "")).strip()
    try:
        return sliders_app(store, preset, layout, int(workers) if workers.isdigit() else (workers or None))
    except wtal_kit.WtalError as error:
        return Unavailable(str(error))
    except Exception as error:  # noqa: BLE001 - a page, not a traceback
        return Unavailable(f"{type(error).__name__}: {error}")
