"""The Dask engine's connection: a client of an existing scheduler, or of a local cluster started for one run.

Dask is optional (the ``dask`` extra); everything here imports it only when called, and a missing install
is a `ConfigError` that names the extra. Tasks are submitted `pure=False` (never shared with another
client's identical call) and their results are taken in submission order, a window at a time, so the
client holds a bounded number of results whatever the input's size.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pipewarden.errors import ConfigError

__all__ = ["ENGINES", "Outcome", "dask_client", "in_order", "parse_engine", "require_dask"]

logger = logging.getLogger(__name__)

#: The engines `--engine` accepts.
ENGINES = ("local", "dask")

_EXTRA = "pip install 'pipewarden[dask]'"


def parse_engine(name: str) -> str:
    """`name` if it is an engine, else a `ConfigError` naming the choices."""
    if name not in ENGINES:
        raise ConfigError(f"--engine {name}: not an engine (choose from {', '.join(ENGINES)})")
    return name


def require_dask() -> Any:
    """The `distributed` module, or a `ConfigError` naming the extra to install."""
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(f"--engine dask: Dask is not installed; install the dask extra: {_EXTRA}") from exc
    return distributed


def _warn_plain(address: str) -> None:
    """A scheduler reached without TLS off this machine: tasks (and the artifacts' findings) cross the
    network in the clear, and anyone who can reach the scheduler can run code on its workers."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme == "tls":
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        logger.warning("%s: the Dask scheduler is reached without TLS (see docs/dask.md)", address)


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int | None = None) -> Iterator[Any]:
    """A `distributed.Client` for one run: of the scheduler at `scheduler` (TLS and credentials from Dask's
    own security configuration), or, without one, of a local cluster of worker processes started for the
    run and closed after it (`workers` of them, one thread each; default one per core).

    A scheduler that cannot be reached is a `ConfigError` naming its address.
    """
    distributed = require_dask()
    if scheduler is not None:
        _warn_plain(scheduler)
        try:
            client = distributed.Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"{scheduler}: cannot reach the Dask scheduler: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    logger.info("starting a local Dask cluster for this run")
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",  # this machine only
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@dataclass(frozen=True, slots=True)
class Outcome:
    """One task's end: its position among the items, and its value or the error it raised (a worker that
    died while running it is such an error: Dask's `KilledWorker`)."""

    index: int
    value: Any
    error: BaseException | None


def in_order(
    client: Any, func: Callable[..., Any], items: Iterable[Any], *, window: int, **kwargs: Any
) -> Iterator[Outcome]:
    """`func(item, **kwargs)` for each item as a Dask task, yielded in the items' order; at most `window`
    tasks are submitted ahead of the one being yielded (a large value in `kwargs` is best scattered to the
    cluster first: `client.scatter([value], broadcast=True)[0]`)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    pending: deque[tuple[int, Any]] = deque()
    source = iter(enumerate(items))
    done = False
    while True:
        while not done and len(pending) < window:
            nxt = next(source, None)
            if nxt is None:
                done = True
                break
            index, item = nxt
            pending.append((index, client.submit(func, item, pure=False, **kwargs)))
        if not pending:
            return
        index, future = pending.popleft()
        try:
            value = future.result()
        except (
            Exception
        ) as exc:  # the task's own error, a dead worker or a lost connection: the caller decides
            yield Outcome(index=index, value=None, error=exc)
        else:
            yield Outcome(index=index, value=value, error=None)
        finally:
            future.release()
