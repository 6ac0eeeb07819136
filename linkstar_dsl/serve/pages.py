"""The few HTML pages a buyer sees: unsubscribe, its confirmation, the preference page, link errors.

Plain HTML, no script, every value escaped.  The words are templates keyed by a code (`TEXT`), so
the pages can be offered in other languages the way the diagnostics are.  A GET never changes
anything: mail scanners open links to check them, so the one-click opt-out happens only on the
POST that the unsubscribe button (or the mail client, RFC 8058) sends.
"""

from __future__ import annotations

from html import escape

from .optout import PAGE_PURPOSES, Preferences

TEXT = {
    "unsubscribe.title": "Unsubscribe",
    "unsubscribe.ask": "Stop receiving {channel} messages from {sender}?",
    "unsubscribe.button": "Unsubscribe",
    "unsubscribe.done": "You are unsubscribed from {channel} messages from {sender}.",
    "unsubscribe.already": "You were already unsubscribed from {channel} messages from {sender}.",
    "preferences.link": "Choose which messages you receive instead",
    "preferences.title": "Your message preferences",
    "preferences.intro": "Choose how {sender} may contact you.",
    "preferences.channel": "{channel} messages",
    "preferences.blocked": "turned off ({reasons}); it cannot be turned on here",
    "preferences.everything_off": "No messages are sent to you ({reasons}).",
    "preferences.save": "Save",
    "preferences.saved": "Your preferences are saved.",
    "purpose.marketing": "offers and news",
    "purpose.review": "review requests",
    "purpose.service": "surveys and order follow-ups",
    "error.title": "This link cannot be used",
    "error.expired": "This link has expired. Use the link in a more recent message, or contact {sender}.",
    "error.forged": "This link is not valid. Use the link exactly as it appears in the message.",
    "error.malformed": "This link is incomplete or damaged. Use the link exactly as it appears in the message.",
    "error.form": "The form was not sent as expected. Go back to the link in the message and try again.",
}
CHANNEL_NAMES = {"email": "email", "sms": "text (SMS)", "line": "LINE", "whatsapp": "WhatsApp", "amazon": "Amazon",
                 "webhook": "webhook"}


def text(code: str, **values) -> str:
    return TEXT[code].format(**{k: escape(str(v)) for k, v in values.items()})


def _page(title: str, body: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"robots\" content=\"noindex\">"
            f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;"
            "margin:3rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1.25rem}"
            "fieldset{margin:1rem 0}</style></head>\n"
            f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n")


def confirm_unsubscribe(action: str, channel: str, sender: str, preferences_url: str | None) -> str:
    link = (f'<p><a href="{escape(preferences_url)}">{text("preferences.link")}</a></p>'
            if preferences_url else "")
    return _page(TEXT["unsubscribe.title"],
                 f"<p>{text('unsubscribe.ask', channel=CHANNEL_NAMES.get(channel, channel), sender=sender)}</p>"
                 f'<form method="post" action="{escape(action)}">'
                 '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                 f"<button type=\"submit\">{text('unsubscribe.button')}</button></form>{link}")


def unsubscribed(channel: str, sender: str, changed: bool, preferences_url: str | None) -> str:
    code = "unsubscribe.done" if changed else "unsubscribe.already"
    link = (f'<p><a href="{escape(preferences_url)}">{text("preferences.link")}</a></p>'
            if preferences_url else "")
    return _page(TEXT["unsubscribe.title"],
                 f"<p>{text(code, channel=CHANNEL_NAMES.get(channel, channel), sender=sender)}</p>{link}")


def link_error(reason: str, sender: str) -> str:
    code = f"error.{reason}" if f"error.{reason}" in TEXT else "error.malformed"
    return _page(TEXT["error.title"], f"<p>{text(code, sender=sender)}</p>")


def preferences(state: Preferences, action: str, sender: str, saved: bool = False) -> str:
    parts = [f"<p>{text('preferences.saved')}</p>"] if saved else []
    parts.append(f"<p>{text('preferences.intro', sender=sender)}</p>")
    if state.everything_off:
        parts.append(f"<p>{text('preferences.everything_off', reasons=', '.join(state.everything_off))}</p>")
        return _page(TEXT["preferences.title"], "\n".join(parts))
    parts.append(f'<form method="post" action="{escape(action)}"><input type="hidden" name="form" value="preferences">')
    for channel in state.channels:
        label = text("preferences.channel", channel=CHANNEL_NAMES.get(channel, channel))
        on = state.channel_on(channel)
        if not on and not state.can_turn_on(channel):
            reasons = ", ".join(state.off.get(channel, ()))
            parts.append(f"<fieldset><legend>{label}</legend><p>{text('preferences.blocked', reasons=reasons)}</p>"
                         "</fieldset>")
            continue
        checked = " checked" if on else ""
        parts.append(f'<fieldset><legend><label><input type="checkbox" name="channel.{escape(channel)}"{checked}> '
                     f"{label}</label></legend>")
        for purpose in PAGE_PURPOSES:
            ticked = "" if (channel, purpose) in state.purposes_off else " checked"
            parts.append(f'<div><label><input type="checkbox" name="purpose.{escape(channel)}.{purpose}"{ticked}> '
                         f"{text('purpose.' + purpose)}</label></div>")
        parts.append("</fieldset>")
    parts.append(f"<button type=\"submit\">{text('preferences.save')}</button></form>")
    return _page(TEXT["preferences.title"], "\n".join(parts))


def form_error(sender: str) -> str:
    return _page(TEXT["error.title"], f"<p>{text('error.form', sender=sender)}</p>")
