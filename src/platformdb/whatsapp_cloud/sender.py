"""The sender: drains `whatsapp_message_queue` through the Graph API.

A `worker.Duty` run by `platformdb worker` when WHATSAPP_ACCESS_TOKEN and
WHATSAPP_PHONE_NUMBER_ID are set. Each round it claims a batch (`claim_whatsapp_messages`,
FOR UPDATE SKIP LOCKED with a lease), POSTs each message to
`{WHATSAPP_GRAPH_URL}/{phone-number-id}/messages`, and records the outcome:

- 2xx with `messages[0].id` → `mark_whatsapp_message_sent` with that wa message id;
- 429, 5xx, network errors and the Cloud API's throttling codes → retried here with
  exponential backoff (honouring Retry-After) up to `http_attempts` times, then handed back
  to the queue's own backoff (`mark_whatsapp_message_failed`, retryable);
- any other 4xx → failed for good, with the Graph error kept (`errors`, `last_error`).

Every request first takes a token from a per-sender rate limiter (default 80 messages/s,
the Cloud API's default throughput per business number). The limiter is per process: run
one sender per business number, or split the rate between processes.

Messages to the same recipient in a batch go out one after the other in claim order;
different recipients are sent concurrently (up to `max_in_flight`). Delivery is
at-least-once: a request that timed out may have been accepted by WhatsApp and is retried.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from platformdb import db, strict_json
from platformdb.errors import PlatformDBError
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud.payloads import build_message_request, read_receipt_request
from platformdb.worker import Duty, WorkerConfig

log = logging.getLogger("platformdb.whatsapp.sender")

# the Graph API version of the requests (WHATSAPP_GRAPH_VERSION); v26.0 is the current one
# (released 29 July 2026)
DEFAULT_GRAPH_VERSION = "v26.0"
GRAPH_HOST = "https://graph.facebook.com"
DEFAULT_GRAPH_URL = f"{GRAPH_HOST}/{DEFAULT_GRAPH_VERSION}"
_GRAPH_VERSION = re.compile(r"^v[0-9]{1,3}\.[0-9]{1,2}$")
# 131047 "Re-engagement message": more than 24 hours since the user last wrote. Not worth
# retrying: only a template gets through until the user writes again.
OUTSIDE_WINDOW_CODE = 131047
# Graph/Cloud API error codes that mean "later", whatever the HTTP status: API throttling
# (4, 80007), throughput and pair rate limits (130429, 131056), temporary errors (1, 2,
# 131000 something went wrong, 131016 service unavailable, 133004 server unavailable).
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004})


@dataclass
class SenderConfig:
    database_url: str
    access_token: str
    phone_number_id: str
    graph_url: str = DEFAULT_GRAPH_URL
    rate_per_second: float | None = 80.0  # None: no limit (benchmarks)
    burst: int = 1
    # WhatsApp's pair rate limit (131056): about one message every 6 s to the same user,
    # with bursts allowed; a message that would wait longer than pair_max_wait is deferred
    pair_interval: float | None = 6.0  # None: no pair limit
    pair_burst: int = 45
    pair_max_wait: float = 10.0
    batch_size: int = 50
    lease_seconds: int = 150
    max_in_flight: int = 32
    http_timeout: float = 15.0
    http_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 30.0
    idle_wait: float = 1.0
    worker_id: str = ""
    # a session URL for LISTEN (PLATFORMDB_DIRECT_URL); None: database_url unless that is a
    # transaction pooler, in which case the sender polls every idle_wait seconds
    direct_url: str | None = None

    def __post_init__(self) -> None:
        if self.rate_per_second is not None and self.rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive (or None for no limit)")
        if self.pair_interval is not None and self.pair_interval <= 0:
            raise ValueError("pair_interval must be positive (or None for no pair limit)")
        if self.pair_burst < 1 or self.pair_max_wait < 0:
            raise ValueError("pair_burst must be >= 1 and pair_max_wait >= 0")
        if self.burst < 1 or self.batch_size < 1 or self.max_in_flight < 1 or self.http_attempts < 1:
            raise ValueError("burst, batch_size, max_in_flight and http_attempts must be >= 1")
        worst = self.http_attempts * self.http_timeout + (self.http_attempts - 1) * max(
            self.backoff_max, self.retry_after_max
        )
        worst += self.pair_max_wait  # waiting for the recipient's pair limit
        if self.lease_seconds < worst + 10:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must exceed the longest a message can take"
                f" ({worst:.0f}s of requests and backoff) by at least 10 s"
            )

    @property
    def messages_url(self) -> str:
        return f"{self.graph_url.rstrip('/')}/{self.phone_number_id}/messages"

    @property
    def claim_limit(self) -> int:
        """At most ~10 s of sending at the rate, so leases never run out waiting for tokens."""
        limit = min(self.batch_size, 1000)
        if self.rate_per_second is not None:
            limit = min(limit, max(1, math.ceil(self.rate_per_second * 10)))
        return limit

    @classmethod
    def from_env(cls, database_url: str, env: Mapping[str, str] | None = None, **overrides: Any) -> SenderConfig | None:
        """From WHATSAPP_* variables; None unless the access token and phone number id are set."""
        env = os.environ if env is None else env
        token = env.get("WHATSAPP_ACCESS_TOKEN", "")
        number = env.get("WHATSAPP_PHONE_NUMBER_ID", "")
        if not token or not number:
            return None
        kwargs: dict[str, Any] = {
            "database_url": database_url,
            "access_token": token,
            "phone_number_id": number,
        }
        version = env.get("WHATSAPP_GRAPH_VERSION", "")
        if version:
            if not _GRAPH_VERSION.match(version):
                raise ValueError(f"WHATSAPP_GRAPH_VERSION must look like v26.0, got {version!r}")
            kwargs["graph_url"] = f"{GRAPH_HOST}/{version}"
        if env.get("WHATSAPP_GRAPH_URL"):  # a full base URL (a proxy, the local stand-in) wins
            kwargs["graph_url"] = env["WHATSAPP_GRAPH_URL"]
        if env.get("WHATSAPP_RATE_PER_SECOND"):
            kwargs["rate_per_second"] = float(env["WHATSAPP_RATE_PER_SECOND"])
        if env.get("WHATSAPP_PAIR_INTERVAL_SECONDS"):
            kwargs["pair_interval"] = float(env["WHATSAPP_PAIR_INTERVAL_SECONDS"])
        kwargs.update(overrides)
        return cls(**kwargs)


class RateLimiter:
    """Thread-safe limiter (generic cell rate algorithm): `rate` per second, `burst` at once.

    Each acquire reserves the next free slot under the lock, then waits for it outside.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate = rate
        self.interval = 0.0 if rate is None else 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self.clock = clock
        self._tat = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve a slot; returns how many seconds to wait before using it."""
        if self.rate is None:
            return 0.0
        with self._lock:
            now = self.clock()
            tat = max(self._tat, now)
            start = tat - self.tolerance
            self._tat = tat + self.interval
        return max(0.0, start - now)

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when `stop` was set while waiting."""
        delay = self.reserve()
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()


