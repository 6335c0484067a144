"""Videos whose files live in an S3-compatible bucket (moto's server on
loopback), end to end: the OpenAI SDK makes a video through a real gateway and
downloads it with `downloads: proxy` and `redirect`; Range requests; delete
empties the bucket; a job whose bucket refuses fails with `storage_error`; and
a gateway and a separate `gateway serve` process that share only Redis and
the bucket (no folder) see the same files."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.harness import free_port, serve_process
from tests.video.conftest import decode_mp4, mock_video, video_config, video_model
from tests.video.s3_server import KEY_ID, SECRET, S3Server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")    # client.videos (see SPEC.md)


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    yield server
    server.close()


def s3_config(s3: S3Server, bucket: str, **assets) -> dict:
    return video_config(videos={"assets": s3.assets(bucket, prefix="videos/", **assets)})


def make_video(client: openai.OpenAI):
    video = client.videos.create_and_poll(model="mock-video", prompt="a red kite", size="320x180", seconds="2")
    assert video.status == "completed", video.error
    return video


def test_proxy_downloads_ranges_and_delete(start_gateway, s3):
    bucket = s3.new_bucket()
    gw = start_gateway(s3_config(s3, bucket))
    client = gw.client()
    video = make_video(client)
    assert s3.keys(bucket) == [f"videos/{video.id}/{name}" for name in ("spritesheet.jpg", "thumbnail.webp",
                                                                         "video.mp4")]
    stored = s3.client.get_object(Bucket=bucket, Key=f"videos/{video.id}/video.mp4")["Body"].read()

    mp4 = client.videos.download_content(video.id).read()
    assert mp4 == stored
    decoded = decode_mp4(mp4)
    assert (decoded.width, decoded.height, decoded.frames) == (320, 180, 8)
    thumbnail = client.videos.download_content(video.id, variant="thumbnail")
    assert thumbnail.response.headers["content-type"] == "image/webp" and thumbnail.read()[8:12] == b"WEBP"

    with gw.http() as http:
        url = f"/v1/videos/{video.id}/content"
        part = http.get(url, headers={"range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == mp4[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(mp4)}"
        tail = http.get(url, headers={"range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == mp4[-50:]
        refused = http.get(url, headers={"range": f"bytes={len(mp4)}-"})
        assert refused.status_code == 416 and refused.headers["content-range"] == f"bytes */{len(mp4)}"
        assert refused.json()["error"]["code"] == "range_not_satisfiable"
        # The signed video_url works without the key, through the same path.
        link = client.videos.retrieve(video.id).model_extra["video_url"]
        assert httpx.get(link).content == mp4

    client.videos.delete(video.id)
    assert s3.keys(bucket) == []


def test_redirect_downloads_send_the_client_to_the_bucket(start_gateway, s3):
    bucket = s3.new_bucket()
    gw = start_gateway(s3_config(s3, bucket, downloads="redirect", presign_ttl_s=90))
    sent: list[httpx.Request] = []
    client = gw.client(http_client=openai.DefaultHttpxClient(event_hooks={"request": [sent.append]}))
    video = make_video(client)

    sent.clear()
    mp4 = client.videos.download_content(video.id).read()     # the SDK follows the 302
    assert [str(r.url).split("?")[0] for r in sent] == [f"{gw.url}/v1/videos/{video.id}/content",
                                                         f"{s3.endpoint_url}/{bucket}/videos/{video.id}/video.mp4"]
    assert "authorization" in sent[0].headers and "authorization" not in sent[1].headers   # the key stays here
    decoded = decode_mp4(mp4)
    assert (decoded.width, decoded.height, decoded.frames) == (320, 180, 8)
    assert mp4 == s3.client.get_object(Bucket=bucket, Key=f"videos/{video.id}/video.mp4")["Body"].read()

    with gw.http() as http:
        answer = http.get(f"/v1/videos/{video.id}/content", params={"variant": "spritesheet"})
        assert answer.status_code == 302 and answer.headers["cache-control"] == "no-store"
        location = answer.headers["location"]
        assert location.startswith(f"{s3.endpoint_url}/{bucket}/videos/{video.id}/spritesheet.jpg?")
        assert "X-Amz-Expires=90" in location and SECRET not in location
        sheet = httpx.get(location)
        assert sheet.headers["content-type"] == "image/jpeg" and sheet.content[:2] == b"\xff\xd8"
        # Ranges are the bucket's to answer; a client that follows the redirect keeps its Range header.
        part = http.get(f"/v1/videos/{video.id}/content", headers={"range": "bytes=0-99"}, follow_redirects=True)
        assert part.status_code == 206 and part.content == mp4[:100]
        # Still the gateway's checks first: another key's video, or a missing one, never gets a URL.
        assert http.get("/v1/videos/video_nope/content").status_code == 404
    link = client.videos.retrieve(video.id).model_extra["video_url"]
    assert httpx.get(link, follow_redirects=True).content == mp4

    client.videos.delete(video.id)
    assert s3.keys(bucket) == []


def test_a_bucket_that_refuses_fails_the_job_with_storage_error(start_gateway, s3):
    gw = start_gateway(s3_config(s3, "bucket-that-does-not-exist"))
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="p", size="320x180", seconds="1")
    assert video.status == "failed" and video.error.code == "storage_error"
    assert "NoSuchBucket" in video.error.message and SECRET not in video.error.message


def test_the_default_credential_chain_is_used_when_the_config_names_none(start_gateway, s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    bucket = s3.new_bucket()
    assets = {k: v for k, v in s3.assets(bucket).items() if k not in ("access_key_id", "secret_access_key")}
    gw = start_gateway(video_config(videos={"assets": assets}))
    video = make_video(gw.client())
    assert f"{video.id}/video.mp4" in s3.keys(bucket)


def test_a_gateway_and_another_process_share_files_through_the_bucket_alone(start_gateway, s3, redis_url,
                                                                           tmp_path):
    """`maker` (a `gateway serve` process of its own) runs the job and writes the files; `server`
    (this process, another data_dir) serves and deletes them: its `mock-video` routes to a provider of
    its own, so it never takes the maker's jobs. They share Redis (the jobs) and the bucket (the files),
    no folder."""
    bucket = s3.new_bucket()
    assets = s3.assets(bucket, prefix="shared/", access_key_id="${S3_KEY_ID}", secret_access_key="${S3_SECRET}")
    maker_dir = Path(tempfile.mkdtemp(prefix="gateway-maker-", dir=tmp_path))
    maker_cfg = video_config(videos={"assets": assets})
    maker_cfg["state"] = {"redis_url": redis_url, "data_dir": str(maker_dir)}
    (maker_dir / "gateway.yaml").write_text(yaml.safe_dump(maker_cfg))
    env = {**os.environ, "S3_KEY_ID": KEY_ID, "S3_SECRET": SECRET}
    port = free_port()
    maker = serve_process(maker_dir / "gateway.yaml", port, env=env)
    try:
        server_cfg = video_config([mock_video("mock-elsewhere")], [video_model("mock-video", "mock-elsewhere")],
                                  videos={"assets": s3.assets(bucket, prefix="shared/")})
        server_cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "server")}
        server = start_gateway(server_cfg)
        assert list(server.runtime.services.videos.runners) == ["mock-elsewhere"]   # not the maker's queue

        maker_client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
        video = maker_client.videos.create(model="mock-video", prompt="across machines", size="320x180", seconds="2")
        done = server.client().videos.poll(video.id)
        assert done.status == "completed"
        assert s3.keys(bucket, "shared/") == [f"shared/{video.id}/{n}" for n in ("spritesheet.jpg", "thumbnail.webp",
                                                                                 "video.mp4")]
        assert not (tmp_path / "server" / "videos").exists() and not (maker_dir / "videos").exists()

        mp4 = server.client().videos.download_content(video.id).read()
        assert mp4 == maker_client.videos.download_content(video.id).read()
        assert decode_mp4(mp4).frames == 8
        server.client().videos.delete(video.id)
        assert s3.keys(bucket) == []
        with pytest.raises(openai.NotFoundError):
            maker_client.videos.retrieve(video.id)
    finally:
        maker.terminate()
        maker.wait(10)
