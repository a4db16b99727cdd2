"""Ray, where work goes to a cluster (`pip install 'dragedit[ray]'`): a batch's photos, a clip's runs of frames.

Sessions must be on a filesystem every node sees at the same path; a re-run resumes through them as a local
run does."""
from __future__ import annotations

from typing import Any

from .errors import UserError


def ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'dragedit[ray]'") from None
    return ray


def connect_ray(address: str | None) -> Any:
    """Ray, joined to the cluster at `address` (None: a running local instance, else a new one); a one-line
    error where it cannot be reached."""
    ray = ray_module()
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local instance"
            raise UserError(f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0]}") from None
    return ray