class PairLimiter:
    """WhatsApp's per-recipient (pair) rate limit, one cell-rate limiter per recipient:
    `burst` messages at once, then one every `interval` seconds. A reservation that would wait
    more than `max_wait` is not taken (the caller defers the message instead)."""

    def __init__(self, interval: float | None, burst: int, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.tolerance = 0.0 if interval is None else (burst - 1) * interval
        self.clock = clock
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, recipient: str, max_wait: float) -> float | None:
        """Seconds to wait before sending to `recipient`, or None (nothing reserved) when
        that would be more than `max_wait`."""
        if self.interval is None:
            return 0.0
        with self._lock:
            now = self.clock()
            tat = max(self._tat.get(recipient, now), now)
            wait = max(0.0, tat - self.tolerance - now)
            if wait > max_wait:
                return None
            self._tat[recipient] = tat + self.interval
            if len(self._tat) > 100_000:  # forget recipients whose slots are all free again
                self._tat = {k: v for k, v in self._tat.items() if v > now}
        return wait

    def next_free_in(self, recipient: str) -> float:
        if self.interval is None:
            return 0.0
        with self._lock:
            now = self.clock()
            return max(0.0, self._tat.get(recipient, now) - self.tolerance - now)


@dataclass
class Outcome:
    kind: str  # sent | retry | permanent | released | deferred
    whatsapp_message_id: str | None = None
    error: str | None = None
    detail: dict[str, Any] | None = None
    retry_after: float | None = None
    http_status: int | None = None
    requests: int = 0


