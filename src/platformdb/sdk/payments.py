"""Transactions and payments: create (idempotently), move along the state machine, read.

The rules live in SQL (`create_transaction`, `update_transaction_status`, the triggers on
`transactions`); this module is their typed face. Errors come out as:

- `IdempotencyConflict` (PD001): the idempotency key was used with different parameters;
- `IllegalTransition` (PD002): the state machine forbids the change;
- `NotFound` (PD004): no such transaction or payment method (or not the caller's);
- `PermissionDenied` (42501): e.g. a user creating a transaction for someone else;
- `InvalidInput` (22xxx/23xxx): bad amount, unknown currency or type, …

Act as a role with `platformdb.db.as_service(conn)` / `db.as_user(conn, uid)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from platformdb.errors import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PermissionDenied,
    wrap_errors,
)

__all__ = [
    "IdempotencyConflict",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "PaymentMethod",
    "PermissionDenied",
    "Transaction",
    "TransactionEvent",
    "add_payment_method",
    "create_transaction",
    "currencies",
    "deactivate_payment_method",
    "get_transaction",
    "list_payment_methods",
    "mask_number",
    "next_statuses",
    "recent_transactions",
    "set_default_payment_method",
    "transaction_events",
    "update_transaction_status",
]

TRANSACTION_TYPES = ("debit", "credit", "transfer", "payment", "refund", "fee", "commission")
STATUSES = ("pending", "processing", "completed", "failed", "cancelled", "reversed")
PAYMENT_METHOD_TYPES = ("card", "mobile_money", "bank_account", "wallet", "cash")
# the same machine as public.transaction_next_statuses (tests check they agree)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("processing", "completed", "failed", "cancelled"),
    "processing": ("completed", "failed", "cancelled"),
    "completed": ("reversed",),
    "failed": (),
    "cancelled": (),
    "reversed": (),
}


@dataclass(frozen=True)
class Transaction:
    id: UUID
    created_at: datetime
    transaction_ref: str
    user_id: UUID
    wallet_id: UUID | None
    type: str
    category: str | None
    amount: Decimal
    currency: str
    status: str
    payment_method_id: UUID | None
    source: str | None
    destination: str | None
    correlation_id: str | None
    idempotency_key: str | None
    provider_reference: str | None
    error_code: str | None
    error_message: str | None
    metadata: dict[str, Any]
    initiated_at: datetime
    completed_at: datetime | None
    reversed_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class RecentTransaction:
    """A row of the `user_recent_transactions` view."""

    id: UUID
    transaction_ref: str
    user_id: UUID
    type: str
    category: str | None
    amount: Decimal
    currency: str
    status: str
    payment_method_id: UUID | None
    destination: str | None
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class TransactionEvent:
    id: UUID
    transaction_id: UUID
    user_id: UUID
    previous_status: str | None
    new_status: str
    error_code: str | None
    error_message: str | None
    triggered_by_user_id: UUID | None
    triggered_by_role: str
    triggered_by: str
    created_at: datetime


@dataclass(frozen=True)
class PaymentMethod:
    """A payment method as its owner may see it (never the encrypted details)."""

    id: UUID
    user_id: UUID
    type: str
    provider: str
    masked_number: str | None
    label: str | None
    is_default: bool
    is_active: bool
    created_at: datetime
    updated_at: datetime


CREATE_TRANSACTION = """
select public.create_transaction(
    p_user_id => %(user_id)s, p_type => %(type)s, p_amount => %(amount)s,
    p_currency => %(currency)s, p_idempotency_key => %(idempotency_key)s,
    p_metadata => %(metadata)s::jsonb, p_category => %(category)s, p_wallet_id => %(wallet_id)s,
    p_payment_method_id => %(payment_method_id)s, p_source => %(source)s,
    p_destination => %(destination)s, p_correlation_id => %(correlation_id)s)
"""
UPDATE_TRANSACTION_STATUS = """
select public.update_transaction_status(
    p_transaction_id => %(transaction_id)s, p_new_status => %(new_status)s,
    p_error_message => %(error_message)s, p_error_code => %(error_code)s,
    p_provider_reference => %(provider_reference)s)
