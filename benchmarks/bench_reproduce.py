"""Wall time of `wtal reproduce` from an empty results store, then again with everything cached.

    python benchmarks/bench_reproduce.py                  # small mode (about half an hour on 2 cores)
    python benchmarks/bench_reproduce.py --mode smoke     # seconds to minutes
    python benchmarks/bench_reproduce.py --mode paper --device cuda --workers 4   # a GPU machine

Budgets (issue #8): smoke within 5 minutes on a 2-core machine; small within 30 minutes from an
empty store and within 1 minute the second time; paper on one GPU: measured, goal 15 minutes.
The store and reports go to a temporary folder (or --keep DIR) so that nothing cached helps.
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

BUDGETS = {"smoke": 5 * 60, "small": 30 * 60}  # seconds, first run from an empty store
CACHED_BUDGET = 60  # seconds, the second run


def reproduce(mode: str, store: Path, out: Path, extra: list) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wtal_kit.apps.cli", "reproduce", "--mode", mode, "--store", str(store),
                           "--out", str(out), "--no-progress", *extra], text=True, capture_output=True)
    seconds = time.perf_counter() - started
    print(done.stdout.strip())
    if done.returncode != 0:
        print(done.stderr.strip()[-3000:])
        print(f"bench_reproduce: `wtal reproduce` exited with {done.returncode}")
    return seconds, json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="small", choices=("smoke", "small", "paper"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=None, help="[wtal reproduce's default]")
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the store and reports here (must not exist)")
    args = parser.parse_args()
    extra = ["--device", args.device]
    extra += ["--workers", str(args.workers)] if args.workers else []
    extra += ["--only", *args.only] if args.only else []
    extra += ["--seeds", *args.seeds] if args.seeds else []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if args.keep and args.keep.exists():
            parser.error(f"{args.keep} exists")
        print(f"bench_reproduce: {args.mode} mode, {os.cpu_count()} CPU cores, device {args.device}, empty store in {root}")
        first, summary = reproduce(args.mode, root / "store", root / "reports", extra)
        second, _ = reproduce(args.mode, root / "store", root / "reports-cached", extra)
    grid = summary.get("grid", {})
    notebooks = summary.get("notebooks", [])
    print(f"\nfirst run (empty store): {first:.0f} s  ({grid.get('trained', '?')} runs trained in {grid.get('seconds', 0):.0f} s, "
          f"{len(notebooks)} notebooks in {sum(n['seconds'] for n in notebooks):.0f} s)")
    budget = BUDGETS.get(args.mode)
    if budget:
        print(f"  budget {budget // 60} min: {'met' if first <= budget else 'NOT met'}")
    print(f"second run (all cached): {second:.0f} s  budget {CACHED_BUDGET} s: {'met' if second <= CACHED_BUDGET else 'NOT met'}")
    slowest = sorted(notebooks, key=lambda n: -n["seconds"])[:3]
    print("slowest notebooks: " + ", ".join(f"{n['name']} {n['seconds']:.1f} s" for n in slowest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
