"""Make docs/explorer.png, the README's picture of the explorer, with the browser tests' machinery.

    python docs/screenshot.py [RUN_DIR] [OUT.png]     # defaults: runs/demo, docs/explorer.png

Serves notebooks/explorer.ipynb with Voila, opens it in Debian's headless chromium (tests/browser.py),
moves the cursor into the first detection of the shown video, and saves the top of the page.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from browser import chromium_page, voila_app, wait_for_widgets  # noqa: E402

TITLE = "() => document.querySelector('.js-plotly-plot')?.layout?.title?.text || ''"


def main() -> int:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else REPO_ROOT / "runs" / "demo").resolve()
    out = Path(sys.argv[2] if len(sys.argv) > 2 else REPO_ROOT / "docs" / "explorer.png")
    with voila_app(REPO_ROOT / "notebooks" / "explorer.ipynb", {"run": run, "roots": run}) as url:
        with chromium_page(viewport={"width": 1380, "height": 1020}) as page:
            page.goto(url)
            wait_for_widgets(page, timeout=180)
            page.wait_for_function(f"() => ({TITLE})().includes('P(c|V)')", timeout=120_000)
            page.locator("select[size]").first.select_option(index=40)  # a video with some true positives
            page.wait_for_timeout(2000)
            page.screenshot(path=str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
