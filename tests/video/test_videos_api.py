"""/v1/videos through the official SDK, end to end on the mock video model:
the MP4 is decoded back and checked."""
from __future__ import annotations

import io
import time

import httpx
import openai
import pytest
from openai.types import Video
from PIL import Image

from gateway.video.jobs import Job
from tests.video.conftest import decode_mp4, mock_video, video_config, video_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # client.videos is marked deprecated


def test_create_and_poll_then_download_decodes_to_what_was_asked(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="a red fox in snow", size="320x180",
                                          seconds="2")
    assert video.status == "completed" and video.progress == 100
    assert video.object == "video" and video.model == "mock-video" and video.id.startswith("video_")
    assert video.size == "320x180" and video.seconds == "2"
    assert video.completed_at >= video.created_at and video.expires_at > video.completed_at
    assert video.error is None

    mp4 = client.videos.download_content(video.id).read()
    decoded = decode_mp4(mp4)
    assert (decoded.width, decoded.height) == (320, 180)
    assert decoded.frames == 8                       # 2 s at the mock's 4 fps
    assert decoded.seconds == pytest.approx(2.0, abs=0.01)

    thumb = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read()))
    assert thumb.format == "WEBP" and thumb.size == (320, 180)
    sheet = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="spritesheet").read()))
    assert sheet.format == "JPEG" and sheet.size[0] > 0


def test_progress_rises_from_queued_to_completed(start_gateway):
    gw = start_gateway(video_config([mock_video(video_latency_ms=1500)]))
    client = gw.client()
    video = client.videos.create(model="mock-video", prompt="slow", size="320x180", seconds="4")
    assert video.status == "queued" and video.progress == 0
    seen = []
    while video.status in ("queued", "in_progress"):
        time.sleep(0.05)
        video = client.videos.retrieve(video.id)
        seen.append((video.status, video.progress))
    assert video.status == "completed"
    progress = [p for _, p in seen]
    assert progress == sorted(progress)
    assert any(s == "in_progress" and 0 < p < 100 for s, p in seen)


def test_retrieve_answers_poll_interval_and_video_url_when_completed(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="x", size="320x180", seconds="1")
    raw = client.videos.with_raw_response.retrieve(video.id)
    assert raw.headers["openai-poll-after-ms"] == "50"
    url = raw.parse().model_extra["video_url"]
    assert url.startswith(gw.url + "/v1/videos/" + video.id + "/content?")

    # The link works with no API key at all, and only as signed.
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert decode_mp4(r.content).frames == 4
    assert httpx.get(url.replace("variant=video", "variant=thumbnail")).status_code == 403
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    bad = httpx.get(tampered)
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "invalid_signature"
    assert gw.http(key=None).get(f"/v1/videos/{video.id}/content").status_code == 401