"""
GET_TRANSACTION = "select * from public.get_transaction(p_transaction_id => %s)"
RECENT_TRANSACTIONS = """
select id, transaction_ref, user_id, type, category, amount, currency, status,
       payment_method_id, destination, error_message, created_at, completed_at
  from public.user_recent_transactions
 where (%(user_id)s::uuid is null or user_id = %(user_id)s::uuid)
 order by created_at desc
 limit %(limit)s
"""
TRANSACTION_EVENTS = """
select id, transaction_id, user_id, previous_status, new_status, error_code, error_message,
       triggered_by_user_id, triggered_by_role, triggered_by, created_at
  from public.transaction_events
 where transaction_id = %s
 order by created_at, id
"""
NEXT_STATUSES = "select public.transaction_next_statuses(%s)"
CURRENCIES = "select code, minor_units from public.currencies order by code"
ADD_PAYMENT_METHOD = """
insert into public.payment_methods (user_id, type, provider, masked_number, label, is_default)
values (%(user_id)s, %(type)s, %(provider)s, %(masked_number)s, %(label)s, false)
returning id
"""
SET_ENCRYPTED_DETAILS = "update public.payment_methods set encrypted_details = %s where id = %s"
# never `select *`: encrypted_details is not selectable by authenticated
LIST_PAYMENT_METHODS = """
select id, user_id, type, provider, masked_number, label, is_default, is_active, created_at,
       updated_at
  from public.payment_methods
 where user_id = %(user_id)s and (is_active or %(include_inactive)s)
 order by is_default desc, created_at
