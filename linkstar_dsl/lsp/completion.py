"""Completion: what may be written at the cursor.

Keywords come from the grammar itself: Lark's interactive parser reads the text before the cursor
and says which tokens it accepts next, so only keywords valid there are offered.  Where a name is
accepted, the words before the cursor say which kind: channels after `via`, purposes, markets,
events after `on`, `per` and `across` words, requirements, types in a declaration, and in
conditions the events, records and enum values of the schema.  After `order.` (any record) come
its fields; inside `send "…"` the templates found next to the file; in a suppression comment the
diagnostic codes.
"""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp

from ..codes import CODES
from ..parser import accepted_at
from ..policies import CONSENT_LEVELS, MARKET_COUNTRIES, REQUIREMENTS
from ..schema import BUILTIN_TYPES, CHANNELS, FUNCTIONS, METRICS, PURPOSES
from ..syntax_errors import DISPLAY_ORDER, clause_words, item_starters, keyword_of_terminal, keywords
from ..types import from_ref
from . import vocabulary
from .documents import Document
from .words import Token, line_start, token_at, tokens_before

Kind = lsp.CompletionItemKind

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SUPPRESSION = re.compile(r"#\s*linkstar:\s*allow\s+[A-Za-z0-9_,\s-]*\Z")
_CONDITION = frozenset({"where", "unless", "when"})
#: How many item starts before the cursor are tried when the text from the top does not parse.
_RETRIES = 4


def complete(doc: Document, offset: int) -> list[lsp.CompletionItem]:
    text = doc.text
    token = token_at(text, offset)
    if token is not None and token.start < offset:
        if token.is_comment:
            return _codes(text, token, offset)
        if token.is_string and (offset < token.end or not token.closed):
            return _inside_string(doc, token, offset)
    prefix = _PREFIX.search(text, line_start(text, offset), offset)
    start = prefix.start() if prefix else offset
    before = tokens_before(text, start)
    if len(before) >= 2 and before[-1].text == "." and before[-1].end == start:
        return _fields(doc, before[-2].text)
    accepted = _accepted(doc, start, before)
    items = _keywords(accepted)
    if accepted is None or "NAME" in accepted:
        items += _names(doc, before)
    if accepted is not None and "STRING" in accepted and before and before[-1].text == "send":
        items += [_item(name, Kind.File, "template", insert=f'"{name}"', rank=0)
                  for name in doc.templates.names]
    return items


# ------------------------------------------------------------------------------ keywords


def _accepted(doc: Document, pos: int, before: list[Token]) -> frozenset[str] | None:
    """The terminals the grammar accepts at `pos`; when the text above has errors, from the
    nearest start of an item before `pos` that reads cleanly up to it."""
    text = doc.text
    found = accepted_at(doc.source, text, pos)
    if found is not None:
        return found
    starts = [t.start for t in before if t.text in item_starters()]
    for start in reversed(starts[-_RETRIES:]):
        found = accepted_at(doc.source, text, pos, start)
        if found is not None:
            return found
    return None


def _keywords(accepted: frozenset[str] | None) -> list[lsp.CompletionItem]:
    if accepted is None:
        words = list(DISPLAY_ORDER)
    else:
        words = sorted({w for w in (keyword_of_terminal(t) for t in accepted) if w})
    return [_item(w, Kind.Keyword, "keyword", vocabulary.KEYWORDS.get(w, ""), rank=2) for w in words]


# --------------------------------------------------------------------------------- names


def _names(doc: Document, before: list[Token]) -> list[lsp.CompletionItem]:
    """The names that fit the slot the cursor is in, judged from the words before it."""
    schema = doc.schema
    words = [t.text for t in before]
    i = len(words) - 1
    # Skip back over a list being written (`via line, |`) to the keyword that heads it.
    while i >= 1 and words[i] == "," and before[i - 1].is_word and words[i - 1] not in keywords():
        i -= 2
    head = words[i] if i >= 0 else ""
    previous = words[i - 1] if i >= 1 else ""
    item = _item_keyword(words)

    if head in ("via", "channel"):
        return [_item(c, Kind.EnumMember, "channel", vocabulary.CHANNELS.get(c, "")) for c in CHANNELS]
    if head == "purpose":
        return [_item(p, Kind.EnumMember, "purpose", vocabulary.PURPOSES[p]) for p in PURPOSES]
    if head == "market":
        return [_item(m, Kind.EnumMember, "market", "countries " + ", ".join(MARKET_COUNTRIES[m]))
                for m in MARKET_COUNTRIES]
    if head == "platform" and "marketplace" in schema.enums:
        return [_item(v.value, Kind.EnumMember, "marketplace") for v in schema.enums["marketplace"].values]
    if head == "on":
        if i >= 2 and words[i - 2] == "event":
            return [_item(e, Kind.Struct, "record") for e in schema.entities]
        return _events(schema)
    if head == "after":
        return _events(schema)
    if head == "per":
        return [_item(w, Kind.EnumMember, "per", vocabulary.OPTIONS[w]) for w in ("customer", "order")]
    if head == "across":
        return [_item("flows", Kind.EnumMember, "across", vocabulary.OPTIONS["flows"])]
    if head == "keep":
        return [_item("consent", Kind.EnumMember, "records")]
    if head == "forbids":
        from ..passes.template_checks import FORBIDDEN_CONTENT

        return [_item(c, Kind.EnumMember, "content") for c in FORBIDDEN_CONTENT]
    if head == "(" and previous == "consent":
        return [_item(level, Kind.EnumMember, "consent level") for level in CONSENT_LEVELS]
    if head == "(" and previous == "excludes":
        return _events(schema) + _enum_values(schema)
    if head == "(" and previous in FUNCTIONS:
        return _events(schema)
    if head == "requires" or (head == "and" and _last_of(words, {"requires"} | clause_words()) == "requires"):
        return [_item(r, Kind.EnumMember, "requirement", vocabulary.REQUIREMENTS.get(r, "")) for r in REQUIREMENTS]
    if item == "entity" and (head == ":" or (head == "[" and previous == "list")):
        return ([_item(t, Kind.TypeParameter, "type", vocabulary.TYPES.get(t, "")) for t in BUILTIN_TYPES]
                + [_item(e, Kind.Enum, "enum") for e in _declared_enums(schema)])
    if _in_condition(words) or head == "=":
        when = len(words) - 1 - words[::-1].index("when") if "when" in words else -1
        if when >= 2 and words[when - 2 : when] == ["pause", "flow"]:
            return [_item(m, Kind.Variable, "metric (a rate)") for m in METRICS]
        return _expression_names(schema)
    if item == "policy" and head not in ("policy", "flow", "entity", "enum", "event"):
        # The start of a rule: its scope.
        return [_item(p, Kind.EnumMember, "purpose", vocabulary.PURPOSES[p]) for p in (*PURPOSES, "any")]
    return []


