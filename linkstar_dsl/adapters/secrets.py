"""Credentials: from environment variables, or from a secrets file named in the configuration.

A description names the environment variable of each secret (`LINKSTAR_LINE_CHANNEL_TOKEN`); the
secrets file, when one is configured, is a TOML file of the same names.  The environment wins.
Secret values never appear in a `repr`, an exception message or a log line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .descriptions import ProviderDescription


class MissingSecret(LookupError):
    """A provider is configured but one of its secrets is nowhere to be found."""


class Secrets:
    def __init__(self, environ: Mapping[str, str] | None = None, file: str | Path | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._file = Path(file) if file else None
        self._from_file: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"Secrets(file={str(self._file) if self._file else None!r})"

    def lookup(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value:
            return value
        return self._file_values().get(name) or None

    def for_provider(self, description: ProviderDescription) -> dict[str, str]:
        """Every secret the provider's description names, by role (`token`, `auth_token`…)."""
        found, missing = {}, []
        for role, variable in description.secrets.items():
            value = self.lookup(variable)
            if value is None:
                missing.append(variable)
            else:
                found[role] = value
        if missing and not description.auth_optional:
            where = f" or in {self._file.name}" if self._file else ""
            raise MissingSecret(f"{description.name}: set {', '.join(missing)} in the environment{where}")
        return found

    def _file_values(self) -> dict[str, str]:
        if self._from_file is None:
            self._from_file = {}
            if self._file is not None:
                data = tomllib.loads(self._file.read_text(encoding="utf-8"))
                self._from_file = {k: str(v) for k, v in data.items() if not isinstance(v, dict)}
        return self._from_file
