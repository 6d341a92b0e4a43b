"""Helpers for browser tests of the Voilà apps (a helper module, not a test module).

::

    from browser import chromium_page, voila_app, wait_for_widgets  # tests/ is on sys.path (no __init__.py)

    def test_explorer(tmp_path):
        with voila_app(NOTEBOOK, {"run": run_dir}, log_path=tmp_path / "voila.log") as url:
            with chromium_page() as page:
                page.goto(url)
                wait_for_widgets(page)
                ...
        assert url.process.poll() is not None          # the server is gone

* ``voila_app`` skips the test when the ``ui`` extra (voila, ipywidgets, plotly, anywidget,
  ipykernel) is missing; ``chromium_page`` skips it when Playwright or Debian's
  ``/usr/bin/chromium`` is missing (``make test`` installs both; never ``playwright install``).
* The browser reaches only loopback addresses: any other request is aborted and listed in
  ``page.blocked_requests`` (an app must work offline). ``page.console_errors`` lists the
  console's errors and uncaught page errors.
* ``kernel_pids``, ``tree_rss_mb`` and ``wait_until_kernels_quiet`` look at the server's process
  tree (its kernels are its ``ipykernel_launcher`` descendants) for the kernel and memory checks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import urlsplit

import pytest

from wtal_kit.apps.serve import is_loopback, serve, stop, wait_until_ready

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_MODULES = ("voila", "ipywidgets", "plotly", "anywidget", "ipykernel")
# What Voilà writes in place of a failed cell's output when tracebacks are hidden.
VOILA_CELL_ERROR = "There was an error when executing cell"
TRACEBACK_SIGNS = ("Traceback (most recent call last)", "Error Traceback", "---------------------------------------------------------------------------")


# -- skips ---------------------------------------------------------------------------------
def require_ui() -> None:
    """Skip unless the ``ui`` extra is installed."""
    missing = [name for name in UI_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the ui extra is not installed (missing {', '.join(missing)}): pip install -e '.[dev,ui]' (make setup does)")


def require_browser() -> None:
    """Skip unless Playwright (Python) and Debian's chromium are both installed."""
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed: pip install -e '.[dev]' (make setup does)")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium` as root (make test does); "
                    "never `playwright install` (it downloads a browser)")


# -- the server ----------------------------------------------------------------------------
class AppURL(str):
    """The app's URL (a ``str``), with the server ``process`` and its ``log_path``."""

    process: object
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextlib.contextmanager
def voila_app(notebook: str | os.PathLike, params: Mapping[str, object] | None = None, *,
              timeout: float = 60, log_path: str | os.PathLike | None = None, **options) -> Iterator[AppURL]:
    """Serve ``notebook`` with :func:`wtal_kit.apps.serve.serve`, wait until it answers, yield its URL.

    ``options``: more of ``serve``'s keywords (``pool_size``, ``idle_timeout``).

    The server is always stopped on exit, also when the body or the start fails. Its output goes
    to ``log_path`` (default: a temporary file, deleted afterwards); a start that fails raises
    with the log's tail in the message.
    """
    require_ui()
    owned = log_path is None
    if owned:
        handle, name = tempfile.mkstemp(prefix="voila-", suffix=".log")
        os.close(handle)
        log_path = name
    log_path = Path(log_path)
    try:
        with open(log_path, "w") as log:
            for attempt in range(3):
                process = serve(notebook, params=params, quiet=True, log=log, **options)
                url = AppURL(process.url)
                url.process, url.log_path = process, log_path
                try:
                    wait_until_ready(process.ready_url, timeout=timeout, process=process)
                    break
                except BaseException as error:
                    stop(process)
                    log.flush()
                    if not isinstance(error, (TimeoutError, RuntimeError)):
                        raise
                    # another server took the port between free_port and voila's bind: voila exited
                    if attempt < 2 and process.returncode is not None and "no available port" in url.log_tail():
                        continue
                    raise RuntimeError(f"{error}\n--- voila log ---\n{url.log_tail()}") from error
            try:
                yield url
            finally:
                stop(process)
    finally:
        if owned:
            log_path.unlink(missing_ok=True)


# -- the server's processes ------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def kernel_pids(server_pid: int) -> list[int]:
    """The server's kernels: its ``ipykernel_launcher`` descendants that are alive (not zombies)."""
    pids = []
    for pid in descendants(server_pid):
        try:
            alive = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            if alive and b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(server_pid: int) -> float:
    """Resident memory of the server and everything below it, in MB."""
    return sum(_rss_kb(pid) for pid in [server_pid, *descendants(server_pid)]) / 1024


def _cpu_seconds(pids) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_kernels_quiet(server_pid: int, count: int | None = None, timeout: float = 120, window: float = 1.0,
                             busy: float = 0.05) -> list[int]:
    """Wait until the server has ``count`` kernels (any number when None) and they used under ``busy`` CPU
    seconds over the last ``window`` seconds (a preheated kernel has finished running the notebook).
    Returns the kernels' pids; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        pids = kernel_pids(server_pid)
        before = _cpu_seconds(pids)
        time.sleep(window)
        if (count is None or len(pids) == count) and kernel_pids(server_pid) == pids and _cpu_seconds(pids) - before < busy:
            return pids
        if time.monotonic() > deadline:
            raise TimeoutError(f"kernels did not settle within {timeout:g} s: {len(pids)} running"
                               + ("" if count is None else f", {count} expected"))


# -- the browser ---------------------------------------------------------------------------
@contextlib.contextmanager
def chromium_page(*, headless: bool = True, viewport: Mapping[str, int] | None = None,
                  timeout: float = 60) -> Iterator[object]:
    """A Playwright page of Debian's chromium (``/usr/bin/chromium``); everything closed on exit.

    ``timeout`` (seconds) is the page's default for waits and navigation.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=headless, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=dict(viewport or {"width": 1280, "height": 900}))
            try:
                page = context.new_page()
                page.set_default_timeout(timeout * 1000)
                page.blocked_requests = []
                page.console_errors = []

                def only_loopback(route):
                    host = urlsplit(route.request.url).hostname or ""
                    if route.request.url.startswith(("data:", "blob:", "about:")) or is_loopback(host):
                        route.continue_()
                    else:
                        page.blocked_requests.append(route.request.url)
                        route.abort()

                context.route("**/*", only_loopback)
                page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
                page.on("pageerror", lambda error: page.console_errors.append(f"pageerror: {error}"))
                yield page
            finally:
                context.close()
        finally:
            browser.close()


def wait_for_widgets(page, timeout: float = 60, selector: str = ".jupyter-widgets") -> None:
    """Wait until Voilà has run the notebook and shows its widgets (``selector``, visible).

    Fails at once with the page's text if Voilà reports a failed cell instead.
    """
    deadline = time.monotonic() + timeout
    page.wait_for_selector(f"{selector}, .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                           state="attached", timeout=timeout * 1000)
    remaining = max(1.0, deadline - time.monotonic())
    page.wait_for_function(
        """([selector, failed]) => {
            const cells = document.querySelector('#rendered_cells');
            const shown = cells && getComputedStyle(cells).display !== 'none';
            const error = document.body.innerText.includes(failed);
            const widget = [...document.querySelectorAll(selector)].some(e => e.offsetParent !== null);
            return error || (shown && widget);
        }""",
        arg=[selector, VOILA_CELL_ERROR],
        timeout=remaining * 1000,
    )
    text = page.inner_text("body")
    if VOILA_CELL_ERROR in text:
        raise AssertionError(f"the notebook failed in Voilà:\n{text[-3000:]}")
