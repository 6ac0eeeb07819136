"""`import "file.flow"`: bringing another file's policies and declarations into a file.

Paths are relative to the importing file and name `.flow` files; an absolute path, or one
naming any other kind of file, is refused with `import-not-found` before anything is read.  Imports are followed transitively, each file once
(so cycles are harmless); an imported file contributes its `policy` blocks and its `entity`,
`enum` and `event` declarations, never its flows.  A missing file, or one that does not parse,
is a diagnostic on the `import` line.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from . import ast
from .diagnostics import Diagnostic, make
from .loader import LoadError, load
from .parser import parse_source


@attrs.frozen
class Imported:
    modules: tuple[ast.Module, ...]
    diagnostics: tuple[Diagnostic, ...]


def resolve(module: ast.Module) -> Imported:
    origin = Path(module.span.file)
    if not any(isinstance(i, ast.Import) for i in module.items):
        return Imported((), ())
    seen = {origin.resolve()} if origin.exists() else set()
    modules: list[ast.Module] = []
    diagnostics: list[Diagnostic] = []
    queue = [(module, origin, True)]
    while queue:
        current, path, direct = queue.pop(0)
        for item in current.items:
            if not isinstance(item, ast.Import):
                continue
            refused = _refused(item)
            if refused is not None:
                if direct:
                    diagnostics.append(refused)
                continue
            target = (path.parent / item.path.value)
            key = target.resolve()
            if key in seen:
                continue
            seen.add(key)
            problem = _load(target, item)
            if isinstance(problem, Diagnostic):
                if direct:
                    diagnostics.append(problem)
                continue
            modules.append(problem)
            queue.append((problem, target, False))
    return Imported(tuple(modules), tuple(diagnostics))


def _refused(item: ast.Import) -> Diagnostic | None:
    """An import that names no `.flow` file relative to the importing one (`/etc/passwd`, a NUL)."""
    value = item.path.value
    if "\x00" in value or not value.strip():
        reason = "this is not a file name"
    elif Path(value).is_absolute() or value.startswith(("~", "\\")):
        reason = "an import path must be relative to the importing file"
    elif not value.endswith(".flow"):
        reason = "only `.flow` files can be imported"
    else:
        return None
    return make("import-not-found", item.path.span, path=value, reason=reason,
                help=("import paths are relative to the importing file, such as `policies/house.flow`",))


def _load(target: Path, item: ast.Import) -> ast.Module | Diagnostic:
    try:
        loaded = load(target, str(target))
    except LoadError as exc:
        return make("import-not-found", item.path.span, path=item.path.value, reason=str(exc).split(": ", 1)[-1],
                    help=("import paths are relative to the importing file",))
    result = parse_source(loaded.source)
    if loaded.diagnostics or not result.ok or result.module is None:
        return make("import-has-errors", item.path.span, path=item.path.value,
                    help=(f"run `linkstar check {target}` to see them",))
    return result.module
