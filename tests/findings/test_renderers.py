"""Every report format, as the tools and people who read it would see it.

- JSON is the documented interface other tools parse: its shape is pinned key
  by key.
- SARIF must be accepted by code-scanning services, so it is validated
  against the OASIS SARIF 2.1.0 JSON schema kept in tests/data (see the README
  there for where that copy comes from).
- HTML is opened in a browser and shows text taken from hostile files (global
  names, archive member names, paths), so it must not run or fetch anything.
- Text is what a person reads in a terminal.
"""

from __future__ import annotations

import json
from functools import cache
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipewarden.errors import ConfigError
from pipewarden.findings import FORMATS, Finding, Location, Report, Severity, get_renderer
from tests.findings._make import make

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"

FINDING_KEYS = ["rule_id", "severity", "title", "message", "location", "evidence", "references"]
LOCATION_KEYS = ["path", "member", "offset", "row", "column", "package"]

# Text that would run script, load a resource or break out of markup if a
# renderer pasted it into HTML unescaped.
XSS = "<script>alert(1)</script>"


def report_of(*findings: Finding, targets: int | None = None, command: str = "scan") -> Report:
    return Report.build(
        command=command, findings=findings, targets=len(findings) if targets is None else targets
    )


CLEAN = report_of(targets=3)


def busy_report() -> Report:
    """Many findings: every severity, repeated rules, members, offsets, odd paths."""
    paths = [
        "models/plain.pkl",
        "/srv/models/absolute.pt",
        "./dotted/../rel.bin",
        "with space/and#hash%percent?query.pkl",
        "c:looks-like-a-scheme.pkl",
        "back\\slash\\name.pkl",
        "модель/ñandú/😀.pkl",
        "/tmp/ünïcödé dir/model.safetensors",
    ]
    severities = list(Severity)
    findings = [
        make(
            f"PW-SCAN-{101 + i % 7}",
            severities[i % len(severities)],
            path=paths[i % len(paths)],
            member=None if i % 3 else f"archive/data{i}.pkl!inner/ü {i}.pkl",
            offset=None if i % 4 == 1 else i * 17,
            row=i if i % 4 == 1 else None,
            title=f"title {i} \u2014 \u201cquoted\u201d",
            message=f"line one\nline two\t{i} \x00 control",
            evidence={"opcode": "REDUCE", "n": i, "nested": {"list": [1, "two", None]}},
            references=("CWE-502", "AML.T0011.000") if i % 2 else ("CWE-94",),
        )
        for i in range(40)
    ]
    return report_of(*findings, targets=len(paths))


# -- formats in general -------------------------------------------------------


def test_the_four_documented_formats_are_offered() -> None:
    assert FORMATS == ("text", "json", "sarif", "html")
    for fmt in FORMATS:
        assert get_renderer(fmt).name == fmt


@pytest.mark.parametrize("fmt", ["xml", "", "JSON ", "pdf", "sarif2"])
def test_unknown_format_is_a_config_error_naming_it(fmt: str) -> None:
    with pytest.raises(ConfigError) as info:
        CLEAN.render(fmt)
    message = str(info.value)
    assert message.startswith(repr(fmt))
    for known in FORMATS:
        assert known in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_evidence_that_is_not_json_still_renders(fmt: str) -> None:
    # Scanners record raw facts; bytes or paths in evidence must not crash a report.
    finding = make(evidence={"raw": b"\x00\xff", "where": PurePosixPath("a/b"), "ids": (1, 2)})
    out = report_of(finding).render(fmt)
    assert "PW-TEST-001" in out


# -- JSON ----------------------------------------------------------------------


def test_json_is_exactly_the_documented_shape() -> None:
    finding = make(
        "PW-SCAN-101",
        Severity.CRITICAL,
        path="m.pt",
        member="archive/data.pkl",
        offset=2,
        title="dangerous global in pickle",
        message="os.system",
        evidence={"global": "os.system", "args": ["echo hi"]},
        references=("CWE-502",),
    )
    doc = json.loads(report_of(finding, targets=1).render("json"))
    assert doc == {
        "tool": "pipewarden",
        "version": CLEAN.version,
        "command": "scan",
        "findings": [
            {
                "rule_id": "PW-SCAN-101",
                "severity": "critical",
                "title": "dangerous global in pickle",
                "message": "os.system",
                "location": {
                    "path": "m.pt",
                    "member": "archive/data.pkl",
                    "offset": 2,
                    "row": None,
                    "column": None,
                    "package": None,
                },
                "evidence": {"global": "os.system", "args": ["echo hi"]},
                "references": ["CWE-502"],
            }
        ],
        "summary": {
            "targets": 1,
            "findings_by_severity": {"critical": 1, "high": 0, "medium": 0, "low": 0, "info": 0},
            "max_severity": "critical",
        },
    }
    # Key order follows the documentation, so the file reads as documented.
    assert list(doc) == ["tool", "version", "command", "findings", "summary"]
    assert list(doc["findings"][0]) == FINDING_KEYS
    assert list(doc["findings"][0]["location"]) == LOCATION_KEYS


