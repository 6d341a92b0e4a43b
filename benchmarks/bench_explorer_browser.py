"""The explorer as a user feels it, in headless chromium: from a threshold move to the whole page showing its numbers.

    python benchmarks/bench_explorer_browser.py                                 # runs/demo (`make demo` trains it)
    python benchmarks/bench_explorer_browser.py --run runs/bench-activitynet    # ActivityNet scale (2383 videos)
    python benchmarks/bench_explorer_browser.py --repeats 3                     # fewer repeats (a smoke test)

Serves notebooks/explorer.ipynb with Voila (as `wtal explore` does: a preheated kernel) on a free
loopback port, opens it in Debian's chromium through Playwright, then times, ``--repeats`` times each:

- **one step**: one ArrowRight (or ArrowLeft) on the threshold slider;
- **three quick steps**: three presses in a row, as fast as Playwright sends them;

each from the (last) key press until the *whole page* shows the final threshold's numbers (moves are
``--pause`` seconds apart, as a user looks at the page before moving again): the mAP
table's cells, the per-class AP chart, the error chart, the first 20 labels of the video list and the
figure's threshold line. What the page must show is computed beforehand by an explorer in this process
on the same run (the same code, the same first video and class). The page checks at every animation
frame (``requestAnimationFrame``, about 16 ms apart) and records the time of the first frame that
matches; key presses are timed in the page too (``keydown``), so both ends are the browser's clock.
Then it picks ``--picks`` other videos, each timed until the figure's title names the new video.

Targets (issue 18), medians on a 2-core CPU: three quick steps <= 150 ms on the THUMOS14 layout,
<= 300 ms at ActivityNet scale. Times include the browser, the websocket and the kernel; they vary
across machines and with load: the load average is printed beside them (measure below ~1.5).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the browser helpers of the test suite
sys.path.insert(0, str(REPO_ROOT))

from browser import chromium_page, voila_app, wait_for_widgets  # noqa: E402

NOTEBOOK = REPO_ROOT / "notebooks" / "explorer.ipynb"
TITLE = "() => document.querySelector('.js-plotly-plot')?.layout?.title?.text || ''"
LIST_LABELS = 20  # the video list's first labels that must match
TARGETS_MS = {"thumos14": 150, "activitynet12": 300}

# Reads what the page shows (plots found by their titles); compares with window.wtalExpect at every frame.
WATCH = """() => {
  const plots = () => [...document.querySelectorAll('.js-plotly-plot')];
  const byTitle = (text) => plots().find(p => ((p.layout && p.layout.title && p.layout.title.text) || '').includes(text));
  const numbers = (a) => a ? Array.from(a, Number) : null;
  const close = (a, b) => a && b && a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-6);
  const words = (s) => s.replace(/\\s+/g, ' ').trim();
  window.wtalShown = () => {
    const timeline = byTitle('P(c|V)'), classes = byTitle('per-class AP'), errors = byTitle('false positives by type');
    const select = document.querySelector('select[size]');
    return {
      table: [...document.querySelectorAll('.wtal-map td')].map(td => words(td.innerText)),
      threshold: timeline && timeline.data[1].y ? Number(timeline.data[1].y[0]) : null,
      classes: classes ? numbers(classes.data[0].y) : null,
      false_positives: errors ? numbers(errors.data[0].y) : null,
      missed: errors ? numbers(errors.data[1].y) : null,
      list: select ? [...select.options].slice(0, %d).map(o => words(o.textContent)) : [],
    };
  };
  window.wtalMatches = (want) => {
    const shown = window.wtalShown();
    return JSON.stringify(shown.table) === JSON.stringify(want.table) && Math.abs(shown.threshold - want.threshold) < 1e-6
      && close(shown.classes, want.classes) && close(shown.false_positives, want.false_positives)
      && close(shown.missed, want.missed) && JSON.stringify(shown.list) === JSON.stringify(want.list);
  };
  window.wtalKeys = [];
  document.addEventListener('keydown', () => window.wtalKeys.push(performance.now()), true);
  window.wtalWatch = (want) => {
    window.wtalMatchedAt = 0;
    const check = () => {
      if (window.wtalMatches(want)) { window.wtalMatchedAt = performance.now(); return; }
      requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  };
}""" % LIST_LABELS


def words(text: str) -> str:
    return " ".join(text.split())


def expected(reference, threshold: float) -> dict:
    """What the whole page must show at ``threshold``: read from an explorer in this process."""
    reference.threshold.value = threshold
    errors = reference.error_chart.data
    return {
        "table": [words(cell) for cell in re.findall(r"<td>([^<]*)</td>", reference.map_table.value)],
        "threshold": threshold,
        "classes": [float(v) for v in reference.class_chart.data[0].y],
        "false_positives": [float(v) for v in errors[0].y],
        "missed": [float(v) for v in errors[1].y],
        "list": [words(label) for label, _ in reference.videos.options[:LIST_LABELS]],
    }


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def move(page, key: str, presses: int, want: dict, timeout: float = 60) -> float:
    """Press ``key`` ``presses`` times; ms from the last keydown until the page matches ``want``."""
    page.evaluate("window.wtalKeys = []")
    page.evaluate("(want) => window.wtalWatch(want)", want)
    for _ in range(presses):
        page.keyboard.press(key)
    page.wait_for_function("() => window.wtalMatchedAt > 0", timeout=timeout * 1000)
    keys = page.evaluate("window.wtalKeys")
    if len(keys) != presses:
        raise RuntimeError(f"{presses} presses sent, {len(keys)} seen by the page")
    return page.evaluate("window.wtalMatchedAt") - keys[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=REPO_ROOT / "runs" / "demo", help="run folder or scores file [runs/demo]")
    parser.add_argument("--repeats", type=int, default=12, help="timed moves of each kind [12]")
    parser.add_argument("--picks", type=int, default=6, help="video picks timed [6]")
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds between two timed moves, as a user looks at the page before moving again [1]")
    args = parser.parse_args(argv)
    if not args.run.exists():
        print(f"no {args.run}: run `make demo` (or `wtal demo --no-serve`) first, or pass --run", file=sys.stderr)
        return 2
    import wtal_kit
    from wtal_kit.data.catalog import layout_of
    from widgets.explorer import explorer_app

    run = args.run.resolve()
    reference = explorer_app(run, background=False)
    scores = reference.localizer.scores
    layout = layout_of((scores.attrs.get("config") or {}).get("dataset", "")) or "thumos14"
    start = reference.threshold.value
    plan = []  # (key, presses, threshold after them): directions alternate, the threshold stays near its start
    position, wants = start, {}
    for repeat in range(args.repeats):
        for presses in (1, 3):
            key = "ArrowRight" if repeat % 2 == 0 else "ArrowLeft"
            position = round(position + (0.01 if key == "ArrowRight" else -0.01) * presses, 2)
            plan.append((key, presses, position))
    for _, _, threshold in plan:
        if threshold not in wants:
            wants[threshold] = expected(reference, threshold)

    load_before = os.getloadavg()[0]
    with voila_app(NOTEBOOK, {"run": run, "roots": run if run.is_dir() else run.parent}) as url:
        with chromium_page(viewport={"width": 1400, "height": 1500}) as page:
            started = time.perf_counter()
            page.goto(url)
            wait_for_widgets(page, timeout=180)
            page.wait_for_function(f"() => ({TITLE})().includes('P(c|V)')", timeout=120_000)
            opened = time.perf_counter() - started
            page.evaluate(WATCH)
            page.focus(".widget-slider .noUi-handle")  # the threshold slider: the first one
            times = {1: [], 3: []}
            for key, presses, threshold in plan:
                times[presses].append(move(page, key, presses, wants[threshold]))
                time.sleep(args.pause)

            pick_ms = []
            select = page.locator("select[size]").first  # the video list (the dropdowns have no size)
            for index in range(1, args.picks + 1):
                before = page.evaluate(TITLE)
                t0 = time.perf_counter()
                select.select_option(index=index)
                page.wait_for_function(f"(old) => ({TITLE})() !== old", arg=before, timeout=30_000)
                pick_ms.append(1000 * (time.perf_counter() - t0))
    load_after = os.getloadavg()[0]

    videos, classes = len(reference.localizer.videos), reference.localizer.num_classes
    print(f"explorer in headless chromium on {args.run} ({layout} layout: {videos} videos, {classes} classes); "
          f"the server's first page showed its widgets after {opened:.1f} s; {os.cpu_count()} CPUs, load average {load_before:.1f} before, "
          f"{load_after:.1f} after; wtal-kit {wtal_kit.__version__}")
    target = TARGETS_MS.get(layout, 150)
    rows = (("one threshold step -> whole page updated", times[1], None),
            ("three quick steps -> whole page updated", times[3], target),
            ("video pick -> figure redrawn", pick_ms, None))
    for name, values, goal in rows:
        median, p95 = statistics.median(values), percentile(values, 0.95)
        verdict = "" if goal is None else f"  (target median <= {goal} ms: {'met' if median <= goal else 'NOT met'})"
        print(f"{name:42s} median {median:5.0f} ms  p95 {p95:5.0f} ms  max {max(values):5.0f} ms  over {len(values)}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
