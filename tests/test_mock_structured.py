"""Structured output from the mock provider, through the gateway with the
official openai SDK (and openai-agents): `parse()` and `stream()` with pydantic
models get valid instances back, the same for the same request; hostile and
random schemas get an instance that `jsonschema` accepts, or a clean 400."""
from __future__ import annotations

import asyncio
import enum
import time
from datetime import datetime
from typing import Annotated, Literal

import jsonschema
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from providers.mock.schema_check import Unsatisfiable
from providers.mock.schema_instance import MAX_VALUES, instance
from tests.harness import base_config, chat_model
from tests.test_bad_input import assert_error

ASK = [{"role": "user", "content": "tell me in structure"}]


@pytest.fixture
def gw(start_gateway):
    return start_gateway(base_config([{"name": "mock", "type": "mock", "stream_chunks": 5}],
                                     [chat_model("mock-chat", {"provider": "mock"})]))


# --- pydantic models, as an application would write them ----------------------------------

class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str
    postcode: str | None


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    email: str | None
    favourite: Colour
    role: Literal["admin", "user"]
    addresses: list[Address]
    born: datetime
    tags: list[str] = Field(min_length=1, max_length=3)


class Tree(BaseModel):
    value: int
    children: list[Tree]


class Chain(BaseModel):
    label: str
    next: Chain | None


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    pet: Cat | Dog
    tagged: Annotated[Cat | Dog, Field(discriminator="kind")]
    score: float
    ratio: float | int | None


MODELS = [Address, Person, Tree, Chain, Pet]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_parse_returns_an_instance_of_the_model(gw, model):
    c = gw.client()
    first = c.chat.completions.parse(model="mock-chat", messages=ASK, response_format=model)
    again = c.chat.completions.parse(model="mock-chat", messages=ASK, response_format=model)
    parsed = first.choices[0].message.parsed
    assert isinstance(parsed, model)
    assert first.choices[0].finish_reason == "stop"
    assert first.choices[0].message.content == again.choices[0].message.content    # same request, same instance
    assert first.usage.completion_tokens >= 1


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_stream_parses_to_the_whole_answers_instance(gw, model):
    c = gw.client()
    with c.chat.completions.stream(model="mock-chat", messages=ASK, response_format=model) as stream:
        pieces = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    whole = c.chat.completions.parse(model="mock-chat", messages=ASK, response_format=model)
    assert len(pieces) > 1
    assert "".join(pieces) == whole.choices[0].message.content
    assert final.choices[0].message.parsed == whole.choices[0].message.parsed


def test_prompts_vary_the_instance_but_each_is_valid(gw):
    c = gw.client()
    seen = set()
    for i in range(6):
        answer = c.chat.completions.parse(model="mock-chat", messages=[{"role": "user", "content": f"ask {i}"}],
                                          response_format=Person)
        seen.add(answer.choices[0].message.content)
        assert isinstance(answer.choices[0].message.parsed, Person)
    assert len(seen) > 1


def test_responses_parse_with_a_text_format(gw):
    r = gw.client().responses.parse(model="mock-chat", input="tell me in structure", text_format=Person)
    assert isinstance(r.output_parsed, Person)
    whole = gw.client().chat.completions.parse(model="mock-chat", messages=ASK, response_format=Person)
    assert r.output_parsed == whole.choices[0].message.parsed


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_an_agent_with_an_output_type(gw, api):
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="sk-test", max_retries=0)
    model = agents.OpenAIResponsesModel(model="mock-chat", openai_client=client) if api == "responses" \
        else agents.OpenAIChatCompletionsModel(model="mock-chat", openai_client=client)
    agent = agents.Agent(name="profiler", instructions="Describe a person.", output_type=Person, model=model)
    result = asyncio.run(agents.Runner.run(agent, "Who?"))
    assert isinstance(result.final_output, Person)


# As zod-to-json-schema writes one (openai's zodResponseFormat): draft-07, `definitions`, tuples as
# `items` lists, nullable as a type list, and a `$ref` to another property by JSON pointer.
ZOD = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 12},
        "when": {"type": "string", "format": "date-time"},
        "email": {"type": "string", "format": "email"},
        "id": {"type": "string", "format": "uuid"},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "point": {"type": "array", "minItems": 2, "maxItems": 2, "items": [{"type": "number"}, {"type": "number"}]},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "again": {"$ref": "#/properties/status"},
        "note": {"type": ["string", "null"]},
        "count": {"type": "integer", "exclusiveMinimum": 0, "maximum": 3},
        "price": {"type": "number", "minimum": 0.5, "multipleOf": 0.25},
        "meta": {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1},
        "tree": {"$ref": "#/definitions/tree"},
    },
    "required": ["name", "when", "email", "id", "code", "point", "status", "again", "note", "count", "price",
                 "meta", "tree"],
    "additionalProperties": False,
    "definitions": {"tree": {"type": "object", "additionalProperties": False, "required": ["value", "children"],
                             "properties": {"value": {"type": "integer"},
                                            "children": {"type": "array", "items": {"$ref": "#/definitions/tree"}}}}},
}


