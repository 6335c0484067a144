"""Video jobs across replicas sharing one real Redis (and one assets folder):
accepted on one, polled, listed, downloaded and deleted on another."""
from __future__ import annotations

import pytest

from gateway.video.jobs import Job
from tests.video.conftest import decode_mp4, video_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_job_accepted_by_one_replica_is_served_by_another(start_gateway, redis_url, tmp_path):
    def replica():
        cfg = video_config()
        cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
        return start_gateway(cfg)

    a, b = replica(), replica()
    video = a.client().videos.create(model="mock-video", prompt="shared", size="320x180", seconds="2")
    done = b.client().videos.poll(video.id)
    assert done.status == "completed"
    assert [v.id for v in b.client().videos.list()] == [video.id]
    decoded = decode_mp4(b.client().videos.download_content(video.id).read())
    assert (decoded.width, decoded.height, decoded.frames) == (320, 180, 8)
    # Both replicas sign links with the secret kept in Redis: a link from one works on the other.
    url = a.client().videos.retrieve(video.id).model_extra["video_url"].replace(a.url, b.url)
    assert b.http(key=None).get(url).status_code == 200
    b.client().videos.delete(video.id)
    assert a.http().get(f"/v1/videos/{video.id}").status_code == 404


def test_many_jobs_on_two_replicas_each_run_once(start_gateway, redis_url, tmp_path, loop):
    def replica():
        cfg = video_config()
        cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
        return start_gateway(cfg)

    a, b = replica(), replica()
    ids = [(a if i % 2 else b).client().videos.create(model="mock-video", prompt=f"job {i}", size="320x180",
                                                      seconds="1").id for i in range(8)]
    for video_id in ids:
        assert a.client().videos.poll(video_id).status == "completed"
        assert Job.of(loop.run(a.runtime.store.jobs.get(video_id))).runs == 1
    assert loop.run(a.runtime.store.jobs.queue_depth("mock")) == 0
