"""plotly ``FigureWidget``s that start in every page and show what the figure holds now.

Two things plotly's ``FigureWidget`` (plotly 7, on anywidget 0.11) does not do by itself:

1. **A page that connects late sees the figure as it was constructed.** plotly syncs the whole figure
   (its ``_widget_data``/``_widget_layout`` state) at construction and when the FigureWidget itself is
   displayed; every later change travels as a one-off message (restyle, relayout) that only an open view
   receives. A figure that is the child of a Box is never displayed itself, and a Voila page always
   connects after the notebook has drawn it (a preheated kernel ran the notebook before anyone asked).
   :class:`LiveFigure` answers ipywidgets' public ``get_state`` hook, which builds the state a connecting
   page receives, with the figure's current traces and layout (their public ``to_plotly_json``).

2. **The cause of "[anywidget] Failed to initialize model."** anywidget 0.11 gives each model 2 s from its
   creation in the browser to import its module (``_esm``); after that it rejects the model, every later
   message to it is dropped, and the figure never draws. plotly's module is its whole widget bundle (5 MB,
   plotly.js inside), inlined in every FigureWidget's state and imported from a fresh blob URL per figure,
   so the browser compiles and runs plotly.js once per figure. A page of three figures received 15 MB of
   state and ran plotly.js three times in a row; on a loaded 2-core machine the last one passed 2 s.
   Where the apps' server (:mod:`wtal_kit.apps.serve`) serves plotly's bundle as one static file, it names
   it in ``WTAL_FIGURE_MODULE`` (a path under the server's base URL), and each figure's module is a small
   one that imports it: one download (cached across pages), one compile, one run per page, and a few
   hundred bytes of state per figure. Elsewhere (JupyterLab, Notebook 7, VS Code: no such server) each
   figure's module carries plotly's bundle as a string and the first figure of the window imports it;
   the others take the same module (:func:`inline_module`): one run of plotly.js per window.
"""

from __future__ import annotations

import json
import os

import plotly
import plotly.graph_objects as go
import plotly.io as pio

from wtal_kit.apps.serve import FIGURE_MODULE_ENV  # the server sets it, the kernels read it: one name for both


def light_template() -> go.layout.Template:
    """plotly's default look (colours, fonts, grid) without its defaults for 40 trace types and 3-D/map/polar
    subplots that the apps never draw (a sixth of the size in every figure's state, less for plotly.js to
    merge at each redraw), and without ``automargin``, with which plotly lays a figure out twice per redraw."""
    look = pio.templates["plotly"].layout
    return go.layout.Template(layout=dict(
        colorway=look.colorway, font=look.font, hoverlabel=look.hoverlabel, hovermode=look.hovermode,
        paper_bgcolor=look.paper_bgcolor, plot_bgcolor=look.plot_bgcolor, title=look.title,
        xaxis=dict(gridcolor="white", linecolor="white", ticks="", zerolinecolor="white", zerolinewidth=2),
        yaxis=dict(gridcolor="white", linecolor="white", ticks="", zerolinecolor="white", zerolinewidth=2),
    ))


TEMPLATE = light_template()


# The page's other widgets on screen (Voila's cells shown, a slider or a text box visible), or 300 ms gone:
# then one more frame, so that the browser paints them before plotly.js takes the main thread (about 0.7 s
# on a 2-core CPU). anywidget's 2 s from the figure's model to its module leave room for both.
PAINT_FIRST = """await new Promise((painted) => {
  const start = performance.now();
  const shown = () => [...document.querySelectorAll(".widget-slider, .widget-text, .widget-html")].some((e) => e.offsetParent !== null);
  const wait = () => (shown() || performance.now() - start > 300) ? requestAnimationFrame(() => setTimeout(painted, 0))
                                                                   : requestAnimationFrame(wait);
  wait();
});
"""


def shared_module(path: str) -> str:
    """An anywidget module that re-exports plotly's widget module served at ``path`` (relative to the base URL).

    The apps' page preloads that module (``wtal_kit.apps.serve``); the figures import it once the page's
    other widgets are painted (PAINT_FIRST), the same URL for all of them, hence one module.
    """
    return (
        'const config = JSON.parse(document.getElementById("jupyter-config-data")?.textContent || "{}");\n'
        'const base = new URL(config.baseUrl || "/", window.location.href);\n'
        + PAINT_FIRST
        + f"const figure = await import(new URL({json.dumps(path)}, base).href);\n"
        "export default figure.default;\n"
    )


def inline_module() -> str:
    """An anywidget module that carries plotly's widget bundle as a string and imports it once per window.

    The bundle is plotly's own (``go.FigureWidget._esm``, plotly's package_data/widgetbundle.js); a string
    literal costs the browser a scan, not a compile, and the import is shared through ``globalThis``
    under plotly's version, so the figures after the first find plotly.js run already.
    """
    key = json.dumps(f"wtal-plotly-widget-{plotly.__version__}")
    return (
        "const modules = (globalThis.wtalSharedModules ??= {});\n"
        f"modules[{key}] ??= import(URL.createObjectURL(new Blob([{json.dumps(str(go.FigureWidget._esm))}], "
        '{type: "text/javascript"})));\n'
        f"export default (await modules[{key}]).default;\n"
    )


class LiveFigure(go.FigureWidget):
    """A ``FigureWidget`` whose state, when a page connects, is its current figure (see the module's docstring)."""

    _esm = shared_module(os.environ[FIGURE_MODULE_ENV]) if os.environ.get(FIGURE_MODULE_ENV) else inline_module()

    def __init__(self, *args, **kwargs):
        self._constructed = False  # ipywidgets asks for the state while plotly's constructor still runs
        super().__init__(*args, **kwargs)
        self._constructed = True

    def get_state(self, key=None, drop_defaults=False):
        state = super().get_state(key=key, drop_defaults=drop_defaults)
        if not self._constructed:
            return state
        current = {"_widget_data": lambda: [trace.to_plotly_json() for trace in self.data],
                   "_widget_layout": lambda: self.layout.to_plotly_json()}
        for name, value in current.items():
            if name in state:
                state[name] = self.trait_metadata(name, "to_json")(value(), self)
        return state
