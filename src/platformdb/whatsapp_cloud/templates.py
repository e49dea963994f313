"""The account's message templates: fetched from the Graph API and stored (`platformdb
whatsapp templates sync`), so that enqueueing a template is checked before it is sent.

`GET /{whatsapp-business-account-id}/message_templates?fields=…&limit=100` with the access
token, following `paging.next`; the whole list goes to `sync_whatsapp_templates`, which
counts the placeholders of each component (and marks templates no longer listed REMOVED).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import psycopg

from platformdb import strict_json

SYNC = "select public.sync_whatsapp_templates(p_templates => %(templates)s::jsonb)"
FIELDS = "id,name,language,category,status,components"
MAX_PAGES = 100


class TemplateSyncError(RuntimeError):
    """The Graph API did not list the templates."""


def fetch(
    graph_url: str,
    access_token: str,
    business_account_id: str,
    *,
    http: httpx.Client | None = None,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Every template of the WhatsApp Business Account (all pages)."""
    headers = {"Authorization": f"Bearer {access_token}"}
    url: str | None = f"{graph_url.rstrip('/')}/{business_account_id}/message_templates"
    params: dict[str, Any] | None = {"fields": FIELDS, "limit": 100}
    client = http or httpx.Client(timeout=timeout)
    out: list[dict[str, Any]] = []
    try:
        for _ in range(MAX_PAGES):
            if url is None:
                break
            try:
                r = client.get(url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                raise TemplateSyncError(f"listing templates: {type(exc).__name__}: {exc}") from exc
            if r.status_code != 200:
                raise TemplateSyncError(f"listing templates: HTTP {r.status_code} {r.text[:300]}")
            try:
                doc = strict_json.loads(r.content)
            except ValueError as exc:
                raise TemplateSyncError(f"listing templates: the answer is not JSON ({exc})") from exc
            data = doc.get("data", []) if isinstance(doc, dict) else None
            if not isinstance(data, list):
                raise TemplateSyncError("listing templates: the answer has no data list")
            out.extend(t for t in data if isinstance(t, dict))
            paging = doc.get("paging")
            next_url = paging.get("next") if isinstance(paging, dict) else None
            url, params = (next_url if isinstance(next_url, str) else None), None  # next carries its query
    finally:
        if http is None:
            client.close()
    return out


def sync(conn: psycopg.Connection[Any], templates: list[dict[str, Any]]) -> int:
    """Store the templates (as service_role); returns how many."""
    from platformdb.errors import wrap_errors

    with wrap_errors():
        row = conn.execute(SYNC, {"templates": json.dumps(templates)}).fetchone()
    assert row is not None
    return int(row[0])
