"""Structured logs: one JSON object per line, for each request and each tick.

`event(log, "request", method=..., status=...)` writes through the standard `logging` module, so
an embedding service may route the lines wherever it likes; `install(stream)` (what `linkstar
serve` calls) sends every `linkstar.*` logger to `stream` as JSON lines.  Recipient addresses
are masked (`mask_recipient`) before they reach a log line, and request paths are logged by
their route (`/u/{token}`), never with the token.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from ..adapters.masking import mask_recipient

log = logging.getLogger("linkstar.serve")


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


def masked(addresses) -> list[str]:
    return sorted({mask_recipient(a) for a in addresses if a})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "event": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(line, ensure_ascii=False, default=str)


def install(stream, level: int = logging.INFO) -> logging.Handler:
    """Send the `linkstar` loggers to `stream` as JSON lines; the handler, to remove later."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("linkstar")
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler
