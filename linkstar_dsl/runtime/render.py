"""Rendering a message: template lookup, a sandboxed Jinja2 render, and the channel's content.

`Renderer.for_flow_file(path, settings)` searches the same template roots as the checker
(`templates/` next to the flow file, the folder above, then the standard library);
`renderer.render(name, channel, locale, context, purpose=…, requires=…)` returns the adapter
content for one message: `Text`, `Email`, `LineFlex`, `WhatsAppTemplate` or
`AmazonSolicitation`.  Anything wrong, from a missing variable to an SMS too long, is a
`RenderError` naming the template file and line; no message is ever sent half filled.

Templates run in Jinja2's immutable sandbox, bounded in time and memory (`render_sandbox`), with
strict undefined variables: a field that does
not exist, or a value that is missing (None) where it is printed, is an error, never an empty
space in a buyer's message.  HTML parts (an email's `{% block html %}` and `*.html.j2` partials)
are autoescaped, text parts are not.  SPEC.md §7.11 describes the conventions.
"""

from __future__ import annotations

import functools

import json
import re
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (BaseLoader, StrictUndefined, TemplateError, TemplateNotFound, TemplateSyntaxError,
                    UndefinedError, pass_context)
from jinja2.debug import rewrite_traceback_stack
from jinja2.sandbox import SecurityError
from jinja2.utils import missing

from ..adapters.messages import AmazonSolicitation, Content, Email, LineFlex, Text, WhatsAppTemplate
from ..gates import recipient_zone
from ..policies import MARKET_COUNTRIES
from ..suggest import did_you_mean
from ..templates import (FALLBACK_LOCALE, MARKET_LOCALES, TemplateFile, TemplateStore, roots_for, stdlib_root,
                         whatsapp_header)
from . import render_footers as footers
from .render_context import RenderSettings
from .render_sandbox import BoundedSandbox, end_budget, start_budget
from .render_sms import first_non_gsm, sms_size
from .render_values import (PLAIN_TYPES, Record, Scope, ValueFormatError, babel_locale, format_day, format_moment,
                            format_money, format_number, json_default, scope, template_value)

#: The longest output a template may produce, in characters (a runaway loop stops here).
MAX_OUTPUT = 256 * 1024
#: LINE's limits: a text message, and a Flex message's alternative text.
LINE_TEXT_LIMIT = 5000
LINE_ALT_TEXT_LIMIT = 400
#: Rows a context may hold; a row that is None becomes an absent record.
RECORDS = ("customer", "order", "cart", "review")
PURPOSES = ("transactional", "service", "review", "marketing")

_NAME = re.compile(r"^[a-z0-9_]+$")
_CHANNEL = re.compile(r"^[a-z]+$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_TEMPLATE_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
_LINE_HEADER = re.compile(r"\{#-?\s*line:\s*flex\b(?P<fields>[^#]*?)-?#\}")
_ALT = re.compile(r'alt="(?P<alt>[^"]*)"')
_PLAIN_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})


