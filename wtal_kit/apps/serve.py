"""Serve a notebook as a Voilà web app, from the standard library only (and wtal_kit's errors).

The core package never imports voila, ipywidgets, plotly or Jupyter: this module only builds
the ``voila`` command line and runs it in a subprocess (``sys.executable -m voila``, so the
voila of the running environment is used; install it with ``pip install "wtal-kit[ui]"``).

::

    from wtal_kit.apps.serve import serve, wait_until_ready, stop
    process = serve("notebooks/explorer.ipynb", params={"run": "runs/demo"})
    wait_until_ready(process.ready_url, process=process)  # a static file: starts no kernel
    ...
    stop(process)

What the server does (see :func:`voila_command`):

* binds to ``127.0.0.1`` by default (a warning is issued for any non-loopback host: the
  server has no authentication) on exactly the port asked for (no silent retry elsewhere);
* serves that one notebook from a pool of ``pool_size`` preheated kernels (Voilà's ``preheat_kernel``):
  each kernel has run the notebook before a page asks, so a page only connects to it and draws; the pool
  refills in the background. The parameters reach the notebook as environment variables fixed when the
  server starts (one server per app and parameters), so a preheated kernel already has them. Sources are
  stripped from the page and tracebacks are never sent to it: a failed cell shows
  "There was an error when executing cell [N]. Details are in the server log." (it has them);
* shuts a page's kernel down :data:`CLOSE_GRACE` seconds after the page's last websocket closes (a tab
  closed, reloaded or navigated away; ``widgets.voila_kernels.PageKernelManager``), and culls a kernel
  that no page is connected to after ``idle_timeout`` seconds without activity (jupyter_server's culling:
  a kernel whose page never connected); the preheated pool is never culled;
* serves no other file: the notebook's folder is the root, ``/voila/files/`` refuses every
  file, and any other path of the single-notebook app redirects there (so ``/tree``,
  ``/api/contents`` and ``/voila/files/../..`` get 403, 404 or 500, never content); the
  template and theme cannot be switched by ``?template=`` / ``?theme=``;
* renders with a small template (``wtal-offline``, written to a temporary folder put on
  ``JUPYTER_PATH``) that is Voilà's ``lab`` template less its two Font Awesome stylesheets
  from a public CDN: Voilà's own bundle already ships Font Awesome, and a stylesheet in the
  page head that a firewall silently drops would block rendering until it times out;
* serves plotly's widget module once, as a static file of that template, and names it to the kernels
  in ``WTAL_FIGURE_MODULE`` (see ``widgets.livefigure``: one download and one run of plotly.js per page
  instead of 5 MB of state and one run per figure, which made anywidget give up on a figure).

Notebook parameters arrive as environment variables of the kernel: ``params={"run": path}``
sets ``WTAL_EXPLORE_RUN`` (see :func:`notebook_env`); the notebook reads ``os.environ``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import ipaddress
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import IO, Mapping

from wtal_kit.errors import InputError

__all__ = [
    "CLOSE_GRACE",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_PORT",
    "app_notebook",
    "serve_app",
    "serve_explorer",
    "CELL_ERROR_INSTRUCTION",
    "ENV_PREFIX",
    "TEMPLATE",
    "free_port",
    "health_url",
    "kernels_text",
    "is_loopback",
    "notebook_env",
    "serve",
    "stop",
    "voila_command",
    "wait_until_ready",
]

DEFAULT_PORT = 8866
ENV_PREFIX = "WTAL_EXPLORE_"
TEMPLATE = "wtal-offline"
DEFAULT_POOL_SIZE = 1  # preheated kernels waiting for the next page (each holds the app: ~0.4 GB for the explorer)
DEFAULT_IDLE_TIMEOUT = 120  # seconds: a kernel no page is connected to is culled after this long without activity
CLOSE_GRACE = 5  # seconds between a page's last websocket closing and its kernel's shutdown (a reconnect keeps it)
KERNEL_MANAGER = "widgets.voila_kernels.PageKernelManager"
FIGURE_MODULE_ENV = "WTAL_FIGURE_MODULE"  # read by widgets.livefigure in the kernels
# What the page says, after "There was an error when executing cell [N].", instead of a traceback.
CELL_ERROR_INSTRUCTION = "Details are in the server log."
_NOTHING = "(?!x)x"  # a regular expression that matches no path: /voila/files/ serves nothing

# Voilà's lab template, less the two CDN stylesheets of its ``notebook_css`` block; the rest of
# that block is copied from voila 0.5.13 (share/jupyter/voila/templates/lab/index.html.j2) and
# ``super.super()`` then renders nbconvert's lab block, as the original's ``super()`` does.
_TEMPLATE_FILES = {
    "conf.json": '{"base_template": "lab"}\n',
    "index.html.j2": """\
{%- extends 'voila/templates/lab/index.html.j2' -%}
{% import "spinner.macro.html.j2" as spinner %}

