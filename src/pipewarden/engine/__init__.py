"""Where the work of `scan`, `data check` and `data screen` runs: in this process (``local``, the default)
or on a Dask cluster (``dask``), with the same results either way.

    >>> from pipewarden.engine import dask_client
    >>> with dask_client("tls://scheduler.internal:8786") as client:  # doctest: +SKIP
    ...     report = scan_path_dask("hub/", client=client)  # from pipewarden.scan

The Dask engine needs the ``dask`` extra (``pip install 'pipewarden[dask]'``). See docs/dask.md.
"""

from __future__ import annotations

from pipewarden.engine._dask import ENGINES, Outcome, dask_client, in_order, parse_engine, require_dask

__all__ = ["ENGINES", "Outcome", "dask_client", "in_order", "parse_engine", "require_dask"]
