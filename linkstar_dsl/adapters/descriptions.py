"""Provider descriptions: the TOML files in `channels/`, read and checked.

Each file describes one provider: its channel, base URL, endpoints, authentication and the
environment variables holding its secrets, where its answers keep the message id, error code and
error text, its published limits, and the ordered table that maps every status, error code and
transport failure to a class of the channel reference.  The first matching rule wins.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..resources import data_dir
from .messages import CLASS_OUTCOMES, SUPPRESS_REASONS

TRANSPORT_FAILURES = ("connect", "timeout", "disconnected")


class DescriptionError(ValueError):
    """A provider description that cannot be used; says which file and which field."""


@attrs.frozen
class ErrorRule:
    category: str
    meaning: str
    status: tuple[int, int] | None = None
    codes: tuple[str, ...] = ()
    contains: str | None = None
    transports: tuple[str, ...] = ()
    reason: str | None = None
    retry_after: float | None = None

    def matches(self, status: int | None, code: str | None, message: str, transport: str | None) -> bool:
        if self.transports and transport not in self.transports:
            return False
        if not self.transports and transport is not None:
            return False
        if self.status is not None and (status is None or not self.status[0] <= status <= self.status[1]):
            return False
        if self.codes and code not in self.codes:
            return False
        return self.contains is None or self.contains.lower() in message.lower()

    def selector(self) -> str:
        """The rule's condition as a reader would write it (for the Markdown table)."""
        parts = []
        if self.status is not None:
            low, high = self.status
            parts.append(f"status {low}" if low == high else f"status {low}–{high}")
        if self.codes:
            parts.append("code " + ", ".join(self.codes))
        if self.contains:
            parts.append(f'message contains "{self.contains}"')
        if self.transports:
            parts.append(", ".join(self.transports))
        return "; ".join(parts)


@attrs.frozen
class LimitSettings:
    per_second: float | None = None
    burst: int | None = None
    concurrency: int = 16
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_wait: float = 60.0
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0


@attrs.frozen
class ProviderDescription:
    name: str
    channel: str
    title: str
    adapter: str
    base_url: str
    path: Path
    docs: str = ""
    idempotency_header: str = ""
    repeat_safe: bool = False
    timeout: float = 10.0
    regions: Mapping[str, str] = attrs.field(factory=dict)
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    auth_scheme: str = "none"
    auth_header: str = ""
    auth_optional: bool = False
    secrets: Mapping[str, str] = attrs.field(factory=dict)
    endpoints: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    response: Mapping[str, Any] = attrs.field(factory=dict)
    request: Mapping[str, Any] = attrs.field(factory=dict)
    limits: LimitSettings = attrs.field(factory=LimitSettings)
    errors: tuple[ErrorRule, ...] = ()

    def endpoint(self, name: str) -> tuple[str, str]:
        """(method, path template) of a named endpoint."""
        return self.endpoints[name]


def builtin_paths() -> list[Path]:
    return sorted(data_dir("channels").glob("*.toml"))


def load_description(path: Path) -> ProviderDescription:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DescriptionError(f"{path.name}: {exc}") from exc
    return parse_description(data, path)


def load_descriptions(paths: Iterable[Path]) -> dict[str, ProviderDescription]:
    found: dict[str, ProviderDescription] = {}
    for path in paths:
        description = load_description(path)
        if description.name in found:
            raise DescriptionError(f"{path.name}: provider {description.name!r} is described twice")
        found[description.name] = description
    return found


def parse_description(data: Mapping[str, Any], path: Path) -> ProviderDescription:
    where = path.name
    provider = _table(data, "provider", where)
    auth = _table(data, "auth", where, required=False)
    known = {"name", "channel", "title", "adapter", "base_url", "docs", "idempotency_header",
             "repeat_safe", "timeout", "regions"}
    return ProviderDescription(
        name=_text(provider, "name", where), channel=_text(provider, "channel", where),
        title=provider.get("title", provider.get("name", "")),
        adapter=provider.get("adapter", "linkstar_dsl.adapters.declarative:DeclarativeAdapter"),
        base_url=_text(provider, "base_url", where), path=path, docs=provider.get("docs", ""),
        idempotency_header=provider.get("idempotency_header", ""),
        repeat_safe=bool(provider.get("repeat_safe", False)),
        timeout=float(provider.get("timeout", 10.0)), regions=dict(provider.get("regions", {})),
        extra={k: v for k, v in provider.items() if k not in known},
        auth_scheme=auth.get("scheme", "none"), auth_header=auth.get("header", ""),
        auth_optional=bool(auth.get("optional", False)), secrets=dict(auth.get("secrets", {})),
        endpoints={name: _endpoint(spec, f"{where} [endpoints] {name}")
                   for name, spec in _table(data, "endpoints", where, required=False).items()},
        response=dict(_table(data, "response", where, required=False)),
        request=dict(_table(data, "request", where, required=False)),
        limits=_limits(_table(data, "limits", where, required=False), where),
        errors=tuple(_rule(rule, f"{where} [[errors]] #{number}")
                     for number, rule in enumerate(data.get("errors", []), start=1)),
    )


def _table(data: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> Mapping[str, Any]:
    table = data.get(name)
    if table is None and not required:
        return {}
    if not isinstance(table, Mapping):
        raise DescriptionError(f"{where}: needs a [{name}] table")
    return table


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise DescriptionError(f"{where}: `{key}` must be a non-empty string")
    return value


def _endpoint(spec: Any, where: str) -> tuple[str, str]:
    method, _, route = str(spec).partition(" ")
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not route.startswith("/"):
        raise DescriptionError(f"{where}: write an endpoint as \"POST /path/{{placeholder}}\"")
    return method, route


def _limits(table: Mapping[str, Any], where: str) -> LimitSettings:
    fields = {f.name for f in attrs.fields(LimitSettings)}
    unknown = set(table) - fields
    if unknown:
        raise DescriptionError(f"{where} [limits]: unknown field(s) {', '.join(sorted(unknown))}")
    return LimitSettings(**table)


def _rule(table: Mapping[str, Any], where: str) -> ErrorRule:
    category = table.get("class")
    if category not in CLASS_OUTCOMES:
        raise DescriptionError(f"{where}: `class` must be one of {', '.join(CLASS_OUTCOMES)}")
    reason = table.get("reason")
    if (category == "SUPPRESS") != (reason is not None):
        raise DescriptionError(f"{where}: a SUPPRESS rule, and only it, names a `reason`")
    if reason is not None and reason not in SUPPRESS_REASONS:
        raise DescriptionError(f"{where}: unknown suppression reason {reason!r}")
    transports = tuple(_listed(table.get("transport")))
    if any(t not in TRANSPORT_FAILURES for t in transports):
        raise DescriptionError(f"{where}: `transport` is one of {', '.join(TRANSPORT_FAILURES)}")
    rule = ErrorRule(category=category, meaning=table.get("meaning", ""),
                     status=_status(table.get("status"), where),
                     codes=tuple(str(c) for c in _listed(table.get("code"))), contains=table.get("contains"),
                     transports=transports, reason=reason,
                     retry_after=float(table["retry_after"]) if "retry_after" in table else None)
    if rule.status is None and not rule.codes and not rule.transports:
        raise DescriptionError(f"{where}: a rule needs a `status`, a `code` or a `transport`")
    return rule


def _listed(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _status(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    raise DescriptionError(f"{where}: `status` is a number or a range [low, high]")
