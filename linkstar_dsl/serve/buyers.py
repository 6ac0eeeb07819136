"""The buyer's side of the service: the unsubscribe link (RFC 8058) and the preference page.

The token in the path is verified first (`runtime/links.py`); a bad one gets a page saying why (400
expired or malformed, 403 forged) and nothing is written.  GET only shows; POST records, through
the writer, before the page is answered.  The pages are never cached and send no referrer, so the
token does not travel further.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web

from ..runtime import links
from . import pages
from .http import SERVICE, evidence, read_body, too_large
from .optout import ADDRESS_COLUMNS, PAGE_PURPOSES, Opt, preferences


def _link(request: web.Request, action: str):
    """The verified payload of the token in the path, or the HTML page that says why not."""
    service = request.app[SERVICE]
    try:
        return links.verify(request.match_info["token"], service.link_secret, service.clock(), action=action), None
    except links.LinkError as exc:
        return None, _html(pages.link_error(exc.reason, service.sender), 403 if exc.reason == "forged" else 400)


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, content_type="text/html", status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak to other sites
    return response


def _preferences_url(service, payload) -> str:
    token = links.sign(service.link_secret, "preferences", payload.message_key, payload.customer_id,
                       payload.channel, payload.expires)
    return f"/p/{token}"


async def unsubscribe_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    payload, refused = _link(request, "unsubscribe")
    if refused is not None:
        return refused
    return _html(pages.confirm_unsubscribe(request.path, payload.channel, service.sender,
                                           _preferences_url(service, payload)))


async def _form(request: web.Request, limit: int) -> dict | None:
    """The fields of a form post (URL-encoded, or multipart as some mail clients send the one-click
    body), at most `limit` bytes; None when the body is not a form."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(request.content_length, limit)
    if request.content_type == "application/x-www-form-urlencoded":
        body = await read_body(request, limit)
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return None
    if request.content_type == "multipart/form-data" and request.content_length is not None:
        try:
            return dict(await request.post())
        except ValueError:
            return None
    return None


async def unsubscribe(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    payload, refused = _link(request, "unsubscribe")
    if refused is not None:
        return refused
    form = await _form(request, service.config.max_form)
    if form is None or form.get("List-Unsubscribe") != "One-Click":
        return _html(pages.form_error(service.sender), 400)
    opt = Opt(payload.customer_id, payload.channel, payload.message_key, evidence(request, "one_click"))
    changed = await service.writer.submit("unsubscribe", opt)
    return _html(pages.unsubscribed(payload.channel, service.sender, changed, _preferences_url(service, payload)))


async def preferences_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    payload, refused = _link(request, "preferences")
    if refused is not None:
        return refused
    state = preferences(service.reader, payload.customer_id, payload.channel, service.clock())
    return _html(pages.preferences(state, request.path, service.sender))


async def save_preferences(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    payload, refused = _link(request, "preferences")
    if refused is not None:
        return refused
    form = await _form(request, service.config.max_form)
    if form is None or form.get("form") != "preferences":
        return _html(pages.form_error(service.sender), 400)
    chosen = _read_preferences(form)
    if chosen is None:
        return _html(pages.form_error(service.sender), 400)
    channels_on, ticked = chosen
    purposes_off = {(c, p) for c in channels_on for p in PAGE_PURPOSES if (c, p) not in ticked}
    opt = Opt(payload.customer_id, payload.channel, payload.message_key, evidence(request, "preferences"))
    await service.writer.submit("preferences", (opt, channels_on, purposes_off))
    state = preferences(service.reader, payload.customer_id, payload.channel, service.clock())
    return _html(pages.preferences(state, request.path, service.sender, saved=True))


def _read_preferences(form) -> tuple[set, set] | None:
    """(channels ticked, (channel, purpose) ticked) from the page's form; None if it is not ours."""
    channels_on, ticked = set(), set()
    for name, value in form.items():
        if name == "form":
            continue
        kind, _, rest = name.partition(".")
        channel, _, purpose = rest.partition(".")
        if value != "on" or channel not in ADDRESS_COLUMNS:
            return None
        if kind == "channel" and not purpose:
            channels_on.add(channel)
        elif kind == "purpose" and purpose in PAGE_PURPOSES:
            ticked.add((channel, purpose))
        else:
            return None
    return channels_on, ticked
