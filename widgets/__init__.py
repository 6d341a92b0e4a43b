"""Dashboards of wtal-kit: ipywidgets + plotly components over the library.

Importable and testable without a browser; the Voila apps in ``notebooks/`` build them.

    import widgets
    app = widgets.explorer_app("runs/demo")   # a run folder or a scores file
    app.widget                                 # display it in a notebook or Voila
    sliders = widgets.sliders_app("runs/store")  # live hyperparameter sliders over a results store

``widgets.figures`` draws the paper's Figures 2-5 from the reproduction's results (the
reproduction notebooks use it with ``wtal_kit.experiments`` and ``wtal_kit.experiments``,
which importing it loads).
"""

from widgets import figures
from widgets.explorer import Explorer, PathPolicy, explorer_app, explorer_from_parameters
from widgets.sliders import Sliders, sliders_app, sliders_from_parameters
from widgets.timeline import Timeline, cursor_report, timeline_data

__all__ = ["Explorer", "figures", "PathPolicy", "Timeline", "cursor_report", "explorer_app", "explorer_from_parameters", "timeline_data",
           "Sliders", "sliders_app", "sliders_from_parameters"]
