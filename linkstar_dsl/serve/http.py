"""Small pieces every handler uses: bounded body reads, bearer tokens, JSON answers, evidence.

Bodies are read up to the endpoint's limit and refused with 413 past it, before anything in them
is looked at.  A bearer token is compared in constant time; no `Authorization` header is a 401
(with `WWW-Authenticate`), a wrong token a 403.
"""

from __future__ import annotations

import hmac
import json

from aiohttp import web

from .refusal import Refusal

#: Where the application keeps its `Service`.
SERVICE = web.AppKey("service", object)


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise too_large(request.content_length, limit)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(size: int, limit: int) -> Refusal:
    return Refusal(413, "too-large", f"the body has {size}+ bytes; at most {limit} are accepted")


def check_bearer(request: web.Request, token: str | None) -> None:
    if not token:
        raise Refusal(404, "not-configured", "this endpoint is off: set LINKSTAR_SERVE_TOKEN to use it")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Refusal(401, "unauthorized", "send the service's token as `Authorization: Bearer <token>`")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Refusal(403, "forbidden", "the bearer token is not the service's token")


def json_body(body: bytes, *, optional: bool = False) -> dict:
    """A JSON object from a body (an empty body is `{}` when `optional`)."""
    if optional and not body.strip():
        return {}
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "invalid", "the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise Refusal(400, "invalid", "the body must be a JSON object")
    return document


def refusal_response(refusal: Refusal) -> web.Response:
    response = web.json_response(refusal.body(), status=refusal.status)
    if refusal.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="linkstar"'
    return response


def evidence(request: web.Request, via: str) -> dict:
    """What proves a buyer's choice came through our link: where from and with what, when."""
    return {"via": via, "ip": request.remote, "user_agent": request.headers.get("User-Agent", "")[:512],
            "forwarded_for": request.headers.get("X-Forwarded-For", "")[:256] or None,
            "content_type": request.content_type}
