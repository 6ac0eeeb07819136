"""Hover: what the word under the cursor is.

In order: a diagnostic code in a suppression comment (its catalog summary); a keyword (what the
clause or rule does); a field, record, event or enum value (its declared type and
documentation); any other expression (its type, as the checker works it out); a channel,
purpose, market, template or requirement (a short description).  The catalog summary of every
diagnostic under the cursor follows.
"""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from .. import ast
from ..codes import CODES
from ..policies import MARKET_COUNTRIES
from ..schema import Schema
from ..syntax_errors import keywords
from ..types import Type, from_ref
from . import nodes, rules, vocabulary
from .documents import Document
from .words import Token, token_at, tokens_before

_SUPPRESSION = re.compile(r"#\s*linkstar:\s*allow\s+(?P<codes>[A-Za-z0-9_,\s-]+?)\s*(?:--.*)?$")
_CODE = re.compile(r"[A-Za-z0-9_-]+")


def hover(doc: Document, offset: int) -> lsp.Hover | None:
    token = token_at(doc.text, offset)
    parts: list[str] = []
    span = None
    if token is not None and token.is_comment:
        found = _code_in_comment(token, offset)
        if found is not None:
            code, start, end = found
            return _answer(doc, [rules.summary(code)], (start, end))
        return None
    if token is not None:
        at = token.start
        span = (token.start, token.end)
        if token.is_word and token.text in keywords():
            parts.append(f"**{token.text}** (keyword): {vocabulary.KEYWORDS.get(token.text, '')}")
        elif doc.module is not None:
            found = _from_tree(doc, at)
            if found is not None:
                text, span = found
                parts.append(text)
        elif token.is_word:
            text = _from_words(doc, token)
            if text:
                parts.append(text)
        for diagnostic in doc.report.diagnostics:
            d = diagnostic.span
            if d is not None and doc.owns(d) and d.start <= at < max(d.end, d.start + 1):
                summary = rules.summary(diagnostic.code)
                if summary not in parts:
                    parts.append(summary)
    return _answer(doc, parts, span) if parts else None


def _answer(doc: Document, parts: list[str], span: tuple[int, int] | None) -> lsp.Hover:
    return lsp.Hover(
        contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)),
        range=doc.lines.range(*span) if span is not None else None,
    )


def _code_in_comment(token: Token, offset: int) -> tuple[str, int, int] | None:
    match = _SUPPRESSION.match(token.text)
    if match is None:
        return None
    base = token.start + match.start("codes")
    for code in _CODE.finditer(match["codes"]):
        start, end = base + code.start(), base + code.end()
        if start <= offset <= end and code.group() in CODES:
            return code.group(), start, end
    return None


# ------------------------------------------------------------------------ with the syntax tree


def _from_tree(doc: Document, offset: int) -> tuple[str, tuple[int, int]] | None:
    chain = nodes.at(doc.module, offset)
    if not chain:
        return None
    node, parent = chain[0]
    schema = doc.schema
    span = (node.span.start, node.span.end)
    if isinstance(node, ast.StringLit) and isinstance(parent, ast.Send):
        return _template(doc, node.value), span
    if isinstance(node, ast.Name) and isinstance(parent, ast.Path):
        on_record = node is parent.parts[0] and len(parent.parts) > 1 and node.value in schema.entities
        if on_record:
            return _entity(schema, node.value), span
        grandparent = next((p for n, p in chain if n is parent), None)
        return _expression(doc, parent, grandparent), (parent.span.start, parent.span.end)
    if isinstance(node, nodes.EXPRESSIONS) and not isinstance(parent, (ast.Import, ast.Policy, ast.Flow)) \
            and not _is_note(node, parent):
        return _expression(doc, node, parent), span
    if isinstance(node, ast.Name) and isinstance(parent, ast.TypeRef):
        t = from_ref(parent, schema.enums)
        return (_type_text(t, schema) if t else f"`{parent.span.text}` is not a type"), span
    if isinstance(node, ast.Name):
        text = _name(doc, node, parent)
        return (text, span) if text else None
    return None


