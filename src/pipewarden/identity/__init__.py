"""Identity: who is acting. This release holds its second factor, TOTP (RFC 6238).

>>> from pipewarden.identity import Totp
>>> totp = Totp.generate()
>>> step = totp.verify(totp.code_at(time.time()), last_step=None)   # store `step`; replays fail
"""

from __future__ import annotations

from pipewarden.identity._totp import SECRET_BYTES, Totp, hotp

__all__ = ["SECRET_BYTES", "Totp", "hotp"]
