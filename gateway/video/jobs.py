"""A video job: what was asked, who serves it, where it stands. Stored as
JSON in the state store (`JobRecord.data`) and shown to clients as OpenAI's
Video object."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.auth import is_key_id
from gateway.store import JobRecord
from providers.base import VideoSpec
from providers.video_fit import Plan


def owned_by(owner: str, key_id: str) -> bool:
    """Jobs are owned by key id, never by a name (names are reused). A record stored
    before ids carries a name: it belongs to no key now, and only the admin API
    shows it (a name cannot say which secret made it)."""
    return owner == key_id and is_key_id(owner)


def new_id() -> str:
    """`video_` + milliseconds since the epoch (12 hex digits) + 64 random bits:
    ids sort by creation, which is what list pagination walks."""
    return f"video_{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"


@dataclass(slots=True)
class Job:
    id: str
    key: str                         # the id of the gateway key that owns it (a name in records made before ids)
    model: str                       # the public model name the client asked for
    prompt: str
    seconds: str
    size: str
    created_at: int
    status: str = "queued"           # queued | in_progress | completed | failed
    progress: int = 0
    completed_at: int | None = None
    expires_at: int | None = None
    error: dict[str, str] | None = None          # {code, message} when failed
    remixed_from_video_id: str | None = None
    op: str = "create"                           # create | remix | edit | extend
    source_id: str | None = None                 # remix/edit/extend: the video it started from
    params: dict[str, Any] = field(default_factory=dict)   # negative_prompt, seed, style_preset, camera_movement
    reference_type: str | None = None            # the input_reference image's media type (stored as an asset)
    callback_url: str | None = None
    # Who serves it: the target the submission went to, and what the provider
    # needs to find the job again (its upstream id, status URLs).
    provider: str = ""
    target_model: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    source_state: dict[str, Any] | None = None   # the source video's state on the same provider
    source_seconds: int = 0
    cost_nano: int = 0                           # charged at acceptance; refunded if the job fails
    budget_hold: str | None = None               # the budget period that was charged (for the refund)
    runs: int = 0
    key_name: str = ""                           # the owner's name when submitted, for display only
    fit: dict[str, Any] | None = None            # what the target generated, when fitted (providers/video_fit.py)
    cache_key: str | None = None                 # kept in the video cache under this once completed (cache.py)

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")

    def spec(self, reference: bytes | None = None) -> VideoSpec:
        """What the provider is handed."""
        p = self.params
        return VideoSpec(self.id, self.target_model, self.prompt, int(self.seconds), self.width, self.height,
                         op=self.op, negative_prompt=p.get("negative_prompt"), seed=p.get("seed"),
                         style_preset=p.get("style_preset"), camera_movement=p.get("camera_movement"),
                         reference_image=reference, reference_media_type=self.reference_type if reference else None,
                         source_state=self.source_state, source_seconds=self.source_seconds,
                         source_provider=self.provider if self.source_state is not None else None,
                         fit=Plan.of(self.fit, self.width, self.height, int(self.seconds)) if self.fit else None)

    def record(self) -> JobRecord:
        return JobRecord(self.id, self.key, self.status, orjson.dumps(dataclasses.asdict(self)), self.expires_at)

    @classmethod
    def of(cls, record: JobRecord) -> Job:
        return cls(**orjson.loads(record.data))

    def video(self, video_url: str | None = None) -> dict[str, Any]:
        """OpenAI's Video object, plus `video_url` once there is something to fetch."""
        out: dict[str, Any] = {
            "id": self.id, "object": "video", "created_at": self.created_at, "completed_at": self.completed_at,
            "expires_at": self.expires_at, "model": self.model, "progress": self.progress, "prompt": self.prompt,
            "remixed_from_video_id": self.remixed_from_video_id, "seconds": self.seconds, "size": self.size,
            "status": self.status, "error": self.error,
        }
        if video_url is not None:
            out["video_url"] = video_url
        if self.fit is not None:
            out["fit"] = self.fit
        return out
