"""The /v1/files surface, as OpenAI's Files API (and the SDK's `client.files.*`)
expects it: upload, list, retrieve, content, delete, each scoped to the
calling key (another key's file is a 404). Thin: the form and the File object
are protocol.py, keeping files is service.py."""
from __future__ import annotations

import logging
from contextlib import aclosing
from urllib.parse import quote

import orjson

from gateway.asgi import AnswerCut, Headers, Request
from gateway.byte_ranges import asked_span
from gateway.errors import ApiError, allowing
from gateway.files import protocol
from gateway.files.service import Files, NewFile
from gateway.runtime import Runtime
from gateway.store import FileRecord, StoreDown

log = logging.getLogger("gateway.files")

_OCTETS = b"application/octet-stream"


def _files(rt: Runtime) -> Files:
    assert rt.services.files is not None, "the app starts the files service before serving"
    return rt.services.files


def _not_found(file_id: str) -> ApiError:
    return ApiError(404, f"No such File object: {file_id[:100]}", param="file_id", code="not_found")


def _unavailable() -> ApiError:
    return ApiError(503, "Files cannot be reached right now; try again shortly.", type="server_error",
                    code="files_unavailable", headers=[(b"retry-after", b"1")])


def _storage_unavailable() -> ApiError:
    return ApiError(503, "The files' storage cannot be reached right now; try again shortly.", type="server_error",
                    code="storage_unavailable", headers=[(b"retry-after", b"1")])


async def files_root(req: Request, rt: Runtime) -> None:
    await (upload(req, rt) if req.method == "POST" else list_files(req, rt))


async def files_path(req: Request, rt: Runtime) -> None:
    rest = req.path.split("/files/", 1)[1]
    file_id, _, action = rest.partition("/")
    if not action:
        allowing(req.method, req.path, ("GET", "DELETE"))
        await (retrieve(req, rt, file_id) if req.method == "GET" else delete(req, rt, file_id))
    elif action == "content":
        allowing(req.method, req.path, ("GET",))
        await content(req, rt, file_id)
    else:
        raise ApiError(404, f"Invalid URL ({req.method} {req.path})", code="unknown_url")


async def _own(rt: Runtime, req: Request, file_id: str) -> FileRecord:
    key = rt.keys.authenticate(req.headers)
    try:
        record = await _files(rt).find(key.id, file_id)
    except StoreDown:
        raise _unavailable() from None
    if record is None:
        raise _not_found(file_id)
    return record


# -- POST /v1/files -------------------------------------------------------------------

async def upload(req: Request, rt: Runtime) -> None:
    """The form read as it arrives; the file written to the asset store as it comes (never held
    whole), checked as batch input where it is one, and stored once whole and good."""
    key = rt.keys.authenticate(req.headers)
    files = _files(rt)
    made: list[NewFile] = []

    def open_file(purpose: str | None) -> protocol.PartSink:
        made.append(files.begin(key.id, purpose, files.most_bytes()))
        return made[0].write

    form = protocol.UploadForm(req.headers.get(b"content-type", b""), open_file)
    try:
        async with aclosing(req.pieces(files.most_bytes() + protocol.FORM_BYTES)) as pieces:
            async for piece in pieces:
                form.feed(piece)
        sent = form.finish()
        record = await made[0].finish(sent.purpose, sent.filename, sent.expires_after_s)
    except StoreDown:
        raise _unavailable() from None
    except OSError as e:    # the disk or the bucket refused: the gateway's to fix, not the client's
        log.warning("could not keep an uploaded file: %s", e)
        raise _storage_unavailable() from None
    finally:
        for new in made:
            new.discard()
    await req.respond(200, orjson.dumps(protocol.file_object(record)))


# -- GET /v1/files --------------------------------------------------------------------

async def list_files(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    q = protocol.list_query(req.query())
    try:
        records, more = await _files(rt).page(key.id, q.purpose, q.after, q.limit, q.order)
    except StoreDown:
        raise _unavailable() from None
    await req.respond(200, orjson.dumps({
        "object": "list", "data": [protocol.file_object(r) for r in records],
        "first_id": records[0].id if records else None, "last_id": records[-1].id if records else None,
        "has_more": more}))


# -- /v1/files/{id} -------------------------------------------------------------------

async def retrieve(req: Request, rt: Runtime, file_id: str) -> None:
    record = await _own(rt, req, file_id)
    await req.respond(200, orjson.dumps(protocol.file_object(record)))


async def delete(req: Request, rt: Runtime, file_id: str) -> None:
    record = await _own(rt, req, file_id)
    try:
        await _files(rt).delete(record)
    except StoreDown:
        raise _unavailable() from None
    except OSError:
        raise _storage_unavailable() from None
    await req.respond(200, orjson.dumps(protocol.deleted_object(record.id)))


async def content(req: Request, rt: Runtime, file_id: str) -> None:
    """The file's bytes as they were sent, read from the asset store a piece at a time (with HTTP
    Range; or a 302 to the bucket where `videos.assets.downloads` is `redirect`)."""
    record = await _own(rt, req, file_id)
    files = _files(rt)
    disposition = _disposition(record.filename)
    try:
        asset = await files.asset(record)
        elsewhere = None if asset is None else await files.download_url(asset, record)
    except OSError as e:
        log.warning("file %s: its bytes cannot be reached: %s", record.id, e)
        raise _storage_unavailable() from None
    if asset is None:      # deleted or swept between the lookup and now
        raise _not_found(file_id)
    if elsewhere is not None:
        await req.respond(302, b"", [(b"location", elsewhere.encode()), (b"cache-control", b"no-store")],
                          content_type=b"text/plain")
        return
    headers: Headers = [(b"accept-ranges", b"bytes"), (b"cache-control", b"private, no-store"),
                        (b"content-disposition", disposition)]
    first, last, status = asked_span(req, asset.size, headers)
    await req.start(status, headers, _OCTETS, last - first + 1)
    sent = 0
    try:
        async with aclosing(files.pieces(asset, first, last)) as pieces:
            async for piece in pieces:
                await req.send_chunk(piece)
                sent += len(piece)
    except OSError as e:     # swept at expiry, deleted, or the store failed mid-answer
        raise AnswerCut(f"file {record.id} went after {sent} of {last - first + 1} bytes: {e}") from None
    if sent != last - first + 1:
        raise AnswerCut(f"file {record.id} ended after {sent} of {last - first + 1} bytes")
    await req.end_stream()


def _disposition(filename: str) -> bytes:
    """`attachment` with the file's name: an ASCII fallback, and the name itself as RFC 6266's filename*."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename) or "file"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}".encode("latin-1")
