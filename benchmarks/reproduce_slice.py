"""The training part of `wtal reproduce` on a slice of the grid, timed (step 4 of gpu_check.sh).

    python benchmarks/reproduce_slice.py STORE DEVICE WORKERS NAME... [--smoke] [--seeds 0]

Trains the named artefacts' runs (seed 0 by default) into STORE with WORKERS processes and
prints one line per run and the time the whole grid (3 seeds) would take at that rate.
"""

import sys, time
from wtal_kit import experiments

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    mode = "smoke" if "--smoke" in sys.argv else "paper"
    store, device, workers, names = args[0], args[1], int(args[2]), args[3:]
    jobs = experiments.grid(names, mode, (0,), device=device)
    started = time.perf_counter()
    summary = experiments.run_jobs(jobs, store, workers=workers, progress=False)
    wall = time.perf_counter() - started
    print(f"reproduce: {summary.line()}")
    whole = len(experiments.grid(None, mode, experiments.DEFAULT_SEEDS))
    print(f"reproduce: {len(jobs)} runs of {jobs[0].config.iterations} iterations in {wall:.0f} s with {workers} workers; "
          f"the whole grid ({whole} runs, 3 seeds) at this rate: about {wall * whole / len(jobs) / 60:.0f} min")
    for key in summary.trained:
        entry = experiments.ResultsStore(store).get(key)
        print(f"reproduce:   {key} {entry.info['seconds']:.0f} s, avg mAP {100 * entry.results['map']['avg']:.1f}")
