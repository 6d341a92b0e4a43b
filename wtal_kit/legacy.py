"""Names that 0.1 had and 0.2 moved or renamed, kept for one version (they warn, and go away in 0.3).

Old module paths (``wtal_kit.pipeline``, ``wtal_kit.cli``, ...) are aliases of their new modules
(``wtal_kit.__init__``); this table covers the names inside them that the new module no longer
holds. Each module named here ends with ``__getattr__ = legacy.old_names("wtal_kit.<its name>")``, so that
``wtal_kit.cli.NO_CLIPPING`` (which is ``wtal_kit.apps.cli.NO_CLIPPING``) still finds
``wtal_kit.apps.flags.NO_CLIPPING``, with a FutureWarning saying where it lives now.

A value is where the name lives now (``"module.NAME"``), or, for a name whose old value is not
one name today, (what to use instead, a function that makes the old value). Targets are imported
on first use, so a module of any layer may name one of another layer here.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Callable, Union

import numpy as np

from wtal_kit import checks
from wtal_kit.config import BUDGETS, LocalizationSettings

Moved = Union[str, "tuple[str, Callable[[], object]]"]


def _old_localization_note(settings) -> str:
    return LocalizationSettings(localization=settings["localization"], max_per_video=settings.get("max_per_video")).note()


def _old_check_max_per_video(max_per_video):
    return checks.optional_integer(max_per_video, "max_per_video", minimum=1)


def _budget(name: str) -> dict:
    return dict(BUDGETS[name][0])


def _activitynet_tious():
    return np.linspace(0.5, 0.95, 10)  # 0.1's own array (config.ACTIVITYNET_TIOUS holds the rounded values)


_LOCALIZATION_FIELDS = "wtal_kit.config.LOCALIZATION_FIELDS"
_DEFAULT_WORKERS = "wtal_kit.experiments.runner.default_workers"

# new module -> {old name: where it is now}
OLD_NAMES: dict[str, dict[str, Moved]] = {
    "wtal_kit.evaluate": {
        "PROTOCOLS": "wtal_kit.config.EVAL_PROTOCOLS",
        "DEFAULT_IOU_THRESHOLDS": "wtal_kit.config.PAPER_TIOUS",
        "ACTIVITYNET_IOU_THRESHOLDS": ("wtal_kit.config.ACTIVITYNET_TIOUS", _activitynet_tious),
    },
    "wtal_kit.localization": {
        "PROTOCOLS": "wtal_kit.config.LOCALIZATIONS",
        "check_max_per_video": ("wtal_kit.checks.optional_integer(value, 'max_per_video', minimum=1)",
                                lambda: _old_check_max_per_video),
    },
    "wtal_kit.training": {  # 0.1's wtal_kit/training.py
        "READ_WORKERS": "wtal_kit.training.batches.READ_WORKERS",
        "CENTERING_VIDEOS": "wtal_kit.training.batches.CENTERING_VIDEOS",
        "build_custom_factors": "wtal_kit.training.state.build_custom_factors",
    },
    "wtal_kit.experiments": {  # 0.1's wtal_kit/experiments.py and wtal_kit/reproduction.py
        "QUICK": ("wtal_kit.config.BUDGETS['small'][0]", lambda: _budget("small")),
        "SMOKE": ("wtal_kit.config.BUDGETS['smoke'][0]", lambda: _budget("smoke")),
        "EntryDraft": "wtal_kit.experiments.store.EntryDraft",
        "failure_message": "wtal_kit.errors.failure_message",
        "OTHER_SOURCE": "wtal_kit.experiments.published.OTHER_SOURCE",
        "SUPERVISION": "wtal_kit.experiments.published.SUPERVISION",
        "SPREAD_FACTOR": "wtal_kit.experiments.claims.SPREAD_FACTOR",
        "Claim": "wtal_kit.experiments.claims.Claim",
        "NUMERIC_TWIN": "wtal_kit.experiments.tables.NUMERIC_TWIN",
        "AUDIT_CHOICES": "wtal_kit.experiments.audit.AUDIT_CHOICES",
        "CHECKPOINT_LAST": "wtal_kit.experiments.audit.CHECKPOINT_LAST",
        "CHECKPOINT_BEST": "wtal_kit.experiments.audit.CHECKPOINT_BEST",
        "METRIC_COLUMNS": "wtal_kit.experiments.audit.METRIC_COLUMNS",
    },
    "wtal_kit.experiments.published": {  # 0.1's wtal_kit/report.py
        "format_map_rows": "wtal_kit.apps.printing.format_map_rows",
    },
    "wtal_kit.apps.cli": {
        "NO_CLIPPING": "wtal_kit.apps.flags.NO_CLIPPING",
        "OPTIONAL_INT_FIELDS": "wtal_kit.apps.flags.OPTIONAL_INT_FIELDS",
        "given_fields": "wtal_kit.apps.flags.given_fields",
        "localization_note": ("wtal_kit.LocalizationSettings(...).note()", lambda: _old_localization_note),
        "LOCALIZATION_FIELDS": _LOCALIZATION_FIELDS,
        "default_workers": _DEFAULT_WORKERS,
    },
    "wtal_kit.apps.sessions": {
        "LOCALIZATION_FIELDS": _LOCALIZATION_FIELDS,
        "default_workers": _DEFAULT_WORKERS,
    },
}


def old_name(module: str, name: str):
    """The value of 0.1's ``module.name``, with a FutureWarning; AttributeError if it never existed."""
    moved = OLD_NAMES.get(module, {}).get(name)
    if moved is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    if isinstance(moved, str):
        instead, home, new = moved, *moved.rsplit(".", 1)

        def make():
            return getattr(importlib.import_module(home), new)
    else:
        instead, make = moved
    warnings.warn(f"{module}.{name} is now {instead}; the old name goes away in 0.3", FutureWarning, stacklevel=3)
    return make()


def old_names(module: str) -> Callable[[str], object]:
    """A module-level ``__getattr__`` (PEP 562) that finds ``module``'s old names in :data:`OLD_NAMES`."""
    if module not in OLD_NAMES:
        raise KeyError(f"no old names are recorded for {module!r}")

    def __getattr__(name: str):
        return old_name(module, name)

    return __getattr__
