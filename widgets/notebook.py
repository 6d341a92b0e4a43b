"""The dashboards in a notebook: one call each, a widget back (JupyterLab, Notebook 7, VS Code).

    import widgets
    widgets.explore("runs/demo")                  # a run folder, a scores file, wtal_kit.Scores or a Localizer
    widgets.explore("runs/mine", videos="videos/")  # with the frame under the time cursor (issue 19)
    widgets.sliders(store="runs/store")           # live hyperparameter sliders over a results store

The last expression of a cell displays the widget. Its layout follows the output's width: rows of
controls wrap, figures fill their box, and nothing needs more than 1000 px. The object behind each
widget is ``.explorer`` / ``.app`` on it (set a control's value, read a table), as in the tests.
Recomputes run in a background thread, as in the app, so the kernel keeps taking the page's moves.
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as w

import wtal_kit
from wtal_kit import experiments
from wtal_kit.apps import sessions
from widgets.explorer import Explorer, PathPolicy, explorer_app
from widgets.explorer_files import read_compared
from widgets.hyperparameters import sliders_app


def explore(run_or_scores, compare: dict | None = None, roots=(), *, videos=None, background: bool = True) -> w.Widget:
    """The detection explorer on a run folder, a scores file, a ``wtal_kit.Scores`` or a ``wtal_kit.Localizer``.

    ``compare``: method name -> ActivityNet-style results JSON, shown beside ours. ``roots``: folders the
    explorer's "open" box may read (default: the run's folder; none for scores in memory). ``videos``: a
    folder of the run's video files: the frame under the time cursor and thumbnails along the video.
    The returned widget's ``.explorer`` is the :class:`widgets.explorer.Explorer`.
    """
    if isinstance(run_or_scores, (str, Path)):
        app = explorer_app(run_or_scores, compare, roots, background=background, videos=videos)
    else:
        if isinstance(run_or_scores, wtal_kit.Localizer):
            localizer = run_or_scores
        elif isinstance(run_or_scores, wtal_kit.Scores):
            localizer = wtal_kit.Localizer(run_or_scores)
        else:
            raise wtal_kit.InputError(f"explore() takes a run folder, a scores file, Scores or a Localizer, "
                                      f"got {type(run_or_scores).__name__}", field="run_or_scores")
        compared = {name: read_compared(Path(file), localizer) for name, file in (compare or {}).items()}
        app = Explorer(localizer, compared, label="in memory", path_policy=PathPolicy(roots) if roots else None,
                       background=background, videos=videos)
    widget = app.widget
    widget.explorer = app
    return widget


def sliders(store=experiments.DEFAULT_STORE, preset: str = sessions.DEFAULT_PRESET, layout: str = "thumos14",
            workers: int | None = None) -> w.Widget:
    """The live hyperparameter sliders over a results store (the reproduction's, by default).

    The returned widget's ``.app`` is the :class:`widgets.hyperparameters.Sliders`.
    """
    app = sliders_app(store, preset, layout, workers)
    widget = app.widget
    widget.app = app
    return widget