{#- Voila's page shuts its kernel down on beforeunload with a POST that must carry the page's _xsrf
    cookie, but Voila's page handler never issues one, so the server refused it (403) every time and
    closed pages kept their kernels. The page sets its own (a random double-submit token). -#}
{%- block html_head_js -%}
  <script>
    if (!/(^|;\\s*)_xsrf=/.test(document.cookie)) {
      const token = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
      document.cookie = "_xsrf=" + token + "; path=/; SameSite=Strict";
    }
  </script>
  PRELOAD
  {{ super() }}
{%- endblock html_head_js -%}

{%- block notebook_css -%}
  {% if frontend == "voila" %}
    {{ resources.include_js("static/voila-style.js") }}
  {% endif %}

  {{ spinner.css() }}

  <style>
    /*Hide empty cells*/
    .jp-mod-noOutputs.jp-mod-noInput {
      display: none;
    }
  </style>
{% if resources.show_margins %}
  <style>
    body {
      background: var(--jp-layout-color1);
    }

    #rendered_cells {
      padding-left: calc(calc(100% - 1200px) * 0.5);
      padding-right: calc( calc( 100% - 1200px - 20px ) * 0.5 );
    }

    #rendered_cells > div {
      background: var(--jp-layout-color0);
      padding: 6ex 12ex 8ex 12ex;
      border-radius: var(--jp-border-radius);
      box-shadow: var(--jp-elevation-z4);
    }
  </style>
{% endif %}

  {{ super.super() }}
{%- endblock notebook_css -%}
""",
}
# PRELOAD in the page head when plotly's widget module is served: the browser fetches and compiles it
# while the page loads, before a figure asks for it (NAME: the module's file name).
_MODULE_PRELOAD = '<link rel="modulepreload" href="{{ resources.base_url }}voila/templates/wtal-offline/static/NAME">'


# -- ports and hosts ------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address of 127.0.0.0/8 or ``::1``."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _port_is_free(port: int, host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def free_port(start: int = DEFAULT_PORT, host: str = "127.0.0.1", tries: int = 100) -> int:
    """``start`` if nothing listens there on ``host``, else the next free port (``tries`` in all)."""
    for port in range(start, min(start + tries, 65536)):
        if _port_is_free(port, host):
            return port
    raise OSError(f"no free port in {start}..{start + tries - 1} on {host}")


# -- the command ---------------------------------------------------------------------------
def notebook_env(params: Mapping[str, object] | None) -> dict[str, str]:
    """Environment variables that carry ``params`` to the notebook's kernel.

    A name is upper-cased and prefixed with ``WTAL_EXPLORE_`` (unless it already is); values
    become strings (a path as ``str(path)``); ``None`` values are left out.
    """
    env: dict[str, str] = {}
    for key, value in (params or {}).items():
        name = str(key).upper()
        if not name.startswith(ENV_PREFIX):
            name = ENV_PREFIX + name
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
            raise ValueError(f"parameter name {key!r} cannot be an environment variable")
        if value is None:
            continue
        text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        if "\0" in text:
            raise ValueError(f"parameter {key!r} holds a NUL character")
        env[name] = text
    return env


def check_pool(pool_size: int, idle_timeout: float) -> None:
    """``pool_size`` >= 0 (0: no preheated kernel, each page starts one) and a finite ``idle_timeout`` > 0, or an InputError."""
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
        raise InputError(f"must be a whole number >= 0, got {pool_size!r}", field="pool_size")
    if (isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)) or not idle_timeout > 0
            or not math.isfinite(idle_timeout)):  # inf: Voila's cull timers need a whole number of seconds
        raise InputError(f"must be a finite number of seconds > 0, got {idle_timeout!r}", field="idle_timeout")


def voila_command(notebook: str | os.PathLike, port: int, host: str = "127.0.0.1",
                  env_params: Mapping[str, object] | None = None, pool_size: int = DEFAULT_POOL_SIZE,
                  idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> list[str]:
    """The ``voila`` command line that serves ``notebook`` (see the module's docstring).

    The template named by ``--template`` is found only with :func:`serve`'s ``JUPYTER_PATH``;
    ``env_params`` (optional) make it a self-contained POSIX command: ``env NAME=VALUE voila ...``.
    ``pool_size``: preheated kernels (0: none); ``idle_timeout``: seconds before an unconnected kernel is culled.
    """
    check_pool(pool_size, idle_timeout)
    notebook = Path(notebook).resolve()
    command = [
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={int(port)}",
        "--Voila.port_retries=0",  # exactly this port, or fail: the URL we print must be right
        f"--Voila.ip={host}",
        f"--Voila.root_dir={notebook.parent}",
        "--show_tracebacks=False",  # errors go to the server log, not to the page
        "--strip_sources=True",
        f"--VoilaExecutor.cell_error_instruction={CELL_ERROR_INSTRUCTION}",
        "--VoilaConfiguration.file_allowlist", _NOTHING,  # /voila/files/ serves nothing
        "--VoilaConfiguration.file_denylist", ".*",
        f"--template={TEMPLATE}",
        "--VoilaConfiguration.allow_template_override=NO",  # no ?template= back to the CDN one
        "--VoilaConfiguration.allow_theme_override=NO",
        # plotly's JupyterLab extension renders plotly's mime type (4.8 MB of plotly.js, run in every page);
        # the apps draw FigureWidgets only (anywidget), so the page does not load it
        "--VoilaConfiguration.extension_denylist=jupyterlab-plotly",
        f"--VoilaConfiguration.multi_kernel_manager_class={KERNEL_MANAGER}",  # a closed page's kernel is shut down
        f"--PageKernelManager.close_grace={CLOSE_GRACE}",
        f"--MappingKernelManager.cull_idle_timeout={int(math.ceil(idle_timeout))}",  # and one no page ever reached
        f"--MappingKernelManager.cull_interval={max(1, int(math.ceil(min(idle_timeout / 2, 30))))}",
        "--MappingKernelManager.cull_connected=False",  # a page left open keeps its kernel
    ]
    if pool_size > 0:
        command += ["--preheat_kernel=True", f"--pool_size={pool_size}"]
    if env_params:
        command = ["env", *(f"{k}={v}" for k, v in notebook_env(env_params).items()), *command]
    return command


def plotly_module() -> tuple[Path, str] | None:
    """plotly's widget module (the file its FigureWidget inlines) and a versioned name for it; None without plotly.

    Found without importing plotly (this module imports no UI package).
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    bundle = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "widgetbundle.js"
    if not bundle.is_file():
        return None
    return bundle, f"plotly-widget-{importlib.metadata.version('plotly')}.js"


def _write_template() -> tuple[Path, str | None]:
    """A fresh private folder (mode 0700) with ``voila/templates/wtal-offline/``, for ``JUPYTER_PATH``.

    Also the template's ``static/`` with plotly's widget module (a copy of plotly's file); returns the
    folder and that module's URL path under the server's base URL (None without plotly).
    """
    root = Path(tempfile.mkdtemp(prefix="wtal-voila-"))
    folder = root / "voila" / "templates" / TEMPLATE
    (folder / "static").mkdir(parents=True)
    module = plotly_module()
    preload = "" if module is None else _MODULE_PRELOAD.replace("NAME", module[1])
    for name, text in _TEMPLATE_FILES.items():
        (folder / name).write_text(text.replace("PRELOAD", preload))
    if module is None:
        return root, None
    bundle, name = module
    shutil.copyfile(bundle, folder / "static" / name)  # a copy: the static handler refuses a link out of its folder
    return root, f"voila/templates/{TEMPLATE}/static/{name}"


# -- running it ----------------------------------------------------------------------------
def serve(notebook: str | os.PathLike, port: int | None = None, host: str = "127.0.0.1",
          params: Mapping[str, object] | None = None, quiet: bool = False,
          log: IO | int | None = None, pool_size: int = DEFAULT_POOL_SIZE,
          idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> subprocess.Popen:
    """Start Voilà on ``notebook`` in a subprocess (its own process group) and return it at once.

    ``port`` None: :func:`free_port` from 8866. ``params``: see :func:`notebook_env`. ``log``: where
    the server's output goes (a file object or ``subprocess.DEVNULL``; None: this process's).
    ``pool_size``, ``idle_timeout``: see :func:`voila_command`.
    The returned process has ``url`` (the app's address), ``port`` and ``ready_url`` (a cheap
    page for :func:`wait_until_ready`, which does not start a kernel); end it with :func:`stop`.
    """
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    if notebook.suffix != ".ipynb":
        raise ValueError(f"not a notebook (.ipynb): {notebook}")
    if not is_loopback(host):
        warnings.warn(f"serving on {host}: anyone who can reach this address can use the app "
                      "(no authentication); use 127.0.0.1 unless you mean it", stacklevel=2)
    check_pool(pool_size, idle_timeout)
    env = {**os.environ, **notebook_env(params)}
    port = free_port(host=host) if port is None else int(port)
    template_root, module_path = _write_template()
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(template_root), os.environ.get("JUPYTER_PATH")) if p)
    env.pop(FIGURE_MODULE_ENV, None)
    if module_path is not None:
        env[FIGURE_MODULE_ENV] = module_path
    # the kernels' connection files (their keys) go into the same private folder, removed by stop()
    command = [sys.executable, "-m", "voila",
               *voila_command(notebook, port, host, pool_size=pool_size, idle_timeout=idle_timeout)[1:],
               f"--Voila.connection_dir_root={template_root}"]
    try:
        process = subprocess.Popen(command, env=env, cwd=notebook.parent, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT if log is not None else None,
                                   start_new_session=True)
    except BaseException:
        shutil.rmtree(template_root, ignore_errors=True)
        raise
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    if shown in ("0.0.0.0", "[::]"):
        shown = "127.0.0.1"
    process.url = f"http://{shown}:{port}/"
    process.ready_url = health_url(process.url)
    process.port = port
    process.template_root = template_root
    if not quiet:
        print(f"Voilà is starting at {process.url} (stop it with Ctrl-C)", flush=True)
    return process


