"""Dashboards of wtal-kit: ipywidgets + plotly components over the library.

Importable and testable without a browser; the Voila apps in ``notebooks/`` build them.

    import widgets
    app = widgets.explorer_app("runs/demo")   # a run folder or a scores file
    app.widget                                 # display it in a notebook or Voila
"""

from widgets.explorer import Explorer, PathPolicy, explorer_app, explorer_from_parameters
from widgets.timeline import Timeline, cursor_report, timeline_data

__all__ = ["Explorer", "PathPolicy", "Timeline", "cursor_report", "explorer_app", "explorer_from_parameters", "timeline_data"]