def _is_note(node: ast.Node, parent: ast.Node | None) -> bool:
    """A title, a citation or a doc string: text for people, not a value."""
    return isinstance(node, ast.StringLit) and any(
        getattr(parent, name, None) is node for name in ("title", "cite", "doc"))


def _expression(doc: Document, node: ast.Node, parent: ast.Node | None) -> str:
    schema = doc.schema
    if isinstance(node, ast.Path):
        if len(node.parts) == 2 and node.parts[0].value in schema.entities:
            field = schema.field(node.parts[0].value, node.parts[1].value)
            if field is not None:
                return _field(schema, node.parts[0].value, field)
        if len(node.parts) == 1:
            name = node.parts[0].value
            if name in schema.events:
                return _event(schema, name)
            if schema.enum_of_value(name):
                return _enum_value(schema, name, type_in_context(doc, node, parent))
    t = type_in_context(doc, node, parent)
    if t is None or t.is_unknown:
        return f"`{_short(node.span.text)}`: type unknown (see the diagnostics)"
    return f"`{_short(node.span.text)}`: {_type_text(t, schema)}"


def type_in_context(doc: Document, node: ast.Node, parent: ast.Node | None) -> Type | None:
    """The checker's type for an expression; a bare enum value takes its enum from the other side."""
    from ..passes.typecheck import _Typer

    typer = _Typer(doc.schema)
    expected = None
    try:
        if isinstance(parent, ast.Compare):
            other = parent.left if node is parent.right else parent.right
            expected = typer.type_of(other)
        elif isinstance(parent, ast.ListExpr):
            expected = next((t for t in (typer.type_of(i) for i in parent.items if i is not node)
                             if not t.is_unknown), None)
        return typer.type_of(node, expected if expected is not None and expected.kind == "enum" else None)
    except RecursionError:
        return None


def _name(doc: Document, name: ast.Name, parent: ast.Node | None) -> str:
    schema, value = doc.schema, name.value
    if isinstance(parent, (ast.Trigger, ast.ReviewWindowRule)):
        return _event(schema, value) if value in schema.events else ""
    if isinstance(parent, ast.Via) or (isinstance(parent, ast.Scope) and name in parent.channels):
        return _channel(value)
    if isinstance(parent, (ast.Purpose, ast.Scope, ast.ForbidRule)) and value in vocabulary.PURPOSES:
        return f"purpose **{value}**: {vocabulary.PURPOSES[value]}"
    if isinstance(parent, ast.Policy):
        return _subject(doc, parent.kind, value)
    if isinstance(parent, (ast.Market, ast.ForbidRule)):
        return _market(doc, value)
    if isinstance(parent, (ast.Cooldown, ast.Cap, ast.CapRule, ast.Once, ast.OnceRule)):
        return f"`{value}`: {vocabulary.OPTIONS.get(value, 'not a known option')}"
    if isinstance(parent, ast.Requirement) and name is not parent.name:
        if value in vocabulary.REQUIREMENT_ARGUMENTS:
            return f"`{value}`: {vocabulary.REQUIREMENT_ARGUMENTS[value]}"
        if value in schema.events:
            return _event(schema, value)
        if schema.enum_of_value(value):
            return _enum_value(schema, value, None)
        return f"`{value}`: not a consent level, event or value"
    if isinstance(parent, ast.Call):
        text = vocabulary.FUNCTIONS.get(value)
        return f"function **{value}**: {text}" if text else f"`{value}` is not a function"
    if isinstance(parent, ast.Requirement):
        text = vocabulary.REQUIREMENTS.get(value)
        return f"requirement **{value}**: {text}" if text else ""
    if isinstance(parent, ast.Field):
        t = from_ref(parent.type, schema.enums)
        doc_text = f"\n\n{parent.doc.value}" if parent.doc else ""
        return f"field `{value}`: {_type_text(t, schema) if t else 'unknown type'}{doc_text}"
    if isinstance(parent, (ast.EventDecl, ast.Entity, ast.EnumDecl)):
        if value in schema.events:
            return _event(schema, value)
        if value in schema.entities:
            return _entity(schema, value)
        if value in schema.enums:
            return _type_text(Type("enum", name=value), schema)
        if schema.enum_of_value(value):
            return _enum_value(schema, value, None)
    return ""


