"""The asset stores' one contract, run against both: a folder (LocalAssets) and
an S3-compatible bucket (S3Assets on moto's server, over real HTTP); then what
only the bucket has: its key layout, signed download URLs, failures as
OSError, the config block, its secrets hidden, and the missing extra named."""
from __future__ import annotations

import logging
import subprocess
import sys

import httpx
import pytest
import yaml

from gateway import config as config_loader
from gateway.config.checks import ConfigError
from gateway.config.edits import redact
from gateway.video.assets import LocalAssets
from gateway.video.assets_s3 import S3Assets, StorageError
from tests.harness import ROOT, free_port
from tests.video.s3_server import SECRET, S3Server

BYTES = bytes(range(256)) * 40          # 10,240 bytes, each position recognisable


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    yield server
    server.close()


def s3_store(s3: S3Server, bucket: str, **over) -> S3Assets:
    return S3Assets(config_loader.check({"videos": {"assets": s3.assets(bucket, **over)}}).config.videos.assets)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, s3):
    if request.param == "local":
        return LocalAssets(tmp_path / "videos")
    return s3_store(s3, s3.new_bucket(), prefix="gw/")


# --- the contract ------------------------------------------------------------------

def test_put_get_read_and_ranges(store):
    stored = store.put("video_abc", "video", BYTES)
    assert (stored.size, stored.media_type) == (len(BYTES), "video/mp4")
    found = store.get("video_abc", "video")
    assert found is not None and (found.size, found.media_type) == (len(BYTES), "video/mp4")
    assert store.read(found) == BYTES
    assert store.read(found, 2, 4) == BYTES[2:5]                        # inclusive, as HTTP ranges are
    assert store.read(found, len(BYTES) - 3) == BYTES[-3:]              # open end
    assert store.read(found, 10_000, 99_999) == BYTES[10_000:]          # clamped to the end
    assert store.read(found, 7, 7) == BYTES[7:8]
    assert store.read_whole("video_abc", "video") == BYTES
    assert store.get("video_abc", "thumbnail") is None


def test_every_variant_has_its_media_type(store):
    store.put_all("video_v", {"video": b"m", "thumbnail": b"t", "spritesheet": b"s", "reference": b"r"})
    types = {v: store.get("video_v", v).media_type for v in ("video", "thumbnail", "spritesheet", "reference")}
    assert types == {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg",
                     "reference": "application/octet-stream"}
    assert store.read_whole("video_v", "reference") == b"r"


def test_a_put_replaces_the_whole_file(store):
    store.put("video_r", "video", BYTES)
    store.put("video_r", "video", b"short")
    assert store.read_whole("video_r", "video") == b"short" and store.get("video_r", "video").size == 5


def test_missing_files_are_none_and_delete_says_whether_there_was_any(store):
    assert store.get("video_none", "video") is None
    assert store.read_whole("video_none", "video") is None
    assert store.delete("video_none") is False


def test_delete_takes_every_variant_and_only_that_videos(store):
    store.put_all("video_abc", {"video": b"v", "thumbnail": b"t", "spritesheet": b"s", "reference": b"r"})
    store.put("video_abcd", "video", b"neighbour")      # its id starts with the other's
    assert store.delete("video_abc") is True
    assert [store.get("video_abc", v) for v in ("video", "thumbnail", "spritesheet", "reference")] == [None] * 4
    assert store.read_whole("video_abcd", "video") == b"neighbour"
    assert store.delete("video_abc") is False


def test_a_file_deleted_after_get_fails_its_read_as_an_os_error(store):
    store.put("video_gone", "video", BYTES)
    found = store.get("video_gone", "video")
    store.delete("video_gone")
    with pytest.raises(OSError):           # the download endpoint cuts the answer short on this
        store.read(found, 0, 99)


def test_a_file_written_in_pieces_is_seen_only_once_committed(store, monkeypatch):
    monkeypatch.setattr("gateway.video.assets.PIECE", 1000)
    monkeypatch.setattr("gateway.video.assets_s3.PIECE", 1000)
    writer = store.writer("file-abc", "content")
    for at in range(0, len(BYTES), 3000):
        writer.write(BYTES[at:at + 3000])
        assert store.get("file-abc", "content") is None            # not visible while it is written
    assert writer.size == len(BYTES)
    stored = writer.commit()
    writer.discard()                                               # after a commit: nothing to do
    assert (stored.size, stored.media_type) == (len(BYTES), "application/octet-stream")
    found = store.get("file-abc", "content")
    assert found is not None and found.size == len(BYTES)
    pieces = list(store.pieces(found))
    assert b"".join(pieces) == BYTES and max(map(len, pieces)) <= 1000 and len(pieces) >= 11
    assert b"".join(store.pieces(found, 2, 2500)) == BYTES[2:2501]
    assert b"".join(store.pieces(found, 10_000, 99_999)) == BYTES[10_000:]
    assert list(store.pieces(found, 5, 4)) == []


