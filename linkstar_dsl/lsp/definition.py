"""Go to definition: templates, policies, imports and the declarations of the data model.

* `send "survey"`: every `.j2` file of the template, as `TemplateStore` finds them (the folder's
  own `templates/`, the one above, then the standard library's);
* `import "common.flow"`: that file;
* a market (`market JP`, `policy market JP`), a channel (`via sms`) or a marketplace
  (`policy platform amazon`): the policies about it, in `stdlib/policies/` or the user's files;
* an event, a record, a field, an enum or one of its values: its declaration, in
  `stdlib/schema.flow`, an imported file or this one.

It reads the words around the cursor rather than the syntax tree, so it also works while the
file has syntax errors.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from ..source import Span
from .documents import Document, whole_file
from .words import token_at, tokens_before

#: The word before a name that says which kind of policy subject it is.
_SUBJECTS = {"market": "market", "via": "channel", "channel": "channel", "platform": "platform"}


def definition(doc: Document, offset: int) -> list[lsp.Location]:
    token = token_at(doc.text, offset)
    if token is None or token.is_comment:
        return []
    before = tokens_before(doc.text, token.start)
    keyword = before[-1].text if before else ""
    if token.is_string:
        name = token.text[1:-1] if token.closed else token.text[1:]
        if keyword == "send":
            return [whole_file(tf.path) for tf in _template_files(doc, name)]
        if keyword == "import":
            target = Path(doc.source.name).parent / name
            return [whole_file(target.resolve())] if target.is_file() else []
        return []
    if not token.is_word:
        return []
    spans = _policy_subject(doc, token.text, before) or _declaration(doc, token.text, before)
    return [loc for loc in (doc.location(s) for s in spans) if loc is not None]


def _template_files(doc: Document, name: str):
    return sorted(doc.templates.files.get(name, []), key=lambda tf: (tf.locale != "en", str(tf.path)))


def _list_head(before) -> str:
    """The keyword heading the list the name is in (`via` for `via line, |sms`)."""
    i = len(before) - 1
    while i >= 1 and before[i].text == "," and before[i - 1].is_word:
        i -= 2
    return before[i].text if i >= 0 else ""


def _policy_subject(doc: Document, name: str, before) -> list[Span]:
    kind = _SUBJECTS.get(_list_head(before))
    if kind is None:
        return []
    return [policy.span.source.span(policy.span.start, policy.subject.span.end)
            for policy in doc.policies.about(kind, name)]


def _declaration(doc: Document, name: str, before) -> list[Span]:
    schema = doc.schema
    if len(before) >= 2 and before[-1].text == "." and before[-2].text in schema.entities:
        field = schema.field(before[-2].text, name)
        return [field.span] if field is not None else []
    if name in schema.events:
        found = [schema.events[name].name.span]
    elif name in schema.entities:
        found = [schema.entities[name].name.span]
    elif name in schema.enums:
        found = [schema.enums[name].name.span]
    else:
        found = [v.span for enum in schema.enum_of_value(name) for v in enum.values if v.value == name]
    # Channels and purposes are enums the engine makes up, with no place in any file.
    return [span for span in found if span.end > span.start]
