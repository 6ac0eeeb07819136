"""One error model for every provider: answers classified by the description's rule table.

An adapter turns what happened (an HTTP or SMTP status, the provider's error code and text, or a
transport failure) into `Facts`; `classify` finds the first matching rule and builds the
`SendResult`.  `error_table_markdown` renders every mapped code of every provider as one table.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .descriptions import ErrorRule, ProviderDescription
from .messages import CLASS_OUTCOMES, SendResult


@attrs.frozen
class Facts:
    """What one attempt produced, before it is classified."""

    status: int | None = None
    code: str | None = None
    message: str = ""
    transport: str | None = None
    retry_after: float | None = None
    message_id: str | None = None


def classify(description: ProviderDescription, facts: Facts) -> SendResult:
    rule = find_rule(description.errors, facts)
    category = rule.category if rule else _fallback_category(facts)
    retry_after = facts.retry_after if facts.retry_after is not None else (rule.retry_after if rule else None)
    return SendResult(
        outcome=CLASS_OUTCOMES[category], provider=description.name, category=category,
        provider_message_id=facts.message_id if CLASS_OUTCOMES[category].value == "sent" else None,
        retry_after=retry_after if CLASS_OUTCOMES[category].value == "retryable" else None,
        suppress_reason=rule.reason if rule else None,
        code=facts.code if facts.code is not None else (facts.transport or _status_text(facts.status)),
        message=facts.message or (rule.meaning if rule else ""), status=facts.status)


def find_rule(rules: Iterable[ErrorRule], facts: Facts) -> ErrorRule | None:
    for rule in rules:
        if rule.matches(facts.status, facts.code, facts.message, facts.transport):
            return rule
    return None


def _fallback_category(facts: Facts) -> str:
    """For an answer no rule covers: the plain HTTP meaning."""
    if facts.transport is not None:
        return "RETRY" if facts.transport == "connect" else "RETRY?"
    status = facts.status or 0
    if 200 <= status < 300:
        return "OK"
    if status == 429:
        return "RETRY"
    return "RETRY?" if status >= 500 else "PERM"


def _status_text(status: int | None) -> str | None:
    return None if status is None else str(status)


def json_path(document: Any, path: str) -> Any:
    """`error.code` or `messages.0.id` looked up in parsed JSON; None when absent."""
    if not path:
        return None
    node = document
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def retry_after_seconds(headers: Mapping[str, str], description: ProviderDescription,
                        now: float | None = None) -> float | None:
    """The wait the provider asks for: Retry-After (seconds or an HTTP date), or a reset time."""
    now = time.time() if now is None else now
    for name in description.response.get("retry_after_headers", ["Retry-After"]):
        value = headers.get(name)
        if value:
            parsed = parse_retry_after(value, now)
            if parsed is not None:
                return parsed
    reset_header = description.response.get("reset_epoch_header")
    value = headers.get(reset_header) if reset_header else None
    if value:
        try:
            return max(0.0, float(value) - now)
        except ValueError:
            return None
    return None


def parse_retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def error_table_markdown(descriptions: Iterable[ProviderDescription]) -> str:
    """Every mapped status, code and failure of every provider, as a Markdown table."""
    lines = ["| provider | when | class | outcome | suppression | meaning |",
             "|---|---|---|---|---|---|"]
    for description in descriptions:
        for rule in description.errors:
            cells = [f"{description.name} ({description.channel})", rule.selector(), f"`{rule.category}`",
                     CLASS_OUTCOMES[rule.category].value, f"`{rule.reason}`" if rule.reason else "",
                     rule.meaning + (f" (default wait {rule.retry_after:g} s)" if rule.retry_after else "")]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"
