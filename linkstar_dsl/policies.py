"""Policies as code: the standard library's market, channel and platform rules, plus the user's.

`stdlib/policies/*.flow` hold the law and the platforms' rules as `policy` blocks a legal team can
read; a `policy house` (or any named policy) in the user's own files adds house rules, and a house
`cap` replaces the default cap of the same purpose.  This module only collects and indexes them;
`passes/compliance.py` decides what each rule demands of a flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache

import attrs

from . import ast
from .parser import parse_source
from .resources import data_dir
from .source import SourceFile

#: Requirements the checker proves from the flow's text.
STATIC_REQUIREMENTS = ("excludes", "cooldown_or_cap")
#: Requirements enforced right before each send (consent records, LINE friendship, templates).
RUNTIME_REQUIREMENTS = ("consent", "friend", "approved_template")
#: Requirements on the rendered message; the runtime adds the footer when a template lacks it.
TEMPLATE_REQUIREMENTS = ("unsubscribe_link", "sender_identity", "sender_address", "ad_disclosure")
REQUIREMENTS = STATIC_REQUIREMENTS + RUNTIME_REQUIREMENTS + TEMPLATE_REQUIREMENTS
CONSENT_LEVELS = ("implied", "express", "express_or_implied", "written", "double_opt_in")

#: Countries in each legal market; a country in several markets gets the rules of all of them.
EU_COUNTRIES = ("IE", "DE", "FR", "IT", "ES", "NL", "BE", "AT", "PL", "SE", "DK", "FI", "PT", "CZ")
MARKET_COUNTRIES = {
    "JP": ("JP",), "US": ("US",), "CA": ("CA",), "GB": ("GB",), "EU": EU_COUNTRIES,
    "DE": ("DE",), "FR": ("FR",), "IT": ("IT",), "ES": ("ES",), "NL": ("NL",),
}


@attrs.frozen
class PolicySet:
    """Every policy in force, indexed by what it is about."""

    policies: tuple[ast.Policy, ...]

    def about(self, kind: str, subject: str) -> Iterator[ast.Policy]:
        for policy in self.policies:
            if policy.kind == kind and policy.subject.value == subject:
                yield policy

    def general(self) -> Iterator[ast.Policy]:
        """Named policies (`policy all`, `policy house`, `policy defaults`): they apply to every flow."""
        return (p for p in self.policies if p.kind == "named")

    def caps(self) -> dict[tuple[str, tuple[str, ...]], ast.CapRule]:
        """The caps in force, keyed by (purpose, channels): a house cap replaces the default one
        with the same key; a cap on some channels adds to, never replaces, a wider cap."""
        caps: dict[tuple[str, tuple[str, ...]], ast.CapRule] = {}
        for policy in self.general():
            for rule in policy.rules:
                if isinstance(rule, ast.CapRule):
                    purpose = rule.scope.purpose.value if rule.scope.purpose else "any"
                    key = (purpose, tuple(sorted(c.value for c in rule.scope.channels)))
                    if key not in caps or policy.subject.value != "defaults":
                        caps[key] = rule
        return caps

    def with_user(self, module: ast.Module) -> PolicySet:
        own = tuple(module.policies)
        if not own:
            return self
        return PolicySet(self.policies + own)


@cache
def standard_policies() -> PolicySet:
    folder = data_dir("stdlib") / "policies"
    found: list[ast.Policy] = []
    for path in sorted(folder.glob("*.flow")):
        source = SourceFile(f"stdlib/policies/{path.name}", path.read_text(encoding="utf-8"))
        result = parse_source(source)
        if not result.ok or result.module is None:
            raise RuntimeError(f"{source.name} does not parse: {result.diagnostics[0].message}")
        found.extend(result.module.policies)
    return PolicySet(tuple(found))


def markets_of_countries(countries: Iterable[str]) -> frozenset[str]:
    countries = set(countries)
    return frozenset(m for m, members in MARKET_COUNTRIES.items() if countries & set(members))
