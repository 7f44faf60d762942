"""The Casbin side of authz.py, run with the Python of Casbin's own venv (it never imports pipewarden).

    _casbin_worker.py WORKLOAD.json

The workload file holds the model text, the policy lines (p and g), the
requests and the number of timed passes. The worker builds a plain
`casbin.Enforcer` from them (in memory: no file adapter is read while timing),
enforces every request once untimed (warm-up), then times each pass. The
request's domain is the resource name's first path segment, computed inside
the timed loop, as a caller of Casbin would have to. Prints one JSON object:
the Casbin version, the seconds of each pass, and the decisions as a string
of Y and N, in request order, for authz.py to compare with pipewarden's.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
from pathlib import Path

import casbin
from casbin.util.builtin_operators import key_match


def main() -> None:
    work = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    model = casbin.Enforcer.new_model(text=work["model"])
    enforcer = casbin.Enforcer(model)
    # '*' as a grant's domain covers every domain (a grant at scope '*').
    enforcer.add_named_domain_matching_func("g", key_match)
    for rule in work["p"]:
        enforcer.add_policy(*rule)
    for rule in work["g"]:
        enforcer.add_grouping_policy(*rule)
    requests = [tuple(r) for r in work["requests"]]

    def one_pass() -> str:
        out = []
        for sub, obj, act in requests:
            name = obj.partition(":")[2]
            out.append("Y" if enforcer.enforce(sub, name.split("/", 1)[0], obj, act) else "N")
        return "".join(out)

    decisions = one_pass()
    seconds = []
    for _ in range(work["passes"]):
        start = time.perf_counter()
        again = one_pass()
        seconds.append(time.perf_counter() - start)
        if again != decisions:
            raise SystemExit("casbin: decisions changed between passes")
    print(
        json.dumps(
            {"version": importlib.metadata.version("casbin"), "seconds": seconds, "decisions": decisions}
        )
    )


if __name__ == "__main__":
    main()
