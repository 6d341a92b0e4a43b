"""What a run logs: metrics.csv (and TensorBoard when installed), the loss means between
evaluations, and the one line printed at each evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import torch

from wtal_kit.atomic import atomic_path
from wtal_kit.config import Config
from wtal_kit.data.catalog import dataset_label
from wtal_kit.data.runfolder import metric_column
from wtal_kit.evaluate import is_average, main_average, with_average
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
    """Mean of each loss term since the previous evaluation, summed on the training device.

    :meth:`add` takes the step's terms as 0-d tensors and adds them, in float64, to a (n_terms,)
    sum on their device without reading them back (no host synchronisation); :meth:`take` and
    :meth:`state` read the sums (one synchronisation, at an evaluation or a checkpoint). The sums are
    the same float64 additions, in the same order, as adding ``float(term)`` in Python, so the means
    (metrics.csv) are the same to the last bit as when the loop read every term.
    """

    def __init__(self):
        self.names: tuple = ()  # the terms' names, in the order of the first add
        self.sums: torch.Tensor | None = None  # (n_terms,) float64 on the device, None before the first add
        self.restored: dict = {}  # sums of a resumed window, until the first add moves them to the device
        self.count = 0

    def add(self, terms: dict) -> None:
        """terms: name -> 0-d tensor (or float) of one iteration."""
        values = [torch.as_tensor(value) for value in terms.values()]
        if self.sums is None:
            self.names, device = tuple(terms), values[0].device
            self.sums = torch.zeros(len(values), dtype=torch.float64, device=device)  # (n_terms,); no copy from the host
            if self.restored:  # a resumed window (rare): one small copy
                start = [float(self.restored.get(name, 0.0)) for name in self.names]
                self.sums += torch.tensor(start, dtype=torch.float64).to(device, non_blocking=True)
        self.sums += torch.stack(values).to(torch.float64)  # (n_terms,): 0.0 + x == x, then the same additions as in Python
        self.count += 1

    def _read(self) -> dict:
        if self.sums is None:
            return dict(self.restored)
        return dict(zip(self.names, self.sums.tolist()))

    def state(self) -> dict:
        """The window as JSON-able numbers (saved with a checkpoint taken between two evaluations)."""
        return {"sums": self._read(), "count": self.count}

    def restore(self, state: dict) -> None:
        self.sums, self.names = None, ()
        self.restored, self.count = dict(state.get("sums", {})), int(state.get("count", 0))

    def take(self) -> dict:
        """The means since the previous take, as floats; starts a new window."""
        mean = {name: value / max(self.count, 1) for name, value in self._read().items()}
        self.sums, self.names, self.restored, self.count = None, (), {}, 0
        return mean


def map_line(config: Config, mean_ap: pd.Series, iteration: int, test_subset: str) -> str:
    cells = "  ".join(f"mAP@{t:g}={100 * mean_ap[t]:.1f}" for t in config.iou_thresholds)
    average = main_average(mean_ap)
    return f"[{config.preset}] it {iteration}: {cells}  {average}={100 * mean_ap[average]:.1f}  (held-out split '{test_subset}', {dataset_label(config)})"
