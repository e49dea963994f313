"""Inbound media against the local Graph API stand-in: the lookup with the token, the
download to a path or a stream, the size cap and the SHA-256 check, and
`platformdb whatsapp media fetch`."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import db
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud import media
from platformdb.whatsapp_cloud.graph_stub import GraphStub

CONTENT = bytes(range(256)) * 400  # 100 KiB
MEDIA_ID = "1037543291543636"


@pytest.fixture
def stub() -> Iterator[GraphStub]:
    with GraphStub(token="media-token", phone_number_id="106540352242922") as s:
        s.add_media(MEDIA_ID, CONTENT, "image/jpeg")
        yield s


def _image_message(conn: psycopg.Connection[Any], sha256: str) -> None:
    payload = {
        "from": "250788123456",
        "id": "wamid.img",
        "timestamp": "1750857384",
        "type": "image",
        "image": {"id": MEDIA_ID, "mime_type": "image/jpeg", "sha256": sha256, "caption": "my receipt"},
    }
    with db.as_service(conn):
        wa.record_inbound(conn, "wamid.img", "+250788123456", "image", payload, datetime.now(UTC))


def test_download_to_a_path_and_to_a_stream_with_the_sha256_checked(stub: GraphStub, tmp_path: Path) -> None:
    b64 = base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()
    got = media.download(stub.base_url, stub.token, MEDIA_ID, tmp_path / "receipt.jpg", expected_sha256=b64)
    assert (tmp_path / "receipt.jpg").read_bytes() == CONTENT
    assert (got.size, got.mime_type, got.sha256) == (len(CONTENT), "image/jpeg", hashlib.sha256(CONTENT).hexdigest())
    buf = io.BytesIO()
    media.download(stub.base_url, stub.token, MEDIA_ID, buf, expected_sha256=got.sha256)
    assert buf.getvalue() == CONTENT
    # both calls carried the token
    gets = [r for r in stub.requests if r.body is None]
    assert len(gets) == 4 and {r.authorization for r in gets} == {"Bearer media-token"}


def test_a_wrong_sha256_or_too_large_media_leaves_no_file(stub: GraphStub, tmp_path: Path) -> None:
    target = tmp_path / "x.jpg"
    with pytest.raises(media.MediaError, match="does not match the webhook's"):
        media.download(stub.base_url, stub.token, MEDIA_ID, target, expected_sha256="00" * 32)
    with pytest.raises(media.MediaError, match="more than the cap of 1000"):
        media.download(stub.base_url, stub.token, MEDIA_ID, target, max_bytes=1000)
    with pytest.raises(media.MediaError, match="HTTP 401"):
        media.download(stub.base_url, "wrong", MEDIA_ID, target)
    with pytest.raises(media.MediaError, match="HTTP 404"):
        media.download(stub.base_url, stub.token, "999", target)
    assert list(tmp_path.iterdir()) == []


def test_media_fetch_command(stub: GraphStub, conn: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    _image_message(conn, hashlib.sha256(CONTENT).hexdigest())
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "WHATSAPP_ACCESS_TOKEN": stub.token,
        "WHATSAPP_PHONE_NUMBER_ID": stub.phone_number_id,
        "WHATSAPP_GRAPH_URL": stub.base_url,
    }
    cmd = [sys.executable, "-m", "platformdb.cli", "whatsapp", "media", "fetch", "--database-url", db_url]
    out = subprocess.run([*cmd, "wamid.img", "-o", str(tmp_path / "r.jpg")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.jpg").read_bytes() == CONTENT and f"{len(CONTENT)} bytes, image/jpeg" in out.stderr
    missing = subprocess.run([*cmd, "wamid.none", "-o", str(tmp_path / "n")], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "no inbound WhatsApp message wamid.none" in missing.stderr
    assert not (tmp_path / "n").exists()
