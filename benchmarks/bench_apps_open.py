"""The apps as people open them: seconds from navigation to widgets, and what fifty page views leave behind.

    python benchmarks/bench_apps_open.py                 # explorer (THUMOS14 and ActivityNet layouts), sliders
    python benchmarks/bench_apps_open.py --opens 3       # fewer opens (a smoke test)
    python benchmarks/bench_apps_open.py --soak 50       # also: open and close the explorer 50 times, then count

Each app is served as ``wtal explore`` / ``wtal sliders`` serve it (one preheated kernel, a closed
page's kernel shut down 5 s later). After the server's first start (its kernel pool filled and quiet),
each of ``--opens`` rounds opens the page in a fresh browser context (a first visit: nothing cached),
then again in the same context (a return visit: plotly's module and the page's scripts cached, as for
anyone who opened the app before), and times, from navigation:

- **widgets**: the first frame that shows the widgets (Voila's cells displayed, a widget visible);
- **whole page**: the first frame with the explorer's table and its three figures drawn with data,
  or the sliders' table and cost line;

noted by the page itself at each animation frame (its clock starts at navigation).

The page is closed, and the next view waits until its kernel is gone and the refilled pool is quiet
(a user does not open the app again within a second). Target (issue 18): median widgets <= 2 s on
the THUMOS14 layout for both apps, <= 4 s at ActivityNet scale.

``--soak N`` then opens and closes the explorer's page N times in a row, each as soon as the
previous one showed its widgets, and prints the server's kernels (its ``ipykernel_launcher``
descendants) and the resident memory of its whole process tree before, at the most, and once the
closed pages' kernels are gone. Times depend on the machine and its load: the load average is
printed beside them (measure below ~1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the browser helpers of the test suite
sys.path.insert(0, str(REPO_ROOT))

from browser import (chromium_page, kernel_pids, tree_rss_mb, voila_app, wait_for_widgets,  # noqa: E402
                     wait_until_kernels_quiet)

NOTEBOOKS = REPO_ROOT / "notebooks"
EXPLORER_DRAWN = """document.querySelector('.wtal-map') &&
  [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.data && p.data.length && p._fullLayout).length >= 3"""
SLIDERS_DRAWN = "document.querySelector('table.wtal-runs') && document.body.innerText.includes('Cost:')"
# At every animation frame from the start, the page notes when its widgets were first on screen (Voila's
# cells shown, a widget visible) and when it was first whole: a frame is what the user sees, and none is
# produced while the main thread runs a long task (plotly.js starting), so this is when it was painted.
WATCH = """
window.wtalShownAt = 0; window.wtalDrawnAt = 0;
const wtalCheck = () => {
  const cells = document.querySelector('#rendered_cells');
  const shown = cells && getComputedStyle(cells).display !== 'none'
    && [...document.querySelectorAll('.jupyter-widgets')].some(e => e.offsetParent !== null);
  if (shown && !window.wtalShownAt) window.wtalShownAt = performance.now();
  if (shown && !window.wtalDrawnAt && (DRAWN)) window.wtalDrawnAt = performance.now();
  if (!window.wtalDrawnAt) requestAnimationFrame(wtalCheck);
};
requestAnimationFrame(wtalCheck);
"""
TARGETS_S = {"thumos14": 2.0, "activitynet12": 4.0}


def open_once(context, url: str, drawn: str) -> tuple[float, float]:
    """A page view in ``context``: seconds from navigation to widgets on screen, and to the whole page; then closed."""
    page = context.new_page()
    try:
        page.add_init_script(WATCH.replace("DRAWN", drawn))
        page.goto(url)
        wait_for_widgets(page, timeout=120)  # fails at once with the page's text if a cell failed
        page.wait_for_function("() => window.wtalDrawnAt > 0", timeout=120_000, polling=100)
        return page.evaluate("window.wtalShownAt") / 1000, page.evaluate("window.wtalDrawnAt") / 1000
    finally:
        page.close()


def measure_opens(name: str, notebook: Path, params: dict, drawn: str, opens: int, layout: str) -> None:
    load = os.getloadavg()[0]
    times = {"first visit": ([], []), "return visit": ([], [])}
    with voila_app(notebook, params, timeout=120) as url:
        server = url.process.pid
        with chromium_page() as page:
            browser = page.context.browser
            wait_until_kernels_quiet(server, count=1, timeout=180)  # the server's first start: its pool filled
            first = browser.new_context()
            open_once(first, url, drawn)  # not counted: the server's first page
            first.close()
            for _ in range(opens):
                context = browser.new_context(viewport={"width": 1400, "height": 1500})  # nothing cached
                try:
                    for visit in times:  # a first visit, then the same browser again (its cache warm)
                        wait_until_kernels_quiet(server, count=1, timeout=180)  # the last page's kernel gone, pool quiet
                        widgets, whole = open_once(context, url, drawn)
                        times[visit][0].append(widgets)
                        times[visit][1].append(whole)
                finally:
                    context.close()
    target = TARGETS_S[layout]
    for visit, (widgets, whole) in times.items():
        median = statistics.median(widgets)
        print(f"{name + ', ' + visit:52s} widgets median {median:4.1f} s (max {max(widgets):4.1f})  whole page median "
              f"{statistics.median(whole):4.1f} s  over {opens}  (target <= {target:g} s: {'met' if median <= target else 'NOT met'})")
    print(f"{'':52s} load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")


def soak(notebook: Path, params: dict, views: int) -> None:
    load = os.getloadavg()[0]
    with voila_app(notebook, params, timeout=120) as url:
        server = url.process.pid
        with chromium_page() as page:
            browser = page.context.browser
            wait_until_kernels_quiet(server, count=1, timeout=180)
            kernels_before, rss_before = len(kernel_pids(server)), tree_rss_mb(server)
            most_kernels, most_rss = kernels_before, rss_before
            started = time.perf_counter()
            for _ in range(views):
                context = browser.new_context()
                page = context.new_page()
                page.goto(url)
                wait_for_widgets(page, timeout=120)
                context.close()  # the tab closed, no beforeunload
                most_kernels, most_rss = max(most_kernels, len(kernel_pids(server))), max(most_rss, tree_rss_mb(server))
            took = time.perf_counter() - started
            settled = time.perf_counter()
            wait_until_kernels_quiet(server, count=kernels_before, timeout=300)
            settled = time.perf_counter() - settled
            kernels_after, rss_after = len(kernel_pids(server)), tree_rss_mb(server)
    print(f"soak: {views} page views opened and closed in {took:.0f} s (load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after)\n"
          f"  kernels: {kernels_before} before (the preheated pool), {most_kernels} at the most, {kernels_after} "
          f"{settled:.0f} s after the last page closed\n"
          f"  memory of the server's process tree: {rss_before:.0f} MB before, {most_rss:.0f} MB at the most, "
          f"{rss_after:.0f} MB after")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=REPO_ROOT / "runs" / "demo", help="THUMOS14-layout run [runs/demo]")
    parser.add_argument("--activitynet-run", type=Path, default=REPO_ROOT / "runs" / "bench-activitynet",
                        help="ActivityNet-layout run (benchmarks/bench_explorer.py trains it) [runs/bench-activitynet]")
    parser.add_argument("--opens", type=int, default=7, help="timed page views of each app [7]")
    parser.add_argument("--soak", type=int, default=0, metavar="N", help="also open and close the explorer N times [0]")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; headless chromium; one preheated kernel per app")
    for name, run, layout in (("explorer, THUMOS14 layout", args.run, "thumos14"),
                              ("explorer, ActivityNet layout", args.activitynet_run, "activitynet12")):
        if not run.exists():
            print(f"{name}: no {run} (make demo / benchmarks/bench_explorer.py train it), skipped")
            continue
        run = run.resolve()
        measure_opens(name, NOTEBOOKS / "explorer.ipynb", {"run": run, "roots": run}, EXPLORER_DRAWN, args.opens, layout)
    with tempfile.TemporaryDirectory(prefix="wtal-bench-store-") as store:
        measure_opens("sliders, THUMOS14 layout (small preset)", NOTEBOOKS / "sliders.ipynb",
                      {"store": store, "preset": "small", "layout": "thumos14"}, SLIDERS_DRAWN, args.opens, "thumos14")
    if args.soak:
        if args.run.exists():
            run = args.run.resolve()
            soak(NOTEBOOKS / "explorer.ipynb", {"run": run, "roots": run}, args.soak)
        else:
            print(f"soak: no {args.run}, skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
