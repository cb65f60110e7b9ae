"""Joining (or starting) Ray from the CLI, with an address nobody answers at as one line."""

from __future__ import annotations

from typing import Any

from bubblescope.cluster.errors import ClusterUnreachableError

FIX = ("start one (`ray start --head`) or fix --address (GCS host:port, auto, or "
       "ray://HEAD:10001)")


def init_ray(address: str | None, **options: Any) -> None:
    """ray.init(address, **options); ClusterUnreachableError (exit 3) when none answers."""
    import ray

    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:  # Ray's word for an address where no cluster answers
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterUnreachableError(
            f"no Ray cluster answers at --address {address} ({reason}); {FIX}") from exc
