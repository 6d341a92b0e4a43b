import pickle
from pathlib import Path

import numpy as np
import pytest

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


LEARNING = dict(iterations=600, eval_every=300, seed=3)


@pytest.fixture(scope="session")
def trained_quick_run(tmp_path_factory):
    """The quick preset (d = 256) trained for 600 iterations on the THUMOS14 layout (about 40 s on 2 cores)."""
    from wtal_kit.config import Config
    from wtal_kit.training import train

    config = Config.from_preset("quick", **LEARNING)
    return train(config, tmp_path_factory.mktemp("learn"), progress=False)
