from pathlib import Path

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
