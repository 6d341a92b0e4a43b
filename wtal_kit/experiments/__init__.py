"""Reproducing the paper, by role: the tables and figures as grids of configs (:mod:`.artefacts`),
the results store (:mod:`.store`), the local and Ray runners (:mod:`.runner`, :mod:`.ray_runner`),
the published numbers (:mod:`.published`), our tables beside them (:mod:`.tables`), the claims
check (:mod:`.claims`), the protocol audit and Figure 5 (:mod:`.audit`), and the notebooks
executed as reports (:mod:`.notebooks`, which imports nbclient: not loaded here).

A notebook reaches all of it as ``wtal_kit.experiments.<name>``::

    summary = wtal_kit.experiments.run_artefacts(["table3"], mode="small")
    results = wtal_kit.experiments.collect("table3", mode="small")
    wtal_kit.experiments.with_published(results)
"""

from wtal_kit.experiments.artefacts import (
    ACTIVITYNET_EVALUATIONS, ALL_NAMES, ARTEFACTS, DEFAULT_MODE, DEFAULT_SEEDS, FULL_METHOD, MODES, OLD_MODE_NAMES,
    REPORT_SOURCES, REPORT_TITLES, REPORTS, SMOKE_SEEDS, Artefact, Variant, artefact_names, base_config, check_seeds,
    grid, mode_name, training_artefacts, variant_config,
)
from wtal_kit.experiments.audit import (
    CHANGE_FROM_A, FIGURE5_CLASSES, best_test_row, figure5_label, figure5_seed, figure5_table, figure5_views, pick_video,
    protocol_audit,
)
from wtal_kit.experiments.claims import (
    CLAIM_COLUMNS, Difference, claims, collect_all, paired_difference, verdict_best, verdict_better,
)
from wtal_kit.experiments.published import (
    DERIVED_AVG, PAPER_DATASETS, PAPER_METHOD, PUBLISHED_SOURCE, avg_is_printed, published_for, published_results,
    published_row,
)
from wtal_kit.experiments.runner import EXECUTORS, ArtefactResults, Summary, collect, default_workers, run_artefacts, run_jobs
from wtal_kit.experiments.store import DEFAULT_STORE, ENTRY, NOT_TRAINING_FIELDS, Entry, Job, ResultsStore, config_key
from wtal_kit.experiments.tables import TIOUS, column, readable, seed_table, summary_table, with_published

__all__ = [
    "ACTIVITYNET_EVALUATIONS", "ALL_NAMES", "Artefact", "artefact_names", "ArtefactResults", "ARTEFACTS",
    "avg_is_printed", "base_config", "best_test_row", "CHANGE_FROM_A", "check_seeds", "CLAIM_COLUMNS", "claims",
    "collect", "collect_all", "column", "config_key", "DEFAULT_MODE", "DEFAULT_SEEDS", "DEFAULT_STORE",
    "default_workers", "DERIVED_AVG", "Difference", "ENTRY", "Entry", "EXECUTORS", "FIGURE5_CLASSES",
    "figure5_label", "figure5_seed", "figure5_table", "figure5_views", "FULL_METHOD", "grid", "Job", "mode_name",
    "MODES", "NOT_TRAINING_FIELDS", "OLD_MODE_NAMES", "paired_difference", "PAPER_DATASETS", "PAPER_METHOD",
    "pick_video", "protocol_audit", "published_for", "published_results", "published_row", "PUBLISHED_SOURCE",
    "readable", "REPORT_SOURCES", "REPORT_TITLES", "REPORTS", "ResultsStore", "run_artefacts", "run_jobs", "seed_table",
    "SMOKE_SEEDS", "Summary", "summary_table", "TIOUS", "training_artefacts", "Variant", "variant_config",
    "verdict_best", "verdict_better", "with_published",
]


# 0.1's names of this module that moved (wtal_kit/legacy.py): they warn, and go away in 0.3
from wtal_kit import legacy  # noqa: E402

__getattr__ = legacy.old_names("wtal_kit.experiments")  # its own name, also when run as __main__
