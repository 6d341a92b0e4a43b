"""The house's structure, read from the code: rooms import downward only, no import cycle, no
private name taken from another module, no module much over 600 lines, and a core that imports
no Jupyter, ipywidgets, plotly or voila package.

The layers, lowest first (README, "Where things live"); a module may import its own layer and
those below it, never one above:
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = [
    ("foundation", ["wtal_kit/errors.py", "wtal_kit/checks.py", "wtal_kit/timegrid.py", "wtal_kit/atomic.py"]),
    ("config", ["wtal_kit/config.py", "wtal_kit/legacy.py"]),
    ("data", ["wtal_kit/data/"]),
    ("paper", ["wtal_kit/relu_dropout.py", "wtal_kit/model.py", "wtal_kit/losses.py", "wtal_kit/localization.py",
               "wtal_kit/evaluate.py", "wtal_kit/reference.py", "wtal_kit/localizer.py", "wtal_kit/diagnosis.py"]),
    ("training", ["wtal_kit/training/"]),
    ("video", ["wtal_kit/video/"]),
    ("experiments", ["wtal_kit/experiments/"]),
    ("apps", ["wtal_kit/apps/"]),
    ("widgets", ["widgets/"]),
]
FACE = "wtal_kit/__init__.py"  # the package's face: names loaded on first use, above everything
MAX_LINES = 620  # "no module much over 600 lines"
UI_PACKAGES = ("ipywidgets", "plotly", "voila", "IPython", "ipykernel", "jupyter", "nbclient", "nbformat", "anywidget",
               "matplotlib")
UI_ALLOWED = {"wtal_kit/experiments/notebooks.py": {"nbclient", "nbformat", "jupyter"}}  # executes notebooks as reports


def rooms() -> list[Path]:
    return sorted(p for folder in ("wtal_kit", "widgets") for p in (REPO / folder).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(path: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if any(path == m or (m.endswith("/") and path.startswith(m)) for m in members):
            return index
    raise AssertionError(f"{path} is in no layer: add it to LAYERS (and to the README's map)")


MODULES = {module_name(p): relative(p) for p in rooms()}


def imports(path: Path):
    """(imported module, names taken, line) of every import of a wtal_kit or widgets module, inside functions too."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [alias.name for alias in node.names]
            taken = [n for n in names if f"{base}.{n}" not in MODULES]  # names, not submodules
            if taken:
                yield base, taken, node.lineno
            for name in names:
                if f"{base}.{name}" in MODULES:
                    yield f"{base}.{name}", [], node.lineno


def project_module(name: str) -> str | None:
    """The project module an import names (its nearest enclosing module), or None for a library."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def edges():
    for path in rooms():
        for imported, names, line in imports(path):
            target = project_module(imported)
            if target is not None:
                yield relative(path), MODULES[target], target, names, line


def test_every_room_has_a_layer():
    for path in rooms():
        if relative(path) != FACE:
            layer_of(relative(path))


def test_layers_import_downward_only():
    upward = [f"{source}:{line} imports {target} ({LAYERS[layer_of(target)][0]} above {LAYERS[layer_of(source)][0]})"
              for source, target, _, _, line in edges()
              if source != FACE and target != FACE and layer_of(target) > layer_of(source)]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = defaultdict(set)
    for source, target, _, _, _ in edges():
        if source != target and FACE not in (source, target):
            graph[source].add(target)
    # a package's __init__ importing its own submodules is how a face hands names on; a submodule
    # importing its own package's __init__ back would close a loop, and is reported like any other.
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_no_private_name_crosses_a_module():
    taken = [f"{source}:{line} takes {', '.join(n for n in names if n.startswith('_') and not n.startswith('__'))} "
             f"from {target}"
             for source, target, module, names, line in edges()
             if source != target and any(n.startswith("_") and not n.startswith("__") for n in names)]
    private_modules = [f"{source}:{line} imports the private module {module}" for source, _, module, _, line in edges()
                       if any(part.startswith("_") and not part.startswith("__") for part in module.split("."))]
    assert not taken + private_modules, "\n".join(taken + private_modules)


@pytest.mark.parametrize("path", rooms(), ids=relative)
def test_no_module_much_over_600_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_core_imports_no_ui_package():
    found = []
    for path in (REPO / "wtal_kit").rglob("*.py"):
        allowed = UI_ALLOWED.get(relative(path), set())
        for imported, _, line in imports(path):
            top = imported.split(".")[0]
            if top in UI_PACKAGES and top not in allowed:
                found.append(f"{relative(path)}:{line} imports {imported}")
    assert not found, "\n".join(found)


def test_the_structure_checks_can_fail(tmp_path, monkeypatch):
    """The checks above read real imports: an upward import and a cycle planted in a copy are found."""
    planted = REPO / "wtal_kit" / "checks.py"
    source = planted.read_text()
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (
        source + "\nfrom wtal_kit.training.loop import train\nfrom wtal_kit.config import _field\n"
        if self == planted else Path.__dict__["read_bytes"](self).decode()))
    with pytest.raises(AssertionError, match="checks.py.*imports wtal_kit/training/loop.py"):
        test_layers_import_downward_only()
    with pytest.raises(AssertionError, match="wtal_kit/checks.py"):
        test_no_import_cycle()  # checks -> training -> ... -> config -> checks
    with pytest.raises(AssertionError, match="takes _field from wtal_kit/config.py"):
        test_no_private_name_crosses_a_module()
