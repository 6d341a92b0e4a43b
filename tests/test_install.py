"""Packaging: the shipped data (data/ in the repository) are found by an installed wtal-kit.

The slow test builds the package NON-editable (no network: the environment's setuptools,
no build isolation) into a temporary folder and runs it from another folder, with the
repository off sys.path.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wtal_kit.data import bundled
from wtal_kit.data.bundled import bundled_path
from wtal_kit.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["ANNOTATIONS.md", "published_results.csv", "thumos14", "activitynet12"]


# -- bundled_path ----------------------------------------------------------------------
def test_bundled_path_finds_the_shipped_data():
    for name in SHIPPED:
        assert bundled_path(name).exists()
    assert bundled_path("thumos14", "classlist.npy").is_file()
    assert bundled_path("thumos14/Ambiguous_test.txt").is_file()
    assert (bundled_path() / "ANNOTATIONS.md").is_file()


@pytest.mark.parametrize("parts", [("nothing_here.csv",), ("thumos14", "nope.npy"), ("..", "pyproject.toml"), ("/etc/passwd",), ("",)])
def test_bundled_path_rejects_missing_and_outside(parts):
    with pytest.raises(InputError):
        bundled_path(*parts)


def test_bundled_path_without_installed_data(monkeypatch, tmp_path):
    (tmp_path / "data").mkdir()  # a folder named data, but not ours (no ANNOTATIONS.md)
    monkeypatch.setattr(bundled, "_CANDIDATES", (tmp_path / "_bundled_data", tmp_path / "data"))
    with pytest.raises(InputError, match="not installed"):
        bundled_path("thumos14")


def test_pyproject_lists_every_package():
    """`packages` is an explicit list (the data subpackage is mapped onto data/): it must not miss a subpackage."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    code = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for top in ("wtal_kit", "widgets")
        for init in (REPO_ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    data = {"wtal_kit._bundled_data"} | {f"wtal_kit._bundled_data.{d.name}" for d in (REPO_ROOT / "data").iterdir() if d.is_dir()}
    assert set(config["packages"]) == code | data
    assert config["package-dir"] == {"wtal_kit._bundled_data": "data"}
    assert set(config["package-data"]) == data


# -- module paths before 0.2 ------------------------------------------------------------------
def test_a_moved_module_path_warns_once_and_gives_the_new_module():
    """``wtal_kit.pipeline`` (attribute or import) is wtal_kit.localizer, with one FutureWarning in all;
    an old path first met by ``import`` leaves the module its own spec."""
    code = """
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import wtal_kit
    first = wtal_kit.pipeline
    again = wtal_kit.pipeline
    import wtal_kit.pipeline as imported
    from wtal_kit import localizer
assert first is again is imported is localizer
assert localizer.__spec__.name == "wtal_kit.localizer"  # its own spec, not the old path's
import wtal_kit.runs
from wtal_kit.training import runs
assert wtal_kit.runs is runs and runs.__spec__.name == "wtal_kit.training.runs"
print(sum(issubclass(w.category, FutureWarning) for w in caught))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_every_old_name_still_resolves_with_a_warning_naming_its_new_place():
    """Each name 0.1 had that 0.2 moved (wtal_kit.legacy.OLD_NAMES) is found where it was, with a
    FutureWarning; a name that moved to another module is that module's very object."""
    from wtal_kit import legacy

    for module, names in legacy.OLD_NAMES.items():
        loaded = importlib.import_module(module)
        for name, moved in names.items():
            with pytest.warns(FutureWarning, match=rf"{re.escape(module)}\.{name} is now"):
                value = getattr(loaded, name)
            if isinstance(moved, str):
                home, new = moved.rsplit(".", 1)
                assert value is getattr(importlib.import_module(home), new)
        with pytest.raises(AttributeError, match="no attribute 'never_was'"):
            loaded.never_was
    with pytest.raises(KeyError):
        legacy.old_names("wtal_kit.model")  # a module with no old names gets no __getattr__


@pytest.mark.filterwarnings("ignore:.*found in sys.modules after import of package:RuntimeWarning")  # runpy: already imported
def test_a_module_with_old_names_also_runs_as_a_spawned_main():
    """multiprocessing's spawn re-runs the parent's main module as ``__mp_main__`` (``wtal reproduce``'s
    workers under ``python -m wtal_kit.apps.cli``): the old-name table must not key on ``__name__``."""
    import runpy

    from wtal_kit import legacy

    for module in legacy.OLD_NAMES:
        if not importlib.util.find_spec(module).submodule_search_locations:  # a file, not a package
            namespace = runpy.run_module(module, run_name="__mp_main__")
            assert callable(namespace["__getattr__"])


def test_old_names_keep_their_old_values():
    """The names whose 0.1 value is not one name today give 0.1's value (as 0.1 wrote it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import wtal_kit.cli  # the old path, as 0.1's callers wrote it
        import wtal_kit.evaluate
        import wtal_kit.experiments
        import wtal_kit.localization

        assert np.array_equal(wtal_kit.evaluate.ACTIVITYNET_IOU_THRESHOLDS, np.linspace(0.5, 0.95, 10))
        assert tuple(wtal_kit.evaluate.DEFAULT_IOU_THRESHOLDS) == (0.1, 0.3, 0.5, 0.7)
        assert wtal_kit.experiments.QUICK == dict(feature_dim=256, lr=1e-3, iterations=800, eval_every=200)
        assert wtal_kit.experiments.SMOKE == dict(feature_dim=16, lr=1e-3, iterations=6, eval_every=3,
                                                  batch_videos=8, batch_classes=2)
        note = wtal_kit.cli.localization_note
        assert note({"localization": "wsad_code", "max_per_video": None}) == "wsad_code localization"
        assert note({"localization": "paper", "max_per_video": 3}) == "paper localization, at most 3 detections per video"
        check = wtal_kit.localization.check_max_per_video
        assert check(None) is None and check(4) == 4
        for bad in (0, True, 2.5):
            with pytest.raises(InputError) as info:
                check(bad)
            assert info.value.field == "max_per_video"


# -- a real, non-editable install ---------------------------------------------------------
def _copy_source(destination: Path) -> Path:
    """What the sdist holds, without build/ or egg-info left in the work tree by someone else."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, destination / name)
    for name in ("wtal_kit", "widgets", "data"):
        shutil.copytree(REPO_ROOT / name, destination / name, ignore=ignore)
    return destination


@pytest.mark.slow
def test_non_editable_install_finds_the_shipped_data(tmp_path):
    pytest.importorskip("setuptools")  # built without isolation, so without network
    source = _copy_source(tmp_path / "source")
    target = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--no-cache-dir", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=180,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (target / "wtal_kit" / "_bundled_data" / "thumos14" / "segments.npy").is_file()
    assert (target / "wtal_kit" / "_bundled_data" / "published_results.csv").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # -I: no PYTHONPATH, no user site, no current folder on sys.path; the install goes first
    probe = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "import wtal_kit; from wtal_kit.data.bundled import bundled_path;"
        "from wtal_kit.data.synthetic import make_synthetic_dataset; from wtal_kit.experiments.published import published_row;"
        "print(json.dumps({'module': wtal_kit.__file__, 'path': sys.path, 'thumos14': str(bundled_path('thumos14')),"
        " 'layout': make_synthetic_dataset().annotations.source, 'published': published_row()[0.5]}))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", probe, str(target)], capture_output=True, text=True, cwd=elsewhere, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert Path(found["module"]).is_relative_to(target)
    assert str(REPO_ROOT) not in found["path"] and "" not in found["path"]
    assert Path(found["thumos14"]).is_relative_to(target) and Path(found["layout"]).is_relative_to(target)
    assert found["published"] == pytest.approx(29.6)

    # the CLI, run the way `python -m wtal_kit.apps.cli` does, from the installed copy only
    run_dir = tmp_path / "run"
    cli = (
        "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'wtal';"
        "import wtal_kit; assert wtal_kit.__file__.startswith(sys.path[0]), wtal_kit.__file__;"
        "runpy.run_module('wtal_kit.apps.cli', run_name='__main__', alter_sys=True)"
    )
    args = ["demo", "--iterations", "10", "--run-dir", str(run_dir), "--no-progress", "--no-serve"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-I", "-c", cli, str(target), *args], capture_output=True, text=True,
                          cwd=elsewhere, timeout=180, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (run_dir / "results.json").is_file()
    assert "embedded synthetic benchmark" in done.stdout and "published (real THUMOS14" in done.stdout
    for scores in run_dir.glob("scores_*.h5"):  # no absolute path of this machine in an output file
        content = scores.read_bytes()
        assert str(tmp_path).encode() not in content and str(REPO_ROOT).encode() not in content
