"""wtal_kit.apps.serve: the voila command, ports, parameters, and one real app driven by headless chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

import browser
from browser import TRACEBACK_SIGNS, VOILA_CELL_ERROR, chromium_page, require_browser, require_ui, voila_app, wait_for_widgets
from wtal_kit.apps import serve as serve_module
from wtal_kit.errors import InputError
from wtal_kit.apps.serve import (CELL_ERROR_INSTRUCTION, free_port, health_url, is_loopback, notebook_env, serve, stop,
                            voila_command, wait_until_ready)


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_serve_imports_no_jupyter():
    probe = ("import sys, wtal_kit.apps.serve; bad = [m for m in sys.modules if m.split('.')[0] in "
             "{'voila', 'ipywidgets', 'plotly', 'jupyter_server', 'jupyter_client', 'ipykernel', 'nbformat', "
             "'tornado', 'anywidget', 'playwright', 'numpy', 'torch'}]; print(bad)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- ports ---------------------------------------------------------------------------------
def test_free_port_skips_a_taken_port():
    with _listening_socket() as taken:
        port = taken.getsockname()[1]
        found = free_port(port)
        assert port < found < port + 100
        with pytest.raises(OSError, match="no free port"):
            free_port(port, tries=1)


def test_free_port_keeps_a_free_start():
    with socket.socket() as probe:  # a port the system just handed out and took back
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert free_port(port) == port


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org", ""]))


# -- the command ---------------------------------------------------------------------------
def test_voila_command_options(tmp_path):
    notebook = tmp_path / "app" / "explorer.ipynb"
    command = voila_command(notebook, 9001)
    assert command[0] == "voila" and command[1] == str(notebook.resolve())
    for option in ["--no-browser", "--port=9001", "--Voila.port_retries=0", "--Voila.ip=127.0.0.1",
                   f"--Voila.root_dir={notebook.parent.resolve()}", "--show_tracebacks=False", "--strip_sources=True",
                   "--template=wtal-offline", "--VoilaConfiguration.allow_template_override=NO",
                   f"--VoilaExecutor.cell_error_instruction={CELL_ERROR_INSTRUCTION}"]:
        assert option in command
    allow = command.index("--VoilaConfiguration.file_allowlist")
    assert command[allow + 1] == "(?!x)x"  # matches no file
    # preheated kernels (one waiting by default), a closed page's kernel shut down, an unreached one culled
    assert command[command.index("--preheat_kernel=True") + 1] == f"--pool_size={serve_module.DEFAULT_POOL_SIZE}"
    assert f"--VoilaConfiguration.multi_kernel_manager_class={serve_module.KERNEL_MANAGER}" in command
    assert f"--MappingKernelManager.cull_idle_timeout={serve_module.DEFAULT_IDLE_TIMEOUT}" in command
    assert "--MappingKernelManager.cull_connected=False" in command
    assert "--VoilaConfiguration.extension_denylist=jupyterlab-plotly" in command
    other = voila_command(notebook, 9001, pool_size=0, idle_timeout=7.5)
    assert "--preheat_kernel=True" not in other and not any(o.startswith("--pool_size") for o in other)
    assert "--MappingKernelManager.cull_idle_timeout=8" in other and "--MappingKernelManager.cull_interval=4" in other
    for bad in (dict(pool_size=-1), dict(pool_size=1.5), dict(pool_size=True), dict(idle_timeout=0), dict(idle_timeout="60"),
                dict(idle_timeout=float("inf")), dict(idle_timeout=float("nan"))):
        with pytest.raises(InputError):
            voila_command(notebook, 9001, **bad)
    assert "--Voila.ip=0.0.0.0" in voila_command(notebook, 9001, host="0.0.0.0")
    with_env = voila_command(notebook, 9001, env_params={"run": tmp_path / "run"})
    assert with_env[:3] == ["env", f"WTAL_EXPLORE_RUN={tmp_path / 'run'}", "voila"]


def test_notebook_env():
    env = notebook_env({"run": Path("/x/run"), "WTAL_EXPLORE_SUBSET": "test", "gamma": 0.5, "skipped": None})
    assert env == {"WTAL_EXPLORE_RUN": "/x/run", "WTAL_EXPLORE_SUBSET": "test", "WTAL_EXPLORE_GAMMA": "0.5"}
    assert notebook_env(None) == {}
    with pytest.raises(ValueError):
        notebook_env({"bad name": 1})


class _FakePopen:
    """Stands in for subprocess.Popen: records the call, starts nothing."""

    calls: list = []

    def __init__(self, command, **kwargs):
        self.command, self.kwargs, self.pid, self.returncode = command, kwargs, -1, 0
        _FakePopen.calls.append(self)

    def poll(self):
        return self.returncode


def test_serve_command_env_and_host_warning(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "app.ipynb"
    notebook.write_text("{}")
    monkeypatch.setattr(serve_module.subprocess, "Popen", _FakePopen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a loopback host: no warning
        process = serve(notebook, port=9123, params={"run": tmp_path})
    try:
        assert process.command[:3] == [sys.executable, "-m", "voila"]
        assert process.command[3] == str(notebook.resolve())
        assert process.kwargs["env"]["WTAL_EXPLORE_RUN"] == str(tmp_path)
        assert process.kwargs["start_new_session"] is True
        template = process.template_root / "voila" / "templates" / "wtal-offline"
        assert process.kwargs["env"]["JUPYTER_PATH"].split(os.pathsep)[0] == str(process.template_root)
        assert "cdn" not in (template / "index.html.j2").read_text().lower()
        assert process.url == "http://127.0.0.1:9123/" and process.ready_url == health_url(process.url)
        assert "http://127.0.0.1:9123/" in capsys.readouterr().out
    finally:
        stop(process)
    assert not process.template_root.exists()

    with pytest.warns(UserWarning, match="0.0.0.0") as caught:
        process = serve(notebook, port=9124, host="0.0.0.0", quiet=True)
    stop(process)
    assert len(caught) == 1 and "--Voila.ip=0.0.0.0" in process.command
    assert capsys.readouterr().out == ""

    with pytest.raises(FileNotFoundError):
        serve(tmp_path / "missing.ipynb", port=9125)


def test_wait_until_ready_fails_fast():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not answer"):
        wait_until_ready(f"http://127.0.0.1:{port}/", timeout=0.6, interval=0.1)
    ended = _FakePopen(["x"])
    ended.returncode = 3
    with pytest.raises(RuntimeError, match="exit code 3"):
        wait_until_ready(f"http://127.0.0.1:{port}/", timeout=30, process=ended)
    assert time.monotonic() - start < 10


def test_browser_helpers_skip_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        with chromium_page():
            pass


# -- a real server -------------------------------------------------------------------------
SOURCE_MARKER = "SOURCE_ONLY_MARKER_7731"  # in a comment: seen only if sources leak
FAILURE_MARKER = "FAILURE_MARKER_" + "4409"  # written joined only by the kernel, so only a traceback shows it


def _write_app(folder: Path) -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell(f"""\
# {SOURCE_MARKER}
import os
import ipywidgets as widgets
import plotly.graph_objects as go

