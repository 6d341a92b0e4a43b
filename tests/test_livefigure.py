"""widgets.livefigure: what a page that connects late receives, and which module a figure asks the browser for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

go = pytest.importorskip("plotly.graph_objects")

from widgets.livefigure import FIGURE_MODULE_ENV, LiveFigure, shared_module  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def drawn(figure, **changes):
    """The figure after the changes an app makes before any page connects: new data, a title."""
    figure.add_scatter(x=[0.0, 1.0], y=[0.0, 0.0], name="curve")
    with figure.batch_update():
        figure.data[0].update(y=np.array([0.25, 0.75]))
        figure.layout.title.text = "drawn"
    return figure.get_state()


def test_a_late_page_receives_the_current_figure():
    state = drawn(LiveFigure())
    (trace,) = state["_widget_data"]
    assert trace["name"] == "curve" and trace["type"] == "scatter"
    assert np.frombuffer(trace["y"]["buffer"], dtype=trace["y"]["dtype"]).tolist() == [0.25, 0.75]  # numpy: a binary buffer
    assert state["_widget_layout"]["title"] == {"text": "drawn"}


def test_plotly_alone_sends_the_constructed_figure():
    """Why LiveFigure exists: plotly's own state keeps the figure it was constructed with (plotly 7.1)."""
    state = drawn(go.FigureWidget())
    assert state["_widget_data"] == [] and "title" not in state["_widget_layout"]


def test_a_single_key_is_answered_as_asked():
    figure = LiveFigure(data=[go.Bar(x=["a"], y=[1])])
    assert set(figure.get_state("_widget_data")) == {"_widget_data"}
    assert set(figure.get_state(["_config"])) == {"_config"}


def _esm_in_a_kernel(env: dict) -> str:
    probe = "from widgets.livefigure import LiveFigure; print(LiveFigure().get_state('_esm')['_esm'])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_apps_server_names_one_shared_module():
    path = "voila/templates/wtal-offline/static/plotly-widget-7.js"
    env = {k: v for k, v in os.environ.items() if k != FIGURE_MODULE_ENV}
    shared = _esm_in_a_kernel({**env, FIGURE_MODULE_ENV: path})
    assert shared.strip() == shared_module(path).strip()
    assert f"import(new URL({json.dumps(path)}, base).href)" in shared and len(shared) < 1000
    inline = _esm_in_a_kernel(env)  # a notebook elsewhere: plotly's bundle inlined (megabytes), imported once a window
    assert len(inline) > 1_000_000 and "globalThis.wtalSharedModules" in inline
    assert json.loads(inline.split("new Blob([", 1)[1].split("], {type", 1)[0]) == str(go.FigureWidget._esm)
