"""The markdown tables of the secrets benchmark, from its results document."""

from __future__ import annotations

from typing import Any

VARIANTS = {
    "one-string cell": "notebook source stored as one JSON string",
    "split across strings": "notebook output with the value split across two JSON strings",
}


def _pct(rate: dict[str, Any]) -> str:
    return f"{rate['found']}/{rate['planted']} ({100 * rate['found'] / rate['planted']:.0f}%)"


def _leak(entry: dict[str, Any], planted: int) -> str:
    leaks = entry["leaks"]
    if not leaks["any"]:
        return "no"
    return f"yes: {len(leaks['in_clear'])} in clear, {len(leaks['sha1'])} as SHA-1 (of {planted})"


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]


def markdown(results: dict[str, Any]) -> str:
    env, tree, tools = results["environment"], results["tree"], results["tools"]
    params = results["parameters"]
    planted = len(tree["planted"])
    names = list(tools)
    base = tools["pipewarden"]["median_wall_seconds"]
    load = env["load_average_1min"]
    out = [
        f"{tree['files']:,} files ({tree['bytes'] / 2**20:.1f} MiB), {planted} planted secrets "
        f"({len(tree['kinds'])} kinds in {len(tree['places'])} places), seed {params['seed']}; "
        f"median of {params['repeat']} runs per tool. {env['machine']}, {env['cpus']} CPUs, Python "
        f"{env['python']}; load average (1 min) {load['before']} before the runs, at most {load['highest']}. "
        f"pipewarden {env['versions']['pipewarden']} (source {env['pipewarden_source']}), "
        f"detect-secrets {env['versions']['detect-secrets']}.",
        "",
    ]
    rows = []
    for name in names:
        entry = tools[name]
        rows.append(
            [
                f"{name} (`{entry['command']}`)",
                _pct(entry["recall"]),
                f"{entry['false_positive_places']} ({entry['false_positive_entries']})",
                f"{entry['median_wall_seconds']:.2f}",
                f"{entry['median_cpu_seconds']:.2f}",
                f"{entry['median_peak_rss_mib']:.0f}",
                _leak(entry, planted),
                f"{entry['median_wall_seconds'] / base:.2f}x",
            ]
        )
    header = ["tool", "planted found", "false positives: places (entries)", "median wall s", "CPU s"]
    header += ["peak RSS MiB", "value or unsalted SHA-1 of a value in output", "wall time vs pipewarden"]
    out += _rows(header, rows)
    shown = [n for n in names if n != "detect-secrets -c 1"]
    for key, title in (("kind", "kind"), ("place", "place"), ("variant", "notebook variant")):
        groups = tools["pipewarden"]["recall_by"][key]
        table = []
        for group in groups:
            if key == "variant" and group == "plain":
                continue
            label = VARIANTS.get(group, group)
            table.append(
                [label, str(groups[group]["planted"])]
                + [_pct(tools[n]["recall_by"][key][group]) for n in shown]
            )
        out += ["", f"Found, by {title}:", "", *_rows([title, "planted", *shown], table)]
    types = sorted(
        {t for n in shown for t in tools[n]["false_positives_by_file_type"]} | set(tree["files_by_type"])
    )
    table = [
        [t, str(tree["files_by_type"].get(t, "-"))]
        + [str(tools[n]["false_positives_by_file_type"].get(t, 0)) for n in shown]
        for t in types
    ]
    out += ["", "False positives (places), by file type:", "", *_rows(["file type", "files", *shown], table)]
    detectors = sorted({d for n in shown for d in tools[n]["false_positives_by_detector"]})
    table = [[d] + [str(tools[n]["false_positives_by_detector"].get(d, 0)) for n in shown] for d in detectors]
    out += ["", "False positives (entries), by detector:", "", *_rows(["detector", *shown], table)]
    for name in shown:
        missed = tools[name]["missed"]
        out += ["", f"Missed by {name} ({len(missed)}):", ""]
        out += [
            f"- {m['id']} {m['kind']} in {m['place']}"
            + (f" ({m['variant']})" if m["variant"] != "plain" else "")
            + f": {m['file']} {', '.join(m['where'])}"
            for m in missed
        ] or ["- none"]
    cost = results["guess_cost"]
    sha1, pbkdf2 = cost["sha1_seconds_per_guess"], cost["pipewarden_seconds_per_guess"]
    confirmed = tools["pipewarden"].get("confirmed_by_fingerprint_guess", [])
    out += [
        "",
        f"Cost of checking one guessed value against an output: plain SHA-1 {sha1 * 1e6:.2f} µs, "
        f"pipewarden's fingerprint {pbkdf2 * 1e3:.1f} ms ({pbkdf2 / sha1:,.0f}x). "
        f"With the exact values in hand, {len(confirmed)} of the {planted} planted values (keys left out) "
        "are confirmed by pipewarden's fingerprints too: any unkeyed digest confirms a right guess; what "
        "differs is the cost of each.",
    ]
    return "\n".join(out)
