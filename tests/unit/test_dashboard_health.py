"""Red / amber / green per area (platformdb.dashboard.health) and the SVG charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from platformdb.dashboard import charts, health


def queue(name: str = "q", age: float = 1.0, dead: int = 0, expired: int = 0, depth: int = 3) -> dict:
    return {
        "queue_name": name,
        "depth": depth,
        "dead_letters": dead,
        "oldest_ready_age_seconds": age,
        "expired_leases": expired,
    }


def test_queues() -> None:
    assert health.queues([], "v").status == health.GREY
    assert health.queues([queue()], "v").status == health.GREEN
    assert health.queues([queue(age=health.QUEUE_AGE_AMBER)], "v").status == health.AMBER
    assert health.queues([queue(age=health.QUEUE_AGE_RED)], "v").status == health.RED
    assert health.queues([queue(dead=1)], "v").status == health.AMBER
    a = health.queues([queue(expired=2), queue("other", dead=1)], "v")
    assert a.status == health.RED and any("expired leases" in r for r in a.reasons)
    assert [f.value for f in a.figures] == [6, 1.0, 1]


def test_services() -> None:
    row = lambda n, s: {"service_name": n, "health_status": s}  # noqa: E731
    assert health.services([], "v").status == health.GREY
    assert health.services([row("a", "healthy")], "v").status == health.GREEN
    assert health.services([row("a", "healthy"), row("b", "warning")], "v").status == health.AMBER
    assert health.services([row("a", "warning"), row("b", "critical")], "v").status == health.RED
    assert health.services([row("a", "unhealthy")], "v").status == health.RED


def test_payments() -> None:
    def vol(completed: int, failed: int) -> list[dict]:
        return [{"status": "completed", "transactions": completed}, {"status": "failed", "transactions": failed}]

    calm = [{"status": "pending", "open_count": 1, "oldest_age_seconds": 10}]
    assert health.payments([], [{"status": "pending", "open_count": 0, "oldest_age_seconds": 0}], "v", "o").status == (
        health.GREY
    )
    assert health.payments(vol(95, 5), calm, "v", "o").status == health.GREEN
    assert health.payments(vol(85, 15), calm, "v", "o").status == health.AMBER
    assert health.payments(vol(70, 30), calm, "v", "o").status == health.RED
    stuck = [{"status": "processing", "open_count": 1, "oldest_age_seconds": health.PAYMENT_PROCESSING_RED}]
    assert health.payments(vol(95, 5), stuck, "v", "o").status == health.RED
    # an old pending payment alone is amber; no open one at all cannot be stuck
    old = [{"status": "pending", "open_count": 2, "oldest_age_seconds": health.PAYMENT_PENDING_AMBER}]
    assert health.payments(vol(95, 5), old, "v", "o").status == health.AMBER
    none_open = [{"status": "processing", "open_count": 0, "oldest_age_seconds": 0}]
    assert health.payments(vol(95, 5), none_open, "v", "o").status == health.GREEN


def test_whatsapp_cache_partitions_metrics() -> None:
    wa = {"sent_24h": 100, "failed_24h": 1, "depth": 0, "oldest_pending_age_seconds": 0, "expired_leases": 0}
    assert health.whatsapp({}, "v").status == health.GREY
    assert health.whatsapp(wa, "v").status == health.GREEN
    assert health.whatsapp({**wa, "failed_24h": 5}, "v").status == health.AMBER
    assert health.whatsapp({**wa, "failed_24h": 20}, "v").status == health.RED
    assert health.whatsapp({**wa, "oldest_pending_age_seconds": health.WA_AGE_RED}, "v").status == health.RED

    c = lambda h, m: [{"hits_24h": h, "misses_24h": m, "live_entries": 1}]  # noqa: E731
    assert health.cache(c(0, 0), {}, "v", "r").status == health.GREY
    assert health.cache(c(90, 10), {}, "v", "r").status == health.GREEN
    assert health.cache(c(70, 30), {}, "v", "r").status == health.AMBER
    assert health.cache(c(40, 60), {}, "v", "r").status == health.RED

    p = lambda covered, ahead, default=0: {  # noqa: E731
        "parent": "t",
        "current_month_covered": covered,
        "months_ahead": ahead,
        "default_rows": default,
    }
    assert health.partitions([p(True, 3)], "v").status == health.GREEN
    assert health.partitions([p(True, 2)], "v").status == health.AMBER
    assert health.partitions([p(True, 3, default=5)], "v").status == health.AMBER
    assert health.partitions([p(True, 0)], "v").status == health.RED
    assert health.partitions([p(False, -1)], "v").status == health.RED

    s = lambda p50, p95: {  # noqa: E731
        "service_name": "s",
        "metric_name": "m",
        "metric_type": "latency",
        "p50": p50,
        "p95": p95,
        "samples": 5,
    }
    assert health.metrics([], [], "v").status == health.GREY
    assert health.metrics([s(100, 150)], [s(100, 150)], "v").status == health.GREEN
    assert health.metrics([s(100, 250)], [s(100, 150)], "v").status == health.AMBER
    assert health.metrics([s(100, 450)], [s(100, 150)], "v").status == health.RED
    assert health.metrics([], [s(100, 150)], "v").status == health.AMBER  # nothing recent


def test_charts_escape_text_and_show_gaps() -> None:
    t0 = datetime(2026, 4, 1, tzinfo=UTC)
    pts = [(t0 + timedelta(minutes=i), None if i == 2 else float(i)) for i in range(5)]
    svg = str(charts.line_chart([charts.Series("<script>x</script>", pts)], label="a&b", x_start=t0, x_end=pts[-1][0]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and 'aria-label="a&amp;b"' in svg
    path = svg.split('d="', 1)[1].split('"', 1)[0]
    assert path.count("M") == 2  # the gap splits the line in two
    empty = str(charts.line_chart([charts.Series("s", [(t0, None)])], label="e", x_start=t0, x_end=t0))
    assert 'class="chart empty"' in empty and "<path" not in empty
    bars = str(charts.stacked_bars([t0], {"ok": [3.0], "failed": [1.0]}, label="b", bucket_seconds=60))
    assert bars.count('<rect class="bar') == 2
    assert charts.fmt_number(12345) == "12.3k" and charts.fmt_number(87_500_000) == "87.5M"
    ticks = charts.time_ticks(t0, t0 + timedelta(hours=6))
    assert 2 <= len(ticks) <= 7 and all(t.minute == 0 for t in ticks)
