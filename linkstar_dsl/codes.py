"""The registry of diagnostic codes: one entry per code, the only place messages are worded.

Each entry carries the default severity, a one-line title (used by catalogs and SARIF rules) and
the message template, filled with named arguments by `diagnostics.make`.  Keeping the words here,
keyed by code, is what lets a message be offered in Chinese or Japanese later without touching the
stage that reports it.  Every code has a catalog page, `docs/rules/<code>.md` (tested).
"""

from __future__ import annotations

import attrs

from .diagnostics import Severity

E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE


@attrs.frozen
class Code:
    id: str
    severity: Severity
    title: str
    message: str
    stage: str


_ENTRIES = [
    # ---------------------------------------------------------------- input (reading the file)
    Code("invalid-utf8", E, "The file is not UTF-8 text",
         "this file is not UTF-8 text: byte 0x{byte:02x} at byte offset {offset} cannot be decoded", "input"),
    Code("binary-file", E, "The file looks binary", "this file contains binary data (a NUL byte), not flow text", "input"),
    Code("too-deep", E, "An expression nested deeper than the limit", "this is nested more than {limit} levels deep", "input"),
    Code("empty-file", W, "The file holds no flows or policies", "this file holds no flows or policies", "input"),
    Code("too-large", E, "A file, flow or condition larger than the limits",
         "this {what} has {count} {parts}; at most {limit} are allowed", "input"),
    Code("number-too-large", E, "A number with more digits than the limit",
         "this number has {digits} digits; a number has at most {limit}", "input"),
    Code("duration-too-long", E, "A duration longer than the limit",
         "`{text}` is longer than {limit}, the longest duration a flow may use", "input"),
    # ---------------------------------------------------------------- syntax
    Code("unexpected-token", E, "Something unexpected where the grammar expects something else",
         "unexpected {found}{context}", "syntax"),
    Code("unexpected-end", E, "The file ends in the middle of a flow",
         "the file ends in the middle of {where}", "syntax"),
    Code("unexpected-character", E, "A character that is not part of the language",
         "`{char}` is not part of the .flow language", "syntax"),
    Code("fullwidth-character", E, "A full-width character where an ASCII one is needed",
         "full-width `{char}` where the ASCII `{ascii}` is needed", "syntax"),
    Code("non-ascii-text", E, "Free text outside quotes or comments",
         "`{text}` must be inside quotes or a comment", "syntax"),
    Code("unclosed-string", E, "A quoted text is not closed on its line",
         "this text has no closing `\"` on its line", "syntax"),
    Code("single-quotes", E, "Text quoted with single quotes", "texts are quoted with double quotes `\"…\"`", "syntax"),
    Code("duration-unit", E, "A number where a duration is needed", "`{number}` needs a unit: a duration is written like `{number}h`", "syntax"),
    Code("duration-spelling", E, "A duration written with a space or a long unit",
         "durations are written as a number and a one-letter unit: `{suggestion}`", "syntax"),
    Code("unknown-keyword", E, "A misspelt keyword", "`{word}` is not a keyword{where}", "syntax"),
    Code("missing-via", E, "Channels listed without `via`", "channels must follow `via`", "syntax"),
    Code("stray-comma", E, "A comma with nothing after it", "this comma has nothing after it", "syntax"),
    Code("clause-outside-flow", E, "A clause before the start of a flow",
         "`{word}` must be inside a flow, after `flow NAME` or after its `on` trigger", "syntax"),
    Code("too-many-errors", N, "Reporting stopped for this file", "stopped after {count} syntax errors in this file", "syntax"),
    # ---------------------------------------------------------------- structure (well-formedness)
    Code("missing-purpose", W, "A flow without a declared purpose",
         "this flow declares no purpose, so it is held to the rules for marketing", "structure"),
    Code("duplicate-clause", E, "A clause that may appear once appears twice",
         "`{clause}` is given more than once in this {where}", "structure"),
    Code("invalid-time", E, "A time of day that does not exist", "`{text}` is not a time of day", "structure"),
    Code("invalid-percent", E, "A percentage outside 0–100 %", "`{text}` is not between 0% and 100%", "structure"),
    Code("split-total", E, "Split arms that do not add up to 100 %", "the split's arms add up to {total}%, not 100%", "structure"),
    Code("step-order", E, "Steps out of time order",
         "this step is due at {this} after the trigger, before the step above it ({previous})", "structure"),
    Code("send-outside-step", E, "A flow-level `send` in a flow with steps",
         "this flow has steps, so its `{clause}` must follow a `step`", "structure"),
    Code("zero-duration", E, "A duration of zero where time must pass", "`{text}` is zero: {what} needs a positive duration", "structure"),
    Code("empty-window", E, "A send window that opens and closes at once",
         "this window opens and closes at {time}, so nothing could ever be sent", "structure"),
    # ---------------------------------------------------------------- names (resolution)
    Code("unknown-event", E, "A trigger or rule names an event the schema does not declare",
         "there is no event `{name}`", "names"),
    Code("unknown-field", E, "A field that the record does not have", "`{entity}` has no field `{name}`", "names"),
    Code("unknown-entity", E, "A dotted name whose first part is not a record", "there is no record `{name}`", "names"),
    Code("unknown-name", E, "A bare name that is neither an event nor an enum value",
         "`{name}` is neither an event nor a known value", "names"),
    Code("unknown-channel", E, "A channel the engine does not know", "there is no channel `{name}`", "names"),
    Code("unknown-purpose", E, "A purpose outside transactional, service, review and marketing",
         "there is no purpose `{name}`", "names"),
    Code("unknown-market", E, "A market no policy covers", "there is no market `{name}`", "names"),
    Code("unknown-function", E, "A call to a function that does not exist", "there is no function `{name}`", "names"),
    Code("incomplete-path", E, "A record named without one of its fields",
         "`{name}` is a record; name one of its fields", "names"),
    Code("not-a-record", E, "A field path that goes deeper than the schema",
         "`{name}` has no fields of its own", "names"),
    Code("record-not-read", E, "A field of a declared record that flows cannot read when they run",
         "`{name}` is declared, but a flow reads only {records} when it runs", "names"),
    Code("import-not-found", E, "An imported file cannot be read", "cannot import \"{path}\": {reason}", "names"),
    Code("import-has-errors", E, "An imported file has errors", "the imported file \"{path}\" has errors", "names"),
    # ---------------------------------------------------------------- types
    Code("type-mismatch", E, "Two values of types that cannot meet",
         "{what} cannot compare {left} with {right}", "types"),
    Code("money-without-currency", E, "An amount compared with money but written without a currency",
         "`{number}` is compared with money but has no currency", "types"),
    Code("not-a-condition", E, "A value used where a yes/no condition is needed",
         "{where} needs a condition, but this is {found}", "types"),
    Code("not-ordered", E, "An ordering comparison on values without an order",
         "`{op}` cannot order values of type {type}", "types"),
    Code("not-a-member", E, "A value that is not one of the enum's values",
         "`{value}` is not one of the values of {enum}", "types"),
    Code("not-a-list", E, "`in` with something that is not a list", "`in` needs a list, but this is {found}", "types"),
    Code("not-an-event", E, "`within` or `count` applied to something that is not an event",
         "this needs an event, but it is {found}", "types"),
    Code("never-missing", W, "`is missing` / `is present` on a value that is always there",
         "`{name}` is never missing, so `is {state}` is always the same", "types"),
    Code("money-list", E, "A list of amounts of money anywhere but after `in`",
         "{what} is a list of amounts of money, which can only be the list after `in`", "types"),
    Code("bad-operands", E, "Arithmetic on values it does not apply to",
         "`{op}` does not apply to {left} and {right}", "types"),
    Code("param-not-value", E, "A `send` parameter a template cannot be given",
         "{found} cannot be handed to a template", "types"),
    Code("wrong-arguments", E, "A function called with the wrong arguments", "`{name}` takes {expected}", "types"),
    Code("unknown-type", E, "A schema field with a type that does not exist", "there is no type `{name}`", "types"),
    # ---------------------------------------------------------------- compliance
    Code("forbidden-purpose", E, "A channel, market or platform forbids the flow's purpose",
         "{subject} forbids {purpose} messages{where}", "compliance"),
    Code("skipped-at-send", N, "Some buyers the flow can reach will be skipped: their platform or market forbids the purpose",
         "this {purpose} flow can reach buyers covered by {subject}{where}, which forbids {purpose} messages; "
         "they will be skipped at send time", "compliance"),
    Code("missing-send-window", E, "A flow without the send window the law requires",
         "{what} may only be sent between {window} local time, and this flow has no send window", "compliance"),
    Code("outside-legal-window", E, "A send window wider than the legal one",
         "{what} may only be sent between {window} local time, but this window is {found}", "compliance"),
    Code("review-window", E, "A review request outside the platform's review window",
         "{subject} allows a review request only {window}; {found}", "compliance"),
    Code("missing-once", E, "A review flow the platform allows once per order without `once per order`",
         "{subject} allows one {purpose} message per {per}, and this flow does not say `once per {per}`", "compliance"),
    Code("missing-exclusion", E, "A flow that must exclude some orders and does not",
         "{purpose} flows must exclude {what}", "compliance"),
    Code("excluded-at-send", N, "Orders a policy excludes will be skipped at send time",
         "{what} will be skipped at send time: {subject} requires {purpose} flows to exclude them", "compliance"),
    Code("missing-cooldown", E, "A marketing or review flow with neither a cooldown nor a cap",
         "this {purpose} flow has no cooldown and no cap covers it", "compliance"),
    Code("unknown-content-rule", E, "A `template forbids` category the checker cannot look for",
         "there is no content category `{name}`", "compliance"),
    Code("unknown-requirement", E, "A policy requires something the checker does not know",
         "there is no requirement `{name}`", "compliance"),
    Code("unknown-metric", E, "A `pause` rule names a metric that is not measured",
         "there is no metric `{name}`", "compliance"),
    # ---------------------------------------------------------------- templates
    Code("no-channel", E, "A message with no channel to go out on", "this message has no channel: no `via` applies to it", "templates"),
    Code("unknown-template", E, "A `send` names a template that does not exist", "there is no template \"{name}\"", "templates"),
    Code("missing-channel-variant", E, "A template without a variant for one of the flow's channels",
         "template \"{name}\" has no variant for {channel}", "templates"),
    Code("missing-locale", N, "A template missing in a language the flow's buyers read",
         "template \"{name}\" for {channel} has no {locales} version; those buyers get the {fallback} one", "templates"),
    Code("template-missing-language", E, "A template missing for a language its buyers read, with no English fallback",
         "template \"{name}\" for {channel} exists neither in {locale} nor in {fallback}", "templates"),
    Code("template-missing-footer", E, "A template that does not render what a policy requires",
         "{template} must render the {requirement} (`{{{{ {variable} }}}}`) that {policy} requires", "templates"),
    Code("template-forbidden-content", E, "A template containing content its channel forbids",
         "{template} contains {category} (`{text}`), which {policy} forbids", "templates"),
    Code("whatsapp-template-unapproved", E, "A WhatsApp template that declares no approved Meta template",
         "{template} declares no approved WhatsApp template, which business-initiated messages need", "templates"),
    Code("whatsapp-template-category", E, "A WhatsApp template of the wrong category for the flow's purpose",
         "{template} is a {category} template, but a {purpose} message needs a {needed} one", "templates"),
    Code("template-syntax", E, "A template that is not valid Jinja2", "this template does not parse: {detail}", "templates"),
    # ---------------------------------------------------------------- suppressions
    Code("suppression-without-reason", W, "A suppression comment that gives no reason",
         "this suppression of {codes} gives no reason", "suppressions"),
    Code("unused-suppression", W, "A suppression comment that silences nothing",
         "the suppression of `{name}` silences nothing: {why}", "suppressions"),
    # ---------------------------------------------------------------- formatter
    Code("fmt-changed-meaning", E, "The formatter would change what the file means",
         "formatting this file would change its meaning, so it was left as it is: {detail}", "format"),
    Code("unknown-option", E, "A `per` or `across` word the clause does not know",
         "`{word}` is not one of {choices}", "structure"),
    # ---------------------------------------------------------------- syntax (common slips)
    Code("missing-trigger", E, "A named flow without its `on` trigger",
         "flow `{name}` has no trigger: it needs `on EVENT`", "syntax"),
    Code("missing-on", E, "A flow that starts with its event but without `on`",
         "a flow starts with `on` before its event: `on {word}`", "syntax"),
    Code("time-spelling", E, "A time of day written without minutes or with am/pm",
         "times of day are written as hours and minutes: `{suggestion}`", "syntax"),
    Code("operator-spelling", E, "An operator written the way another language spells it",
         "`{text}` is not an operator in .flow: write `{suggestion}`", "syntax"),
    Code("unclosed-bracket", E, "An opening bracket that is never closed", "this `{char}` is never closed", "syntax"),
    Code("unmatched-bracket", E, "A closing bracket without an opening one",
         "this `{char}` has no matching `{opening}`", "syntax"),
    Code("missing-comma", E, "Two list items without a comma between them",
         "`{left}` and `{right}` need a comma between them", "syntax"),
    Code("list-brackets", E, "A list of values written without brackets",
         "a list of values is written in brackets: `{suggestion}`", "syntax"),
    Code("incomplete-condition", E, "A condition that stops after `where`, `and`, `or` or `not`",
         "`{word}` needs a condition after it", "syntax"),
]

CODES: dict[str, Code] = {entry.id: entry for entry in _ENTRIES}
