"""Smoke test of benchmarks/bench_train.py (the speed target itself is judged by running the script, not here)."""

import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_bench_train_quick_runs():
    env = dict(os.environ, OMP_NUM_THREADS="1")  # steadier on a busy 2-core machine
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_train.py"), "--quick"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=180, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ratio" in out.lower() and "peak" in out.lower(), out