def test_json_of_a_clean_report() -> None:
    text = CLEAN.render("json")
    assert text.endswith("\n")
    doc = json.loads(text)
    assert doc["findings"] == []
    assert doc["summary"] == {
        "targets": 3,
        "findings_by_severity": {"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0},
        "max_severity": None,
    }


def test_json_lists_findings_worst_first_with_counts() -> None:
    doc = json.loads(busy_report().render("json"))
    ranks = [Severity.parse(f["severity"]) for f in doc["findings"]]
    assert ranks == sorted(ranks, reverse=True)
    assert sum(doc["summary"]["findings_by_severity"].values()) == len(doc["findings"]) == 40
    assert doc["summary"]["max_severity"] == "critical"
    for f in doc["findings"]:
        assert list(f) == FINDING_KEYS
        assert list(f["location"]) == LOCATION_KEYS


texts = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
findings_strategy = st.builds(
    Finding,
    rule_id=st.text(min_size=1, max_size=20),
    severity=st.sampled_from(list(Severity)),
    title=texts,
    message=texts,
    location=st.builds(
        Location,
        path=st.text(min_size=1, max_size=40),
        member=st.none() | texts,
        offset=st.none() | st.integers(min_value=0, max_value=2**40),
        row=st.none() | st.integers(min_value=0, max_value=10**6),
        column=st.none() | texts,
        package=st.none() | texts,
    ),
    evidence=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    # Duplicates and "security" itself are covered by test_sarif_stays_valid_when_references_repeat.
    references=st.lists(st.from_regex(r"CWE-[0-9]{1,4}", fullmatch=True), unique=True, max_size=3).map(tuple),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(findings_strategy, max_size=6))
def test_json_keeps_every_character_of_what_was_found(findings: list[Finding]) -> None:
    report = report_of(*findings)
    doc = json.loads(report.render("json"))
    assert [f["rule_id"] for f in doc["findings"]] == [f.rule_id for f in report.findings]
    for got, want in zip(doc["findings"], report.findings, strict=True):
        assert got["title"] == want.title
        assert got["message"] == want.message
        assert got["location"]["path"] == want.location.path
        assert got["location"]["member"] == want.location.member
        assert got["evidence"] == want.evidence


# -- SARIF -------------------------------------------------------------------


@cache
def sarif_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def assert_valid_sarif(text: str) -> dict[str, Any]:
    doc = json.loads(text)
    errors = sorted(sarif_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    return doc


def test_the_schema_copy_is_the_oasis_sarif_2_1_0_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"] == (
        "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
    )
    jsonschema.Draft7Validator.check_schema(schema)
    for name in ("run", "result", "reportingDescriptor", "location", "artifactLocation", "region"):
        assert name in schema["definitions"]


def test_the_schema_rejects_what_sarif_forbids() -> None:
    # Guards the guard: a validator that accepts anything would make every
    # SARIF test below pass trivially.
    doc = json.loads(report_of(make()).render("sarif"))
    del doc["runs"][0]["results"][0]["message"]
    assert list(sarif_validator().iter_errors(doc))
    doc = json.loads(report_of(make()).render("sarif"))
    doc["runs"][0]["results"][0]["level"] = "critical"
    assert list(sarif_validator().iter_errors(doc))


def test_sarif_of_a_clean_report_is_valid_and_empty() -> None:
    doc = assert_valid_sarif(CLEAN.render("sarif"))
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    assert run["results"] == []
    assert run["tool"]["driver"]["name"] == "pipewarden"
    assert run["tool"]["driver"]["version"] == CLEAN.version


def test_sarif_of_many_findings_of_every_severity_is_valid() -> None:
    report = busy_report()
    doc = assert_valid_sarif(report.render("sarif"))
    (run,) = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert len(results) == len(report.findings)
    # One rule entry per rule id, and every result points at its own rule.
    assert sorted(r["id"] for r in rules) == sorted({f.rule_id for f in report.findings})
    for result, finding in zip(results, report.findings, strict=True):
        assert result["ruleId"] == finding.rule_id
        assert rules[result["ruleIndex"]]["id"] == finding.rule_id
        assert finding.title in result["message"]["text"]
        assert finding.message in result["message"]["text"]


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        (Severity.CRITICAL, "error"),
        (Severity.HIGH, "error"),
        (Severity.MEDIUM, "warning"),
        (Severity.LOW, "note"),
        (Severity.INFO, "note"),
    ],
)
def test_sarif_levels_follow_severity(severity: Severity, level: str) -> None:
    doc = assert_valid_sarif(report_of(make(severity=severity)).render("sarif"))
    (result,) = doc["runs"][0]["results"]
    assert result["level"] == level
    assert result["properties"]["severity"] == severity.label