def test_a_discarded_writer_leaves_nothing_behind(store, tmp_path):
    writer = store.writer("file-dropped", "content")
    writer.write(b"x" * 5000)
    writer.discard()
    writer.discard()
    assert store.get("file-dropped", "content") is None and store.delete("file-dropped") is False
    if isinstance(store, LocalAssets):
        assert list((tmp_path / "videos").iterdir()) == []       # not even its folder


def test_a_file_deleted_mid_read_fails_its_pieces_as_an_os_error(store):
    store.put("file-gone", "content", BYTES)
    found = store.get("file-gone", "content")
    store.delete("file-gone")
    with pytest.raises(OSError):
        b"".join(store.pieces(found))


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 200, "video_1;rm", "..", "a b"])
def test_ids_that_are_not_ids_are_refused(store, bad):
    for call in (lambda: store.put(bad, "video", b"x"), lambda: store.get(bad, "video"),
                 lambda: store.read_whole(bad, "video"), lambda: store.delete(bad)):
        with pytest.raises(ValueError):
            call()


# --- what only the bucket has --------------------------------------------------------

def test_keys_are_prefix_id_variant(s3):
    bucket = s3.new_bucket()
    store = s3_store(s3, bucket, prefix="tenant-a/videos/")
    store.put_all("video_k", {"video": b"v", "thumbnail": b"t", "spritesheet": b"s", "reference": b"r"})
    assert s3.keys(bucket) == ["tenant-a/videos/video_k/reference.img", "tenant-a/videos/video_k/spritesheet.jpg",
                               "tenant-a/videos/video_k/thumbnail.webp", "tenant-a/videos/video_k/video.mp4"]
    head = s3.client.head_object(Bucket=bucket, Key="tenant-a/videos/video_k/video.mp4")
    assert head["ContentType"] == "video/mp4"
    store.delete("video_k")
    assert s3.keys(bucket) == []


def test_delete_goes_past_one_listing_page(s3, monkeypatch):
    monkeypatch.setattr("gateway.video.assets_s3._LIST_PAGE", 10)     # S3's 1,000 keys a page, in small
    monkeypatch.setattr("gateway.video.assets_s3._DELETE_BATCH", 7)   # and its 1,000 a DeleteObjects
    bucket = s3.new_bucket()
    store = s3_store(s3, bucket)
    for i in range(25):
        s3.client.put_object(Bucket=bucket, Key=f"video_many/part-{i}", Body=b"")
    assert store.delete("video_many") and s3.keys(bucket) == []


def test_redirect_downloads_get_a_signed_url_that_the_bucket_answers(s3):
    bucket = s3.new_bucket()
    proxy = s3_store(s3, bucket)
    redirect = s3_store(s3, bucket, downloads="redirect", presign_ttl_s=120)
    asset = redirect.put("video_u", "video", BYTES)
    assert proxy.download_url(asset, "video_u.mp4") is None             # proxy: the gateway sends the bytes
    url = redirect.download_url(asset, "video_u.mp4")
    assert url is not None and url.startswith(f"{s3.endpoint_url}/{bucket}/video_u/video.mp4?")
    assert "X-Amz-Expires=120" in url and "X-Amz-Signature=" in url    # SigV4, for presign_ttl_s
    assert SECRET not in url
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == BYTES
    assert whole.headers["content-disposition"] == 'inline; filename="video_u.mp4"'
    part = httpx.get(url, headers={"range": "bytes=-16"})
    assert part.status_code == 206 and part.content == BYTES[-16:]
    assert part.headers["content-range"] == f"bytes {len(BYTES) - 16}-{len(BYTES) - 1}/{len(BYTES)}"
    assert httpx.get(url, headers={"range": f"bytes={len(BYTES)}-"}).status_code == 416


def test_a_missing_bucket_is_an_os_error_that_names_the_failure(s3, caplog):
    store = s3_store(s3, "no-such-bucket-here")
    for call in (lambda: store.put("video_x", "video", b"x"), lambda: store.read_whole("video_x", "video")):
        with pytest.raises(StorageError) as e:
            call()
        assert isinstance(e.value, OSError) and "NoSuchBucket" in e.value.strerror
    # Delete is best effort, as a folder's is: cleanups after a failure go on; the refusal is logged.
    assert store.delete("video_x") is False
    assert "NoSuchBucket" in caplog.text


