"""The training part of `wtal reproduce` on a slice of the grid, timed, and the whole grid scaled from it
(a step of benchmarks/gpu_check.sh).

    python benchmarks/reproduce_slice.py STORE DEVICE WORKERS NAME... [--mode paper] [--fast-step] [--bf16]
                                         [--feature-cache-mb MB] [--seeds 0]

Trains the named artefacts' runs (seed 0 by default) into STORE (empty: nothing cached) with WORKERS
processes sharing the device, prints one line per run, then the whole grid's time scaled from the
slice: each run of the whole grid (all artefacts, 3 seeds) counted at the mean time the slice's runs
of its dataset layout took, divided by WORKERS (the grid runs WORKERS at a time, as the slice did).
A layout the slice lacks is counted at the slice's overall mean, and the line says so.

--fast-step and --feature-cache-mb change no store key (how a run is computed, not what); --bf16 does
(another precision is another experiment). The configs are the grid's own otherwise.
"""

import argparse
import dataclasses
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wtal_kit import experiments  # noqa: E402
from wtal_kit.experiments.store import config_key  # noqa: E402


def slice_jobs(names, mode, seeds, device, changes):
    jobs = []
    for job in experiments.grid(names, mode, seeds, device=device):
        config = job.config.replace(**changes)
        jobs.append(dataclasses.replace(job, config=config, key=config_key(config)))
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("device")
    parser.add_argument("workers", type=int)
    parser.add_argument("names", nargs="+")
    parser.add_argument("--mode", default="paper", choices=experiments.MODES)
    parser.add_argument("--smoke", action="store_const", const="smoke", dest="mode", help="the same as --mode smoke")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--fast-step", action="store_true", help="Config.fast_step for every run")
    parser.add_argument("--bf16", action="store_true", help="Config.bf16 for every run (another store key)")
    parser.add_argument("--feature-cache-mb", type=int, default=None, help="Config.feature_cache_mb for every run")
    args = parser.parse_args()

    changes = {"fast_step": args.fast_step, "bf16": args.bf16}
    if args.feature_cache_mb is not None:
        changes["feature_cache_mb"] = args.feature_cache_mb
    jobs = slice_jobs(args.names, args.mode, args.seeds, args.device, changes)
    how = f"{'fast step' if args.fast_step else 'plain step'}, {'bf16' if args.bf16 else 'fp32'}"
    started = time.perf_counter()
    summary = experiments.run_jobs(jobs, args.store, workers=args.workers, progress=False)
    wall = time.perf_counter() - started
    print(f"reproduce: {summary.line()}")
    print(f"reproduce: {len(jobs)} runs of {jobs[0].config.iterations} iterations in {wall:.0f} s with {args.workers}"
          f" worker processes on {args.device} ({how})")
    seconds_by_layout: dict[str, list] = {}
    store = experiments.ResultsStore(args.store)
    for job in jobs:
        entry = store.get(job.key)
        if entry is None:
            print(f"reproduce:   {job.key} {job.config.dataset}: not trained")
            continue
        seconds = float(entry.info["seconds"])
        seconds_by_layout.setdefault(job.config.dataset, []).append(seconds)
        print(f"reproduce:   {job.key} {job.config.dataset} kappa={job.config.kappa}: {seconds:.0f} s,"
              f" avg mAP {100 * entry.results['map']['avg']:.1f}")
    if not seconds_by_layout:
        print("reproduce: no run finished: no estimate of the whole grid")
        return 1
    whole = Counter(job.config.dataset for job in experiments.grid(None, args.mode, experiments.DEFAULT_SEEDS, device="cpu"))
    overall = statistics.mean(s for runs in seconds_by_layout.values() for s in runs)
    total, parts = 0.0, []
    for dataset, count in sorted(whole.items()):
        runs = seconds_by_layout.get(dataset)
        mean = statistics.mean(runs) if runs else overall
        total += count * mean
        parts.append(f"{count} x {mean:.0f} s ({dataset}{'' if runs else ': not in the slice, at the slice mean'})")
    slice_text = f"{len(jobs)} runs of {' + '.join(args.names)}, seed{'s' if len(args.seeds) > 1 else ''} " \
                 f"{' '.join(map(str, args.seeds))}, {args.workers} processes sharing the {args.device} device, {how}"
    print(f"full grid, {sum(whole.values())} runs: {total / args.workers / 60:.1f} min"
          f"  (scaled from a slice: {slice_text}; ({' + '.join(parts)}) / {args.workers} processes)")
    return 0 if not summary.failed else 1


if __name__ == "__main__":
    sys.exit(main())