def _graph_error(response: httpx.Response) -> tuple[str, dict[str, Any], int | None]:
    """(message, detail, code) from a Graph error response ({"error": {...}})."""
    detail: dict[str, Any] = {"http_status": response.status_code}
    code: int | None = None
    message = response.reason_phrase or "error"
    try:
        # strict: the error object is stored as jsonb, which refuses NaN and Infinity
        doc = strict_json.loads(response.content)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        err = doc["error"]
        detail["error"] = err
        raw_code = err.get("code")
        try:
            code = int(raw_code) if raw_code is not None else None
        except (TypeError, ValueError):
            code = None
        message = str(err.get("message") or message)
        data = err.get("error_data")
        if isinstance(data, dict) and data.get("details"):
            message = f"{message}: {data['details']}"
    else:
        detail["body"] = response.text[:500]
    text = f"HTTP {response.status_code}" + (f" code {code}" if code is not None else "") + f": {message}"
    return text[:2000], detail, code


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify(response: httpx.Response) -> Outcome:
    """What a Graph API response means for the message."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            doc = strict_json.loads(response.content)
            wa_id = doc["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            wa_id = None
        if isinstance(wa_id, str) and wa_id:
            return Outcome("sent", whatsapp_message_id=wa_id, http_status=status)
        # accepted but unreadable: sending again could deliver twice, so do not retry
        return Outcome(
            "permanent",
            error=f"HTTP {status}: response has no messages[0].id",
            detail={"http_status": status, "body": response.text[:500]},
            http_status=status,
        )
    error, detail, code = _graph_error(response)
    if code == OUTSIDE_WINDOW_CODE:
        error = f"outside the customer-service window (WhatsApp {OUTSIDE_WINDOW_CODE}): send a template. {error}"[:2000]
        return Outcome("permanent", error=error, detail=detail, http_status=status)
    if status == 429 or status >= 500 or (code is not None and code in RETRYABLE_CODES):
        return Outcome("retry", error=error, detail=detail, retry_after=_retry_after(response), http_status=status)
    return Outcome("permanent", error=error, detail=detail, http_status=status)


def mark_read(
    config: SenderConfig,
    whatsapp_message_id: str,
    typing_indicator: bool = False,
    *,
    http: httpx.Client | None = None,
) -> None:
    """Mark an inbound message read (and show the typing indicator) right away: a UI signal,
    not queued. Raises RuntimeError with the Graph API's error when it is refused."""
    body = read_receipt_request(whatsapp_message_id, typing_indicator)
    headers = {"Authorization": f"Bearer {config.access_token}"}
    client = http or httpx.Client(timeout=config.http_timeout)
    try:
        response = client.post(config.messages_url, json=body, headers=headers)
    finally:
        if http is None:
            client.close()
    if not 200 <= response.status_code < 300:
        raise RuntimeError(_graph_error(response)[0])