slider = widgets.IntSlider(value=3, min=0, max=10, description="n")
label = widgets.Label(value="value=3")
title = widgets.Label(value="title=" + os.environ.get("WTAL_EXPLORE_TITLE", "none"))
figure = go.FigureWidget(data=[go.Scatter(x=[0, 1, 2, 3], y=[3, 3, 3, 3])])

def changed(change):
    label.value = f"value={{change['new']}}"
    figure.data[0].y = [change["new"]] * 4

slider.observe(changed, names="value")
widgets.VBox([title, slider, label, figure])"""),
        nbformat.v4.new_code_cell(
            'if "fail=1" in os.environ.get("QUERY_STRING", ""):\n'
            '    raise RuntimeError("FAILURE_MARKER_" + "4409")'),
    ]
    folder.mkdir(parents=True)
    path = folder / "app.ipynb"
    nbformat.write(notebook, path)
    return path


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int, cmdline: bytes) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        same = Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline
    except OSError:
        return False
    return same and stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_app_in_chromium(tmp_path):
    """An ipywidgets slider drives a Label and a plotly FigureWidget, in headless chromium."""
    require_ui()
    require_browser()
    notebook = _write_app(tmp_path / "app")
    # no preheated kernel: each page runs the notebook itself, so that ?fail=1 (QUERY_STRING) reaches it
    with voila_app(notebook, {"title": "from-env"}, log_path=tmp_path / "voila.log", pool_size=0) as url:
        started = time.monotonic()
        with chromium_page() as page:
            page.goto(url)
            wait_for_widgets(page, timeout=90)
            shown = time.monotonic() - started
            page.get_by_text("title=from-env").wait_for()  # the parameter reached the kernel
            page.get_by_text("value=3").wait_for()
            page.wait_for_function("() => document.querySelector('.js-plotly-plot')?.data?.[0]?.y?.[0] === 3")
            page.focus(".widget-slider .noUi-handle")
            page.keyboard.press("ArrowRight")
            page.get_by_text("value=4").wait_for(timeout=30_000)
            page.wait_for_function("() => document.querySelector('.js-plotly-plot').data[0].y[0] === 4", timeout=30_000)
            text, html = page.inner_text("body"), page.content()
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
            assert not any(sign in text for sign in TRACEBACK_SIGNS) and VOILA_CELL_ERROR not in text
            assert SOURCE_MARKER not in html  # sources stripped
            assert page.blocked_requests == []  # nothing asked of the internet (no CDN font)
            assert page.console_errors == []
        # a failing cell: Voilà says so, without the traceback; the log has it
        with urllib.request.urlopen(url + "?fail=1", timeout=120) as reply:
            failed = reply.read().decode()
        assert VOILA_CELL_ERROR in failed and CELL_ERROR_INSTRUCTION in failed
        assert FAILURE_MARKER not in failed and "Traceback" not in failed
        children = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in _descendants(url.process.pid)}
        assert any(b"ipykernel" in cmdline for cmdline in children.values())
    print(f"widgets shown {shown:.1f} s after the server answered")
    assert url.process.poll() is not None  # the server is gone ...
    deadline = time.monotonic() + 15
    while any(_alive(pid, cmdline) for pid, cmdline in children.items()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid, cmdline) for pid, cmdline in children.items())  # ... and its kernels too
    assert FAILURE_MARKER in (tmp_path / "voila.log").read_text()
    assert (tmp_path / "app.png").stat().st_size > 10_000


def _get(url: str) -> tuple[int, bytes]:
    """GET, following redirects; http.client sends the path as written (no ../ folding), as a hostile client would."""
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
def test_serves_no_other_file(tmp_path):
    """Nothing but the app: no file of its folder, none outside, no tree, no contents API."""
    require_ui()
    import nbformat

    folder = tmp_path / "app"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), folder / "app.ipynb")
    (folder / "picture.png").write_bytes(b"PNG_SECRET_1")
    (folder / "table.csv").write_text("CSV_SECRET_2")
    (tmp_path / "outside.png").write_bytes(b"OUT_SECRET_3")
    secrets = [b"PNG_SECRET_1", b"CSV_SECRET_2", b"OUT_SECRET_3", b"root:x:0:0", b'"cells"']
    paths = [
        "voila/files/picture.png", "voila/files/table.csv", "voila/files/app.ipynb", "voila/files/../outside.png",
        "voila/files/%2e%2e/outside.png", "voila/files/..%2foutside.png", "voila/files/../../../../etc/passwd",
        "voila/files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "voila/files//etc/passwd", "etc/passwd",
        "tree", "voila/tree", "api/contents", "api/contents/app.ipynb", "voila/api/contents", "files/app.ipynb",
        "voila/render/app.ipynb", "app.ipynb", "picture.png", "voila/static/../../../../etc/passwd",
        "voila/templates/lab/static/../../../../../../../etc/passwd", "voila/labextensions/../../../etc/passwd",
    ]
    with voila_app(folder / "app.ipynb", log_path=tmp_path / "voila.log") as url:
        for path in paths:
            status, body = _get(url + path)
            assert status in (403, 404, 500), (path, status, body[:200])  # 500: voila's template handler asserts
            assert not any(secret in body for secret in secrets), (path, body[:200])
        assert _get(url.process.ready_url)[0] == 200  # the server did answer all along
