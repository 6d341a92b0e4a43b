"""Issue 12, GPU check: does the embedding survive at d = 2048, with and without feature centring?

    python benchmarks/collapse_check.py                              # GPU: the decisive runs, < 4 min
    python benchmarks/collapse_check.py --device cpu --iterations 20 # dry run (about 5 minutes on 2 cores)

Trains, as parallel subprocesses sharing the device, the paper preset (d = 2048, dropout 0.7,
batch 20, Adam) on the embedded synthetic benchmark:

    name               layout        lr     iterations  center_features
    th-1e-4-plain      THUMOS14      1e-4   4401        False   (the paper's settings, uncentred)
    th-1e-4-centred    THUMOS14      1e-4   4401        True    (the fix, the default since issue 12)
    th-1e-3-plain      THUMOS14      1e-3   1500        False   (benchmarks/GPU.md: mAP 0, metric loss 3.00)
    th-1e-3-centred    THUMOS14      1e-3   1500        True
    an-1e-4-plain      ActivityNet   1e-4   2000        False
    an-1e-4-centred    ActivityNet   1e-4   2000        True

Each run prints its iterations/s, the fraction of dead embedding units (W_e (x - mu) + b_e <= 0
on every segment of its first batch, at a few iterations along the way) and its final mAP
(one evaluation, at the end); a summary table follows. Runs stop training early when the
time budget (``--budget``, seconds for the whole script) is near, and are then marked
"partial" with the iterations they did. Why: docs/method.md, "Why training collapsed on the
ActivityNet layout". Numbers are synthetic-benchmark numbers, never THUMOS14/ActivityNet results.

Options: --iterations N overrides every run's iteration count; --only NAME[,NAME] picks runs;
--workers K runs at most K at once (default: all on CUDA, 2 on CPU); --bf16 (CUDA autocast).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUNS = {
    "th-1e-4-plain": dict(dataset="synthetic-thumos14", lr=1e-4, iterations=4401, center_features=False),
    "th-1e-4-centred": dict(dataset="synthetic-thumos14", lr=1e-4, iterations=4401, center_features=True),
    "th-1e-3-plain": dict(dataset="synthetic-thumos14", lr=1e-3, iterations=1500, center_features=False),
    "th-1e-3-centred": dict(dataset="synthetic-thumos14", lr=1e-3, iterations=1500, center_features=True),
    "an-1e-4-plain": dict(dataset="synthetic-activitynet12", lr=1e-4, iterations=2000, center_features=False),
    "an-1e-4-centred": dict(dataset="synthetic-activitynet12", lr=1e-4, iterations=2000, center_features=True),
}
PROBE_AT = (1, 10, 50, 200, 1000)  # iterations after which the dead-unit fraction is measured (and at the end)
EVAL_RESERVE_S = {"synthetic-thumos14": 25.0, "synthetic-activitynet12": 60.0}  # time kept for the final evaluation


def worker(name: str, args) -> None:
    """One run, in its own process: train, probe dead units, evaluate once; last line is JSON."""
    import torch

    import wtal_kit.training as training
    from wtal_kit.config import Config

    torch.set_num_threads(max(1, args.threads))
    spec = dict(RUNS[name])
    if args.iterations:
        spec["iterations"] = args.iterations
    config = Config.from_preset(
        "paper", device=args.device, bf16=args.bf16, eval_every=spec["iterations"],
        feature_cache_mb=12000 if args.device == "cuda" else 2048, **spec,
    )
    deadline = args.deadline - EVAL_RESERVE_S[config.dataset]
    record = {"name": name, "dead": {}, "iterations": config.iterations, "lr": config.lr,
              "center_features": config.center_features, "dataset": config.dataset}
    probe = {}
    original = training.TrainState.step

    def dead_fraction(state) -> float:
        with torch.no_grad():
            h = state.model.embed(probe["x"]).float()  # (N, d) pre-activations
        return float(((h > 0).sum(dim=0) == 0).float().mean())

    def observed(state, batch):  # wraps the public TrainState.step
        if not probe:  # the first batch's windows (their first 100 segments each) are the probe
            x = [batch.features[b, : min(100, n)] for b, n in enumerate(batch.lengths.tolist())]
            probe["x"] = torch.cat(x).detach().clone()
            probe["done"], probe["start"] = 0, time.perf_counter()
        terms = {name: float(value) for name, value in original(state, batch).items()}
        probe["done"] += 1
        probe["state"], probe["terms"] = state, terms
        if probe["done"] in PROBE_AT:
            record["dead"][probe["done"]] = dead_fraction(state)
            print(f"[{name}] it {probe['done']}: dead {record['dead'][probe['done']]:.2f}  "
                  f"cls {terms['classification']:.3f}  metric {terms.get('metric', float('nan')):.3f}  "
                  f"{probe['done'] / (time.perf_counter() - probe['start']):.1f} it/s", flush=True)
        return terms

    class Deadline:
        def is_set(self) -> bool:
            return time.time() > deadline

    training.TrainState.step = observed
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            result = training.train(config, run_dir, quiet=True, progress=False, stop=Deadline())
    finally:
        training.TrainState.step = original
    seconds_training = time.perf_counter() - probe["start"]
    record["dead"][result.iterations_done] = dead_fraction(probe["state"])
    record.update(
        done=result.iterations_done,
        it_per_s=result.iterations_done / seconds_training,
        seconds=time.perf_counter() - started,
        loss_classification=probe["terms"]["classification"],
        loss_metric=probe["terms"].get("metric", float("nan")),
        map={str(k): float(v) for k, v in result.mean_ap.items()},
    )
    print("RESULT " + json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--iterations", type=int, default=None, help="override every run's iteration count")
    parser.add_argument("--only", default=None, help="comma-separated run names")
    parser.add_argument("--workers", type=int, default=None, help="runs at once (default: all on cuda, 2 on cpu)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole script; runs stop training early to stay within it (default: 210 on cuda, 900 on cpu)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args)

    names = list(RUNS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parser.error(f"unknown run(s) {unknown}; choose from {list(RUNS)}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            sys.exit("CUDA is not available (use --device cpu for a dry run)")
    if args.budget is None:
        args.budget = 210.0 if args.device == "cuda" else 900.0
    workers = args.workers or (len(names) if args.device == "cuda" else 2)
    threads = max(1, (os.cpu_count() or 2) // workers)
    start = time.time()
    deadline = start + args.budget
    pending, running, results = list(names), {}, {}
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"collapse check: {len(names)} runs, {workers} at once, device {args.device}, budget {args.budget:.0f} s", flush=True)
    while pending or running:
        while pending and len(running) < workers:
            name = pending.pop(0)
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--device", args.device,
                       "--deadline", str(deadline), "--threads", str(threads)]
            if args.iterations:
                command += ["--iterations", str(args.iterations)]
            if args.bf16:
                command.append("--bf16")
            running[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             env=env, cwd=str(ROOT), bufsize=1)
            os.set_blocking(running[name].stdout.fileno(), False)
        for name, process in list(running.items()):
            for line in iter(process.stdout.readline, ""):
                if line.startswith("RESULT "):
                    results[name] = json.loads(line[len("RESULT "):])
                else:
                    print(line, end="", flush=True)
            if process.poll() is not None:
                for line in process.stdout.read().splitlines():
                    if line.startswith("RESULT "):
                        results[name] = json.loads(line[len("RESULT "):])
                    else:
                        print(line, flush=True)
                if process.returncode != 0:
                    print(f"[{name}] exited with status {process.returncode}", flush=True)
                del running[name]
        time.sleep(0.2)

    print(f"\nsummary ({time.time() - start:.0f} s, device {args.device}; paper preset, d = 2048, dropout 0.7; "
          "synthetic benchmark, not THUMOS14/ActivityNet results)")
    header = f"{'run':17} {'lr':>6} {'centred':>7} {'iters':>11} {'it/s':>6}  {'dead units at it ...':34} {'cls':>6} {'metric':>6}  mAP@0.1/0.3/0.5/0.7 avg"
    print(header)
    print("-" * len(header))
    for name in names:
        r = results.get(name)
        if r is None:
            print(f"{name:17} (no result)")
            continue
        dead = " ".join(f"{k}:{v:.2f}" for k, v in sorted(r["dead"].items(), key=lambda kv: int(kv[0])))
        iters = f"{r['done']}/{r['iterations']}" + ("" if r["done"] >= r["iterations"] else "*")
        m = r["map"]
        maps = " ".join(f"{100 * m[k]:.1f}" for k in ("0.1", "0.3", "0.5", "0.7")) + f"  {100 * m['avg']:.1f}"
        print(f"{name:17} {r['lr']:>6g} {str(r['center_features']):>7} {iters:>11} {r['it_per_s']:>6.1f}  {dead:34} "
              f"{r['loss_classification']:>6.3f} {r['loss_metric']:>6.3f}  {maps}")
    if any(r["done"] < r["iterations"] for r in results.values()):
        print("* partial: stopped by the time budget, evaluated where it stopped")


if __name__ == "__main__":
    main()
