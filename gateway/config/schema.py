"""The config file's shape (SPEC.md), as pydantic models.

Provider entries carry type-specific options: the base model
(`providers/options.py`) accepts them, and each adapter's own `Options` model
checks them (see `checks.py`).
"""
from __future__ import annotations

from importlib.util import find_spec
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

# What every provider entry has lives with the adapters, which extend it.
from providers.options import BreakerConfig, ProviderConfig, ProviderLimits  # noqa: F401 (part of the schema)

Strategy = Literal["fallback", "weighted", "least_latency", "least_cost", "least_busy"]
# speech: POST /v1/audio/speech; transcription: /v1/audio/transcriptions and /translations (docs/audio.md)
Kind = Literal["chat", "embedding", "video", "image", "speech", "transcription"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricsAccess(_Strict):
    """Who may read GET /metrics (and the details of GET /readyz): `auto` is open
    while `host` is a loopback address, else as `token`; `token` wants
    'Authorization: Bearer <token>' or the admin key; `admin_key` the admin key
    alone; `none` lets anyone read them."""
    auth: Literal["auto", "token", "admin_key", "none"] = "auto"
    token: str = ""


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None
    workers: int = Field(1, ge=1)
    max_body_mb: float = Field(16, gt=0)   # larger bodies answer 413
    # A JSON body estimated to take longer to parse (on the event loop) answers 413.
    max_json_parse_ms: float = Field(50, gt=0)
    read_timeout_s: float = Field(30, gt=0)   # a request's head and body must arrive within this (else 408 / closed)
    metrics: MetricsAccess = Field(default_factory=MetricsAccess)


class StateConfig(_Strict):
    redis_url: str = ""        # empty: embedded mode
    # The URL names one node of a Redis Cluster (as does a redis+cluster:// URL): keys that change
    # together share a hash slot, and commands go to the node serving it (docs/capacity.md).
    redis_cluster: bool = False
    data_dir: str = "./data"
    on_redis_error: Literal["open", "closed"] = "open"   # admit (open) or refuse (closed) while Redis is down
    # Silence this long (an answer, or a free pooled connection, not coming) counts as Redis being down;
    # anything quicker is waited for, so a burst is slow, never unlimited. A refused connection counts at once.
    redis_timeout_ms: float = Field(2000, gt=0)
    lease_ttl_s: float = Field(600, gt=0)               # a concurrency slot whose replica died frees itself after this
    # Redis sets room aside for a replica while a key is far from its limits, so that most of its
    # requests are admitted with no round trip (docs/limits-and-cost.md, Grants); exact either way.
    redis_grants: bool = True


class Limits(_Strict):
    rpm: int | None = Field(None, ge=0)
    tpm: int | None = Field(None, ge=0)
    concurrent: int | None = Field(None, ge=0)
    videos_per_hour: int | None = Field(None, ge=0)


class Budget(_Strict):
    usd: float = Field(ge=0)
    period: Literal["day", "week", "month", "total"] = "month"


class KeyConfig(_Strict):
    name: str = Field(min_length=1)
    key: str = ""                       # the secret itself (usually ${ENV}); held only as a hash
    key_hash: str = ""                  # or its hash: "sha256:<hex>"
    models: list[str] = Field(default_factory=lambda: ["*"])
    limits: Limits = Field(default_factory=Limits)
    budget: Budget | None = None
    # An admin key: `viewer` reads the admin API and the console, `admin` also changes things.
    # A key with a role is never a client key (the API answers it 401).
    role: Literal["viewer", "admin"] | None = None


class AuthConfig(_Strict):
    admin_key: str = ""
    keys: list[KeyConfig] = Field(default_factory=list)


class TargetConfig(_Strict):
    provider: str = Field(min_length=1)
    model: str | None = None            # upstream model name; default: the public name
    weight: float = Field(1.0, gt=0)


def _node_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "_route" if "targets" in v or "strategy" in v else "_target"
    return "_route" if isinstance(v, RouteConfig) else "_target"


class RouteConfig(_Strict):
    strategy: Strategy = "fallback"
    targets: list[Annotated[Annotated[TargetConfig, Tag("_target")] | Annotated[RouteConfig, Tag("_route")],
                            Discriminator(_node_kind)]] = Field(min_length=1)
    weight: float = Field(1.0, gt=0)     # used when this route is a target of a weighted parent


class ModelLimits(_Strict):
    """Limits on a model across all keys together."""
    rpm: int | None = Field(None, ge=0)
    tpm: int | None = Field(None, ge=0)


class CacheConfig(_Strict):
    ttl_s: float = Field(gt=0)
    shared: bool = False        # true: keys share answers; false: each key sees only its own


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    kind: Kind = "chat"
    route: RouteConfig
    limits: ModelLimits = Field(default_factory=ModelLimits)
    cache: CacheConfig | None = None
    retries: int = Field(2, ge=0)                    # attempts after the first failed one
    timeout_s: float = Field(60, gt=0)               # the whole request's deadline, across attempts
    attempt_timeout_s: float | None = Field(None, gt=0)  # cap per attempt, so a hung target fails over early


class RuleMatch(_Strict):
    key: str = Field("*", min_length=1)
    model: str = Field("*", min_length=1)


class RuleConfig(_Strict):
    match: RuleMatch = Field(default_factory=RuleMatch)
    model: str | None = None
    strategy: Strategy | None = None


class Price(_Strict):
    input_per_mtok: float = Field(0, ge=0)
    output_per_mtok: float = Field(0, ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)
    per_request: float = Field(0, ge=0)
    per_second: float = Field(0, ge=0)     # video; transcriptions and translations, by the audio's seconds
    per_mchar: float = Field(0, ge=0)      # speech: USD per million characters of input
    # Images: USD an image, one price or by quality and size, the most specific first:
    # {"high/1024x1536": 0.25, "1024x1024": 0.04, "high": 0.17, "default": 0.04} (gateway/images/pricing.py)
    per_image: float | dict[str, float] = Field(0)

    @field_validator("per_image")
    @classmethod
    def _no_negative_image_price(cls, v: float | dict[str, float]) -> float | dict[str, float]:
        if any(p < 0 for p in (v.values() if isinstance(v, dict) else (v,))):
            raise ValueError("prices cannot be negative")
        return v


class LocalAssetsConfig(_Strict):
    """Files in a folder: `videos.assets_dir` (default <data_dir>/videos), shared by every replica."""
    type: Literal["local"]


class S3AssetsConfig(_Strict):
    """Files as objects in an S3-compatible bucket (AWS S3, MinIO, R2...): replicas and workers
    share the bucket, no volume. Needs the `s3` extra (boto3)."""
    type: Literal["s3"]
    bucket: str = Field(min_length=1)
    prefix: str = ""                                   # put before every key: "<prefix><video_id>/<variant>.<ext>"
    endpoint_url: str = ""                             # empty: AWS; else MinIO, R2, ... (http(s)://host:port)
    region: str = ""                                   # empty: from the AWS environment / config files
    # Empty: the standard AWS credential chain (environment, config files, instance role). Else ${ENV} references.
    access_key_id: str = Field("", repr=False)
    secret_access_key: str = Field("", repr=False)
    session_token: str = Field("", repr=False)
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    downloads: Literal["proxy", "redirect"] = "proxy"  # the gateway streams the file, or answers 302 to a signed URL
    presign_ttl_s: int = Field(300, ge=1, le=604800)   # how long a redirect's signed URL works (SigV4: 7 days at most)
    timeout_s: float = Field(30, gt=0)                 # to connect, and for each read, per attempt
    retries: int = Field(2, ge=0)                      # attempts after the first, on throttling and 5xx

    @model_validator(mode="after")
    def _usable(self) -> S3AssetsConfig:
        if self.endpoint_url and not self.endpoint_url.lower().startswith(("http://", "https://")):
            raise PydanticCustomError("endpoint_url", "endpoint_url must be an http or https URL")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise PydanticCustomError("credentials", "access_key_id and secret_access_key go together: set both, "
                                      "or neither for the standard AWS credential chain")
        if find_spec("boto3") is None:     # refused at check time, not at the first upload
            raise PydanticCustomError("s3_extra", "type s3 needs boto3: install the s3 extra "
                                      "(pip install 'gateway[s3]')")
        return self


def _assets_kind(v: Any) -> str | None:
    kind = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
    return {"local": "_local", "s3": "_s3"}.get(kind) if isinstance(kind, str) else None


AssetsConfig = Annotated[Annotated[LocalAssetsConfig, Tag("_local")] | Annotated[S3AssetsConfig, Tag("_s3")],
                         Discriminator(_assets_kind, custom_error_type="assets_type",
                                       custom_error_message="type must be 'local' or 's3'")]


class VideosConfig(_Strict):
    """How the gateway keeps video jobs and their files."""
    # Where files live; read at start. Default: local, in assets_dir.
    assets: AssetsConfig = Field(default_factory=lambda: LocalAssetsConfig(type="local"))
    assets_dir: str = ""                               # default: <data_dir>/videos; shared by every replica
    retention_hours: float = Field(24, gt=0)           # files deleted this long after a job ends (expires_at)
    keep_jobs_days: float = Field(30, gt=0)            # job records (and their webhook deliveries) kept this long after
    link_ttl_s: int = Field(3600, ge=1)                # how long a `video_url` link works
    link_secret: str = ""                              # signs `video_url`; empty: a random one kept in the store
    job_lease_s: float = Field(30, gt=0)               # a run not heard from this long is taken over by another
    max_runs: int = Field(3, ge=1)                     # runs lost to dead processes before a job fails
    poll_after_ms: int = Field(1000, ge=0)             # `openai-poll-after-ms`: how often SDK pollers ask

    @model_validator(mode="after")
    def _one_place_for_files(self) -> VideosConfig:
        if self.assets.type == "s3" and self.assets_dir:
            raise PydanticCustomError("assets_dir", "assets_dir is the folder of local storage; with "
                                      "assets type s3 remove it")
        return self


WebhookEvent = Literal["video.completed", "video.failed", "batch.completed", "batch.failed", "batch.cancelled",
                       "batch.expired"]
_ALL_EVENTS: tuple[WebhookEvent, ...] = ("video.completed", "video.failed", "batch.completed", "batch.failed",
                                         "batch.cancelled", "batch.expired")


class WebhookEndpoint(_Strict):
    url: str = Field(min_length=1)
    events: list[WebhookEvent] = Field(default_factory=lambda: list(_ALL_EVENTS))


class WebhooksConfig(_Strict):
    secret: str = ""                                   # "whsec_<base64>"; empty: no webhooks are sent
    endpoints: list[WebhookEndpoint] = Field(default_factory=list)
    allow_private_urls: bool = False                   # let endpoints and callback_url reach private addresses
    allow_hosts: list[str] = Field(default_factory=list)   # hosts trusted as they are ("hooks.internal:8443", "*.corp")
    max_attempts: int = Field(12, ge=1)                # then the delivery is given up (and stays recorded)
    backoff_s: float = Field(5, gt=0)                  # before the first retry; doubles each time
    max_backoff_s: float = Field(3600, gt=0)
    timeout_s: float = Field(10, gt=0)                 # per attempt


class ResponsesConfig(_Strict):
    """/v1/responses: how long stored responses (`store: true`) are kept."""
    keep_days: float = Field(30, gt=0)              # then GET, input_items and previous_response_id answer 404/400
    max_chain: int = Field(1000, ge=1)              # previous_response_id links followed to rebuild a conversation


class FilesConfig(_Strict):
    """/v1/files: what an upload may be (OpenAI's Batch API limits by default; docs/batches.md)."""
    max_mb: float = Field(200, gt=0)                # an uploaded file, at most (413 past it)
    max_lines: int = Field(50_000, ge=1)            # requests in a `purpose: batch` file
    # `purpose: batch` files sent without expires_after expire this long after they are made, as
    # OpenAI's do; 0: kept until deleted.
    batch_expiry_days: float = Field(30, ge=0)


class BatchesConfig(_Strict):
    """/v1/batches: how a batch's requests are run (docs/batches.md). Each bound is per gateway
    process: every replica takes a share of a batch's lines."""
    concurrency: int = Field(16, ge=1)          # one batch's requests in flight at once
    key_concurrency: int = Field(32, ge=1)      # all of one key's batches' requests in flight at once
    # The share of a key's rpm, tpm and concurrent limits its batches' requests may take: they are
    # refused (and wait) at that share, so the key's own requests keep the rest.
    key_share: float = Field(0.5, gt=0, le=1)
    part_lines: int = Field(100, ge=1, le=1000)     # requests a process takes on at once (its lease)
    parts_at_once: int = Field(8, ge=1)         # leased parts a process runs at once, across batches
    poll_s: float = Field(1.0, gt=0)            # how often a `/v1/videos` request's video is looked at


class RequestLogConfig(_Strict):
    """The request log (gateway/request_log.py): one record per request in the state store,
    read by GET /admin/requests and /admin/stats."""
    enabled: bool = True
    keep_days: int = Field(7, ge=1, le=365)             # records (and their per-minute stats) older are deleted
    max_rows: int = Field(200_000, ge=1)                # size cap: past it, the oldest go (on Redis ~600 bytes each)
    flush_s: float = Field(0.25, gt=0, le=60)           # how often each process writes what gathered, in one batch


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"   # the gateway's own logs; `--log-level` overrides
    access_log: bool = False       # one JSON line per request on stderr (off: ~15 us a request; docs/performance.md)
    prompts: bool = False          # include chat requests' messages in that line (and in the request log)
    requests: RequestLogConfig = Field(default_factory=RequestLogConfig)


class TelemetryConfig(_Strict):
    """OpenTelemetry traces (docs/telemetry.md): a span per request and per upstream attempt,
    sent over OTLP/HTTP. Needs the `telemetry` extra; takes effect at a restart."""
    otlp_endpoint: str | None = None     # the collector's traces URL (http://collector:4318/v1/traces); unset: off
    service_name: str = Field("gateway", min_length=1)
    sample_ratio: float = Field(1.0, ge=0, le=1)    # of new traces; a client's traceparent decides for its own
    headers: dict[str, str] = Field(default_factory=dict)   # sent to the collector (often a token: hidden as secrets)


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    prices: dict[str, Price] = Field(default_factory=dict)
    videos: VideosConfig = Field(default_factory=VideosConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)
    batches: BatchesConfig = Field(default_factory=BatchesConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
