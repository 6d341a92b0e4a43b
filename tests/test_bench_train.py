"""Smoke test of benchmarks/bench_train.py (the speed target itself is judged by running the script, not here)."""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_bench_train_quick_runs():
    env = dict(os.environ, OMP_NUM_THREADS="1")  # steadier on a busy 2-core machine
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_train.py"), "--quick", "--device", "cpu", "--loop-iterations", "9"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=180, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ratio" in out.lower() and "peak" in out.lower(), out
    # the training loop against its isolated step: one row for the quick preset, its ratio consistent with its rates
    row = re.search(r"quick \(d=256\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x", out)
    assert row is not None, out
    loop_rate, step_rate, ratio = (float(v) for v in row.groups())
    assert loop_rate > 0 and step_rate > 0
    rounding = ratio * (0.05 / loop_rate + 0.05 / step_rate) + 0.005  # rates printed to 0.1, the ratio to 0.01
    assert abs(ratio - step_rate / loop_rate) <= rounding, out  # loop time / step time
    assert "9 loop iterations from a FeatureStore" in out, out  # 11 x 20 draws >= 200 training videos: the store
