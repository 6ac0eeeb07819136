"""Templates: every message a flow sends exists for its channels, and says what the law requires.

Runs for flows whose folder (or the folder above) has a `templates/` directory; the standard
templates in `stdlib/templates/` are always on the search path.  For each `send` (or the default
template: the flow's name, or its trigger event for a header-less flow) and each channel it goes
out on, the pass finds the template per locale of the markets the flow reaches, then checks:

* the name exists (with "did you mean"), with a variant for each channel;
* footers that policies require (unsubscribe link, sender identity and address, ad notice) are
  rendered by the template or a partial it includes;
* templates for channels whose policy forbids content (Amazon: incentives, rating requests,
  external links) contain none of it;
* the template itself parses as Jinja2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import ast
from ..diagnostics import Diagnostic, Fix, Label, make
from ..source import Span
from ..suggest import did_you_mean
from ..templates import (FALLBACK_LOCALE, FOOTER_VARIABLES, MARKET_LOCALES, TemplateStore, included_files,
                         roots_for, source_of, stdlib_root, syntax_error, variables)
from .compliance import flow_compliance, reach
from .narrowing import OTHER

#: What each forbidden-content category looks like, in the languages templates are written in.
FORBIDDEN_CONTENT = {
    "incentives": re.compile(
        r"coupon|discount|voucher|gift ?card|free gift|cash ?back|\d+ ?% off|promo code|"
        r"クーポン|割引|値引|プレゼント|ポイント進呈|Gutschein|Rabatt|réduction|bon d'achat|cupón|descuento|"
        r"sconto|buono sconto", re.IGNORECASE),
    "rating_requests": re.compile(
        r"(5|five)[- ]?stars?|positive (review|feedback|rating)|good review|★★★|星5|星５|高評価|5つ星|"
        r"fünf Sterne|5 Sterne|5 étoiles|5 estrellas|5 stelle", re.IGNORECASE),
    "external_links": re.compile(r"https?://(?![a-z0-9.-]*amazon\.[a-z.]+(?:/|\b))[^\s\"'<>]+", re.IGNORECASE),
    "opt_out_links": re.compile(
        r"unsubscribe_url|unsubscribe|opt[- ]?out|配信停止|abbestellen|désinscri|darse de baja|disiscri",
        re.IGNORECASE),
    "emojis": re.compile("[\U0001F300-\U0001FAFF\U0001F000-\U0001F2FF\u2600-\u27BF]"),
}


def _sends(flow: ast.Flow) -> list[tuple[ast.Node, str, list[ast.Name]]]:
    """(where to point, template name, channels) for every message the flow can send."""
    flow_via = next((c for c in flow.clauses if isinstance(c, ast.Via)), None)
    default_channels = list(flow_via.channels) if flow_via else []
    out = []

    def add(owner_clauses, channels, anchor_default):
        sends = [c for c in owner_clauses if isinstance(c, ast.Send)]
        for split in (c for c in owner_clauses if isinstance(c, ast.Split)):
            sends += [arm.send for arm in split.arms]
        if not sends:
            out.append((anchor_default, None, channels))
        for send in sends:
            out.append((send.template, send.template.value, channels))

    if flow.steps:
        for step in flow.steps:
            step_via = next((c for c in step.clauses if isinstance(c, ast.Via)), None)
            add(step.clauses, list(step_via.channels) if step_via else default_channels, step)
    else:
        add(flow.clauses, default_channels, flow.trigger)
    return out


def _locales(markets: frozenset[str]) -> list[str]:
    found = [loc for m in sorted(markets) for loc in MARKET_LOCALES.get(m, ())]
    return list(dict.fromkeys(found or [FALLBACK_LOCALE]))


def channels_present(module: ast.Module, env) -> Iterator[Diagnostic]:
    """Every message must have a channel to go out on: a `via` on its step or on the flow."""
    for flow in module.flows:
        for anchor, _, channels in _sends(flow):
            if not channels:
                yield make("no-channel", anchor.span, help=("add `via` with the channels to use, "
                                                            "for example `via line, email`",))


def check(module: ast.Module, env) -> Iterator[Diagnostic]:
    roots = roots_for(module.span.file)
    if not any(r.is_dir() for r in roots):
        return
    store = TemplateStore(roots + [stdlib_root()])
    seen_files: set = set()
    for flow in module.flows:
        yield from _check_flow(flow, env, store, seen_files)


def _check_flow(flow: ast.Flow, env, store: TemplateStore, seen_files: set) -> Iterator[Diagnostic]:
    r = reach(flow, env.schema)
    _, obligations = flow_compliance(flow, env)
    # Buyers of an unnarrowed flow may read anything: only a narrowed flow owes its markets' languages.
    narrowed = OTHER not in r.countries
    locales = _locales(r.markets) if narrowed else [FALLBACK_LOCALE]
    for anchor, name, channels in _sends(flow):
        if not channels:
            continue
        if name is None:
            name = flow.name.value if flow.name is not None else flow.trigger.event.value
        if name not in store.files:
            guess = did_you_mean(name, store.names)
            fix = Fix(anchor.span, f'"{guess}"', f'use "{guess}"') if guess and isinstance(anchor, ast.StringLit) else None
            yield make("unknown-template", anchor.span, name=name, fix=fix,
                       help=((f'did you mean "{guess}"?',) if guess else ()) +
                            (f"create templates/{FALLBACK_LOCALE}/{name}.{channels[0].value}.j2",))
            continue
        for channel in channels:
            if not store.has_channel(name, channel.value):
                yield make("missing-channel-variant", channel.span, name=name, channel=channel.value,
                           help=(f"create templates/{FALLBACK_LOCALE}/{name}.{channel.value}.j2, or "
                                 f"templates/{FALLBACK_LOCALE}/{name}.j2 for every channel",))
                continue
            yield from _check_files(flow, anchor, name, channel, locales, store, obligations, seen_files)


def _check_files(flow, anchor, name, channel, locales, store, obligations, seen_files) -> Iterator[Diagnostic]:
    missing_locales = []
    for locale in locales:
        tf = store.find(name, channel.value, locale)
        if tf is None:
            yield make("template-missing-language", anchor.span, name=name, channel=channel.value,
                       locale=locale, fallback=FALLBACK_LOCALE,
                       help=(f"add templates/{locale}/{name}.{channel.value}.j2 or "
                             f"templates/{FALLBACK_LOCALE}/{name}.{channel.value}.j2",))
            continue
        if tf.locale != locale:
            missing_locales.append(locale)
        if tf.path not in seen_files:
            seen_files.add(tf.path)
            error = syntax_error(tf)
            if error is not None:
                source = source_of(tf)
                line = min(error[0], source.line_count)
                start = source.offset(line, 1)
                yield make("template-syntax", Span(source, start, start + len(source.line_text(line))),
                           detail=error[1])
                continue
        used = variables(tf)
        reported: set[str] = set()
        approved_seen: set = set()
        for ob in obligations:
            if ob.channels and channel.value not in ob.channels:
                continue
            variable = FOOTER_VARIABLES.get(ob.requirement)
            if variable is not None and variable not in used and variable not in reported:
                reported.add(variable)
                yield make("template-missing-footer", anchor.span, template=tf.display, variable=variable,
                           requirement=ob.requirement.replace("_", " "), policy=ob.policy,
                           labels=(Label(Span(source_of(tf), 0, 0), f"{tf.display} never renders "
                                         f"`{{{{ {variable} }}}}`"),) ,
                           help=(f"render `{{{{ {variable} }}}}` in the template, or include the standard "
                                 f"footer: `{{% include \"_partials/footer.{channel.value}.j2\" %}}`",
                                 f"required by {ob.policy}: {ob.cite}" if ob.cite else f"required by {ob.policy}"))
            if ob.requirement == "template_forbids":
                yield from _forbidden_content(tf, anchor, ob)
            if ob.requirement == "approved_template" and channel.value == "whatsapp" and tf.path not in approved_seen:
                approved_seen.add(tf.path)
                yield from _approved_whatsapp(tf, anchor, flow, ob)
    if missing_locales:
        yield make("missing-locale", anchor.span, name=name, channel=channel.value,
                   locales=", ".join(missing_locales), fallback=FALLBACK_LOCALE,
                   help=(f"add templates/{missing_locales[0]}/{name}.{channel.value}.j2",))


#: The WhatsApp template category each purpose needs (Meta: mixed content counts as marketing).
WHATSAPP_CATEGORY = {"marketing": "marketing", "review": "marketing", "service": "utility",
                     "transactional": "utility"}


def _approved_whatsapp(tf, anchor, flow, ob) -> Iterator[Diagnostic]:
    from ..templates import whatsapp_header

    header = whatsapp_header(tf)
    source = source_of(tf)
    if header is None or "template" not in header or "category" not in header:
        yield make("whatsapp-template-unapproved", anchor.span, template=tf.display,
                   labels=(Label(Span(source, 0, 0), f"{tf.display} declares no approved template"),),
                   help=("declare the template approved by Meta on its first line: "
                         "`{#- whatsapp: template=NAME category=utility language=ja -#}`",
                         f"required by {ob.policy}: {ob.cite}" if ob.cite else f"required by {ob.policy}"))
        return
    purpose = next((p.name.value for p in flow.find(ast.Purpose)), "marketing")
    needed = WHATSAPP_CATEGORY.get(purpose, "marketing")
    if header["category"] != needed:
        yield make("whatsapp-template-category", anchor.span, template=tf.display, category=header["category"],
                   purpose=purpose, needed=needed,
                   help=(f"submit it to Meta as a {needed} template and declare `category={needed}`",))


def _forbidden_content(tf, anchor, ob) -> Iterator[Diagnostic]:
    """Scan the template and every partial it pulls in; report each category once, where it occurs."""
    sources = [source_of(tf)] + [_partial_source(path, tf) for path in included_files(tf)]
    for category in ob.args:
        pattern = FORBIDDEN_CONTENT.get(category)
        if pattern is None:
            continue
        for source in sources:
            match = pattern.search(_without_jinja_comments(source.text))
            if match is not None:
                yield make("template-forbidden-content", Span(source, match.start(), match.end()),
                           template=source.name, category=category.replace("_", " "), text=match.group(),
                           policy=ob.policy, labels=(Label(anchor.span, "sent from here"),),
                           help=(f"{ob.policy}: {ob.cite}" if ob.cite else ob.policy,))
                break


def _without_jinja_comments(text: str) -> str:
    """The text with `{# … #}` comments blanked (same length, so offsets stay right)."""
    return re.sub(r"\{#.*?#\}", lambda m: " " * len(m.group()), text, flags=re.S)


def _partial_source(path, tf):
    from ..templates import _read, _stamp

    return _read(path, str(path.relative_to(tf.root.parent)), _stamp(path))


PASSES = (channels_present, check)
