"""OpenAI's Files API (/v1/files) over real HTTP on loopback: the official SDK's
`client.files.*` on the embedded store and on a real Redis; answers checked
against OpenAI's OpenAPI schemas; per-key scoping; batch input checked line by
line with every problem's line number and nothing kept when refused; size
caps; expiry and its sweep; a 20 MB upload never held whole; and fuzzing of
the checker and of the upload, which never answer 5xx."""
from __future__ import annotations

import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ApiError
from gateway.files.batch_input import ENDPOINTS, MAX_SHOWN, BatchInput
from gateway.files.service import Files
from providers.openai.video import multipart
from tests.files_schema import validate
from tests.harness import Gateway, base_config, chat_model

CHAT, EMBEDDINGS = "/v1/chat/completions", "/v1/embeddings"


def config(tmp_path: Path, redis_url: str | None = None, **files: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"data_dir": str(tmp_path / "data")}
    if redis_url:
        state["redis_url"] = redis_url
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("chat", {"provider": "mock"})], state=state)
    cfg["auth"]["keys"].append({"name": "other", "key": "sk-other", "models": ["*"]})
    if files:
        cfg["files"] = files
    return cfg


def line(i: int, url: str = CHAT, **over: Any) -> bytes:
    body = ({"model": "chat", "messages": [{"role": "user", "content": f"hello {i}"}]} if url != EMBEDDINGS
            else {"model": "embed", "input": f"text {i}"})
    return orjson.dumps({"custom_id": f"r{i}", "method": "POST", "url": url, "body": body, **over})


def jsonl(lines: list[bytes]) -> bytes:
    return b"".join(x + b"\n" for x in lines)


def kept(gw: Gateway) -> list[str]:
    """Every file and folder under the asset store's folder (temporary ones too): what uploads left on disk."""
    folder = Path(gw.runtime.config.state.data_dir) / "videos"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def files_of(gw: Any) -> Files:
    assert gw.app.services.files is not None
    return gw.app.services.files


def upload(gw: Any, data: bytes, purpose: str | None = "batch", key: str = "sk-test", name: str = "in.jsonl",
           **fields: str) -> httpx.Response:
    form = {**({"purpose": purpose} if purpose is not None else {}), **fields}
    with gw.http(key) as http:
        return http.post("/v1/files", data=form, files={"file": (name, data)})


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and isinstance(error["message"], str)
    return error


@pytest.fixture(params=["embedded", "redis"])
def store_url(request) -> str | None:
    return None if request.param == "embedded" else request.getfixturevalue("redis_url")


@pytest.fixture(scope="module")
def shared(loop, tmp_path_factory):
    """One gateway of the default config for the tests that need nothing of their own (each start
    costs ~0.3 s): what they check is what changed, not what is there."""
    gw = Gateway(loop, config(tmp_path_factory.mktemp("shared")))
    yield gw
    gw.close()


# -- the SDK's flow --------------------------------------------------------------------