@pytest.mark.parametrize("stream", [False, True])
def test_a_zod_shaped_schema(gw, stream):
    fmt = {"type": "json_schema", "json_schema": {"name": "zod", "schema": ZOD, "strict": True}}
    c = gw.client()
    whole = c.chat.completions.create(model="mock-chat", messages=ASK, response_format=fmt)
    value = orjson.loads(whole.choices[0].message.content)
    jsonschema.validate(value, ZOD)
    assert value["code"] == "USD" and value["again"] in ("open", "closed") and len(value["name"]) >= 12
    if stream:
        chunks = c.chat.completions.create(model="mock-chat", messages=ASK, response_format=fmt, stream=True)
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == \
            whole.choices[0].message.content


def test_json_object_mode_keeps_its_answer(gw):
    r = gw.client().chat.completions.create(model="mock-chat", messages=ASK, response_format={"type": "json_object"})
    assert orjson.loads(r.choices[0].message.content)["mock"] is True


def _post(gw, response_format, stream=False):
    with gw.http() as http:
        return http.post("/v1/chat/completions", json={"model": "mock-chat", "messages": ASK, "stream": stream,
                                                       "response_format": response_format})


@pytest.mark.parametrize("response_format", [
    {"type": "json_schema"},
    {"type": "json_schema", "json_schema": "Person"},
    {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": ["not", "a", "schema"]}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objekt"}}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "https://example.com/s.json"}}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/missing"}}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"properties": {"a": 5}, "required": ["a"]}}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"anyOf": []}}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "minimum": 5, "maximum": 4}}},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"enum": [[[[[[[[[[1]]]]]]]]]] * 3,
                                                                    "type": "string"}}},
])
@pytest.mark.parametrize("stream", [False, True])
def test_malformed_or_unsatisfiable_formats_are_a_400(gw, response_format, stream):
    assert_error(_post(gw, response_format, stream), 400, param="response_format")