class RenderError(Exception):
    """A message that cannot be rendered; `str()` starts with `file:line:` when they are known."""

    def __init__(self, message: str, *, template: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.template = template
        self.line = line
        where = f"{template}:{line}: " if template and line else f"{template}: " if template else ""
        super().__init__(where + message)


class _Undefined(StrictUndefined):
    """Strict, and says which field is missing: `order.trackng_url`, not `'dict object' has no …`."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name, owner = self._undefined_name, self._undefined_obj
        if owner is missing:
            return f"`{name}` is not a variable of this message"
        if isinstance(owner, Record):
            label = owner.record_label
            if not owner.record_present:
                return f"`{label}.{name}` is asked for, but this message has no {label}"
            guess = did_you_mean(str(name), [str(k) for k in owner])
            return f"`{label}.{name}` does not exist" + (f" (did you mean `{label}.{guess}`?)" if guess else "")
        return f"`{name}` does not exist on {type(owner).__name__} value {owner!r:.60}"


class _MissingValue(UndefinedError):
    """A `{{ … }}` printed None: a field that has no value for this message."""


@pass_context
def _finalize(context, value):
    if value is None:
        raise _MissingValue("prints a value that is missing for this message (None); guard it with "
                            "`{% if … %}` or give a fallback with `|default(\"…\", true)`")
    printed = scope.get().printed
    if printed is not None:
        printed.append(value)
    return value


class _RootsLoader(BaseLoader):
    """Templates and partials under the roots, by path relative to a root; the first root wins.

    Names with `..`, absolute paths or anything resolving outside its root (a symlink) are not
    templates.
    """

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [r.resolve() for r in roots]

    def get_source(self, environment, template: str):
        if not _TEMPLATE_PATH.match(template) or ".." in template.split("/"):
            raise TemplateNotFound(template)
        for root in self.roots:
            try:
                path = (root / template).resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if root not in path.parents or not path.is_file():
                continue
            stamp = path.stat().st_mtime_ns
            source = path.read_text(encoding="utf-8")
            return source, str(path), lambda p=path, s=stamp: p.exists() and p.stat().st_mtime_ns == s
        raise TemplateNotFound(template)


class _Sandbox(BoundedSandbox):
    def make_globals(self, d):
        # A template's globals as a plain dict, not Jinja's ChainMap over the environment's: every
        # render (and every include) copies them, and a ChainMap is slow to copy.  Jinja's way
        # would also show a change to the environment's globals made later; these never change.
        return {**self.globals, **(d or {})}


def _environment(roots: list[Path], html: bool) -> BoundedSandbox:
    env = _Sandbox(loader=_RootsLoader(roots), undefined=_Undefined, autoescape=html,
                   finalize=_finalize, auto_reload=False)
    env.filters.update({name: _at_render_time(f) for name, f in (("money", format_money), ("date", format_day),
                                                                   ("datetime", format_moment), ("number", format_number))})
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False, "default": json_default}
    return env


def _at_render_time(format_value):
    """A filter Jinja may not evaluate while compiling: its result depends on the message's locale."""

    @pass_context
    def run(context, value, *args, **kwargs):
        return format_value(value, *args, **kwargs)

    return run


class Renderer:
    """Renders the messages of the flows under one set of template roots."""

    def __init__(self, roots: Iterable[Path], settings: RenderSettings) -> None:
        self.settings = settings
        self.store = TemplateStore([Path(r) for r in roots])
        self._text = _environment(self.store.roots, html=False)
        self._html = _environment(self.store.roots, html=True)
        #: (name, channel, locale, market) → the template file found; the files do not change while it runs.
        self._found: dict[tuple, TemplateFile] = {}
        #: (environment, template name) → the compiled template, as Jinja's own cache would give it.
        self._compiled: dict[tuple, object] = {}

    @classmethod
    def for_flow_file(cls, path: str | Path | None, settings: RenderSettings) -> Renderer:
        """The renderer for a flow file's templates (None: the standard library's only)."""
        roots: list[Path] = []
        if path is not None:
            path = Path(path)
            if path.is_dir():
                here = path.resolve()
                roots = [here / "templates", here.parent / "templates"]
            else:
                roots = roots_for(str(path))
        return cls(roots + [stdlib_root()], settings)

    # ------------------------------------------------------------------ lookup

    def locales(self, locale: str, market: str | None = None) -> list[str]:
        """The languages tried for a recipient, in order: `ja-JP`, `ja`, the market's, default, English."""
        spelled = locale.replace("_", "-")
        chain = [spelled, spelled.replace("-", "_"), spelled.split("-")[0]]
        chain += list(MARKET_LOCALES.get(market or "", ()))
        chain += [self.settings.default_locale, FALLBACK_LOCALE]
        return list(dict.fromkeys(chain))

    def find(self, name: str, channel: str, locale: str, market: str | None = None) -> TemplateFile:
        """The template file for `name` on `channel` for a recipient reading `locale`."""
        request = (name, channel, locale, market if isinstance(market, str) else None)
        try:
            found = self._found.get(request)
        except TypeError:  # an unhashable name or channel: `_check_request` says what is wrong with it
            found = None
        if found is None:
            # Only checked requests are kept, so a request found here was checked the first time.
            _check_request(name, channel, locale)
            found = self._found[request] = self._lookup(*request)
        return found

    def _lookup(self, name: str, channel: str, locale: str, market: str | None) -> TemplateFile:
        candidates = self.store.files.get(name, [])
        for language in self.locales(locale, market):
            for variant in (channel, None):
                for tf in candidates:
                    if tf.locale == language and tf.channel == variant:
                        return tf
        if not candidates:
            guess = did_you_mean(name, self.store.names)
            raise RenderError(f'there is no template "{name}"' + (f' (did you mean "{guess}"?)' if guess else ""))
        raise RenderError(f'template "{name}" has no variant for {channel} in {", ".join(self.locales(locale, market))}'
                          f" (add {FALLBACK_LOCALE}/{name}.{channel}.j2 or {FALLBACK_LOCALE}/{name}.j2)")

    # ------------------------------------------------------------------ rendering

    def render(self, template_name: str, channel: str, locale: str, context: Mapping, *, purpose: str = "marketing",
               requires: Iterable[str] | None = (), market: str | None = None) -> Content:
        """The content of one message, ready for the channel's adapter.

        `purpose` is the flow's; `requires` the footer requirements the policies put on this
        message (`unsubscribe_link`, `sender_identity`, `sender_address`, `ad_disclosure`);
        `market` defaults to the one of the customer's country.
        """
        message, owed = self._prepare(template_name, channel, locale, context, purpose, requires, market)
        if channel == "email":
            return self._email(message, owed)
        if channel == "whatsapp":
            return self._whatsapp(message, owed)
        if channel == "line" and _line_header(message.source):
            return self._line_flex(message, owed)
        body = message.render(self._text)
        if channel == "amazon":
            # Amazon writes its review request itself; the text is rendered to check it all the same.
            return AmazonSolicitation() if purpose == "review" else Text(body)
        if channel == "webhook":
            return Text(_checked_json(body, message))
        body = self._with_footer(message, channel, body, owed)
        if channel == "sms":
            # Babel's narrow and no-break spaces (`10 %`, `6:00 PM`) would make the whole SMS UCS-2.
            body = body.translate(_PLAIN_SPACES)
            self._check_sms(message, body)
        if channel == "line" and len(body) > LINE_TEXT_LIMIT:
            raise message.error(f"the LINE text is {len(body)} characters; LINE allows {LINE_TEXT_LIMIT}")
        return Text(body)

    def preview(self, template_name: str, channel: str, locale: str, context: Mapping, *, purpose: str = "marketing",
                requires: Iterable[str] | None = (), market: str | None = None) -> str:
        """The text of the template as a person reads it, for any channel (Amazon and WhatsApp too), without
        footers added or limits checked: for logs and previews."""
        message, _ = self._prepare(template_name, channel, locale, context, purpose, requires, market)
        if "text" in message.template(self._text).blocks:
            return message.block(self._text, "text")
        return message.render(self._text)

    def _prepare(self, template_name, channel, locale, context, purpose, requires, market) -> tuple[_Message, set]:
        if not isinstance(context, Mapping):
            raise RenderError("the context of a message must be a mapping of variables")
        if purpose not in PURPOSES:
            raise RenderError(f"{purpose!r} is not a purpose; expected one of {', '.join(PURPOSES)}")
        customer = context.get("customer") or {}
        country = customer.get("country") if isinstance(customer, Mapping) else None
        tf = self.find(template_name, channel, str(locale), market or _market_of(country))
        requires = set(requires or ())
        region = _region(str(locale), tf.locale) or country
        scope_ = Scope(babel_locale(tf.locale, region), _zone(context, customer), [] if channel == "whatsapp" else None)
        message = _Message(self, tf, self._variables(context, purpose, requires), scope_)
        return message, footers.owed(purpose, channel, requires)

    def _variables(self, context: Mapping, purpose: str, requires: set[str]) -> dict:
        variables = {}
        for k, v in context.items():
            k = k if type(k) is str else str(k)
            variables[k] = v if type(v) in PLAIN_TYPES else template_value(k, v)
        for name in RECORDS:
            if variables.get(name) is None:
                variables[name] = Record.absent(name)
        if purpose != "marketing" and "ad_disclosure" not in requires:
            variables["ad_notice"] = None  # only a message that advertises says it is an advertisement
        return variables

    def _email(self, message: _Message, owed: set[str]) -> Email:
        template = message.template(self._text)
        for block in ("subject", "text"):
            if block not in template.blocks:
                raise message.error(f"an email template needs {{% block {block} %}}…{{% endblock %}}")
        subject = " ".join(message.block(self._text, "subject").split())
        if not subject:
            raise message.error("the email's subject is empty")
        text = self._with_footer(message, "email", message.block(self._text, "text"), owed)
        html = None
        if "html" in template.blocks:
            html = self._with_footer(message, "email", message.block(self._html, "html"), owed, html=True)
        return Email(subject, text, html)

    def _whatsapp(self, message: _Message, owed: set[str]) -> WhatsAppTemplate:
        header = whatsapp_header(message.tf)
        if not header or not header.get("template"):
            raise message.error("a WhatsApp template must declare the approved template on its first line: "
                                "{#- whatsapp: template=NAME category=utility language=ja -#}")
        body = message.render(self._text)
        unmet = footers.unmet(owed, "whatsapp", body, message.variables)
        if unmet:
            raise message.error(f"the approved WhatsApp template does not show {_describe(unmet)}, which this "
                                f"message needs; a footer cannot be added to an approved template")
        parameters = [{"type": "text", "text": _whatsapp_parameter(v)} for v in message.scope.printed or ()]
        parameters = [p for p in parameters if p["text"]]
        components = ({"type": "body", "parameters": parameters},) if parameters else ()
        return WhatsAppTemplate(header["template"], header.get("language") or message.tf.locale, components)

    def _line_flex(self, message: _Message, owed: set[str]) -> LineFlex:
        header = _line_header(message.source)
        alt = _ALT.search(header["fields"] or "")
        if alt is None or not alt["alt"].strip():
            raise message.error('a LINE Flex template needs its alternative text: {#- line: flex alt="…" -#}')
        body = message.render(self._text)
        try:
            contents = json.loads(body)
        except json.JSONDecodeError as exc:
            raise message.error(f"the Flex message is not valid JSON (output line {exc.lineno}: {exc.msg}); "
                                "write values with `|tojson`") from None
        if not isinstance(contents, dict) or contents.get("type") not in ("bubble", "carousel"):
            raise message.error('a Flex message must be a JSON object of "type": "bubble" or "carousel"')
        unmet = footers.unmet(owed, "line", body, message.variables)
        if unmet:
            raise message.error(f"the Flex message does not show {_describe(unmet)}, which this message needs; "
                                "add them to the bubble (a footer cannot be appended to Flex JSON)")
        alt_text = alt["alt"].strip()
        if len(alt_text) > LINE_ALT_TEXT_LIMIT:
            raise message.error(f"the Flex alternative text is {len(alt_text)} characters; LINE allows "
                                f"{LINE_ALT_TEXT_LIMIT}")
        return LineFlex(alt_text, contents)

    def _with_footer(self, message: _Message, channel: str, text: str, owed: set[str], html: bool = False) -> str:
        """The text, with the channel's footer partial appended when it lacks what the message owes."""
        unmet = footers.unmet(owed, channel, text, message.variables, html=html)
        if not unmet:
            return text
        name = self._footer_partial(channel, message.tf.locale, html)
        if name is None:
            raise message.error(f"the message does not show {_describe(unmet)}, and there is no {channel} footer "
                                f"partial to add ({footers.partial_name(channel, FALLBACK_LOCALE, html)})")
        footer = message.render(self._html if html else self._text, name)
        if html and re.search(r"</body\s*>", text, re.IGNORECASE):
            text = re.sub(r"(</body\s*>)", lambda m: footer + "\n" + m.group(1), text, count=1, flags=re.IGNORECASE)
        else:
            text = f"{text}\n\n{footer}" if text else footer
        still = footers.unmet(owed, channel, text, message.variables, html=html)
        if still:
            raise message.error(f"even with the footer {name}, the message does not show {_describe(still)}")
        return text

    def _footer_partial(self, channel: str, language: str, html: bool) -> str | None:
        for candidate in dict.fromkeys((language, language.split("-")[0].split("_")[0], FALLBACK_LOCALE)):
            name = footers.partial_name(channel, candidate, html)
            try:
                self._text.loader.get_source(self._text, name)
                return name
            except TemplateNotFound:
                continue
        return None

    def _check_sms(self, message: _Message, body: str) -> None:
        size = sms_size(body)
        limit = self.settings.max_sms_segments
        if size.segments > limit:
            why = ""
            if size.encoding == "UCS-2" and first_non_gsm(body):
                why = f"; {first_non_gsm(body)!r} makes it UCS-2 (70 characters per SMS instead of 160)"
            raise message.error(f"the SMS is {size.describe()}; at most {limit} segment"
                                f"{'s' if limit != 1 else ''} allowed{why}")


@functools.lru_cache(maxsize=4096)
def _source(path: Path) -> str:
    # Read once per process, like the compiled templates (the environments do not auto-reload):
    # a runner renders from the templates it started with, never from a file half edited.
    return path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=4096)
