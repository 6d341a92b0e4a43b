import pickle
from pathlib import Path

import numpy as np
import pytest

from wtal_kit import timegrid
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.hdf5 import Scores

SPS = 16 / 25

REPO_ROOT = Path(__file__).resolve().parents[1]
THUMOS_DIR = REPO_ROOT / "data" / "thumos14"
ACTIVITYNET_DIR = REPO_ROOT / "data" / "activitynet12"


@pytest.fixture(scope="session")
def thumos_annotations():
    from wtal_kit.data import load_wtalc_annotations

    return load_wtalc_annotations(THUMOS_DIR)


@pytest.fixture(scope="session")
def activitynet_annotations():
    from wtal_kit.data import load_wtalc_annotations

    return load_wtalc_annotations(ACTIVITYNET_DIR)


def write_release_npy(path, values):
    """An object array saved as the W-TALC release does (pickled, protocol 2 as Python 2 wrote it)."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, np.lib.format.header_data_from_array_1_0(array))
        pickle.dump(array, handle, protocol=2)


SMALL = dict(feature_dim=32, iterations=6, eval_every=3, seed=3)  # the training mechanics' tiny run (d = 32)


@pytest.fixture(scope="session")
def small_config():
    from wtal_kit.config import Config

    return Config.from_preset("quick", **SMALL)


@pytest.fixture(scope="session")
def small_dataset(small_config):
    from wtal_kit.data.catalog import load_dataset

    return load_dataset(small_config)


LEARNING = dict(iterations=600, eval_every=300, seed=3)


@pytest.fixture(scope="session")
def trained_quick_run(tmp_path_factory):
    """The quick preset (d = 256) trained for 600 iterations on the THUMOS14 layout (about 40 s on 2 cores)."""
    from wtal_kit.config import Config
    from wtal_kit.training import train

    config = Config.from_preset("quick", **LEARNING)
    return train(config, tmp_path_factory.mktemp("learn"), progress=False)


def make_scores(annotations: Annotations, seed: int, kappa=4.0) -> Scores:
    """Random but structured activations: each video's ground-truth classes are raised on their instances."""
    rng = np.random.default_rng(seed)
    num_segments = timegrid.num_segments(annotations.durations, SPS)
    logits = {}
    class_index = {c: i for i, c in enumerate(annotations.classes)}
    for video, n in zip(annotations.videos, num_segments):
        values = rng.normal(-1.0, 1.5, size=(int(n), annotations.num_classes)).astype(np.float32)
        for row in annotations.instances[annotations.instances["video"] == video].itertuples():
            first, last = timegrid.segment_containing([row.t_start, row.t_end], SPS)
            values[first : last + 1, class_index[row.label]] += rng.uniform(1, 5)
        values[rng.random(values.shape) < 0.01] = 2.0  # some exact ties
        logits[video] = values
    video_probs = rng.random((annotations.num_videos, annotations.num_classes)).astype(np.float32)
    attrs = {"seconds_per_segment": SPS, "kappa": kappa, "block_size": 60, "k": 10}
    return Scores(annotations=annotations, logits=logits, video_probs=video_probs, attrs=attrs)


# Fixtures that train, reproduce or start a cluster (seconds to minutes): a test that uses one is slow.
SLOW_FIXTURES = {
    "trained_quick_run",  # conftest: the quick preset, 600 iterations
    "smoke_reports",  # test_notebooks: wtal reproduce --mode smoke over every artefact
    "local_ray",  # test_ray_executor: a local Ray instance
    "trained",  # test_train: a small training
    "tiny_run",  # test_cli: wtal train, 4 iterations, through the CLI
    "finished",  # test_sliders: a finished run in a store
    "smoke_table1",  # test_reproduction: Table 1's smoke runs
    "figure5_results",  # test_figures: Figure 5's smoke runs
    "small_store", "uninterrupted",  # test_crashes: a store, and a whole training to compare with
}


def pytest_collection_modifyitems(config, items):
    """Marks for ``make test-fast`` (``-m "not slow and not browser"``): a browser test lives in a file named
    test_*_browser.py and is marked ``browser`` (and ``slow``); a test using a fixture of SLOW_FIXTURES
    is marked ``slow``; the others mark themselves with ``@pytest.mark.slow``."""
    for item in items:
        if item.path.stem.endswith("_browser"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
