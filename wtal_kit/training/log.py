"""What a run logs: metrics.csv (and TensorBoard when installed), the loss means between
evaluations, and the one line printed at each evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from wtal_kit.atomic import atomic_path
from wtal_kit.config import Config
from wtal_kit.data.catalog import dataset_label
from wtal_kit.data.runfolder import metric_column
from wtal_kit.evaluate import average_label, is_average, main_average, with_average
from wtal_kit.training.runs import METRICS


class MetricsLog:
    """metrics.csv (and TensorBoard when installed): one row per evaluation."""

    def __init__(self, run_dir: Path, config: Config):
        self.path = run_dir / METRICS
        self.fields = ["iteration", "loss_total", "loss_classification", "loss_metric"]
        # the averages the evaluation reports: "avg" (the paper's) when its four thresholds are evaluated,
        # and the labelled mean over the config's thresholds when they are another set
        self.averages = [key for key in with_average(pd.Series(1.0, index=list(config.iou_thresholds))).index if is_average(key)]
        self.fields += [metric_column(t) for t in config.iou_thresholds] + [metric_column(key) for key in self.averages]
        self.thresholds = config.iou_thresholds
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard is optional
            pass
        else:
            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def start(self) -> None:
        with open(self.path, "w", newline="") as handle:
            csv.writer(handle).writerow(self.fields)

    def truncate(self, iteration: int) -> None:
        """Drop rows written after the checkpoint we resume from."""
        if not self.path.is_file():
            return self.start()
        table = pd.read_csv(self.path)
        table = table[table["iteration"] <= iteration]
        with atomic_path(self.path) as tmp:
            table.to_csv(tmp, index=False)

    def append(self, iteration: int, mean_losses: dict, mean_ap: pd.Series) -> None:
        row = [iteration, mean_losses["total"], mean_losses["classification"], mean_losses.get("metric", float("nan"))]
        row += [float(mean_ap[t]) for t in self.thresholds] + [float(mean_ap[key]) for key in self.averages]
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow(row)
        if self.writer is not None:
            for name, value in zip(self.fields[1:], row[1:]):
                self.writer.add_scalar(name, value, iteration)

    def read(self) -> pd.DataFrame:
        return pd.read_csv(self.path)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class LossWindow:
    """Mean of each loss term since the previous evaluation."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, terms: dict) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def state(self) -> dict:
        return {"sums": dict(self.sums), "count": self.count}

    def restore(self, state: dict) -> None:
        self.sums, self.count = dict(state.get("sums", {})), int(state.get("count", 0))

    def take(self) -> dict:
        mean = {name: value / max(self.count, 1) for name, value in self.sums.items()}
        self.sums, self.count = {}, 0
        return mean


def map_line(config: Config, mean_ap: pd.Series, iteration: int, test_subset: str) -> str:
    cells = "  ".join(f"mAP@{t:g}={100 * mean_ap[t]:.1f}" for t in config.iou_thresholds)
    average = main_average(mean_ap)
    return f"[{config.preset}] it {iteration}: {cells}  {average}={100 * mean_ap[average]:.1f}  (held-out split '{test_subset}', {dataset_label(config)})"