def _line_header(source: str) -> re.Match | None:
    return _LINE_HEADER.search(source)


@functools.lru_cache(maxsize=4096)
def _template_name(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


class _Message:
    """One render in progress: the template file, its variables and scope, and error reporting."""

    def __init__(self, renderer: Renderer, tf: TemplateFile, variables: dict, scope_: Scope) -> None:
        self.renderer = renderer
        self.tf = tf
        self.variables = variables
        self.scope = scope_
        self.name = _template_name(tf.path, tf.root)
        try:
            self.source = _source(tf.path)
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(f"cannot be read: {exc}") from None

    def template(self, env, name: str | None = None):
        key = (env, name or self.name)
        found = self.renderer._compiled.get(key)
        if found is not None:
            return found
        try:
            found = env.get_template(key[1])
        except (TemplateError, OSError, UnicodeDecodeError) as exc:
            raise self._translate(exc) from None
        self.renderer._compiled[key] = found
        return found

    def render(self, env, name: str | None = None) -> str:
        template = self.template(env, name)
        return self._run(lambda: template.generate(self.variables)).strip()

    def block(self, env, block: str) -> str:
        template = self.template(env)
        return self._run(lambda: template.blocks[block](template.new_context(self.variables))).strip()

    def _run(self, chunks) -> str:
        token = scope.set(self.scope)
        budget = start_budget()
        try:
            out, size = [], 0
            for chunk in chunks():
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise self.error(f"the template produced more than {MAX_OUTPUT} characters")
                out.append(chunk)
            return "".join(out)
        except RenderError:
            raise
        except (TemplateError, ValueFormatError, ArithmeticError, TypeError, ValueError, LookupError,
                OverflowError, RecursionError, MemoryError):
            # Block functions run outside `Template.render`, which would map Python lines to template lines.
            raise self._translate(rewrite_traceback_stack()) from None
        finally:
            end_budget(budget)
            scope.reset(token)

    def error(self, message: str) -> RenderError:
        return RenderError(message, template=self._display(self.tf.path))

    def _display(self, path: Path | str) -> str:
        path = Path(path)
        for root in self.renderer.store.roots:
            try:
                return path.resolve().relative_to(root.resolve().parent.parent).as_posix()
            except ValueError:
                continue
        return path.name

    def _translate(self, exc: Exception) -> RenderError:
        """A Jinja or formatting error as a `RenderError` at the template line it happened on."""
        if isinstance(exc, TemplateSyntaxError):
            where = exc.filename or str(self.tf.path)
            return RenderError(f"template syntax: {exc.message}", template=self._display(where), line=exc.lineno)
        where, line = str(self.tf.path), None
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(".j2"):
                where, line = frame.filename, frame.lineno
                break
        if isinstance(exc, TemplateNotFound):
            text = f"includes `{exc.name}`, which is not a template under the template folders"
        elif isinstance(exc, SecurityError):
            text = f"not allowed in a template: {exc}"
        elif isinstance(exc, UndefinedError):
            text = str(exc)
            top = re.match(r"`([^`.]+)` is not a variable", text)
            guess = did_you_mean(top.group(1), list(self.variables)) if top else None
            if guess:
                text += f" (did you mean `{guess}`?)"
        elif isinstance(exc, (OSError, UnicodeDecodeError)):
            text = f"cannot be read: {exc}"
        else:
            text = f"{type(exc).__name__ if not isinstance(exc, ValueFormatError) else 'cannot format'}: {exc}"
        return RenderError(text, template=self._display(where), line=line)


def _check_request(name: str, channel: str, locale: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RenderError(f"{name!r} is not a template name (lower-case letters, digits and `_` only)")
    if not isinstance(channel, str) or not _CHANNEL.match(channel):
        raise RenderError(f"{channel!r} is not a channel name")
    if not _LOCALE.match(locale):
        raise RenderError(f"{locale!r} is not a locale such as `ja`, `en-US` or `fr_CA`")


def _market_of(country) -> str | None:
    return _market_of_country(country) if isinstance(country, str) else None


@functools.lru_cache(maxsize=1024)
def _market_of_country(country: str) -> str | None:
    if country in MARKET_LOCALES:
        return country
    return next((m for m, members in MARKET_COUNTRIES.items() if country in members and m in MARKET_LOCALES), None)


@functools.lru_cache(maxsize=1024)
def _region(locale: str, language: str) -> str | None:
    """The region of the requested locale when it is written in the template's language (`fr-CA`, `fr`)."""
    parts = re.split(r"[-_]", locale)
    if len(parts) >= 2 and parts[0].lower() == language.split("-")[0].split("_")[0].lower() and len(parts[-1]) == 2:
        return parts[-1].upper()
    return None


def _zone(context: Mapping, customer) -> ZoneInfo:
    """The recipient's time zone: the context's `timezone`, else the customer's (7.3)."""
    name = context.get("timezone")
    if isinstance(name, str) and name:
        zone = _named_zone(name)
        if zone is not None:
            return zone
    return recipient_zone(dict(customer) if isinstance(customer, Mapping) else {})


@functools.lru_cache(maxsize=1024)
def _named_zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        return None


def _checked_json(body: str, message: _Message) -> str:
    if body.startswith(("{", "[")):
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            raise message.error(f"the webhook body looks like JSON but is not valid (output line {exc.lineno}: "
                                f"{exc.msg}); write values with `|tojson`") from None
    return body


def _whatsapp_parameter(value) -> str:
    """A body parameter as WhatsApp accepts it: no line breaks or tabs, no runs of spaces."""
    return re.sub(r"\s+", " ", str(value)).strip()


def _describe(requirements: list[str]) -> str:
    names = {"unsubscribe_link": "the unsubscribe link", "sender_identity": "the sender's name",
             "sender_address": "the sender's address", "ad_disclosure": "the advertising notice"}
    return ", ".join(names.get(r, r) for r in requirements)
