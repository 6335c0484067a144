"""A real S3-compatible server for tests: moto in server mode on a free
loopback port (real HTTP, SigV4-signed requests, Range and presigned URLs as
S3 answers them), with a boto3 client of its own to read the bucket back."""
from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3", reason="needs the test extra: pip install -e '.[test]' (boto3)")
moto_server = pytest.importorskip("moto.server", reason="needs the test extra: pip install -e '.[test]' (moto)")

from botocore.config import Config  # noqa: E402  (after the skip: an optional package)

REGION = "us-east-1"
KEY_ID, SECRET = "AKIDTESTS3ASSETS", "s3-assets-secret-never-shown"   # moto takes any credentials


class S3Server:
    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)    # one access line per request otherwise
        self._server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=REGION, aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET, config=Config(s3={"addressing_style": "path"}))

    def new_bucket(self) -> str:
        """An empty bucket of its own for one test."""
        name = f"videos-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        page = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in page.get("Contents", ()))

    def assets(self, bucket: str, **over: Any) -> dict[str, Any]:
        """A `videos.assets` config block for `bucket` on this server (a stalled request is retried soon)."""
        return {"type": "s3", "bucket": bucket, "endpoint_url": self.endpoint_url, "region": REGION,
                "access_key_id": KEY_ID, "secret_access_key": SECRET, "addressing_style": "path", "timeout_s": 5,
                **over}

    def close(self) -> None:
        self._server.stop()
