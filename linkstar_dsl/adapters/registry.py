"""Which providers exist: the built-in descriptions, extra description folders, and plug-ins
registered under the `linkstar.channels` entry-point group.

An entry point names either a TOML description (a `pathlib.Path` or a path string ending in
`.toml`) or an adapter class that carries its description as a `DESCRIPTION` mapping (the TOML
file's content as a dict).  A class given by a description's `adapter = "module:Class"` is
imported when the provider is used, not before.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .descriptions import (
    DescriptionError,
    ProviderDescription,
    builtin_paths,
    load_description,
    parse_description,
)

ENTRY_POINT_GROUP = "linkstar.channels"
#: Providers registered in this process with `register` (an embedding service's own adapters).
_REGISTERED: dict[str, tuple[ProviderDescription, Any]] = {}


def register(target: Any) -> ProviderDescription:
    """Add a provider for this process: a `.toml` description, or an adapter class with `DESCRIPTION`.

    It is checked at once (a bad description raises `DescriptionError` here, not at the first
    send) and is available to every `ChannelEngine` started afterwards.
    """
    name = getattr(target, "__name__", str(target))
    description, adapter = _from_entry_point(name, target)
    _REGISTERED[description.name] = (description, adapter)
    return description


def all_descriptions(extra_dirs: Iterable[str | Path] = (), *, plugins: bool = True
                     ) -> tuple[dict[str, ProviderDescription], dict[str, Any]]:
    """(descriptions by provider name, adapter classes given directly by plug-ins)."""
    descriptions: dict[str, ProviderDescription] = {}
    classes: dict[str, Any] = {}
    paths = builtin_paths() + [p for d in extra_dirs for p in sorted(Path(d).glob("*.toml"))]
    for path in paths:
        _add(descriptions, load_description(path))
    for description, adapter_class in _REGISTERED.values():
        _add(descriptions, description)
        if adapter_class is not None:
            classes[description.name] = adapter_class
    if plugins:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            description, adapter_class = _from_entry_point(entry.name, entry.load())
            _add(descriptions, description)
            if adapter_class is not None:
                classes[description.name] = adapter_class
    return descriptions, classes


def _add(found: dict[str, ProviderDescription], description: ProviderDescription) -> None:
    if description.name in found:
        raise DescriptionError(f"{description.path.name}: provider {description.name!r} is described twice")
    found[description.name] = description


def _from_entry_point(name: str, target: Any) -> tuple[ProviderDescription, Any]:
    if isinstance(target, (str, Path)) and str(target).endswith(".toml"):
        return load_description(Path(target)), None
    description = getattr(target, "DESCRIPTION", None)
    if not isinstance(description, Mapping):
        raise DescriptionError(f"entry point {name!r}: give a .toml path, "
                               "or a class with a DESCRIPTION mapping")
    return parse_description(description, Path(f"<entry point {name}>")), target


def adapter_class(description: ProviderDescription, classes: Mapping[str, Any]) -> Any:
    if description.name in classes:
        return classes[description.name]
    module_name, _, attribute = description.adapter.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise DescriptionError(f"{description.path.name}: adapter {description.adapter!r} not found") from exc