def _item_keyword(words: list[str]) -> str:
    return next((w for w in reversed(words) if w in item_starters() and w != "on"), "")


def _last_of(words: list[str], wanted: set[str] | frozenset[str]) -> str:
    return next((w for w in reversed(words) if w in wanted), "")


def _in_condition(words: list[str]) -> bool:
    for word in reversed(words):
        if word in _CONDITION:
            return True
        if word in clause_words():
            return False
    return False


def _events(schema) -> list[lsp.CompletionItem]:
    return [_item(name, Kind.Event, f"event on {decl.subject.value}", decl.doc.value if decl.doc else "")
            for name, decl in schema.events.items()]


def _declared_enums(schema) -> list[str]:
    """Enums declared in a file; the engine's own (channels, purposes) have no place in one."""
    return [name for name, decl in schema.enums.items() if decl.span.end > decl.span.start]


def _enum_values(schema) -> list[lsp.CompletionItem]:
    seen: dict[str, list[str]] = {}
    for enum in (schema.enums[name] for name in _declared_enums(schema)):
        for value in enum.values:
            seen.setdefault(value.value, []).append(enum.name.value)
    return [_item(v, Kind.EnumMember, " or ".join(owners), rank=1) for v, owners in seen.items()]


def _expression_names(schema) -> list[lsp.CompletionItem]:
    records = [lsp.CompletionItem(label=name, kind=Kind.Struct, detail="record",
                                  documentation=decl.doc.value if decl.doc else None,
                                  insert_text=f"{name}.", sort_text=f"0-{name}",
                                  command=lsp.Command(title="fields", command="editor.action.triggerSuggest"))
               for name, decl in schema.entities.items()]
    functions = [_item(f, Kind.Function, "count(EVENT [within DURATION])", insert=f"{f}(") for f in FUNCTIONS]
    return records + _events(schema) + functions + _enum_values(schema)


def _fields(doc: Document, entity: str) -> list[lsp.CompletionItem]:
    schema = doc.schema
    decl = schema.entities.get(entity)
    if decl is None:
        return []
    items = []
    for field in decl.fields:
        t = from_ref(field.type, schema.enums)
        detail = field.type.span.text if t is None else (t.name if t.kind == "enum" else str(t))
        if t is not None and t.optional and not detail.endswith("?"):
            detail += "?"
        items.append(_item(field.name.value, Kind.Field, detail, field.doc.value if field.doc else ""))
    return items


# ---------------------------------------------------------------------- strings, comments


def _inside_string(doc: Document, token: Token, offset: int) -> list[lsp.CompletionItem]:
    before = tokens_before(doc.text, token.start)
    keyword = before[-1].text if before else ""
    start = token.start + 1
    replace = doc.lines.range(start, offset)
    if keyword == "send":
        names = doc.templates.names
        detail = "template"
    elif keyword == "import":
        here = Path(doc.source.name)
        names = sorted(p.name for p in here.parent.glob("*.flow") if p.name != here.name) if here.is_absolute() else []
        detail = "file next to this one"
    else:
        return []
    return [lsp.CompletionItem(label=name, kind=Kind.File, detail=detail, sort_text=f"0-{name}",
                               text_edit=lsp.TextEdit(range=replace, new_text=name)) for name in names]


def _codes(text: str, token: Token, offset: int) -> list[lsp.CompletionItem]:
    if not _SUPPRESSION.search(text, token.start, offset):
        return []
    return [_item(code, Kind.Constant, f"{entry.severity}: {entry.title}") for code, entry in CODES.items()]


def _item(label: str, kind: lsp.CompletionItemKind, detail: str = "", documentation: str = "",
          insert: str | None = None, rank: int = 0) -> lsp.CompletionItem:
    return lsp.CompletionItem(label=label, kind=kind, detail=detail or None, documentation=documentation or None,
                              insert_text=insert, sort_text=f"{rank}-{label}")
