"""The Ray backend of `dragedit batch` (`pip install 'dragedit[ray]'`): each photo is a Ray task.

Sessions live under the batch's output folder, which every node must see at the same path (a shared
filesystem); a re-run resumes through them exactly as a local batch does. Each task asks for
`threads` CPUs (and `gpus_per_photo` GPUs), and limits its torch threads to them.
"""
from __future__ import annotations

from typing import Callable

from dragedit.common.cluster import connect_ray

from .photo import BatchConfig, PhotoJob, PhotoRow, run_photo


def run_on_ray(jobs: list[PhotoJob], cfg: BatchConfig, finished: Callable[[int, list[PhotoRow]], None]) -> None:
    """Run every job as a Ray task on the cluster at `cfg.address` (or a local instance if none is running)."""
    ray = connect_ray(cfg.address)
    threads = jobs[0].threads if jobs else 1
    task = ray.remote(num_cpus=threads, num_gpus=cfg.gpus_per_photo, max_retries=0)(_ray_photo)
    pending = {task.remote(job): i for i, job in enumerate(jobs)}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            finished(pending.pop(ref), ray.get(ref))


def _ray_photo(job: PhotoJob) -> list[PhotoRow]:
    """One photo inside a Ray worker: with device 'auto', a GPU Ray gave the task is used, else the CPU threads
    it reserved; an explicit device is kept (`--device cpu` never runs on a GPU)."""
    import ray

    if job.settings.device == "auto":
        job.settings.device = "cuda" if ray.get_gpu_ids() else "cpu"  # decided on the node that runs it
    return run_photo(job)
