"""Which dataset a config names, how it is labelled in reports, and which subsets train and test:
the one place that reads a dataset name.

``config.dataset`` is either an embedded synthetic layout (``synthetic-thumos14``,
``synthetic-activitynet12``: features synthesized on the real annotations, see
:mod:`wtal_kit.data.synthetic`) or the path of an HDF5 feature store written by
``wtal convert``.
"""

from __future__ import annotations

from pathlib import Path

from wtal_kit.data.bundled import bundled_path
from wtal_kit.config import Config
from wtal_kit.data.annotations import Annotations
from wtal_kit.data.dataset import FeatureDataset
from wtal_kit.data.hdf5 import open_feature_store
from wtal_kit.errors import InputError

LAYOUTS = ("thumos14", "activitynet12")  # the embedded benchmark's layouts (data/<layout>/)
LAYOUT_NAMES = {"thumos14": "THUMOS14", "activitynet12": "ActivityNet1.2"}
SYNTHETIC_PREFIX = "synthetic-"
SYNTHETIC_LAYOUTS = {SYNTHETIC_PREFIX + layout: layout for layout in LAYOUTS}  # dataset name -> layout


def synthetic_dataset(layout: str) -> str:
    """The dataset name of the embedded benchmark on ``layout`` (``thumos14`` -> ``synthetic-thumos14``)."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; choose one of {LAYOUTS}", field="layout")
    return SYNTHETIC_PREFIX + layout


def layout_of(dataset: str) -> str | None:
    """The embedded benchmark's layout a dataset name names (thumos14, activitynet12), else None (a store)."""
    return SYNTHETIC_LAYOUTS.get(str(dataset))


def is_synthetic(config: Config) -> bool:
    return config.dataset in SYNTHETIC_LAYOUTS


def load_dataset(config: Config) -> FeatureDataset:
    """The dataset a config names: an embedded synthetic layout or an HDF5 feature store."""
    if is_synthetic(config):
        from wtal_kit.data.synthetic import SyntheticSpec, make_synthetic_dataset
        from wtal_kit.data.wtalc import load_wtalc_annotations

        annotations = load_wtalc_annotations(bundled_path(SYNTHETIC_LAYOUTS[config.dataset]))
        spec = SyntheticSpec(feature_dim=config.feature_dim, seed=config.synthetic_seed)
        return make_synthetic_dataset(annotations, spec, seconds_per_segment=config.seconds_per_segment)
    path = Path(config.dataset)
    if path.suffix.lower() in (".h5", ".hdf5"):
        dataset = open_feature_store(path)
        if dataset.feature_dim != config.feature_dim:
            raise InputError(
                f"the store has feature dimension {dataset.feature_dim} but the config says {config.feature_dim} "
                f"(pass --feature-dim {dataset.feature_dim})",
                file=path,
                field="feature_dim",
            )
        return dataset
    raise InputError(
        f"unknown dataset {config.dataset!r}: use one of {sorted(SYNTHETIC_LAYOUTS)} or an HDF5 feature store "
        "(.h5, made by `wtal convert`)",
        field="dataset",
    )


def dataset_label(config: Config) -> str:
    """How a result's dataset is named in every report."""
    if is_synthetic(config):
        layout = LAYOUT_NAMES[SYNTHETIC_LAYOUTS[config.dataset]]
        return f"embedded synthetic benchmark ({layout} layout, benchmark seed {config.synthetic_seed}, d={config.feature_dim})"
    return f"feature store {Path(config.dataset).name}"


def split_subsets(config: Config, annotations: Annotations) -> tuple[str, str]:
    """(train subset, test subset): THUMOS14 trains on validation and tests on test; ActivityNet trains on training."""
    present = set(annotations.subsets)
    if {"validation", "test"} <= present:
        default = ("validation", "test")
    elif {"training", "validation"} <= present:
        default = ("training", "validation")
    else:
        default = (None, None)
    train_subset = config.train_subset or default[0]
    test_subset = config.test_subset or default[1]
    if train_subset is None or test_subset is None:
        raise InputError(
            f"cannot guess the train/test subsets from {sorted(present)}; pass --train-subset and --test-subset",
            file=annotations.source,
            field="subset",
        )
    annotations.indices(train_subset), annotations.indices(test_subset)  # raise on an unknown subset
    return train_subset, test_subset
