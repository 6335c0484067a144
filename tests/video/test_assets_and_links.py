"""The asset store, HTTP ranges, and signed download links."""
from __future__ import annotations

import pytest

from gateway.video import links
from gateway.video.assets import LocalAssets, parse_range


def test_put_get_read_delete(tmp_path):
    assets = LocalAssets(tmp_path)
    stored = assets.put("video_abc", "video", b"0123456789")
    assert stored.media_type == "video/mp4" and stored.size == 10
    found = assets.get("video_abc", "video")
    assert found is not None and assets.read(found) == b"0123456789"
    assert assets.read(found, 2, 4) == b"234" and assets.read(found, 8, 100) == b"89"
    assert assets.get("video_abc", "thumbnail") is None
    assert [p.name for p in (tmp_path / "video_abc").iterdir()] == ["video.mp4"]   # no temp file left
    assert assets.delete("video_abc") and assets.get("video_abc", "video") is None
    assert not assets.delete("video_abc")


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 200, "video_1;rm"])
def test_ids_cannot_escape_the_root(tmp_path, bad):
    with pytest.raises(ValueError):
        LocalAssets(tmp_path).put(bad, "video", b"x")


@pytest.mark.parametrize("header,expected", [
    (None, None), ("bytes=0-99", (0, 99)), ("bytes=10-", (10, 999)), ("bytes=-100", (900, 999)),
    ("bytes=990-2000", (990, 999)), ("items=0-5", None), ("bytes=0-1,5-6", None), ("bytes=5", None),
])
def test_ranges(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0", "bytes=a-b"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(ValueError):
        parse_range(header, 1000)


def test_signed_links_expire_and_bind_their_parameters():
    secret = b"k" * 32
    url = links.signed_url("http://gw.example/", secret, "video_1", "video", ttl_s=60, now=1000)
    assert url.startswith("http://gw.example/v1/videos/video_1/content?variant=video&expires=1060&signature=")
    sig = url.rsplit("signature=", 1)[1]
    assert links.verify(secret, "video_1", "video", "1060", sig, now=1059)
    assert not links.verify(secret, "video_1", "video", "1060", sig, now=1061)          # expired
    assert not links.verify(secret, "video_2", "video", "1060", sig, now=1000)          # another video
    assert not links.verify(secret, "video_1", "thumbnail", "1060", sig, now=1000)      # another variant
    assert not links.verify(secret, "video_1", "video", "9999", sig, now=1000)          # stretched expiry
    assert not links.verify(b"other" * 8, "video_1", "video", "1060", sig, now=1000)   # another secret
    assert not links.verify(secret, "video_1", "video", "soon", sig, now=1000)
