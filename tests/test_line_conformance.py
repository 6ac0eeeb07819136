"""Every LINE request our adapter builds conforms to LINE's official OpenAPI document.

The document (`shared/specs/line-messaging-api.yml`, from line/line-openapi) is OpenAPI 3.0:
its schemas use `discriminator` to pick a message, container or component type and `allOf` to
extend a base.  JSON Schema knows neither discriminators nor OpenAPI's `$ref` targets, so the
schemas are translated here: every component becomes a `$defs` entry; a variant is flattened
with the bases it extends through `allOf` and refuses properties that neither declares
(`additionalProperties: false`, so a misspelt field fails instead of passing unnoticed); a
discriminator becomes `if type == X then <variant>` branches plus an enum of the known types.
Skipped when `shared/` is not beside the repository.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "line-messaging-api.yml"
if not SPEC.is_file():
    pytest.skip("shared/specs/line-messaging-api.yml is not available", allow_module_level=True)

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

from linkstar_dsl.adapters import ChannelEngine, LineFlex, OutgoingMessage, Text  # noqa: E402
from linkstar_dsl.adapters.descriptions import load_description  # noqa: E402
from linkstar_dsl.adapters.http import AdapterContext  # noqa: E402
from linkstar_dsl.adapters.line import LineAdapter  # noqa: E402
from linkstar_dsl.providers import ProviderServers  # noqa: E402
from linkstar_dsl.resources import data_dir  # noqa: E402

USER = "U" + "4af4980629" + "0" * 22
OPENAPI_ONLY = {"discriminator", "nullable", "externalDocs", "description", "example", "deprecated", "readOnly",
                "writeOnly", "xml"}


def _ref_name(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise ValueError(f"unexpected $ref {ref}")
    return ref[len(prefix):]


def translate(node):
    """An OpenAPI 3.0 schema node as JSON Schema 2020-12, with `$ref`s into `$defs`."""
    if isinstance(node, list):
        return [translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": f"#/$defs/{_ref_name(node['$ref'])}"}
    out = {}
    for key, value in node.items():
        if key in OPENAPI_ONLY:
            continue
        if key == "properties":
            out[key] = {name: translate(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = translate(value)
        elif key in ("allOf", "oneOf", "anyOf"):
            out[key] = [translate(item) for item in value]
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def flattened(schemas: dict, name: str) -> dict:
    """The named schema with the object bases of its `allOf` merged in (their discriminators dropped)."""
    schema = schemas[name]
    parts = [schemas[_ref_name(p["$ref"])] if "$ref" in p else p for p in schema.get("allOf", [])]
    if not all(p.get("type", "object") == "object" for p in parts):
        return translate(schema)
    out = translate({k: v for k, v in schema.items() if k != "allOf"})
    properties, required = dict(out.get("properties", {})), list(out.get("required", []))
    for part in schema.get("allOf", []):
        base = flattened(schemas, _ref_name(part["$ref"])) if "$ref" in part else translate(part)
        properties = {**base.get("properties", {}), **properties}
        required += [r for r in base.get("required", []) if r not in required]
    if properties:
        out["properties"] = properties
    if required:
        out["required"] = required
    return out


def whole(schemas: dict, name: str) -> dict:
    """The named schema as used on its own: a dispatcher, or a closed flattened object."""
    schema = schemas[name]
    out = flattened(schemas, name)
    if "discriminator" in schema:
        prop, mapping = schema["discriminator"]["propertyName"], schema["discriminator"]["mapping"]
        out["properties"] = {prop: {**out.get("properties", {}).get(prop, {}), "enum": sorted(mapping)}}
        out["allOf"] = [{"if": {"properties": {prop: {"const": value}}, "required": [prop]},
                         "then": {"$ref": f"#/$defs/{_ref_name(target)}"}} for value, target in mapping.items()]
        return out
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def json_schema_document(spec: dict, root: str) -> dict:
    schemas = spec["components"]["schemas"]
    defs = {name: whole(schemas, name) for name in schemas}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs, "$ref": f"#/$defs/{root}"}


@pytest.fixture(scope="module")
def spec():
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader)


@pytest.fixture(scope="module")
def validator(spec):
    document = json_schema_document(spec, "PushMessageRequest")
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def _errors(validator, body) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


BUBBLE = {
    "type": "bubble", "size": "mega",
    "hero": {"type": "image", "url": "https://shop.example/img/1.png", "size": "full", "aspectMode": "cover"},
    "body": {"type": "box", "layout": "vertical", "spacing": "md", "contents": [
        {"type": "text", "text": "ご注文ありがとうございます", "weight": "bold", "size": "lg", "wrap": True},
        {"type": "separator", "margin": "md"},
        {"type": "box", "layout": "baseline", "contents": [
            {"type": "text", "text": "注文番号", "color": "#999999", "flex": 2},
            {"type": "text", "text": "A-100", "flex": 4}]}]},
    "footer": {"type": "box", "layout": "vertical", "contents": [
        {"type": "button", "style": "primary", "height": "sm",
         "action": {"type": "uri", "label": "レビューを書く", "uri": "https://shop.example/review/A-100"}}]},
}
CAROUSEL = {"type": "carousel", "contents": [BUBBLE, {**BUBBLE, "size": "kilo"}]}

MESSAGES = {
    "text": OutgoingMessage("survey:0:o1", "line", USER, Text("商品はいかがでしたか？"), purpose="service"),
    "flex bubble": OutgoingMessage("survey:0:o2", "line", USER, LineFlex("ご注文ありがとうございます", BUBBLE)),
    "flex carousel": OutgoingMessage("winback:0:c1", "line", USER, LineFlex("おすすめ", CAROUSEL)),
    "aggregation unit": OutgoingMessage("review:0:o3", "line", USER, Text("レビューのお願い"), purpose="review",
                                        metadata={"aggregation_unit": "review_ask"}),
}


def _adapter(**options) -> LineAdapter:
    description = load_description(data_dir("channels") / "line.toml")
    return LineAdapter(AdapterContext(description, None, {"token": "t"}, options))


@pytest.mark.parametrize("name", sorted(MESSAGES))
@pytest.mark.parametrize("silent", [False, True], ids=["notify", "silent"])
def test_every_push_body_the_adapter_builds_conforms(validator, name, silent):
    body = _adapter(notification_disabled=silent).build_body(MESSAGES[name])
    assert _errors(validator, body) == []


def test_the_requests_that_actually_left_conform(validator, spec):
    retry_key = spec["paths"]["/v2/bot/message/push"]["post"]["parameters"][0]
    assert retry_key["name"] == "X-Line-Retry-Key" and retry_key["schema"]["format"] == "uuid"

    async def scenario():
        async with ProviderServers() as servers:
            async with ChannelEngine(servers.config(), environ=servers.environ(), plugins=False) as engine:
                for message in MESSAGES.values():
                    assert (await engine.send(message)).sent
            return servers.line.received
    received = asyncio.run(scenario())
    assert len(received) == len(MESSAGES)
    for request in received:
        assert request.path == "/v2/bot/message/push" and request.method == "POST"
        assert request.headers["Authorization"].startswith("Bearer ")
        assert request.headers["Content-Type"].startswith("application/json")
        assert uuid.UUID(request.headers["X-Line-Retry-Key"]).version == 5
        assert _errors(validator, request.json()) == []


@pytest.mark.parametrize("body, where", [
    ({"messages": [{"type": "text", "text": "x"}]}, "to"),
    ({"to": USER, "messages": []}, "messages"),
    ({"to": USER, "messages": [{"type": "text"}]}, "text"),
    ({"to": USER, "messages": [{"type": "text", "txt": "x"}]}, "txt"),
    ({"to": USER, "messages": [{"type": "flex", "altText": "x"}]}, "contents"),
    ({"to": USER, "messages": [{"type": "flex", "altText": "x", "contents": {"type": "bubble", "body": {
        "type": "box", "layout": "diagonal", "contents": []}}}]}, "diagonal"),
    ({"to": USER, "messages": [{"type": "telegram", "text": "x"}]}, "telegram"),
    ({"to": USER, "messages": [{"type": "text", "text": "x"}], "notificationDisable": True}, "notificationDisable"),
])
def test_the_translated_schema_rejects_what_line_would(validator, body, where):
    errors = _errors(validator, body)
    assert errors and any(where in e for e in errors), errors
