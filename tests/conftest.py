from __future__ import annotations

import os

from hypothesis import settings

# Property tests draw the same examples on every run and keep no example
# database, so CI results never depend on luck. HYPOTHESIS_PROFILE=dev draws
# fresh random examples for local exploration.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Every test can ask for `database` (SQLite and PostgreSQL), `database_url` or `postgres_admin_url`.
pytest_plugins = ["tests.dbfixtures"]
