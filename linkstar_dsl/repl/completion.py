"""Tab completion: what may come next, from the grammar and the schema.

The keywords offered are those Lark's interactive parser accepts after the text before the
cursor, so `on delivered ` offers the clauses and `order.total > 5 USD ` offers `and`/`or`.  Where
the grammar wants a name, the clause decides which: events after `on`, channels after `via`,
purposes, markets, fields after `order.`, enum values next to the field they are compared with,
templates inside the quotes after `send`.  `:commands` complete their names and, where they take
one, order and customer ids, flow names or file paths.
"""

from __future__ import annotations

import re

import attrs

from ..schema import CHANNELS, FUNCTIONS, MARKETS, PURPOSES
from .inputs import EXPRESSION_PREFIX, SOURCE_NAME, kind_of
from .lexer import Token, tokenize
from .state import Session

#: Keywords that may appear inside an expression; other keywords start clauses.
EXPRESSION_WORDS = frozenset({"and", "or", "not", "in", "is", "missing", "present", "within", "true",
                              "false"})
#: Enum-typed field compared with (or tested for membership in) what is being typed.
_ENUM_CONTEXT = re.compile(r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*(?:==|!=|\bnot\s+in\b|\bin\b)\s*\[?"
                           r"(?:\s*[A-Za-z_]\w*\s*,)*\s*$")


@attrs.frozen
class Candidate:
    text: str
    meta: str = ""


def complete(session: Session, before: str) -> tuple[int, list[Candidate]]:
    """(how many characters before the cursor the candidates replace, the candidates)."""
    stripped = before.lstrip()
    if stripped.startswith(":"):
        return _command(session, stripped)
    return _source(session, before)


# ------------------------------------------------------------------------------------- commands


def _command(session: Session, text: str) -> tuple[int, list[Candidate]]:
    from .commands import ALIASES, COMMANDS

    name, space, arg = text[1:].partition(" ")
    if not space:
        found = [Candidate(f":{c.name}", c.summary) for c in COMMANDS.values() if c.name.startswith(name)]
        return len(name) + 1, found
    name = ALIASES.get(name, name)
    word = arg.split(" ")[-1]
    if name in ("order", "explain"):
        return len(word), [Candidate(i, "order") for i in session.ids("orders", word)]
    if name == "customer":
        return len(word), [Candidate(i, "customer") for i in session.ids("customers", word)]
    if name == "simulate":
        return len(word), [Candidate(n, "flow") for n in session.flows if n.startswith(word)]
    if name == "type":
        return _source(session, arg)
    return 0, []


# ---------------------------------------------------------------------------------- flow source


def _significant(text: str) -> list[Token]:
    tokens: list[Token] = []
    offset = 0
    for line in text.split("\n"):
        tokens += [attrs.evolve(t, start=t.start + offset) for t in tokenize(line)
                   if t.kind not in ("space", "comment")]
        offset += len(line) + 1
    return tokens


def _source(session: Session, before: str) -> tuple[int, list[Candidate]]:
    tokens = _significant(before)
    last = tokens[-1] if tokens else None
    if last is not None and last.kind == "open-string":
        return _in_string(session, tokens, last)
    word = ""
    if last is not None and last.kind == "name" and last.start + len(last.text) == len(before):
        word = last.text
        tokens = tokens[:-1]
    prefix = before[: len(before) - len(word)]
    schema = session.schema
    previous = tokens[-1] if tokens else None
    if previous is not None and previous.text == "." and len(tokens) > 1:
        entity = schema.entities.get(tokens[-2].text)
        if entity is None:
            return len(word), []
        found = [Candidate(f.name.value, _type_of_field(f)) for f in entity.fields]
        return len(word), _starting(found, word)
    kind = kind_of(before) if tokens else "empty"  # the first word may start anything
    accepted = _accepted(prefix, kind)
    found = _names(session, tokens, prefix, word, kind) if accepted is None or "NAME" in accepted else []
    found += _keywords(accepted, kind)
    return len(word), _starting(found, word)


def _accepted(prefix: str, kind: str) -> frozenset[str] | None:
    from ..parser import accepted_at
    from ..source import SourceFile

    text = prefix if kind in ("items",) else EXPRESSION_PREFIX + prefix
    accepted = accepted_at(SourceFile(SOURCE_NAME, text), text, len(text))
    if kind == "empty" and accepted is not None:
        accepted = accepted | {"ON", "FLOW", "POLICY", "ENTITY", "ENUM", "EVENT", "IMPORT"}
    return accepted


def _keywords(accepted: frozenset[str] | None, kind: str) -> list[Candidate]:
    from ..syntax_errors import keyword_of_terminal, keywords

    words = {keyword_of_terminal(t) for t in accepted} - {""} if accepted is not None else set(keywords())
    if kind == "expression":
        words &= EXPRESSION_WORDS
    return [Candidate(w, "keyword") for w in sorted(words)]


def _names(session: Session, tokens: list[Token], prefix: str, word: str, kind: str) -> list[Candidate]:
    """The names that fit where the grammar wants a name, by the clause being written."""
    from ..syntax_errors import keywords

    schema = session.schema
    previous = tokens[-1].text if tokens else ""
    clause = next((t.text for t in reversed(tokens) if t.kind == "name" and t.text in keywords()), "")
    if previous in ("on", "after"):  # a trigger; a policy's review window
        return [Candidate(e, f"event on {d.subject.value}") for e, d in schema.events.items()]
    if previous == "purpose":
        return [Candidate(p, "purpose") for p in PURPOSES]
    if previous == "per":
        return [Candidate(w, "record") for w in ("order", "customer")]
    if clause == "via":
        listed = {t.text for t in tokens[tokens.index(_last(tokens, "via")):]}
        return [Candidate(c, "channel") for c in CHANNELS if c not in listed]
    if clause == "market":
        listed = {t.text for t in tokens[tokens.index(_last(tokens, "market")):]}
        return [Candidate(m, "market") for m in MARKETS if m not in listed]
    if kind not in ("expression", "empty") and clause not in ("where", "unless", "when", *EXPRESSION_WORDS):
        return []
    return _expression_names(session, prefix, word)


def _last(tokens: list[Token], text: str) -> Token:
    return next(t for t in reversed(tokens) if t.text == text)


def _expression_names(session: Session, prefix: str, word: str) -> list[Candidate]:
    schema = session.schema
    context = _ENUM_CONTEXT.search(prefix)
    if context is not None:
        field = schema.field(context.group(1), context.group(2))
        enum = schema.enums.get(field.type.name.value) if field is not None else None
        if enum is not None:
            return [Candidate(v.value, enum.name.value) for v in enum.values]
    found = [Candidate(f"{e}.", "record") for e in schema.entities]
    found += [Candidate(e, f"event on {d.subject.value}") for e, d in schema.events.items()]
    found += [Candidate(f"{f}(", "function") for f in FUNCTIONS]
    if word:  # every enum value is too many to list for nothing typed
        for enum in schema.enums.values():
            found += [Candidate(v.value, enum.name.value) for v in enum.values]
    return found


def _in_string(session: Session, tokens: list[Token], last: Token) -> tuple[int, list[Candidate]]:
    previous = tokens[-2].text if len(tokens) > 1 else ""
    if previous != "send":
        return 0, []
    typed = last.text[1:]
    names = [n for n in session.template_names() if n.startswith(typed)]
    return len(last.text), [Candidate(f'"{n}"', "template") for n in names]


def _starting(found: list[Candidate], word: str) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in found:
        if c.text.startswith(word) and c.text not in seen and c.text != word:
            seen.add(c.text)
            out.append(c)
    return out


def _type_of_field(field) -> str:
    ref = field.type
    text = ref.name.value + (f"[{ref.argument.name.value}]" if ref.argument is not None else "")
    return text + ("?" if ref.optional else "")


# ------------------------------------------------------------------------------- prompt_toolkit


def prompt_completer(session: Session):
    """A prompt_toolkit completer over `complete`, with file paths for `:load`."""
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)

    class FlowCompleter(Completer):
        def get_completions(self, document, complete_event):
            before = document.text_before_cursor
            if before.lstrip().startswith(":load "):
                word = before.split(" ")[-1]
                yield from paths.get_completions(Document(word, len(word)), complete_event)
                return
            replace, found = complete(session, before)
            for c in found:
                yield Completion(c.text, start_position=-replace, display_meta=c.meta)

    return FlowCompleter()
