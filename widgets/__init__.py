"""Dashboards of wtal-kit: ipywidgets + plotly components over the library.

Importable and testable without a browser; the Voila apps in ``notebooks/`` build them, and a
notebook (JupyterLab, Notebook 7, VS Code) displays them as they are:

    import widgets
    widgets.explore("runs/demo")                  # the detection explorer on a run folder or a scores file
    widgets.sliders(store="runs/store")           # live hyperparameter sliders over a results store

Both return an ipywidgets widget (the last line of a cell shows it); ``explore(...).explorer`` and
``sliders(...).app`` are the objects behind them. ``widgets.explorer_app`` and ``widgets.sliders_app``
(the objects, whose ``.widget`` is the same widget) keep working.

``widgets.figures`` draws the paper's Figures 2-5 from the reproduction's results (the
reproduction notebooks use it with ``wtal_kit.experiments``, which importing it loads).
Names are loaded on first use: ``import widgets`` alone imports no plotly, and the Voila server
imports ``widgets.voila_kernels`` without the dashboards.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "explore": "widgets.notebook",
    "sliders": "widgets.notebook",
    "Explorer": "widgets.explorer",
    "PathPolicy": "widgets.explorer",
    "explorer_app": "widgets.explorer",
    "explorer_from_parameters": "widgets.explorer",
    "Sliders": "widgets.hyperparameters",
    "sliders_app": "widgets.hyperparameters",
    "sliders_from_parameters": "widgets.hyperparameters",
    "Timeline": "widgets.timeline",
    "cursor_report": "widgets.timeline",
    "timeline_data": "widgets.timeline",
    "LiveFigure": "widgets.livefigure",
}
_MODULES = ("figures",)

__all__ = sorted([*_NAMES, *_MODULES])


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"widgets.{name}")
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'widgets' has no attribute {name!r}")


def __dir__():
    return __all__