"""
SET_DEFAULT_PAYMENT_METHOD = "select public.set_default_payment_method(p_payment_method_id => %s)"
DEACTIVATE_PAYMENT_METHOD = "update public.payment_methods set is_active = false where id = %s and is_active"

_DIGITS = re.compile(r"\d")


def mask_number(number: str, visible: int = 4) -> str:
    """The display form stored in `masked_number`: every digit but the last `visible` masked.

    `mask_number("+250788123456")` → `"********3456"`.
    """
    if not 0 <= visible <= 4:
        raise InvalidInput("visible must be between 0 and 4")
    digits = _DIGITS.findall(number)
    if len(digits) <= visible:
        raise InvalidInput("number: too short to mask")
    shown = "".join(digits[len(digits) - visible :]) if visible else ""
    return "*" * (len(digits) - visible) + shown


def create_transaction(
    conn: psycopg.Connection[Any],
    user_id: UUID | str,
    type: str,
    amount: Decimal | int | str,
    currency: str = "RWF",
    idempotency_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    category: str | None = None,
    wallet_id: UUID | str | None = None,
    payment_method_id: UUID | str | None = None,
    source: str | None = None,
    destination: str | None = None,
    correlation_id: str | None = None,
) -> UUID:
    """Create a pending transaction through `create_transaction`; returns its id.

    With an `idempotency_key`, repeating the call returns the same id (across months, under
    concurrency); repeating it with different parameters raises `IdempotencyConflict`.
    Pass amounts as `Decimal`, `int` or `str` — a float would carry binary noise.
    """
    if isinstance(amount, float):
        raise InvalidInput("amount: pass a Decimal, int or str, not a float")
    with wrap_errors():
        row = conn.execute(
            CREATE_TRANSACTION,
            {
                "user_id": _uuid_or_none(user_id),
                "type": type,
                "amount": Decimal(amount),
                "currency": currency,
                "idempotency_key": idempotency_key,
                "metadata": json.dumps(dict(metadata or {})),
                "category": category,
                "wallet_id": _uuid_or_none(wallet_id),
                "payment_method_id": _uuid_or_none(payment_method_id),
                "source": source,
                "destination": destination,
                "correlation_id": correlation_id,
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def update_transaction_status(
    conn: psycopg.Connection[Any],
    transaction_id: UUID | str,
    new_status: str,
    error_message: str | None = None,
    *,
    error_code: str | None = None,
    provider_reference: str | None = None,
) -> bool:
    """Move a transaction along the state machine. True when it changed, False when it
    already had `new_status`. Raises `IllegalTransition` for a forbidden change."""
    with wrap_errors():
        row = conn.execute(
            UPDATE_TRANSACTION_STATUS,
            {
                "transaction_id": _uuid_or_none(transaction_id),
                "new_status": new_status,
                "error_message": error_message,
                "error_code": error_code,
                "provider_reference": provider_reference,
            },
        ).fetchone()
    return bool(row and row[0])


def get_transaction(conn: psycopg.Connection[Any], transaction_id: UUID | str) -> Transaction | None:
    """The transaction (one partition read through the directory), or None when it does not
    exist or the caller may not see it."""
    with wrap_errors(), conn.cursor(row_factory=class_row(Transaction)) as cur:
        return cur.execute(GET_TRANSACTION, (_uuid_or_none(transaction_id),)).fetchone()


def recent_transactions(
    conn: psycopg.Connection[Any], user_id: UUID | str | None = None, limit: int = 50
) -> list[RecentTransaction]:
    """Rows of `user_recent_transactions` (last 30 days), newest first. A signed-in user
    sees only their own whatever `user_id` says; a service may filter by `user_id`."""
    with wrap_errors(), conn.cursor(row_factory=class_row(RecentTransaction)) as cur:
        return cur.execute(RECENT_TRANSACTIONS, {"user_id": _uuid_or_none(user_id), "limit": limit}).fetchall()


def transaction_events(conn: psycopg.Connection[Any], transaction_id: UUID | str) -> list[TransactionEvent]:
    """The status history of a transaction, oldest first (creation included)."""
    with wrap_errors(), conn.cursor(row_factory=class_row(TransactionEvent)) as cur:
        return cur.execute(TRANSACTION_EVENTS, (_uuid_or_none(transaction_id),)).fetchall()


def next_statuses(status: str) -> tuple[str, ...]:
    """The statuses a transaction in `status` may move to (the SQL state machine's copy)."""
    if status not in TRANSITIONS:
        raise InvalidInput(f"status: unknown status {status!r}")
    return TRANSITIONS[status]


def currencies(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Accepted ISO 4217 codes and their minor units."""
    with wrap_errors():
        return {code: int(units) for code, units in conn.execute(CURRENCIES).fetchall()}


def add_payment_method(
    conn: psycopg.Connection[Any],
    user_id: UUID | str,
    type: str,
    provider: str,
    masked_number: str | None,
    *,
    label: str | None = None,
    is_default: bool = False,
    encrypted_details: bytes | None = None,
) -> UUID:
    """Add a payment method; returns its id.

    A signed-in user adds their own (without `encrypted_details`: only a service may write
    those — encrypt them before passing them here). With `is_default` it becomes the only
    default of the user. `masked_number` must show at most 4 digits (see `mask_number`).
    """
    with wrap_errors(), conn.transaction():
        row = conn.execute(
            ADD_PAYMENT_METHOD,
            {
                "user_id": _uuid_or_none(user_id),
                "type": type,
                "provider": provider,
                "masked_number": masked_number,
                "label": label,
            },
        ).fetchone()
        assert row is not None
        pm_id = UUID(str(row[0]))
        if encrypted_details is not None:
            conn.execute(SET_ENCRYPTED_DETAILS, (encrypted_details, pm_id))
        if is_default:
            conn.execute(SET_DEFAULT_PAYMENT_METHOD, (pm_id,))
    return pm_id


def list_payment_methods(
    conn: psycopg.Connection[Any], user_id: UUID | str, include_inactive: bool = False
) -> list[PaymentMethod]:
    """A user's payment methods, default first (never the encrypted details)."""
    with wrap_errors(), conn.cursor(row_factory=class_row(PaymentMethod)) as cur:
        return cur.execute(
            LIST_PAYMENT_METHODS,
            {"user_id": _uuid_or_none(user_id), "include_inactive": include_inactive},
        ).fetchall()


def set_default_payment_method(conn: psycopg.Connection[Any], payment_method_id: UUID | str) -> bool:
    """Make it the user's only default. True when it changed, False when it already was."""
    with wrap_errors():
        row = conn.execute(SET_DEFAULT_PAYMENT_METHOD, (_uuid_or_none(payment_method_id),)).fetchone()
    return bool(row and row[0])


def deactivate_payment_method(conn: psycopg.Connection[Any], payment_method_id: UUID | str) -> bool:
    """Remove a payment method from use: it stops being default and its encrypted details
    are wiped. (Deleting is refused once a transaction used it.) True when it changed."""
    with wrap_errors():
        cur = conn.execute(DEACTIVATE_PAYMENT_METHOD, (_uuid_or_none(payment_method_id),))
    return cur.rowcount == 1


def _uuid_or_none(value: UUID | str | None) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError as exc:
        raise InvalidInput(f"not a uuid: {value!r}") from exc
