"""The poisoning screen (`pipewarden data screen`): label flips, outliers, near-duplicates, backdoor
triggers and shift, one finding per suspected row. The detectors are described in their modules and in
docs/data.md."""

from __future__ import annotations

from pipewarden.data._screen._files import screen_file
from pipewarden.data._screen._screen import DETECTORS, SCREEN_RULES, ScreenResult, screen

__all__ = ["DETECTORS", "SCREEN_RULES", "ScreenResult", "screen", "screen_file"]