def health_url(url: str) -> str:
    """A static file of the running app at ``url``: answers 200 once the server listens."""
    return url.rstrip("/") + f"/voila/templates/{TEMPLATE}/static/voila.js"


def wait_until_ready(url: str, timeout: float = 60, process: subprocess.Popen | None = None,
                     interval: float = 0.25) -> None:
    """Poll ``url`` until it answers HTTP 200; ``TimeoutError`` after ``timeout`` seconds.

    With ``process``, fail at once (``RuntimeError``) if that process has ended. Polling the app's
    own page starts a kernel for every 200: prefer ``process.ready_url`` (:func:`health_url`).
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server ended (exit code {process.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=max(0.5, min(5.0, deadline - time.monotonic()))) as reply:
                if reply.status == 200:
                    return
                last = f"HTTP {reply.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            last = str(getattr(error, "reason", error))
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout:g} s ({last})")
        time.sleep(interval)


def stop(process: subprocess.Popen, timeout: float = 10) -> int:
    """End the server: SIGTERM to its process group, SIGKILL after ``timeout`` s; its return code.

    Kernels are started in sessions of their own by jupyter_client; Voilà shuts them down on
    SIGTERM, and an orphaned ipykernel exits when it sees its parent gone.
    """
    def signal_group(sig: int) -> None:
        try:
            os.killpg(process.pid, sig)  # start_new_session: the group id is the pid
        except (ProcessLookupError, PermissionError):
            if process.poll() is None:
                process.send_signal(sig)

    try:
        if process.poll() is None:
            signal_group(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(signal.SIGKILL)
                process.wait(timeout)
    finally:
        template_root = getattr(process, "template_root", None)
        if template_root is not None:
            shutil.rmtree(template_root, ignore_errors=True)
    return process.returncode


# -- the apps, served until Ctrl-C ---------------------------------------------------------------
def app_notebook(name: str) -> Path:
    """A Voila app's notebook (``explorer``, ``sliders``): notebooks/NAME.ipynb of the repository checkout."""
    path = Path(__file__).resolve().parents[2] / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        raise InputError(f"the {name} notebook is not installed here (it ships with the repository checkout)", file=path)
    return path


