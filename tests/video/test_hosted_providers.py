"""Each hosted video provider end to end through the gateway: the SDK's
create_and_poll against a loopback fake speaking the provider's format, the
finished file copied into the gateway's own asset store (previews made from
it), a refused submission failing over, and a job resumed after a gateway
restart without being submitted twice."""
from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from tests.upstreams.fal_fake import FakeFal
from tests.upstreams.openai_video_fake import FakeOpenAIVideo
from tests.upstreams.replicate_fake import FakeReplicate
from tests.upstreams.runway_fake import FakeRunway
from tests.upstreams.veo_fake import FakeVeo
from tests.upstreams.video_sample import sample
from tests.video.conftest import mock_video, video_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Hosted:
    type: str
    fake: type
    model: str
    submits: Callable[[Any], int]
    slow: dict[str, Any]          # knobs for a job that takes many status checks
    refusal: bytes                # the provider's own 429 body


PROVIDERS = {
    "openai": Hosted("openai", FakeOpenAIVideo, "sora-2", lambda f: len(f.forms), {"progress_polls": 60},
                     b'{"error": {"message": "Rate limit reached", "type": "requests", '
                     b'"code": "rate_limit_exceeded"}}'),
    "veo": Hosted("veo", FakeVeo, "veo-3.0-generate-001", lambda f: len(f.submits()), {"pending_polls": 60},
                  b'{"error": {"code": 429, "message": "Resource has been exhausted", '
                  b'"status": "RESOURCE_EXHAUSTED"}}'),
    "runway": Hosted("runway", FakeRunway, "gen4_turbo", lambda f: len(f.submits), {"running_polls": 60},
                     b'{"error": "You have exceeded the rate limit."}'),
    "fal": Hosted("fal", FakeFal, "fal-ai/kling-video/v2.1/standard/text-to-video", lambda f: len(f.submits),
                  {"running_polls": 60}, b'{"detail": "Rate limit exceeded"}'),
    "replicate": Hosted("replicate", FakeReplicate, "kwaivgi/kling-v2.1", lambda f: len(f.submits),
                        {"running_polls": 60},
                        b'{"title": "Request was throttled.", "detail": "Request was throttled.", "status": 429}'),
}


def _config(p: Hosted, fake, *fallback: dict, **extra) -> dict:
    upstream = {"name": "up", "type": p.type, "base_url": fake.url, "api_key": fake.key,
                "video_sizes": ["1280x720"], "video_seconds": [4], "poll_interval_s": 0.02,
                "poll_max_interval_s": 0.05}
    targets = [{"provider": "up", "model": p.model}] + [{"provider": f["name"]} for f in fallback]
    cfg = video_config([upstream, *fallback],
                       [{"name": "hosted", "kind": "video", "route": {"strategy": "fallback", "targets": targets}}],
                       **extra)
    return cfg


def test_create_and_poll_copies_the_providers_video(start_gateway, hosted):
    p, fake = hosted
    gw = start_gateway(_config(p, fake))
    client = gw.client()
    video = client.videos.create_and_poll(model="hosted", prompt="a harbour at dawn", size="1280x720", seconds="4")
    assert video.status == "completed", video.error
    assert client.videos.download_content(video.id).read() == sample().mp4
    thumb = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read()))
    assert thumb.format == "WEBP" and thumb.size == (160, 90)
    sheet = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="spritesheet").read()))
    assert sheet.format == "JPEG"
    assert p.submits(fake) == 1


def test_a_429_from_the_provider_fails_over_to_the_next_target(start_gateway, hosted):
    p, fake = hosted
    fake.fail(429, p.refusal, headers={"retry-after": "1"})
    gw = start_gateway(_config(p, fake, mock_video("mock", video_sizes=["1280x720"], video_seconds=[4])))
    raw = gw.client().videos.with_raw_response.create(model="hosted", prompt="p", size="1280x720", seconds="4")
    assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"


def test_a_job_resumes_after_a_restart_without_a_second_submit(start_gateway, hosted, tmp_path):
    p, fake = hosted
    fake.ok(**p.slow)
    cfg = _config(p, fake)
    cfg["state"] = {"data_dir": str(tmp_path)}
    # Short enough that the second gateway soon takes the job over; long enough that a heartbeat
    # late on a loaded machine does not lose the claim (a lost claim cancels the run upstream).
    cfg["videos"]["job_lease_s"] = 3
    first = start_gateway(cfg)
    video = first.client().videos.create(model="hosted", prompt="p", size="1280x720", seconds="4")
    time.sleep(0.3)                      # polling upstream
    first.close()
    second = start_gateway(cfg)
    done = second.client().videos.poll(video.id)
    assert done.status == "completed", done.error
    assert second.client().videos.download_content(video.id).read() == sample().mp4
    assert p.submits(fake) == 1


def test_edits_and_extensions_are_a_400_where_the_backend_cannot(start_gateway, loop):
    fake = FakeRunway(loop)
    try:
        gw = start_gateway(_config(PROVIDERS["runway"], fake))
        client = gw.client()
        source = client.videos.create_and_poll(model="hosted", prompt="p", size="1280x720", seconds="4")
        for path, body in (("/v1/videos/extensions", {"prompt": "more", "seconds": "4", "video": {"id": source.id}}),
                           ("/v1/videos/edits", {"prompt": "other", "video": {"id": source.id}})):
            r = gw.http().post(path, json=body)
            assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_operation", r.text
        assert [v.id for v in client.videos.list()] == [source.id]
    finally:
        fake.close()



def test_every_hosted_provider_is_in_the_fixture():
    from tests.video.conftest import hosted
    assert sorted(PROVIDERS) == list(hosted._fixture_function_marker.params)