def test_content_supports_http_ranges(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="ranges", size="640x360", seconds="2")
    http = gw.http()
    whole = http.get(f"/v1/videos/{video.id}/content")
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    size = len(whole.content)

    part = http.get(f"/v1/videos/{video.id}/content", headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    tail = http.get(f"/v1/videos/{video.id}/content", headers={"range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    open_ended = http.get(f"/v1/videos/{video.id}/content", headers={"range": f"bytes={size - 10}-"})
    assert open_ended.content == whole.content[-10:]
    beyond = http.get(f"/v1/videos/{video.id}/content", headers={"range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["error"]["code"] == "range_not_satisfiable"


def test_list_pages_like_openai_and_each_key_sees_its_own(start_gateway):
    cfg = video_config()
    cfg["auth"]["keys"].append({"name": "other", "key": "sk-other", "models": ["*"]})
    gw = start_gateway(cfg)
    client = gw.client()
    ids = [client.videos.create(model="mock-video", prompt=f"n{i}", size="320x180", seconds="1").id
           for i in range(5)]
    gw.client("sk-other").videos.create(model="mock-video", prompt="theirs", size="320x180", seconds="1")

    page = client.videos.list(limit=2)
    assert [v.id for v in page.data] == ids[::-1][:2]          # newest first by default
    assert page.has_more is True
    assert [v.id for v in client.videos.list(limit=2)] == ids[::-1]   # the SDK follows the cursor
    asc = client.videos.list(limit=3, order="asc")
    assert [v.id for v in asc.data] == ids[:3]

    raw = gw.http().get("/v1/videos", params={"limit": 2, "after": ids[3], "order": "desc"}).json()
    assert raw["object"] == "list" and [v["id"] for v in raw["data"]] == [ids[2], ids[1]]
    assert raw["first_id"] == ids[2] and raw["last_id"] == ids[1] and raw["has_more"] is True
    last = gw.http().get("/v1/videos", params={"after": ids[1]}).json()
    assert [v["id"] for v in last["data"]] == [ids[0]] and last["has_more"] is False

    theirs = gw.client("sk-other").videos.list()
    assert len(theirs.data) == 1 and theirs.data[0].id not in ids
    with pytest.raises(openai.NotFoundError):
        gw.client("sk-other").videos.retrieve(ids[0])


def test_delete_cancels_a_running_job_and_removes_its_files(start_gateway):
    gw = start_gateway(video_config([mock_video(video_latency_ms=3000)]))
    client = gw.client()
    running = client.videos.create(model="mock-video", prompt="to cancel", size="320x180", seconds="4")
    for _ in range(100):
        if client.videos.retrieve(running.id).status == "in_progress":
            break
        time.sleep(0.02)
    deleted = client.videos.delete(running.id)
    assert deleted.id == running.id and deleted.deleted is True and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(running.id)
    assert running.id not in [v.id for v in client.videos.list()]

    done = client.videos.create_and_poll(model="mock-video", prompt="to delete", size="320x180", seconds="1")
    folder = gw.runtime.services.videos.assets.root / done.id
    assert (folder / "video.mp4").exists()
    client.videos.delete(done.id)
    assert not folder.exists()
    assert gw.http().get(f"/v1/videos/{done.id}/content").status_code == 404
    time.sleep(0.3)    # the cancelled run wrote nothing back
    assert not (gw.runtime.services.videos.assets.root / running.id).exists()


def test_remix_makes_a_new_video_from_a_completed_one(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()
    source = client.videos.create_and_poll(model="mock-video", prompt="a cat", size="180x320", seconds="1")
    remix = client.videos.remix(source.id, prompt="a cat, in the rain")
    assert remix.remixed_from_video_id == source.id and remix.size == "180x320" and remix.seconds == "1"
    done = client.videos.poll(remix.id)
    assert done.status == "completed" and done.prompt == "a cat, in the rain"
    a = client.videos.download_content(source.id).read()
    b = client.videos.download_content(done.id).read()
    assert a != b and decode_mp4(b).width == 180


def test_remix_of_an_unfinished_video_is_refused(start_gateway):
    gw = start_gateway(video_config([mock_video(video_latency_ms=2000)]))
    client = gw.client()
    source = client.videos.create(model="mock-video", prompt="a cat", size="180x320", seconds="1")
    with pytest.raises(openai.BadRequestError, match="only a completed video"):
        client.videos.remix(source.id, prompt="again")


def test_extension_makes_the_stitched_length_and_edit_keeps_it(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()
    source = client.videos.create_and_poll(model="mock-video", prompt="a road", size="320x180", seconds="1")
    # The SDK's videos.extend/edit only send file uploads (its {"id": ...} form raises inside
    # the SDK), so a source by id goes as JSON, or as the `video[id]` form field.
    extended = client.post("/videos/extensions", cast_to=Video,
                           body={"prompt": "the road goes on", "seconds": "1", "video": {"id": source.id}})
    assert extended.seconds == "2"
    extended = client.videos.poll(extended.id)
    assert decode_mp4(client.videos.download_content(extended.id).read()).frames == 8
    form = gw.http().post("/v1/videos/edits", files={"prompt": (None, "at night"), "video[id]": (None, source.id)})
    assert form.status_code == 200, form.text
    edited = client.videos.poll(form.json()["id"])
    assert edited.status == "completed" and edited.seconds == "1"


def test_uploading_a_source_video_is_refused(start_gateway):
    gw = start_gateway(video_config())
    with pytest.raises(openai.BadRequestError, match="Uploading a source video is not supported"):
        gw.client().videos.edit(prompt="x", video=("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4"))


def test_unknown_and_foreign_videos_are_404(start_gateway):
    gw = start_gateway(video_config())
    http = gw.http()
    for method, path in (("GET", "/v1/videos/video_nope"), ("DELETE", "/v1/videos/video_nope"),
                         ("GET", "/v1/videos/video_nope/content"), ("POST", "/v1/videos/video_nope/remix")):
        r = http.request(method, path, json={"prompt": "x"} if method == "POST" else None)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["code"] == "not_found"
    assert http.get("/v1/videos/video_nope/whatever").status_code == 404
    assert http.put("/v1/videos/video_nope").status_code == 405


def test_content_of_an_unfinished_video_is_409(start_gateway):
    gw = start_gateway(video_config([mock_video(video_latency_ms=2000)]))
    video = gw.client().videos.create(model="mock-video", prompt="wait", size="320x180", seconds="1")
    r = gw.http().get(f"/v1/videos/{video.id}/content")
    assert r.status_code == 409 and r.json()["error"]["code"] == "video_not_ready"


def test_files_expire_at_expires_at(start_gateway):
    cfg = video_config()
    cfg["videos"]["retention_hours"] = 1 / 3600    # one second
    gw = start_gateway(cfg)
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="brief", size="320x180", seconds="1")
    assert video.expires_at - video.completed_at == 1
    time.sleep(2.2)
    r = gw.http().get(f"/v1/videos/{video.id}/content")
    assert r.status_code == 410 and r.json()["error"]["code"] == "video_expired"
    assert "video_url" not in client.videos.retrieve(video.id).model_extra
    deadline = time.time() + 5
    while (gw.runtime.services.videos.assets.root / video.id).exists() and time.time() < deadline:
        time.sleep(0.1)
    assert not (gw.runtime.services.videos.assets.root / video.id).exists()   # the sweeper deleted the files


def test_a_video_model_is_not_served_at_chat_and_back(start_gateway):
    gw = start_gateway(video_config())
    r = gw.http().post("/v1/chat/completions", json={"model": "mock-video", "messages": [{"role": "user",
                                                                                           "content": "hi"}]})
    assert r.status_code == 404 and "/v1/videos" in r.json()["error"]["message"]
    with pytest.raises(openai.NotFoundError):
        gw.client().videos.create(model="no-such-model", prompt="x")


def test_the_default_model_is_sora_2(start_gateway):
    cfg = video_config(models=[video_model("sora-2", "mock")])
    gw = start_gateway(cfg)
    video = gw.client().videos.create(prompt="no model given", size="320x180", seconds="1")
    assert video.model == "sora-2"


def test_a_job_longer_than_its_lease_keeps_its_claim(start_gateway, loop):
    cfg = video_config([mock_video(video_latency_ms=2000)])
    cfg["videos"]["job_lease_s"] = 0.5
    gw = start_gateway(cfg)
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="long", size="320x180", seconds="1")
    assert video.status == "completed"
    assert Job.of(loop.run(gw.runtime.store.jobs.get(video.id))).runs == 1   # heartbeats kept it: one run


def test_job_records_are_forgotten_keep_jobs_days_after_expiry(start_gateway):
    cfg = video_config()
    cfg["videos"].update({"retention_hours": 1 / 3600, "keep_jobs_days": 1 / 86400})   # a second each
    gw = start_gateway(cfg)
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="brief", size="320x180", seconds="1")
    deadline = time.time() + 8
    while gw.http().get(f"/v1/videos/{video.id}").status_code != 404:
        assert time.time() < deadline, "the record was kept"
        time.sleep(0.2)
    assert client.videos.list().data == []


@pytest.mark.parametrize("blocker", ["file", "nested"])
def test_an_unwritable_assets_dir_fails_the_job_at_once(start_gateway, loop, tmp_path, blocker):
    """Storage that refuses fails the job with `storage_error` on its first run,
    rather than rendering it again until it is given up as lost."""
    wall = tmp_path / "not-a-dir"
    wall.write_bytes(b"x")          # a file where the assets folder (or its parent) should be
    assets = wall if blocker == "file" else wall / "videos"
    gw = start_gateway(video_config(videos={"assets_dir": str(assets)}))
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="p", size="320x180", seconds="1")
    assert video.status == "failed" and video.error is not None
    assert video.error.code == "storage_error"
    assert Job.of(loop.run(gw.runtime.store.jobs.get(video.id))).runs == 1


def test_a_download_whose_file_goes_mid_way_ends_short_without_an_error(start_gateway, caplog):
    gw = start_gateway(video_config())
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="p", size="320x180", seconds="1")
    assets = gw.runtime.services.videos.assets

    def gone(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    assets.read = gone              # the file is deleted between its size being read and its bytes
    with httpx.Client(base_url=gw.url, headers={"authorization": "Bearer sk-test"}) as http:
        with pytest.raises(httpx.HTTPError):       # fewer bytes than promised: the client sees a cut answer
            http.get(f"/v1/videos/{video.id}/content").read()
        assert http.get(f"/v1/videos/{video.id}").status_code == 200    # and the gateway goes on serving
    assert not [r for r in caplog.records if "unhandled" in r.getMessage()]