def test_the_sdk_creates_lists_pages_retrieves_reads_and_deletes(start_gateway, loop, tmp_path, store_url):
    gw = start_gateway(config(tmp_path, store_url))
    client = gw.client()
    chat_path, embed_path = tmp_path / "chat.jsonl", tmp_path / "embed.jsonl"
    chat_path.write_bytes(jsonl([line(i) for i in range(200)]))
    embed_path.write_bytes(jsonl([line(i, EMBEDDINGS) for i in range(50)]))
    with chat_path.open("rb") as f:
        chat = client.files.create(file=f, purpose="batch")
    with embed_path.open("rb") as f:
        embed = client.files.create(file=f, purpose="batch")
    blob = random.Random(1).randbytes(5000)
    other = client.files.create(file=("notes.bin", blob), purpose="user_data")

    assert (chat.filename, chat.bytes, chat.purpose, chat.status) == ("chat.jsonl", chat_path.stat().st_size,
                                                                    "batch", "processed")
    assert chat.id.startswith("file-") and abs(chat.created_at - time.time()) < 5
    assert chat.expires_at == chat.created_at + 30 * 86400          # batch input: 30 days by default, as OpenAI
    assert other.expires_at is None and other.bytes == 5000
    with gw.http() as http:
        for made in (chat, embed, other):
            shown = http.get(f"/v1/files/{made.id}").json()
            validate(shown, "OpenAIFile")
            assert shown == made.model_dump()
        listed = http.get("/v1/files", params={"purpose": "batch"}).json()
        validate(listed, "ListFilesResponse")
        assert [f["id"] for f in listed["data"]] == [embed.id, chat.id] and not listed["has_more"]

    # What a batch will read without opening the file: its count of requests and their endpoint.
    records = [loop.run(files_of(gw).find(gw.runtime.keys.all()[0].id, f.id)) for f in (chat, embed, other)]
    assert [(r.lines, r.endpoint) for r in records] == [(200, CHAT), (50, EMBEDDINGS), (0, "")]

    everything = client.files.list(limit=1)                     # a page at a time, `after` the last id
    assert len(everything.data) == 1 and everything.has_more
    assert [f.id for f in everything] == [other.id, embed.id, chat.id]
    assert [f.id for f in client.files.list(order="asc", limit=2)] == [chat.id, embed.id, other.id]
    assert [f.id for f in client.files.list(purpose="user_data")] == [other.id]
    assert [f.id for f in client.files.list(purpose="batch", after=embed.id)] == [chat.id]
    assert client.files.retrieve(embed.id) == embed
    assert client.files.content(chat.id).read() == chat_path.read_bytes()
    assert client.files.content(embed.id).text == embed_path.read_text()
    assert client.files.content(other.id).read() == blob

    deleted = client.files.delete(chat.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (chat.id, "file", True)
    with gw.http() as http:
        validate(http.delete(f"/v1/files/{embed.id}").json(), "DeleteFileResponse")
    for gone in (chat.id, embed.id):
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(gone)
        with pytest.raises(openai.NotFoundError):
            client.files.content(gone)
        with pytest.raises(openai.NotFoundError):
            client.files.delete(gone)
    assert [f.id for f in client.files.list()] == [other.id]
    assert kept(gw) == [other.id, f"{other.id}/content.bin"]      # their bytes went with them


def test_another_keys_files_do_not_exist_for_it(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    mine = gw.client().files.create(file=("a.jsonl", jsonl([line(1)])), purpose="batch")
    stranger = gw.client("sk-other")
    assert list(stranger.files.list()) == []
    with gw.http("sk-other") as http:
        for answer in (http.get(f"/v1/files/{mine.id}"), http.get(f"/v1/files/{mine.id}/content"),
                       http.delete(f"/v1/files/{mine.id}")):
            error = error_of(answer, 404)
            assert error["code"] == "not_found" and mine.id in error["message"]
        empty = http.get("/v1/files").json()
        assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    assert gw.client().files.retrieve(mine.id).id == mine.id         # untouched by the stranger's delete
    with gw.http(None) as http:
        assert error_of(http.get("/v1/files"), 401)["code"] == "invalid_api_key"
        assert error_of(http.post("/v1/files", files={"file": ("a", b"x")}), 401)["code"] == "invalid_api_key"


# -- batch input, refused with line numbers --------------------------------------------

BAD = {
    "malformed JSON": ([line(1), b'{"custom_id": "r2", "method": "POST",', line(3)],
                       ["line 2: not valid JSON"]),
    "missing custom_id": ([line(1), line(2), orjson.dumps({"method": "POST", "url": CHAT,
                                                          "body": {"model": "chat"}})],
                          ["line 3: missing 'custom_id'"]),
    "duplicate custom_id": ([line(1), line(2), line(3, custom_id="a1"), line(4), line(5), line(6),
                             line(7, custom_id="a1")],
                            ["line 7: custom_id 'a1' was used on line 3"]),
    "wrong method": ([line(1), line(2, method="GET")], ["line 2: 'method' must be 'POST', not 'GET'"]),
    "unserved url": ([line(1, "/v1/completions")], ["line 1: url '/v1/completions' is not an endpoint"]),
    "mixed urls": ([line(1), line(2), line(3, EMBEDDINGS)],
                   ["line 3: url '/v1/embeddings' differs from line 1's '/v1/chat/completions'"]),
    "body without model": ([line(1), line(2, body={"messages": []}), line(3, body=[1])],
                           ["line 2: 'body' needs a 'model'", "line 3: 'body' must be a JSON object"]),
    "not an object": ([b"[1, 2]", line(2)], ["line 1: a request must be a JSON object"]),
    "too deep": ([b"[" * 2000 + b"]" * 2000], ["line 1: not valid JSON"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_batch_input_is_refused_naming_each_line_and_nothing_is_kept(shared, case):
    gw, before, listed = shared, kept(shared), list(shared.client().files.list())
    lines, messages = BAD[case]
    error = error_of(upload(gw, jsonl(lines)), 400)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "file", "invalid_batch_file")
    for message in messages:
        assert message in error["message"]
        assert any(e["message"].startswith(message) for e in error["errors"])
    assert error["error_count"] == len(error["errors"]) == len(messages)
    assert all(set(e) == {"code", "message", "param", "line"} for e in error["errors"])
    assert kept(gw) == before and list(gw.client().files.list()) == listed


def test_every_line_counts_and_the_first_twenty_are_named(shared):
    gw = shared
    lines = [line(i, method="PUT") if i % 2 else line(i) for i in range(1, 61)]      # 30 wrong methods
    error = error_of(upload(gw, jsonl(lines)), 400)
    assert error["error_count"] == 30 and len(error["errors"]) == MAX_SHOWN
    assert [e["line"] for e in error["errors"]] == list(range(1, 40, 2))
    assert "30 errors" in error["message"] and "; and 10 more." in error["message"]


def test_lines_past_max_lines_are_refused_and_blank_lines_and_crlf_are_fine(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path, max_lines=5))
    error = error_of(upload(gw, jsonl([line(i) for i in range(6)])), 400)
    assert error["errors"] == [{"code": "too_many_lines", "param": None, "line": 6,
                                "message": "line 6: the file has more than 5 requests, the most one batch takes here"}]
    # A BOM, CRLF line ends, blank lines, and no newline after the last line.
    five = b"\xef\xbb\xbf" + b"\r\n".join([line(1), b"", line(2), b"   ", line(3), line(4), line(5)])
    made = upload(gw, five)
    assert made.status_code == 200, made.text
    assert gw.client().files.content(made.json()["id"]).read() == five     # kept as sent
    assert kept(gw) == sorted([made.json()["id"], made.json()["id"] + "/content.bin"])


def test_a_line_longer_than_a_request_body_is_refused_without_being_held(start_gateway, tmp_path):
    cfg = config(tmp_path)
    cfg["server"] = {"max_body_mb": 0.01}     # 10,485 bytes: the longest line
    gw = start_gateway(cfg)
    long = line(2, body={"model": "chat", "input": "x" * 20_000})
    error = error_of(upload(gw, jsonl([line(1), long, line(3), b"y" * 50_000])), 400)
    assert [(e["line"], e["code"]) for e in error["errors"]] == [(2, "line_too_long"), (4, "line_too_long")]
    assert "line 2: longer than 10485 bytes" in error["message"]


def test_an_empty_file_is_refused(shared):
    gw, before = shared, kept(shared)
    for purpose in ("batch", "user_data"):
        assert error_of(upload(gw, b"", purpose), 400)["message"] == "'file' is empty."
    error = error_of(upload(gw, b"\n\n  \n"), 400)     # batch input of blank lines only
    assert error["errors"] == [{"code": "empty_file", "param": None, "line": 3,
                                "message": "the file holds no requests (no non-empty line)"}]
    assert kept(gw) == before


def test_other_purposes_keep_any_bytes_unchecked(shared):
    gw = shared
    client = gw.client()
    for purpose in ("assistants", "fine-tune", "vision", "user_data", "evals"):
        data = random.Random(purpose).randbytes(70_000) + b'\n{"not": "a request"}\n'
        made = client.files.create(file=(f"{purpose}.bin", data), purpose=purpose)   # type: ignore[arg-type]
        assert made.purpose == purpose and made.expires_at is None
        assert client.files.content(made.id).read() == data


def test_the_purpose_may_come_after_the_file(shared):
    """The SDK sends `purpose` first; a hand-made form may not: the file is checked as batch input
    as it comes all the same, and what the purpose says decides."""
    gw, before = shared, kept(shared)

    def post(data: bytes, purpose: str) -> httpx.Response:
        body, content_type = multipart([("file", ("late.jsonl", "application/jsonl", data)), ("purpose", purpose)])
        with gw.http() as http:
            return http.post("/v1/files", content=body, headers={"content-type": content_type})
    assert post(jsonl([line(1), line(2)]), "batch").json()["bytes"] == len(jsonl([line(1), line(2)]))
    assert "line 2: missing 'method'" in error_of(post(jsonl([line(1), b'{"custom_id": "x", "url": "/v1/videos", '
                                                                     b'"body": {"model": "m"}}']), "batch"),
                                                  400)["message"]
    assert post(b"not json at all", "user_data").status_code == 200
    assert len(kept(gw)) == len(before) + 4


@pytest.mark.parametrize("form, param", [
    ({"purpose": "batch_output"}, "purpose"), ({"purpose": "Batch"}, "purpose"), ({}, "purpose"),
    ({"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "3599"},
     "expires_after.seconds"),
    ({"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "2592001"},
     "expires_after.seconds"),
    ({"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "1e4"},
     "expires_after.seconds"),
    ({"purpose": "batch", "expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600"},
     "expires_after.anchor"),
    ({"purpose": "batch", "expires_after[seconds]": "3600"}, "expires_after.anchor"),
])
def test_bad_form_fields_are_400s_naming_the_field(shared, form, param):
    gw, before = shared, kept(shared)
    with gw.http() as http:
        answer = http.post("/v1/files", data=form, files={"file": ("a.jsonl", jsonl([line(1)]))})
    assert error_of(answer, 400)["param"] == param
    assert kept(gw) == before


def test_a_form_without_a_file_or_not_a_form_is_refused(shared):
    gw, before = shared, kept(shared)
    with gw.http() as http:
        assert error_of(http.post("/v1/files", data={"purpose": "batch"}, files={"x": ("a", b"")}),
                        400)["param"] == "file"
        assert error_of(http.post("/v1/files", data={"purpose": "batch", "file": "text"},
                                  files={"other": ("a", b"1")}), 400)["param"] == "file"
        assert "multipart/form-data" in error_of(http.post("/v1/files", json={"purpose": "batch"}), 400)["message"]
        assert error_of(http.put("/v1/files"), 405)["code"] == "method_not_allowed"
        assert error_of(http.post("/v1/files/file-123"), 405)["code"] == "method_not_allowed"
        assert error_of(http.get("/v1/files/file-123/nope"), 404)["code"] == "unknown_url"
        assert error_of(http.get("/v1/files/../etc/passwd/content"), 404)
    assert kept(gw) == before


@pytest.mark.parametrize("query, param", [({"limit": "0"}, "limit"), ({"limit": "10001"}, "limit"),
                                          ({"limit": "x"}, "limit"), ({"order": "up"}, "order"),
                                          ({"purpose": "nope"}, "purpose"), ({"after": "f" * 200}, "after")])
def test_bad_list_queries_are_400s(shared, query, param):
    with shared.http() as http:
        assert error_of(http.get("/v1/files", params=query), 400)["param"] == param


# -- sizes -----------------------------------------------------------------------------

def test_a_file_over_max_mb_is_a_413_and_nothing_is_kept(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path, max_mb=0.05))      # 52,428 bytes
    for size in (60_000, 2_000_000):     # seen as it is read; refused from content-length before it is
        data = jsonl([line(i) for i in range(size // 100)])[:size]
        for purpose in ("batch", "user_data"):
            error = error_of(upload(gw, data, purpose), 413)
            assert error["code"] in ("file_too_large", "request_too_large")
    assert kept(gw) == []
    assert upload(gw, b"z" * 52_428, "user_data").status_code == 200        # at the cap: taken


def test_a_20_mb_upload_is_never_held_whole(start_gateway, tmp_path):
    """tracemalloc's peak over the whole upload, in this process (the SDK's client and the
    gateway both run here), stays far below the file's 20 MB."""
    gw = start_gateway(config(tmp_path))
    client = gw.client()
    path = tmp_path / "big.jsonl"
    pad = "x" * 950
    with path.open("wb") as f:
        for i in range(20_000):
            f.write(line(i, body={"model": "chat", "messages": [{"role": "user", "content": pad}]}) + b"\n")
    size = path.stat().st_size
    client.files.create(file=("warm.jsonl", jsonl([line(0)])), purpose="batch")   # first use's imports and caches
    tracemalloc.start()
    try:
        with path.open("rb") as f:
            made = client.files.create(file=f, purpose="batch")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert made.bytes == size > 20_000_000
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte upload"
    assert (tmp_path / "data" / "videos" / made.id / "content.bin").stat().st_size == size


# -- expiry ----------------------------------------------------------------------------

def test_expires_after_is_honoured_and_the_sweep_deletes_what_expired(start_gateway, loop, tmp_path, store_url):
    gw = start_gateway(config(tmp_path, store_url))
    client = gw.client()
    short = client.files.create(file=("short.jsonl", jsonl([line(1)])), purpose="batch",
                                expires_after={"anchor": "created_at", "seconds": 3600})
    month = client.files.create(file=("month.jsonl", jsonl([line(1)])), purpose="batch",
                                expires_after={"anchor": "created_at", "seconds": 2_592_000})
    forever = client.files.create(file=("notes.txt", b"keep me"), purpose="user_data")
    assert short.expires_at == short.created_at + 3600 and month.expires_at == month.created_at + 2_592_000
    files = files_of(gw)
    assert loop.run(files.sweep()) == 0

    files.clock = lambda: time.time() + 3601        # an hour later
    for answer in (lambda: client.files.retrieve(short.id), lambda: client.files.content(short.id),
                   lambda: client.files.delete(short.id)):
        with pytest.raises(openai.NotFoundError):
            answer()
    assert [f.id for f in client.files.list()] == [forever.id, month.id]
    assert len(kept(gw)) == 6                 # its bytes are still there until the sweep comes by
    assert loop.run(files.sweep()) == 1
    assert loop.run(files.store.files.get(short.id)) is None
    assert sorted(kept(gw)) == sorted([month.id, f"{month.id}/content.bin", forever.id,
                                             f"{forever.id}/content.bin"])

    files.clock = lambda: time.time() + 40 * 86400
    assert loop.run(files.sweep()) == 1
    assert [f.id for f in client.files.list()] == [forever.id]
    assert client.files.content(forever.id).read() == b"keep me"


# -- the module's own API, for batches -------------------------------------------------

def test_files_made_from_bytes_or_pieces_read_back_line_by_line(start_gateway, loop, tmp_path):
    gw = start_gateway(config(tmp_path))
    files = files_of(gw)
    owner = gw.runtime.keys.all()[0].id
    output = b"".join(orjson.dumps({"id": f"batch_req_{i}", "custom_id": f"r{i}"}) + b"\n" for i in range(3000))

    async def pieces():
        for at in range(0, len(output), 7777):
            yield output[at:at + 7777]

    async def flow() -> None:
        made = await files.create(owner, "batch_output", "out.jsonl", pieces(), expires_after_s=7200)
        assert (made.purpose, made.size, made.lines, made.expires_at) == ("batch_output", len(output), 0,
                                                                          made.created_at + 7200)
        assert await files.find(owner, made.id) == made
        assert await files.find("key_0000000000000000", made.id) is None
        assert [x async for x in files.lines(made)] == output.split(b"\n")[:-1]

        given = jsonl([line(1), b"", line(2, EMBEDDINGS.replace("embeddings", "videos"), body={"model": "v"})])
        with pytest.raises(ApiError) as refused:
            await files.create(owner, "batch", "in.jsonl", given)
        assert refused.value.status == 400 and "line 3: url '/v1/videos' differs" in refused.value.message
        good = await files.create(owner, "batch", "in.jsonl", jsonl([line(1), b"", line(2)]) + line(3))
        assert (good.lines, good.endpoint) == (3, CHAT)
        assert [x async for x in files.lines(good)] == [line(1), b"", line(2), line(3)]     # the last without "\n"
        with pytest.raises(ValueError):
            [x async for x in files.lines(good, max_line_bytes=10)]
        assert await files.delete(good) and await files.find(owner, good.id) is None
    loop.run(flow())
    assert [f.purpose for f in gw.client().files.list()] == ["batch_output"]


def test_content_answers_ranges(shared):
    gw = shared
    data = bytes(range(256)) * 8
    made = gw.client().files.create(file=("r.bin", data), purpose="user_data")
    with gw.http() as http:
        whole = http.get(f"/v1/files/{made.id}/content")
        assert whole.content == data and whole.headers["content-type"] == "application/octet-stream"
        assert 'filename="r.bin"' in whole.headers["content-disposition"]
        part = http.get(f"/v1/files/{made.id}/content", headers={"range": "bytes=10-19"})
        assert (part.status_code, part.content, part.headers["content-range"]) == (206, data[10:20],
                                                                                  f"bytes 10-19/{len(data)}")
        assert error_of(http.get(f"/v1/files/{made.id}/content", headers={"range": "bytes=9999-"}),
                        416)["code"] == "range_not_satisfiable"


# -- fuzzing ---------------------------------------------------------------------------

_TEXT = st.text(max_size=8)
_VALUE = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | _TEXT,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                      max_leaves=6)
_REQUEST = st.fixed_dictionaries({}, optional={
    "custom_id": st.sampled_from(["a", "b", "c", ""]) | _VALUE, "method": st.just("POST") | _VALUE,
    "url": st.sampled_from([*ENDPOINTS, "/v1/completions"]) | _VALUE,
    "body": st.fixed_dictionaries({}, optional={"model": st.just("m") | _VALUE}) | _VALUE})
_LINE = (_REQUEST.map(orjson.dumps) | _VALUE.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS))
         | st.binary(max_size=40) | st.just(b"") | st.just(b"\r"))
FILES = st.lists(_LINE, max_size=12).map(lambda lines: b"\n".join(lines)) | st.binary(max_size=300)


def _checked(data: bytes, cuts: list[int]) -> tuple[Any, ...]:
    checker = BatchInput(max_lines=6, max_line_bytes=120, max_parse_ms=50)
    at = 0
    for cut in sorted(cuts):
        checker.feed(data[at:cut])
        at = max(at, cut)
    checker.feed(data[at:])
    checker.end()
    problem = checker.problem()
    assert problem is None or (problem.status == 400 and problem.extra is not None
                               and problem.extra["error_count"] >= len(problem.extra["errors"]) > 0)
    return checker.errors, checker.error_count, checker.requests, checker.endpoint


def test_a_duplicate_is_found_among_thousands_with_the_line_it_repeats():
    checker = BatchInput(max_lines=50_000, max_line_bytes=1000, max_parse_ms=50)
    repeats = [line(5001, custom_id="r17"), line(5002, custom_id="r4999")]    # past the table's growths
    checker.feed(jsonl([line(i) for i in range(1, 5001)] + repeats))
    checker.end()
    assert [e.message for e in checker.errors] == ["line 5001: custom_id 'r17' was used on line 17",
                                                   "line 5002: custom_id 'r4999' was used on line 4999"]
    assert checker.requests == 5002 and checker.endpoint == CHAT


@settings(max_examples=400, deadline=None)
@given(FILES, st.lists(st.integers(0, 400), max_size=6))
def test_the_checker_never_fails_and_pieces_do_not_change_its_verdict(data, cuts):
    assert _checked(data, cuts) == _checked(data, [])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=FILES, purpose=st.sampled_from(["batch", "user_data", "batch_output", ""]) | _TEXT,
       file_first=st.booleans(), extra=st.dictionaries(st.sampled_from(["expires_after[anchor]",
                                                                        "expires_after[seconds]", "x"]),
                                                       st.sampled_from(["created_at", "3600", "0"]) | _TEXT,
                                                       max_size=2),
       cut=st.integers(0, 50))
def test_uploads_of_anything_are_answered_without_a_5xx(shared, data, purpose, file_first, extra, cut):
    gw = shared
    before = kept(gw)
    parts: list[tuple[str, Any]] = [("purpose", purpose), *extra.items()]
    parts.insert(0 if file_first else len(parts), ("file", ("f.jsonl", "application/jsonl", data)))
    body, content_type = multipart(parts)
    if cut:
        body = body[:-cut]          # a form cut short
    with gw.http() as http:
        answer = http.post("/v1/files", content=body, headers={"content-type": content_type})
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        error_of(answer, 400)
    made = {answer.json()["id"], answer.json()["id"] + "/content.bin"} if answer.status_code == 200 else set()
    assert set(kept(gw)) == set(before) | made         # a whole file, or nothing: no temporary file left behind


# -- in a bucket -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3():
    # Here, not at the top: without the test extra (boto3, moto) it skips, and only these tests should.
    from tests.video.s3_server import S3Server
    server = S3Server()
    yield server
    server.close()


@pytest.mark.parametrize("downloads", ["proxy", "redirect"])
def test_files_live_in_the_videos_bucket_when_it_is_one(start_gateway, tmp_path, s3, downloads):
    bucket = s3.new_bucket()
    cfg = config(tmp_path)
    cfg["videos"] = {"assets": s3.assets(bucket, prefix="gw/", downloads=downloads)}
    gw = start_gateway(cfg)
    client = gw.client()
    data = jsonl([line(i) for i in range(3000)])          # ~300 KB: several pieces each way
    made = client.files.create(file=("in.jsonl", data), purpose="batch")
    assert s3.keys(bucket) == [f"gw/{made.id}/content.bin"]
    with gw.http() as http:
        first = http.get(f"/v1/files/{made.id}/content")
        assert first.status_code == (302 if downloads == "redirect" else 200)
    assert client.files.content(made.id).read() == data    # the SDK follows the redirect to the bucket
    refused = error_of(upload(gw, jsonl([line(1), line(1)])), 400)
    assert refused["errors"][0]["code"] == "duplicate_custom_id"
    assert s3.keys(bucket) == [f"gw/{made.id}/content.bin"]     # the refused one left nothing
    client.files.delete(made.id)
    assert s3.keys(bucket) == []
