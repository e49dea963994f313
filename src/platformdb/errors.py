"""The project's exceptions, mapped from PostgreSQL SQLSTATEs in one place.

The SQL functions raise standard SQLSTATEs for bad input (22023 invalid_parameter_value,
22004 null_value_not_allowed, 22003 numeric_value_out_of_range, 42501 insufficient_privilege)
and the project's own class ``PD`` for domain errors:

| SQLSTATE | exception                | meaning                                              |
|----------|--------------------------|------------------------------------------------------|
| PD001    | IdempotencyConflict      | same idempotency key, different parameters           |
| PD002    | IllegalTransition        | a state change the state machine forbids             |
| PD003    | WrongExpectedVersion     | optimistic concurrency: the stream moved             |
| PD004    | NotFound                 | the referenced row does not exist (or is not yours)  |
| PD005    | LeaseLost                | the caller no longer holds the claim it acts on      |
| PD006    | AppendOnly               | an UPDATE/DELETE on an append-only table             |
| PDW01    | OutsideServiceWindow     | a free-form WhatsApp message after the user's        |
|          |                          | customer-service window closed: send a template      |
| PDW02    | TemplateMismatch         | a WhatsApp template that is not synced, not approved |
|          |                          | or given the wrong number of parameters              |
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


class PlatformDBError(Exception):
    """Base class of every platformdb error."""

    sqlstate: str | None = None

    def __init__(self, message: str, *, sqlstate: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.hint = hint


class InvalidInput(PlatformDBError):
    """Bad input: unknown enum value, bad amount, bad phone number, out-of-range value."""


class PermissionDenied(PlatformDBError):
    """The caller's role or user may not do this."""


class IdempotencyConflict(PlatformDBError):
    """The idempotency key was used before with different parameters."""


class IllegalTransition(PlatformDBError):
    """The state machine does not allow this change."""


class WrongExpectedVersion(PlatformDBError):
    """Optimistic concurrency failure on an event stream."""


class NotFound(PlatformDBError):
    """The row does not exist or is not visible to the caller."""


class LeaseLost(PlatformDBError):
    """The claim/lease the caller acts on has expired or belongs to another worker."""


class AppendOnly(PlatformDBError):
    """The table refuses UPDATE and DELETE."""


class OutsideServiceWindow(PlatformDBError):
    """A free-form WhatsApp message outside the user's customer-service window (PDW01):
    WhatsApp would refuse it (131047); an approved template is allowed."""


class TemplateMismatch(PlatformDBError):
    """A WhatsApp template message that the synced templates refuse (PDW02): unknown name or
    language, not approved, or the wrong number of parameters for a component."""


class UniqueViolation(PlatformDBError):
    """A unique constraint was violated."""


class DatabaseUnavailable(PlatformDBError):
    """The database could not be reached."""


SQLSTATE_MAP: dict[str, type[PlatformDBError]] = {
    "PD001": IdempotencyConflict,
    "PD002": IllegalTransition,
    "PD003": WrongExpectedVersion,
    "PD004": NotFound,
    "PD005": LeaseLost,
    "PD006": AppendOnly,
    "PDW01": OutsideServiceWindow,
    "PDW02": TemplateMismatch,
    "42501": PermissionDenied,
    "23505": UniqueViolation,
    "57P01": DatabaseUnavailable,  # admin_shutdown
    "57P02": DatabaseUnavailable,  # crash_shutdown
    "57P03": DatabaseUnavailable,  # cannot_connect_now
}
# whole classes
CLASS_MAP: dict[str, type[PlatformDBError]] = {
    "22": InvalidInput,  # data exception
    "23": InvalidInput,  # integrity constraint (check, not null, fk)
    "08": DatabaseUnavailable,
}


# A Citus coordinator reports a constraint violation that a shard raised during a COPY (the
# path of INSERT … SELECT into a distributed table) with the worker's message but without its
# SQLSTATE (XX000): the message tells the class it had on the shard.
_CITUS_COPY_VIOLATION = {
    "violates check constraint": "23514",
    "violates not-null constraint": "23502",
    "violates unique constraint": "23505",
    "violates foreign key constraint": "23503",
}


def from_psycopg(exc: psycopg.Error) -> PlatformDBError:
    state = exc.sqlstate or ""
    diag = exc.diag
    message = (diag.message_primary if diag else None) or str(exc)
    if state == "XX000":
        state = next((s for m, s in _CITUS_COPY_VIOLATION.items() if m in message), state)
    cls = SQLSTATE_MAP.get(state) or CLASS_MAP.get(state[:2]) or PlatformDBError
    err = cls(message, sqlstate=state or None, hint=diag.message_hint if diag else None)
    err.__cause__ = exc
    return err


@contextmanager
def wrap_errors() -> Iterator[None]:
    """Turn psycopg errors raised inside the block into platformdb exceptions."""
    try:
        yield
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
            raise DatabaseUnavailable(str(exc)) from exc
        raise from_psycopg(exc) from exc