def test_an_unreachable_store_fails_in_bounded_time_without_secrets(s3):
    store = s3_store(s3, "b", endpoint_url=f"http://127.0.0.1:{free_port()}", timeout_s=1, retries=1)
    for call in (lambda: store.put("video_x", "video", b"x"), lambda: store.get("video_x", "video")):
        with pytest.raises(OSError) as e:
            call()
        assert SECRET not in str(e.value) and "S3" in str(e.value)


def test_no_credential_reaches_the_logs_even_at_debug(s3, caplog):
    caplog.set_level(logging.DEBUG)
    bucket = s3.new_bucket()
    store = s3_store(s3, bucket, session_token="session-token-never-logged")
    store.put("video_log", "video", b"x")
    assert store.read_whole("video_log", "video") == b"x"
    assert store.delete("video_log")
    assert "session-token-never-logged" not in caplog.text and SECRET not in caplog.text


# --- the config block -----------------------------------------------------------------

def test_the_config_block_is_checked_with_its_yaml_path():
    def errors(videos):
        with pytest.raises(ConfigError) as e:
            config_loader.check({"videos": videos})
        return e.value.errors

    assert errors({"assets": {"type": "gcs"}}) == ["videos.assets: type must be 'local' or 's3'"]
    assert errors({"assets": {"type": "s3"}}) == ["videos.assets.bucket: Field required"]
    assert errors({"assets": {"type": "s3", "bucket": "b", "downloads": "stream"}}) == [
        "videos.assets.downloads: Input should be 'proxy' or 'redirect'"]
    assert "go together" in errors({"assets": {"type": "s3", "bucket": "b", "access_key_id": "AK"}})[0]
    assert "http or https" in errors({"assets": {"type": "s3", "bucket": "b", "endpoint_url": "minio:9000"}})[0]
    assert "remove it" in errors({"assets": {"type": "s3", "bucket": "b"}, "assets_dir": "/srv/videos"})[0]
    local = config_loader.check({"videos": {"assets_dir": "/srv/videos"}}).config.videos
    assert local.assets.type == "local" and local.assets_dir == "/srv/videos"   # assets_dir alone: a folder
    s3 = config_loader.check({"videos": {"assets": {"type": "s3", "bucket": "b"}}}).config.videos.assets
    assert (s3.prefix, s3.downloads, s3.presign_ttl_s, s3.addressing_style) == ("", "proxy", 300, "auto")


def test_credentials_come_from_env_references_and_are_hidden_when_shown(monkeypatch):
    monkeypatch.setenv("S3_TEST_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("S3_TEST_SECRET", "secret-from-env-1234")
    text = ("videos:\n  assets: {type: s3, bucket: b, access_key_id: '${S3_TEST_KEY_ID}', "
            "secret_access_key: '${S3_TEST_SECRET}'}\n")
    assets = config_loader.parse(text).config.videos.assets
    assert (assets.access_key_id, assets.secret_access_key) == ("AKIDFROMENV", "secret-from-env-1234")
    assert "secret-from-env-1234" not in repr(assets)      # a config in a log line shows no secret
    written = {"videos": {"assets": {"type": "s3", "bucket": "b", "endpoint_url": "https://u:url-pass@minio:9000",
                                     "access_key_id": "AKIDLITERAL", "secret_access_key": "literal-secret-99",
                                     "session_token": "literal-token-99"}}}
    shown = redact(written)["videos"]["assets"]
    assert shown == {"type": "s3", "bucket": "b", "endpoint_url": "https://u:***@minio:9000",
                     "access_key_id": "***", "secret_access_key": "***", "session_token": "***"}
    references = {"videos": {"assets": {"type": "s3", "bucket": "b", "access_key_id": "${S3_TEST_KEY_ID}",
                                        "secret_access_key": "${S3_TEST_SECRET:-fallback-secret}"}}}
    shown = redact(references)["videos"]["assets"]
    assert shown["access_key_id"] == "${S3_TEST_KEY_ID}" and shown["secret_access_key"] == "${S3_TEST_SECRET:-***}"


_NO_BOTO3 = "import sys; sys.modules['boto3'] = None; from gateway.cli import main; sys.exit(main())"


@pytest.mark.parametrize("command", ["check", "serve"])
def test_without_boto3_an_s3_config_is_refused_at_start_naming_the_extra(tmp_path, command):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"state": {"data_dir": str(tmp_path)},
                                    "videos": {"assets": {"type": "s3", "bucket": "b"}}}))
    run = subprocess.run([sys.executable, "-c", _NO_BOTO3, command, "--config", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "videos.assets: type s3 needs boto3: install the s3 extra (pip install 'gateway[s3]')" in out
    assert "Traceback" not in out
