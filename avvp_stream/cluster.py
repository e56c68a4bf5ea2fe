"""Ray, for whole collections: a local instance on this machine only, or a cluster joined.

Ray's dashboard and job API have no authentication: whoever reaches them can run code on
the cluster (exposed clusters have been attacked this way). So the local instance binds
every server to 127.0.0.1 and starts no dashboard; a cluster is the user's, and belongs on
a trusted private network (README, "Whole collections").
"""

from __future__ import annotations

import os
import sys

from .errors import AvvpError

LOCAL = "local"  # ``--ray`` alone


def ray_module():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise AvvpError("--ray needs Ray Data: pip install 'avvp-stream[ray]'") from None
    return ray


def connect(address: str = LOCAL, cpus: int | None = None):
    """Start a local Ray instance (``address`` "local") or join the cluster at
    ``address``; returns the ray module and whether this call started or joined it (a
    process already connected stays as it is)."""
    if address == LOCAL:
        # Ray's own single-machine mode (as on macOS and Windows): the node's address is the
        # loopback one, so the GCS, raylet and workers listen on 127.0.0.1 only. It must be
        # set before ray is imported.
        if "ray" not in sys.modules:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = ray_module()
    if ray.is_initialized():
        return ray, False
    try:
        if address == LOCAL:
            ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                     logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AvvpError(f"cannot {'start Ray' if address == LOCAL else f'join the Ray cluster at {address}'}: "
                        f"{(str(exc).splitlines() or [''])[0][:200]}") from None
    return ray, True
