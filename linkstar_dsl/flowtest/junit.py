"""JUnit XML for CI dashboards: one `<testsuite>` per test file, one `<testcase>` per test.

A failed expectation is a `<failure>` with the same text the terminal shows; a test that could not
run (its flows do not compile) is an `<error>`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from .report import failure_text, summary
from .runner import CaseResult


def junit_xml(results: Iterable[CaseResult], seconds: float) -> str:
    results = list(results)
    root = ET.Element("testsuites", name="linkstar test", tests=str(len(results)),
                      failures=str(sum(r.status == "fail" for r in results)),
                      errors=str(sum(r.status == "error" for r in results)), time=f"{seconds:.3f}")
    suites: dict[str, list[CaseResult]] = {}
    for r in results:
        suites.setdefault(r.suite.label, []).append(r)
    for label, members in suites.items():
        suite = ET.SubElement(root, "testsuite", name=label, tests=str(len(members)),
                              failures=str(sum(r.status == "fail" for r in members)),
                              errors=str(sum(r.status == "error" for r in members)), skipped="0",
                              time=f"{sum(r.seconds for r in members):.3f}", file=label)
        classname = label.rsplit("/", 1)[-1].removesuffix(".toml").removesuffix(".test")
        for r in members:
            case = ET.SubElement(suite, "testcase", name=r.name, classname=classname, file=label,
                                 line=str(r.line), time=f"{r.seconds:.3f}")
            if r.status == "pass":
                continue
            body = "\n".join(failure_text(r))
            first = summary(r)
            tag = "failure" if r.status == "fail" else "error"
            element = ET.SubElement(case, tag, message=first,
                                    type="expectation" if tag == "failure" else "flow-errors")
            element.text = body
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
