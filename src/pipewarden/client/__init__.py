"""The client of a pipewarden server: what `pipewarden --server URL ...` uses.

>>> from pipewarden.client import RemoteClient
>>> client = RemoteClient("https://pw.internal:8443", token=token, ca=Path("ca.pem"))  # doctest: +SKIP
>>> client.put(Path("model.safetensors"), name="fraud/model")  # doctest: +SKIP
"""

from __future__ import annotations

from pipewarden.client._client import RemoteClient
from pipewarden.client._sessions import RemoteSessions

__all__ = ["RemoteClient", "RemoteSessions"]
