"""Message templates on disk: where they are, which exist, and what they render.

Layout: `<root>/<locale>/<name>.<channel>.j2` is the variant of template `name` for one channel,
`<root>/<locale>/<name>.j2` serves every channel without its own variant.  Shared pieces (footers,
layouts) live in `<root>/_partials/` and are pulled in with `{% include %}` or `{% extends %}`.

Roots, searched in order: `templates/` next to the flow file, `templates/` in the folder above,
then `stdlib/templates/`.  A locale missing a template falls back to English.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import attrs

from .resources import data_dir
from .source import SourceFile

FALLBACK_LOCALE = "en"
#: The locales a market's buyers read, most common first.
MARKET_LOCALES = {
    "JP": ("ja",), "US": ("en",), "CA": ("en", "fr"), "GB": ("en",), "DE": ("de",), "FR": ("fr",),
    "IT": ("it",), "ES": ("es",), "NL": ("en",), "EU": ("en", "de", "fr", "es", "it"),
}
#: Template variables that carry what policies require in a message.
FOOTER_VARIABLES = {
    "unsubscribe_link": "unsubscribe_url",
    "sender_identity": "sender_name",
    "sender_address": "sender_address",
    "ad_disclosure": "ad_notice",
}
_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)(?:\.(?P<channel>[a-z]+))?\.j2$")


@attrs.frozen
class TemplateFile:
    path: Path
    root: Path
    locale: str
    name: str
    channel: str | None

    @property
    def display(self) -> str:
        return str(self.path.relative_to(self.root.parent))


class TemplateStore:
    """The templates under a list of roots, indexed by name."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [r for r in roots if r.is_dir()]
        self.files: dict[str, list[TemplateFile]] = {}
        for root in self.roots:
            for locale_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
                for path in sorted(locale_dir.glob("*.j2")):
                    match = _FILE.match(path.name)
                    if match:
                        tf = TemplateFile(path, root, locale_dir.name, match["name"], match["channel"])
                        self.files.setdefault(tf.name, []).append(tf)

    @property
    def names(self) -> list[str]:
        return sorted(self.files)

    def find(self, name: str, channel: str, locale: str) -> TemplateFile | None:
        """The file used for `name` on `channel` in `locale` (the first root wins), or None."""
        candidates = self.files.get(name, [])
        for want_locale in (locale, FALLBACK_LOCALE):
            for want_channel in (channel, None):
                for tf in candidates:
                    if tf.locale == want_locale and tf.channel == want_channel:
                        return tf
        return None

    def has_channel(self, name: str, channel: str) -> bool:
        return any(tf.channel in (channel, None) for tf in self.files.get(name, []))


def roots_for(flow_file: str) -> list[Path]:
    roots: list[Path] = []
    path = Path(flow_file)
    if path.suffix == ".flow" and path.parent.exists():
        here = path.resolve().parent
        roots += [here / "templates", here.parent / "templates"]
    return roots


@cache
def stdlib_root() -> Path:
    return data_dir("stdlib") / "templates"


def source_of(tf: TemplateFile) -> SourceFile:
    return _read(tf.path, tf.display, _stamp(tf.path))


def _stamp(path: Path) -> tuple[int, int]:
    """What the caches below are keyed on besides the path, so an edited file is read again."""
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


@cache
def _read(path: Path, display: str, stamp: tuple[int, int] = (0, 0)) -> SourceFile:
    return SourceFile(display, path.read_text(encoding="utf-8"))


def variables(tf: TemplateFile) -> frozenset[str]:
    """Every variable the template and the partials it includes or extends refer to."""
    return _analysis(tf.path, tf.root, 0, _stamp(tf.path))[0]


def included_files(tf: TemplateFile) -> tuple[Path, ...]:
    """The partials the template includes or extends, transitively."""
    return _analysis(tf.path, tf.root, 0, _stamp(tf.path))[1]


#: How deep `{% include %}` and `{% extends %}` chains are followed.
MAX_INCLUDE_DEPTH = 8


@cache
def _analysis(path: Path, root: Path, depth: int, stamp: tuple[int, int]) -> tuple[frozenset[str], tuple[Path, ...]]:
    """(variables referred to, partials pulled in), for the template and its partials, transitively.

    Only partials inside the template root are followed; `stamp` keys the cache on the file's
    modification, so an edited template is analysed again.
    """
    from jinja2 import Environment, TemplateSyntaxError, meta

    try:
        parsed = Environment().parse(path.read_text(encoding="utf-8"))
    except (TemplateSyntaxError, OSError, UnicodeDecodeError):
        return frozenset(), ()
    variables_found = set(meta.find_undeclared_variables(parsed))
    partials: list[Path] = []
    if depth < MAX_INCLUDE_DEPTH:
        for ref in meta.find_referenced_templates(parsed):
            candidate = _partial(ref, path, root) if ref is not None else None
            if candidate is not None:
                more_variables, more_partials = _analysis(candidate, root, depth + 1, _stamp(candidate))
                variables_found |= more_variables
                partials += [candidate, *more_partials]
    return frozenset(variables_found), tuple(dict.fromkeys(partials))


def _partial(ref: str, path: Path, root: Path) -> Path | None:
    for base in (root, path.parent):
        candidate = (base / ref).resolve()
        if candidate.is_file() and root.resolve() in candidate.parents:
            return candidate
    return None


def syntax_error(tf: TemplateFile) -> tuple[int, str] | None:
    """(line, message) of a Jinja2 syntax error in the template, or None."""
    from jinja2 import Environment, TemplateSyntaxError

    try:
        Environment().parse(tf.path.read_text(encoding="utf-8"))
    except TemplateSyntaxError as exc:
        return exc.lineno, exc.message or "syntax error"
    except (OSError, UnicodeDecodeError) as exc:
        return 1, str(exc)
    return None


_WHATSAPP_HEADER = re.compile(r"\{#-?\s*whatsapp:\s*(?P<fields>[^#]*?)\s*-?#\}")


def whatsapp_header(tf: TemplateFile) -> dict[str, str] | None:
    """The approved-template declaration of a WhatsApp template, or None.

    `{#- whatsapp: template=order_update category=utility language=ja -#}` names the template as
    approved by Meta, its category and language; outside the 24-hour service window only such a
    template may be sent.
    """
    match = _WHATSAPP_HEADER.search(source_of(tf).text)
    if match is None:
        return None
    return dict(part.split("=", 1) for part in match["fields"].split() if "=" in part)