def serve_explorer(source: Path, compare: list, roots: list, host: str = "127.0.0.1", port: int | None = None,
                   pool_size: int = DEFAULT_POOL_SIZE, idle_timeout: float = DEFAULT_IDLE_TIMEOUT, videos=None) -> int:
    """Serve the explorer until Ctrl-C or SIGTERM (or until the server ends); ``videos``: a folder of the run's
    video files, for the frame under the time cursor."""
    params = {"run": source, "compare": ",".join(compare), "roots": os.pathsep.join(roots), "videos": videos or ""}
    return serve_app(app_notebook("explorer"), "The detection explorer", "explore", params, host=host, port=port,
                     pool_size=pool_size, idle_timeout=idle_timeout)


def kernels_text(pool_size: int, idle_timeout: float) -> str:
    """What the server does with kernels, in one line (printed when it starts)."""
    pool = (f"{pool_size} preheated kernel{'s' if pool_size != 1 else ''} wait for the next page" if pool_size
            else "each page starts its own kernel")
    return (f"{pool}; a closed page's kernel is shut down {CLOSE_GRACE:g} s later, "
            f"one no page reached after {idle_timeout:g} s idle")


def serve_app(notebook: Path, title: str, name: str, params: dict, host: str = "127.0.0.1", port: int | None = None,
              browser: bool = False, pool_size: int = DEFAULT_POOL_SIZE, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> int:
    """Serve a Voila app notebook until Ctrl-C or SIGTERM (or until the server ends); ``browser``: open it in one."""
    check_pool(pool_size, idle_timeout)
    # Ctrl-C must stop the server even where this process was started with SIGINT ignored
    # (a background job of a non-interactive shell); SIGTERM stops it the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    port = port or free_port(host=host)
    log = tempfile.NamedTemporaryFile("w", prefix=f"wtal-{name}-", suffix=".log", delete=False)
    process = serve(notebook, port=port, host=host, quiet=True, log=log, params=params, pool_size=pool_size,
                    idle_timeout=idle_timeout)
    try:
        wait_until_ready(process.ready_url, timeout=120, process=process)  # a static file: starts no kernel
        print(f"{title} is served at {process.url}  (open it in a browser; Ctrl-C stops it)\n"
              f"kernels: {kernels_text(pool_size, idle_timeout)}\nserver log: {log.name}", flush=True)
        if browser:
            import webbrowser

            webbrowser.open(process.url)
        process.wait()
    except KeyboardInterrupt:
        print(f"stopping {title[0].lower() + title[1:]}", file=sys.stderr)
    finally:
        stop(process)
        log.close()
    return 0
