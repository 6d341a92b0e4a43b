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
