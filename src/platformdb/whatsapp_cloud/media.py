"""Downloading the media of an inbound message (image, audio, video, document, sticker).

The webhook gives a media id (and the file's SHA-256); the bytes are two Graph API calls
away, both with the access token: `GET /{media-id}` answers a short-lived URL with the MIME
type, size and SHA-256, and `GET <url>` the bytes. `download` streams them to a path (written
to a temporary file beside it and renamed only once complete and checked) or to a binary
stream the caller gives, refusing more than `max_bytes` and a SHA-256 that differs from the
webhook's (hex or base64, as Meta spells it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import psycopg

from platformdb import strict_json
from platformdb.errors import NotFound
from platformdb.whatsapp_cloud.payloads import MEDIA_KINDS

DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # the Cloud API's largest media (documents)

INBOUND_MEDIA = """
select message_type, payload from public.whatsapp_inbound_messages where whatsapp_message_id = %(wa_id)s
"""


class MediaError(RuntimeError):
    """The media could not be downloaded, was too large, or did not match its SHA-256."""


@dataclass(frozen=True)
class Media:
    media_id: str
    mime_type: str | None
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class MediaRef:
    """What the webhook said about a message's media."""

    media_id: str
    kind: str
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None


def media_of(message_type: str, payload: dict[str, Any]) -> MediaRef | None:
    """The media of an inbound message's payload, or None when it has none."""
    if message_type not in MEDIA_KINDS:
        return None
    obj = payload.get(message_type)
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return None
    return MediaRef(obj["id"], message_type, obj.get("mime_type"), obj.get("sha256"), obj.get("filename"))


def inbound_media(conn: psycopg.Connection[Any], whatsapp_message_id: str) -> MediaRef:
    """The media of a recorded inbound message (as service_role); NotFound when there is none."""
    row = conn.execute(INBOUND_MEDIA, {"wa_id": whatsapp_message_id}).fetchone()
    if row is None:
        raise NotFound(f"no inbound WhatsApp message {whatsapp_message_id}")
    ref = media_of(row[0], row[1])
    if ref is None:
        raise NotFound(f"inbound message {whatsapp_message_id} ({row[0]}) has no media")
    return ref


def _matches(expected: str, digest: bytes) -> bool:
    return expected.strip().lower() == digest.hex() or expected.strip() == base64.b64encode(digest).decode()


def _error(response: httpx.Response, what: str) -> MediaError:
    try:
        err = strict_json.loads(response.content).get("error", {})
        detail = f"code {err.get('code')}: {err.get('message')}"
    except (ValueError, AttributeError):
        detail = response.text[:200]
    return MediaError(f"{what}: HTTP {response.status_code} {detail}")


def download(
    graph_url: str,
    access_token: str,
    media_id: str,
    dest: str | Path | BinaryIO,
    *,
    expected_sha256: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    http: httpx.Client | None = None,
    timeout: float = 30.0,
) -> Media:
    """Download media `media_id` to a path or a binary stream; returns what was written."""
    headers = {"Authorization": f"Bearer {access_token}"}
    client = http or httpx.Client(timeout=timeout)
    try:
        r = client.get(f"{graph_url.rstrip('/')}/{media_id}", headers=headers)
        if r.status_code != 200:
            raise _error(r, f"looking up media {media_id}")
        try:
            info = strict_json.loads(r.content)
        except ValueError as exc:
            raise MediaError(f"looking up media {media_id}: the answer is not JSON ({exc})") from exc
        if not isinstance(info, dict):
            raise MediaError(f"looking up media {media_id}: the answer is not a JSON object")
        url, declared = info.get("url"), info.get("file_size")
        if not isinstance(url, str):
            raise MediaError(f"looking up media {media_id}: no url in the answer")
        if isinstance(declared, int) and declared > max_bytes:
            raise MediaError(f"media {media_id} is {declared} bytes, more than the cap of {max_bytes}")
        expected = expected_sha256 or info.get("sha256")
        if isinstance(dest, str | Path):
            target = Path(dest)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    media = _stream(client, url, headers, out, media_id, max_bytes, info.get("mime_type"))
                _check(media, expected)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return media
        media = _stream(client, url, headers, dest, media_id, max_bytes, info.get("mime_type"))
        _check(media, expected)
        return media
    finally:
        if http is None:
            client.close()


def _stream(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    out: BinaryIO,
    media_id: str,
    max_bytes: int,
    mime_type: str | None,
) -> Media:
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            raise _error(r, f"downloading media {media_id}")
        for chunk in r.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise MediaError(f"media {media_id} is more than the cap of {max_bytes} bytes")
            digest.update(chunk)
            out.write(chunk)
    return Media(media_id, mime_type, size, digest.hexdigest())


def _check(media: Media, expected: str | None) -> None:
    if expected and not _matches(expected, bytes.fromhex(media.sha256)):
        raise MediaError(f"media {media.media_id}: SHA-256 {media.sha256} does not match the webhook's {expected}")
