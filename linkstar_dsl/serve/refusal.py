"""Why a request is refused: an HTTP status, a stable code, a message, and the field at fault.

Parsers raise a `Refusal`; executors in the writer return one for a payload they will not write.
Either way the caller answers with `body()` as JSON: never a traceback.
"""

from __future__ import annotations


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> dict:
        found = {"error": self.code, "message": self.message}
        if self.field:
            found["field"] = self.field
        return found

    def __repr__(self) -> str:
        return f"Refusal({self.status}, {self.code!r}, {self.message!r}, field={self.field!r})"


def invalid(field: str | None, message: str) -> Refusal:
    """A 400: the request is not in the documented shape; `message` says what to send instead."""
    return Refusal(400, "invalid", f"{field}: {message}" if field else message, field)
