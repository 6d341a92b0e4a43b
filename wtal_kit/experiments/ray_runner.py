"""The experiment grid on a Ray cluster: ``wtal reproduce --executor ray`` (see :func:`run_on_ray`).

Each (config, seed) that the results store lacks becomes one Ray task asking for one CPU, and
one GPU where the cluster has GPUs (or a fraction of one, ``gpus_per_task``: the model is small
enough for several runs to share a card). A task trains its entry in a scratch folder of the
node it runs on and returns the entry's files to the driver, which puts them into the store as
the local runner does (under the key's lock, renamed into place whole); the store therefore
needs no shared filesystem. A task that fails is submitted once more; a second failure is
reported, and the other tasks go on.

Ray is an optional extra (``pip install -e ".[cluster]"``), imported here only, and only when
asked for.
"""

from __future__ import annotations

import io
import logging
import tarfile
import tempfile

from wtal_kit import checks
from wtal_kit.errors import InputError, WtalError, failure_message

RAY_MISSING = "--executor ray needs Ray: pip install -e '.[cluster]'"
ATTEMPTS = 2  # a failed task is submitted once more, then reported


def import_ray():
    """The ``ray`` module, or a one-line :class:`WtalError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise WtalError(RAY_MISSING) from None
    return ray


def check_gpus_per_task(value) -> float | None:
    """None (one GPU where the cluster has GPUs, else none), 0 (CPU only), a fraction, or a whole number."""
    if value is None:
        return None
    value = checks.number(value, "gpus_per_task", minimum=0)
    if value > 1 and value != int(value):
        raise InputError(f"gpus per task above 1 must be a whole number, got {value!r}", field="gpus_per_task")
    return float(value)


# -- on a worker -------------------------------------------------------------------------------
def train_entry(job) -> bytes:
    """One Ray task: train ``job`` in a scratch store on this node; its entry folder as tar bytes.

    A failure raises a :class:`WtalError` with one line (what the driver reports).
    """
    import torch

    from wtal_kit.experiments.store import ResultsStore

    torch.set_num_threads(1)  # the task holds one CPU
    with tempfile.TemporaryDirectory(prefix="wtal-ray-") as scratch:
        try:
            _, entry = ResultsStore(scratch).compute(job)
        except Exception as error:
            raise WtalError(failure_message(error)) from None
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:  # the detections JSON compresses well
            tar.add(entry.path, arcname=".")
        return buffer.getvalue()


# -- on the driver -----------------------------------------------------------------------------
def install_entry(store, key: str, payload: bytes) -> str:
    """Put an entry's tar bytes into the store: "trained", or "cached" when the store has it already."""
    if store.get(key) is not None:
        return "cached"
    with store.new_entry(key) as draft:
        if draft is None:  # another runner on this store made it meanwhile
            return "cached"
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(draft.path, filter="data")
            else:
                tar.extractall(draft.path)
        draft.publish()  # entry.json came with the files
    return "trained"


def _task_failure(ray, error: Exception) -> str:
    """One line for a failed task: the worker's own message, or what Ray says went wrong."""
    if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
        return failure_message(error.cause)
    lines = [line for line in str(error).splitlines() if line.strip()]  # a worker or node died
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def run_on_ray(jobs, store, record, *, address: str | None = None, gpus_per_task=None, task=train_entry) -> None:
    """Train ``jobs`` as Ray tasks; ``record(key, status, message)`` as each one ends.

    ``address``: a running cluster ("auto", "HOST:PORT", "ray://HOST:10001"); None: the cluster of
    ``RAY_ADDRESS`` or of ``ray start`` on this machine, else a new local instance (stopped at the
    end). A Ray already initialised in this process is used as it is. ``task``: the function a
    task runs (job -> entry tar bytes); tests wrap :func:`train_entry`.
    """
    from tqdm.auto import tqdm

    ray = import_ray()
    gpus_per_task = check_gpus_per_task(gpus_per_task)
    if not jobs:
        return  # everything was in the store: no cluster needed
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as error:  # no cluster there, a bad address
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise WtalError(f"could not reach the Ray cluster at {address or 'this machine'}: "
                            f"{lines[0] if lines else type(error).__name__}") from None
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_task is None:
            gpus_per_task = 1 if cluster_gpus >= 1 else 0
        elif gpus_per_task > cluster_gpus:
            raise InputError(f"each task asks for {gpus_per_task:g} GPU but the Ray cluster has {cluster_gpus:g}",
                             field="gpus_per_task")
        remote = ray.remote(task).options(num_cpus=1, num_gpus=gpus_per_task, max_retries=0)
        pending = {remote.remote(job): (job, 1) for job in jobs}
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            job, attempt = pending.pop(ready)
            try:
                payload = ray.get(ready)
            except Exception as error:  # the task raised, or its worker died
                if attempt < ATTEMPTS:
                    tqdm.write(f"retrying {job.key} (attempt {attempt} failed: {_task_failure(ray, error)})")
                    pending[remote.remote(job)] = (job, attempt + 1)
                else:
                    record(job.key, "failed", f"{_task_failure(ray, error)} (failed {attempt} times)")
                continue
            try:
                status, message = install_entry(store, job.key, payload), None
            except (OSError, tarfile.TarError) as error:  # a full disk, a damaged transfer
                status, message = "failed", f"could not put the entry into {store.root}: {type(error).__name__}: {error}"
            record(job.key, status, message)
    finally:
        if started_here:
            ray.shutdown()