class WhatsAppSender(Duty):
    name = "whatsapp-sender"

    def __init__(self, config: SenderConfig, *, http: httpx.Client | None = None):
        self.config = config
        self.limiter = RateLimiter(config.rate_per_second, config.burst)
        self.pairs = PairLimiter(config.pair_interval, config.pair_burst)
        self._http = http
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    # ---- one message ----------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def deliver(self, http: httpx.Client, msg: wa.OutboundMessage, stop: threading.Event) -> Outcome:
        """POST one message, retrying what is retryable; never raises."""
        cfg = self.config
        try:
            body = build_message_request(
                msg.recipient_phone,
                msg.message_type,
                msg.payload,
                msg.correlation_id,
                recipient_user_id=msg.recipient_user_id,
                reply_to=msg.reply_to_message_id,
            )
        except ValueError as exc:
            return Outcome("permanent", error=f"cannot build the request: {exc}")
        headers = {"Authorization": f"Bearer {cfg.access_token}"}
        recipient = msg.recipient_phone or msg.recipient_user_id or ""
        pair_wait = self.pairs.reserve(recipient, cfg.pair_max_wait)
        if pair_wait is None:  # the recipient's pair limit: later, without counting an attempt
            self._count("deferred")
            return Outcome("deferred", retry_after=self.pairs.next_free_in(recipient))
        if pair_wait > 0 and stop.wait(pair_wait):
            return Outcome("released")
        outcome = Outcome("released")
        for attempt in range(1, cfg.http_attempts + 1):
            if not self.limiter.acquire(stop):
                if outcome.kind == "released":
                    return outcome
                break  # stopping after a failed request: it counts as an attempt
            self._count("requests")
            requests = outcome.requests + 1
            try:
                response = http.post(cfg.messages_url, json=body, headers=headers, timeout=cfg.http_timeout)
                outcome = classify(response)
            except httpx.TransportError as exc:
                outcome = Outcome("retry", error=f"network error: {type(exc).__name__}: {exc}"[:2000])
            outcome.requests = requests
            if outcome.kind != "retry" or attempt == cfg.http_attempts:
                break
            delay = min(cfg.backoff_max, cfg.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            if outcome.retry_after is not None:
                delay = min(cfg.retry_after_max, max(delay, outcome.retry_after))
            log.info("message %s: %s; retrying in %.2fs", msg.id, outcome.error, delay)
            if stop.wait(delay):
                break
        return outcome

    def _deliver_group(
        self, http: httpx.Client, group: list[wa.OutboundMessage], stop: threading.Event
    ) -> list[tuple[wa.OutboundMessage, Outcome]]:
        out = []
        for msg in group:
            if stop.is_set():
                out.append((msg, Outcome("released")))
                continue
            out.append((msg, self.deliver(http, msg, stop)))
        return out

    # ---- recording ------------------------------------------------------------------

    def record(self, conn: psycopg.Connection[Any], msg: wa.OutboundMessage, outcome: Outcome) -> None:
        """Record one outcome in its own transaction as service_role."""
        try:
            with db.as_service(conn):
                counted = self._record(conn, msg, outcome)
        except PlatformDBError as exc:
            # e.g. the lease ran out and another sender took the message over
            self._count("record_errors")
            log.error("message %s: could not record %s: %s", msg.id, outcome.kind, exc)
            return
        if counted:
            self._count(counted)
        if counted in ("failed", "retried"):
            recipient = msg.recipient_phone or msg.recipient_user_id
            log.warning("message %s to %s: %s (%s)", msg.id, recipient, outcome.error, counted)

    def _record(self, conn: psycopg.Connection[Any], msg: wa.OutboundMessage, outcome: Outcome) -> str:
        if outcome.kind == "sent":
            assert outcome.whatsapp_message_id is not None
            wa.mark_sent(conn, msg.id, outcome.whatsapp_message_id)
            return "sent"
        if outcome.kind == "released":
            wa.release_message(conn, msg.id)
            return "released"
        if outcome.kind == "deferred":
            wa.defer_message(conn, msg.id, max(1, math.ceil(outcome.retry_after or 1)))
            return ""  # counted when the pair limit deferred it
        retryable = outcome.kind == "retry"
        retry_in = None
        if retryable and outcome.retry_after is not None:
            retry_in = min(86400, math.ceil(outcome.retry_after))
        status = wa.mark_failed(
            conn,
            msg.id,
            outcome.error or "failed",
            retryable,
            retry_in_seconds=retry_in,
            detail=outcome.detail,
        )
        return "failed" if status == "failed" else "retried"

    # ---- the loop -------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        # every claim and record runs in its own transaction as service_role (SET LOCAL), so
        # the connection holds no session state and may be a transaction pooler
        url = self.config.database_url
        return psycopg.connect(url, autocommit=True, **db.connect_kwargs(url))

    def _listen_url(self) -> str | None:
        try:
            return db.direct_url_for(self.config.database_url, self.config.direct_url)
        except psycopg.Error as exc:
            log.warning("could not tell whether the database URL is a pooler (%s); polling", exc)
            return None

    def process_batch(
        self,
        conn: psycopg.Connection[Any],
        http: httpx.Client,
        pool: ThreadPoolExecutor,
        stop: threading.Event,
    ) -> int:
        """Claim one batch, send it, record every outcome; returns how many were claimed."""
        cfg = self.config
        with db.as_service(conn):
            batch = wa.claim_messages(conn, cfg.claim_limit, cfg.lease_seconds, cfg.worker_id or None)
        if not batch:
            return 0
        groups: dict[str, list[wa.OutboundMessage]] = {}
        for msg in batch:
            # one recipient's messages go out in order, one at a time
            groups.setdefault(msg.recipient_phone or msg.recipient_user_id or "", []).append(msg)
        pending: set[Future[list[tuple[wa.OutboundMessage, Outcome]]]] = {
            pool.submit(self._deliver_group, http, g, stop) for g in groups.values()
        }
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                for msg, outcome in f.result():
                    self.record(conn, msg, outcome)
        return len(batch)

    def _client(self) -> httpx.Client:
        limits = httpx.Limits(
            max_connections=self.config.max_in_flight,
            max_keepalive_connections=self.config.max_in_flight,
        )
        return httpx.Client(limits=limits, timeout=self.config.http_timeout)

    def run(self, stop: threading.Event) -> None:
        cfg = self.config
        http = self._http or self._client()
        listen_url = self._listen_url()
        if listen_url is None:
            log.info(
                "no session connection for LISTEN (the database URL is a transaction pooler and"
                " %s is not set): polling every %.2fs",
                db.DIRECT_URL_ENV,
                cfg.idle_wait,
            )
        try:
            with (
                self._connect() as conn,
                ThreadPoolExecutor(cfg.max_in_flight, thread_name_prefix="wa-send") as pool,
            ):
                listener = psycopg.connect(listen_url, autocommit=True) if listen_url else None
                try:
                    if listener is not None:
                        listener.execute("listen " + wa.OUTBOUND_CHANNEL)
                    log.info("sending as %s to %s", cfg.phone_number_id, cfg.messages_url)
                    while not stop.is_set():
                        if self.process_batch(conn, http, pool, stop):
                            continue
                        self._idle(listener, stop)
                finally:
                    if listener is not None:
                        listener.close()
        finally:
            if self._http is None:
                http.close()

    def _idle(self, listener: psycopg.Connection[Any] | None, stop: threading.Event) -> None:
        """Wait for a NOTIFY from enqueue (or idle_wait, for scheduled messages; without a
        LISTEN connection always idle_wait), in short slices so that a stop is noticed quickly."""
        deadline = time.monotonic() + self.config.idle_wait
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if listener is None:
                stop.wait(min(0.5, left))
                continue
            if any(True for _ in listener.notifies(timeout=min(0.5, left), stop_after=1)):
                return

    def drain(self, stop: threading.Event | None = None) -> int:
        """Send until no message is due; returns how many were claimed (tests, benches, CLI)."""
        stop = stop or threading.Event()
        http = self._http or self._client()
        total = 0
        try:
            with (
                self._connect() as conn,
                ThreadPoolExecutor(self.config.max_in_flight, thread_name_prefix="wa-send") as pool,
            ):
                while not stop.is_set():
                    n = self.process_batch(conn, http, pool, stop)
                    if n == 0:
                        break
                    total += n
        finally:
            if self._http is None:
                http.close()
        return total


def make_duty(config: WorkerConfig) -> Duty | None:
    """The worker's factory: a sender when WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are set."""
    overrides = {k.removeprefix("whatsapp_"): v for k, v in config.options.items() if k.startswith("whatsapp_")}
    overrides.setdefault("direct_url", config.direct_url)
    sender_config = SenderConfig.from_env(config.database_url, worker_id=config.worker_id, **overrides)
    if sender_config is None:
        return None
    return WhatsAppSender(sender_config)
