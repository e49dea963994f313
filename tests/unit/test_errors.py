"""platformdb.errors: the SDK's exception for a PostgreSQL error."""

from __future__ import annotations

import psycopg

from platformdb import errors


def test_a_constraint_violation_reported_by_citus_as_xx000_keeps_its_class() -> None:
    """A Citus coordinator reports a violation raised by a shard during a COPY (INSERT … SELECT
    into a distributed table) with the shard's message but SQLSTATE XX000."""
    exc = psycopg.errors.InternalError_(
        'new row for relation "system_metrics_p202612_102020" violates check constraint'
        ' "system_metrics_metric_type_valid"'
    )
    err = errors.from_psycopg(exc)
    assert isinstance(err, errors.InvalidInput)
    assert err.sqlstate == "23514"
    assert "system_metrics_metric_type_valid" in str(err)


def test_another_internal_error_stays_a_plain_error() -> None:
    err = errors.from_psycopg(psycopg.errors.InternalError_("cache lookup failed for relation 1"))
    assert type(err) is errors.PlatformDBError
    assert err.sqlstate == "XX000"
