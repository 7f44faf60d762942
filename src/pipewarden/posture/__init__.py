"""Posture: a security audit of the deployment itself, against a documented baseline (docs/posture.md).

>>> from pipewarden.posture import POSTURE_CHECKS, check_posture
>>> report = check_posture(Workspace.open(), url="https://pw.internal:8443", osv_db=Path("osv.zip"))
>>> [f.rule_id for f in report.findings]          # one finding per problem, then PW-POST-200
>>> POSTURE_CHECKS["PW-POST-111"]                 # (title, severity, fix)
"""

from __future__ import annotations

from pipewarden.posture._catalogue import POSTURE_CHECKS, CheckResult, PostureBaseline
from pipewarden.posture._checks_identity import ADMINISTRATIVE_ACTIONS
from pipewarden.posture._posture import check_posture

__all__ = ["ADMINISTRATIVE_ACTIONS", "POSTURE_CHECKS", "CheckResult", "PostureBaseline", "check_posture"]