def _deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def _nested_lists(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("schema", [
    _deep(200),                                                           # deep nesting
    {"type": "array", "minItems": 10 ** 12, "items": {"type": "string"}},     # huge minItems
    {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000}},
    {"type": "string", "minLength": 10 ** 12},
    {"$ref": "#"},                                                         # self-reference, no end
    {"type": "object", "properties": {"me": {"$ref": "#"}}, "required": ["me"]},
    {"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
     "$ref": "#/$defs/a"},
    {"anyOf": [{"anyOf": [{"$ref": "#"}, {"$ref": "#"}]}, {"$ref": "#"}]},     # branching self-reference
    {"type": "array", "minItems": 3, "maxItems": 3, "uniqueItems": True, "items": {"type": "boolean"}},
    {"const": _nested_lists(300)},                                          # deeper than JSON answers go
    {"anyOf": [{"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}] * 500},
])
def test_hostile_schemas_answer_quickly_and_never_500(gw, schema):
    started = time.monotonic()
    r = _post(gw, {"type": "json_schema", "json_schema": {"name": "hostile", "schema": schema}})
    assert time.monotonic() - started < 5
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert_error(r, 400, param="response_format")
    else:
        jsonschema.validate(orjson.loads(r.json()["choices"][0]["message"]["content"]), schema)


def test_patterns_that_could_backtrack_for_ever_are_not_run(gw):
    started = time.monotonic()
    for schema in ({"type": "string", "pattern": "^(a+)+$", "enum": ["a" * 40 + "!"]},
                   {"type": "string", "pattern": "^(a|a)*$", "minLength": 60},
                   {"type": "string", "pattern": "^a*a*a*a*a*a*a*b$", "const": "a" * 200}):
        r = _post(gw, {"type": "json_schema", "json_schema": {"name": "redos", "schema": schema}})
        assert r.status_code == 200, r.text
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("response_format", [{"type": "text"}, {"type": "bogus"}, {"type": ["json_schema"]}, {}])
def test_other_formats_are_text_as_before(gw, response_format):
    r = _post(gw, response_format)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"].startswith("mock")


# --- random schemas: an instance jsonschema accepts, or a clean 400 ---------------------------

_NAMES = st.sampled_from(["a", "b", "c", "id", "name", "x_y"])
_NUMBER = st.integers(-50, 50) | st.floats(-50, 50, allow_nan=False).map(lambda f: round(f, 2))
_SCALAR = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4)


def _bounds(kind: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({"type": st.just(kind)}, optional={
        "minimum": _NUMBER, "maximum": _NUMBER, "exclusiveMinimum": _NUMBER, "exclusiveMaximum": _NUMBER,
        "multipleOf": st.sampled_from([1, 2, 3, 5, 0.5, 0.25, 0.1])})


LEAVES = (
    st.sampled_from([{"type": "null"}, {"type": "boolean"}, {}, {"type": ["string", "null"]},
                     {"type": ["integer", "null"]}, {"type": "string", "format": "date"},
                     {"type": "string", "format": "date-time"}, {"type": "string", "format": "email"},
                     {"type": "string", "format": "uri"}, {"type": "string", "format": "uuid"},
                     {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}, {"type": "string", "pattern": "^[a-z]+$"},
                     {"type": "string", "pattern": r"^[A-Z]{3}$"}])
    | _bounds("integer") | _bounds("number")
    | st.fixed_dictionaries({"type": st.just("string")}, optional={"minLength": st.integers(0, 20),
                                                                  "maxLength": st.integers(0, 20)})
    | st.lists(_SCALAR, min_size=1, max_size=4).map(lambda e: {"enum": e})
    | _SCALAR.map(lambda c: {"const": c})
    | st.fixed_dictionaries({"type": st.just("integer"), "default": st.integers(-3, 3)})
)


def _composites(inner: st.SearchStrategy) -> st.SearchStrategy:
    props = st.dictionaries(_NAMES, inner, max_size=4)
    obj = st.builds(lambda p, req, extra: {"type": "object", "properties": p,
                                           "required": [k for k in p if k in req], **extra},
                    props, st.sets(_NAMES),
                    st.fixed_dictionaries({}, optional={"additionalProperties": st.booleans() | inner,
                                                        "minProperties": st.integers(0, 6),
                                                        "maxProperties": st.integers(0, 6)}))
    arr = st.fixed_dictionaries({"type": st.just("array")}, optional={
        "items": inner, "prefixItems": st.lists(inner, min_size=1, max_size=3),
        "minItems": st.integers(0, 4) | st.just(10 ** 9), "maxItems": st.integers(0, 6), "uniqueItems": st.booleans()})
    many = st.lists(inner, min_size=1, max_size=3)
    return (obj | arr | many.map(lambda b: {"anyOf": b}) | many.map(lambda b: {"oneOf": b})
            | many.map(lambda b: {"allOf": b}) | inner.map(lambda s: {"type": ["array", "null"], "items": s}))


SCHEMAS = st.recursive(LEAVES, _composites, max_leaves=12)
RECURSIVE = SCHEMAS.map(lambda leaf: {     # a $defs model that refers to itself through an Optional and a list
    "$defs": {"Node": {"type": "object", "required": ["leaf", "next", "kids"], "properties": {
        "leaf": leaf, "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
    "$ref": "#/$defs/Node"})


@settings(max_examples=400, deadline=None)
@given(SCHEMAS | RECURSIVE, st.binary(min_size=1, max_size=8))
def test_random_schemas_get_a_valid_instance_or_unsatisfiable(schema, seed):
    jsonschema.Draft202012Validator.check_schema(schema)
    try:
        value = instance(schema, seed)
    except Unsatisfiable as e:
        assert str(e)
        return
    jsonschema.Draft202012Validator(schema).validate(value)
    assert instance(schema, seed) == value      # deterministic
    assert len(orjson.dumps(value)) < MAX_VALUES * 64


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=SCHEMAS | RECURSIVE, stream=st.booleans())
def test_random_schemas_through_the_gateway(gw, schema, stream):
    r = _post(gw, {"type": "json_schema", "json_schema": {"name": "random", "schema": schema, "strict": True}},
              stream)
    if r.status_code == 400:
        assert_error(r, 400, param="response_format")
        return
    assert r.status_code == 200, r.text
    if stream:
        events = [orjson.loads(line[6:]) for line in r.text.splitlines()
                  if line.startswith("data: {")]
        content = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    else:
        content = r.json()["choices"][0]["message"]["content"]
    jsonschema.Draft202012Validator(schema).validate(orjson.loads(content))