def rule_security_severity(report: Report, rule_id: str) -> float:
    doc = assert_valid_sarif(report.render("sarif"))
    (rule,) = [r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == rule_id]
    return float(rule["properties"]["security-severity"])


def test_sarif_rules_carry_the_worst_security_severity_they_reached() -> None:
    # Code-scanning services rank alerts by a rule's security-severity (0-10).
    mixed = report_of(make("PW-R", Severity.LOW, path="a"), make("PW-R", Severity.CRITICAL, path="b"))
    only_low = report_of(make("PW-R", Severity.LOW, path="a"))
    only_critical = report_of(make("PW-R", Severity.CRITICAL, path="b"))
    assert rule_security_severity(mixed, "PW-R") == rule_security_severity(only_critical, "PW-R")
    assert rule_security_severity(only_critical, "PW-R") > rule_security_severity(only_low, "PW-R")
    ranks = [rule_security_severity(report_of(make(severity=s)), "PW-TEST-001") for s in Severity]
    assert ranks == sorted(ranks)
    assert all(0.0 <= r <= 10.0 for r in ranks)


def test_sarif_places_members_and_byte_offsets() -> None:
    finding = make(path="model.pt", member="archive/data.pkl", offset=120)
    doc = assert_valid_sarif(report_of(finding).render("sarif"))
    (location,) = doc["runs"][0]["results"][0]["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "model.pt"
    assert location["physicalLocation"]["region"]["byteOffset"] == 120
    assert [ll["fullyQualifiedName"] for ll in location["logicalLocations"]] == ["archive/data.pkl"]


def test_sarif_places_rows_as_lines() -> None:
    doc = assert_valid_sarif(report_of(make(path="train.csv", row=12)).render("sarif"))
    (location,) = doc["runs"][0]["results"][0]["locations"]
    assert location["physicalLocation"]["region"]["startLine"] == 12


def check_uri(uri: str, path: str) -> None:
    """A SARIF artifact URI must be a percent-encoded URI that leads back to `path`."""
    assert all(33 <= ord(c) < 127 for c in uri), f"{uri!r} is not a percent-encoded URI"
    if PurePosixPath(path).is_absolute():
        assert uri.startswith("file:///")
        assert unquote(uri.removeprefix("file://")) == PurePosixPath(path).as_posix()
    else:
        # A relative path must not be read as a URI with a scheme ("c:...").
        assert urlsplit(uri).scheme == ""
        assert unquote(uri) == PurePosixPath(path).as_posix()


@pytest.mark.parametrize(
    "path",
    [
        "relative/model.pkl",
        "/abs/olute/model.pkl",
        "with space/#hash/%25/?q.pkl",
        "c:drive-like.pkl",
        "модель/ñandú/😀.pkl",
        "/tmp/ünïcödé dir/model.safetensors",
    ],
)
def test_sarif_uris_are_valid_and_lead_back_to_the_file(path: str) -> None:
    doc = assert_valid_sarif(report_of(make(path=path)).render("sarif"))
    (location,) = doc["runs"][0]["results"][0]["locations"]
    check_uri(location["physicalLocation"]["artifactLocation"]["uri"], path)


def test_sarif_keeps_unicode_and_control_characters_in_messages() -> None:
    finding = make(title="ünïcödé 😀", message='tab\tnewline\nnul\x00 quote" back\\slash', member="é!ß")
    doc = assert_valid_sarif(report_of(finding).render("sarif"))
    (result,) = doc["runs"][0]["results"]
    assert result["message"]["text"] == 'ünïcödé 😀: tab\tnewline\nnul\x00 quote" back\\slash'
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "é!ß"


@settings(max_examples=60, deadline=None)
@given(st.lists(findings_strategy, max_size=6))
def test_sarif_is_valid_for_any_findings(findings: list[Finding]) -> None:
    report = report_of(*findings)
    doc = assert_valid_sarif(report.render("sarif"))
    results = doc["runs"][0]["results"]
    assert len(results) == len(findings)
    for result, finding in zip(results, report.findings, strict=True):
        check_uri(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], finding.location.path
        )


@pytest.mark.parametrize("references", [("CWE-502", "CWE-502"), ("security",)])
def test_sarif_stays_valid_when_references_repeat(references: tuple[str, ...]) -> None:
    assert_valid_sarif(report_of(make(references=references)).render("sarif"))