# ----------------------------------------------------------------------------- without it


def _from_words(doc: Document, token: Token) -> str:
    """For a file that does not parse: fields, records, events and values, by name."""
    schema, value = doc.schema, token.text
    before = tokens_before(doc.text, token.start)
    if len(before) >= 2 and before[-1].text == "." and before[-2].text in schema.entities:
        field = schema.field(before[-2].text, value)
        return _field(schema, before[-2].text, field) if field is not None else ""
    if value in schema.entities:
        return _entity(schema, value)
    if value in schema.events:
        return _event(schema, value)
    if value in vocabulary.CHANNELS:
        return _channel(value)
    if value in vocabulary.PURPOSES:
        return f"purpose **{value}**: {vocabulary.PURPOSES[value]}"
    if value in MARKET_COUNTRIES:
        return _market(doc, value)
    if schema.enum_of_value(value):
        return _enum_value(schema, value, None)
    return ""


# ------------------------------------------------------------------------------- the words


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_text(t: Type, schema: Schema) -> str:
    if t.kind == "enum":
        decl = schema.enums.get(t.name)
        values = [v.value for v in decl.values] if decl else []
        shown = ", ".join(values[:12]) + (", …" if len(values) > 12 else "")
        text = f"**{t.name}**, one of: {shown}"
    elif t.kind == "list":
        element = t.element
        inner = element.name if element is not None and element.kind == "enum" else str(element)
        text = f"**list[{inner}]**"
    else:
        text = f"**{t.kind}**"
        if t.kind in vocabulary.TYPES:
            text += f" ({vocabulary.TYPES[t.kind]})"
    if t.optional:
        text += "; may be missing"
    return text


def _field(schema: Schema, entity: str, field: ast.Field) -> str:
    t = from_ref(field.type, schema.enums)
    text = f"`{entity}.{field.name.value}`: {_type_text(t, schema) if t else 'unknown type'}"
    if field.doc is not None:
        text += f"\n\n{field.doc.value}"
    return text


def _entity(schema: Schema, name: str) -> str:
    decl = schema.entities[name]
    text = f"record **{name}**"
    if decl.doc is not None:
        text += f": {decl.doc.value}"
    fields = ", ".join(f"`{f.name.value}`" for f in decl.fields)
    return f"{text}\n\nfields: {fields}"


def _event(schema: Schema, name: str) -> str:
    decl = schema.events[name]
    text = f"`{name}`: **event** on {decl.subject.value}"
    if decl.doc is not None:
        text += f"\n\n{decl.doc.value}"
    return text


def _enum_value(schema: Schema, value: str, t: Type | None) -> str:
    owners = [e.name.value for e in schema.enum_of_value(value)]
    if t is not None and t.kind == "enum" and t.name in owners:
        owners = [t.name]
    return f"`{value}`: a value of " + " or ".join(f"**{o}**" for o in owners)


def _channel(value: str) -> str:
    text = vocabulary.CHANNELS.get(value)
    return f"channel **{value}**: {text}" if text else f"`{value}` is not a channel"


def _market(doc: Document, value: str) -> str:
    countries = MARKET_COUNTRIES.get(value)
    if countries is None:
        return f"`{value}` is not a market"
    titles = [p.title.value for p in doc.policies.about("market", value) if p.title is not None]
    title = f" ({titles[0]})" if titles else ""
    return f"market **{value}**{title}: countries {', '.join(countries)}"


def _subject(doc: Document, kind: str, value: str) -> str:
    if kind == "channel":
        return _channel(value)
    if kind == "market":
        return _market(doc, value)
    if kind == "platform":
        return f"platform **{value}**: rules for every flow that can reach its orders"
    return f"policy **{value}**: rules for every flow"


def _template(doc: Document, name: str) -> str:
    files = doc.templates.files.get(name, [])
    if not files:
        return f'template "{name}": not found next to this file or in the standard library'
    shown = "\n".join(f"- `{tf.display}`" for tf in files[:20])
    more = f"\n- … {len(files) - 20} more" if len(files) > 20 else ""
    return f'template "{name}":\n\n{shown}{more}'
