"""``make demo`` / ``wtal demo``: train the quick preset on the embedded benchmark and show its table.

The run lives in ``runs/demo``; a second call finds ``results.json`` written with
the same config and only prints (instant). The table puts our numbers — labelled
"embedded synthetic benchmark" — beside the paper's, labelled "published (real
THUMOS14)": the two are different data and are not comparable.
"""

from __future__ import annotations

import json
from pathlib import Path

from wtal_kit.config import Config
from wtal_kit.data.catalog import dataset_label
from wtal_kit.apps.printing import format_map_rows
from wtal_kit.experiments.published import PAPER_METHOD, published_row
from wtal_kit.training.runs import CONFIG, RESULTS, map_from_json, map_to_json, write_results
from wtal_kit.training import train, untrained_result


# Measured (README, "What the default model scores"): the same demo under 9 emulated CPU code paths and
# thread counts; training amplifies last-digit differences of the CPU's math kernels.
CPU_SPREAD = ("On CPU these figures vary by machine: 5 CPU code-path / thread settings gave avg mAP 44.1-44.4 "
              "(@0.1: 70.3-70.5, @0.5: 36.2-36.8); one machine repeats its own numbers bit for bit.")


def demo_config() -> Config:
    """The default model of the demo: the quick preset on the THUMOS14-layout synthetic benchmark."""
    return Config.from_preset("quick")


def _cached(run_dir: Path, config: Config) -> dict | None:
    results_path, config_path = run_dir / RESULTS, run_dir / CONFIG
    if not (results_path.is_file() and config_path.is_file()):
        return None
    try:
        if Config.from_json(config_path) != config:
            return None
        results = json.loads(results_path.read_text())
    except Exception:  # a damaged cache is simply retrained
        return None
    return results if results.get("completed", True) and "map" in results else None


def run_demo(run_dir="runs/demo", *, force: bool = False, progress: bool = True, config: Config | None = None) -> int:
    """Train (unless a finished run with the same config is cached) and print the table."""
    run_dir = Path(run_dir)
    config = config or demo_config()
    results = None if force else _cached(run_dir, config)
    if results is None:
        print(f"Training the default '{config.preset}' preset on the {dataset_label(config)} (CPU: a few minutes) ...")
        train(config, run_dir, progress=progress)
        untrained = untrained_result(config)
        results = json.loads((run_dir / RESULTS).read_text())
        results["untrained_map"] = map_to_json(untrained.mean_ap)
        write_results(run_dir, results)
    else:
        print(f"Using the finished demo run in {run_dir} (pass --force to retrain).")
    ours = map_from_json(results["map"])
    rows = [
        (f"ours — embedded synthetic benchmark, {config.preset} preset, checkpoint: {results['checkpoint']}", ours),
    ]
    if "untrained_map" in results:
        rows.append(("untrained model — same embedded synthetic benchmark", map_from_json(results["untrained_map"])))
    published = published_row(table=1, dataset="THUMOS14", method=PAPER_METHOD)
    rows.append(("published (real THUMOS14, paper Table 1) — not comparable", published))
    print()
    print(format_map_rows(rows, percent_rows={rows[-1][0]}))
    print(
        f"\nDataset: {results['dataset']}; train '{results['train_subset']}', test '{results['test_subset']}'; "
        f"{results['localization']} localization, {results['eval_protocol']} evaluation; "
        f"{results['iterations']} iterations on {results['device']} ({results['seconds']:.0f} s)."
        "\nThe embedded benchmark's features are synthetic (laid out on the real THUMOS14 annotations); its numbers say "
        "whether the pipeline learns, not how the method does on THUMOS14. Real features: see README, 'Real I3D features'."
        + (f"\n{CPU_SPREAD}" if results.get("device") == "cpu" else "")
    )
    print(f"Run directory: {run_dir}")
    return 0