# -- HTML ----------------------------------------------------------------------


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_page(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


ACTIVE_TAGS = {
    "script", "img", "iframe", "frame", "object", "embed", "link", "base", "form", "svg", "math",
    "a", "audio", "video", "source", "input", "button", "applet",
}  # fmt: skip
FETCHING_ATTRS = {"src", "href", "srcset", "action", "formaction", "background", "poster", "xlink:href"}


def assert_self_contained(page: str) -> PageParser:
    parsed = parse_page(page)
    assert not ACTIVE_TAGS & set(parsed.tags), ACTIVE_TAGS & set(parsed.tags)
    names = {name.lower() for name, _ in parsed.attrs}
    assert not names & FETCHING_ATTRS
    assert not [n for n in names if n.startswith("on")], "event handler attribute in page"
    assert "url(" not in page.lower()
    assert "@import" not in page.lower()
    return parsed


def test_html_is_self_contained_and_forbids_fetches() -> None:
    page = busy_report().render("html")
    parsed = assert_self_contained(page)
    assert page.startswith("<!DOCTYPE html>")
    # The Content-Security-Policy makes the browser refuse scripts and fetches
    # even if something slipped through.
    csp = [value for name, value in parsed.attrs if name == "content" and value and "default-src" in value]
    assert csp and "default-src 'none'" in csp[0]


def test_html_shows_every_finding() -> None:
    report = busy_report()
    text = " ".join(parse_page(report.render("html")).text)
    for finding in report.findings:
        assert finding.rule_id in text
        assert finding.title in text


def test_html_of_a_clean_report_says_so() -> None:
    parsed = assert_self_contained(CLEAN.render("html"))
    assert "No findings." in " ".join(parsed.text)


def test_html_escapes_hostile_text_everywhere_it_shows_it() -> None:
    hostile = make(
        "<b>PW-XSS</b>",
        Severity.CRITICAL,
        path="</code><script>alert(2)</script>.pkl",
        member="<iframe src=//evil.invalid>",
        title=XSS,
        message="\"'><img src=x onerror=alert(1)>",
        evidence={"<k>": XSS, "x": "</pre><a href='//evil.invalid'>x</a>"},
        references=("<svg onload=alert(4)>",),
    )
    report = Report.build(command="scan</title><script>alert(5)</script>", findings=[hostile], targets=1)
    page = report.render("html")
    parsed = assert_self_contained(page)
    # Escaped, not dropped: the reader still sees exactly what the file contained.
    text = "".join(parsed.text)
    for shown in (
        XSS,
        "\"'><img src=x onerror=alert(1)>",
        "</code><script>alert(2)</script>.pkl",
        "<iframe src=//evil.invalid>",
        "<svg onload=alert(4)>",
        "<b>PW-XSS</b>",
        "</pre><a href='//evil.invalid'>x</a>",
        "scan</title><script>alert(5)</script>",
    ):
        assert shown in text, shown


# -- text ----------------------------------------------------------------------


def test_text_names_each_finding_and_ends_with_the_summary() -> None:
    report = report_of(
        make("PW-SCAN-101", Severity.CRITICAL, path="a.pkl"),
        make("PW-SCAN-102", Severity.HIGH, path="b.pkl"),
        make("PW-SCAN-110", Severity.MEDIUM, path="c.pkl"),
        make("PW-SCAN-999", Severity.LOW, path="d.pkl"),
        make("PW-SCAN-209", Severity.INFO, path="e.txt"),
        targets=5,
    )
    out = report.render("text")
    for finding in report.findings:
        assert finding.rule_id in out
        assert finding.location.path in out
    assert out.rstrip("\n").splitlines()[-1] == (
        "scan: 5 target(s), 5 finding(s) (1 critical, 1 high, 1 medium, 1 low, 1 info); worst: critical"
    )
    assert "\x1b[" not in out  # no colour codes unless asked for


def test_text_summary_counts_only_what_was_found() -> None:
    report = report_of(make(severity=Severity.HIGH), make(severity=Severity.HIGH, path="b"), targets=7)
    last = report.render("text").rstrip("\n").splitlines()[-1]
    assert last == "scan: 7 target(s), 2 finding(s) (2 high); worst: high"


def test_text_of_a_clean_report_is_one_summary_line() -> None:
    assert CLEAN.render("text") == "scan: 3 target(s), no findings\n"


def test_text_shows_markup_like_input_literally() -> None:
    # Titles and paths come from scanned files; they must not be read as
    # terminal markup and vanish.
    finding = make(path="[red]dir[/red]/m.pkl", title="[bold]boom[/bold]", message="[/] [link=x]y")
    out = report_of(finding).render("text")
    for shown in ("[red]dir[/red]/m.pkl", "[bold]boom[/bold]", "[/] [link=x]y"):
        assert shown in out


def test_text_renderer_colours_only_when_asked() -> None:
    report = report_of(make(severity=Severity.CRITICAL))
    assert "\x1b[" in get_renderer("text", color=True).render(report)
    assert "\x1b[" not in get_renderer("text", color=False).render(report)
