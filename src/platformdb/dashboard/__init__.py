"""The web dashboard and the Prometheus endpoint (SPEC §4): `platformdb dashboard`.

- `app.py`: the Starlette app (pages, `/metrics`, `/sql/<name>`, the redrive action);
- `queries.py`: every query it runs — calls of the monitoring functions of migration
  20260401170000, which are all the read-only role `platformdb_monitor` may execute;
- `access.py`: the roles, the read-only connection pool, the one audited write;
- `health.py`: red / amber / green per area; `charts.py`: inline SVG charts;
- `exporter.py`: the Prometheus families; `cli.py`: the command; `live.py`: the trickle of
  activity `make demo` keeps running; `demo_worker.py`: handlers for the demo's queues.
"""

from platformdb.dashboard.app import Settings, create_app

__all__ = ["Settings", "create_app"]
