"""Security matrix rows for §3.3 transactions and payments.

Money moves only through `create_transaction` / `update_transaction_status`: no role has
INSERT, UPDATE or DELETE on the transaction tables, not even service_role. Seeds run as the
table owner and go through the same function (the owner counts as a service).
"""

from platformdb.security import TableAccess

MIGRATION = "20260401120000_transactions_payments"

# SECURITY DEFINER functions a signed-in user may execute (platformdb verify,
# `definer_executable`): each checks who calls and what for itself.
DEFINER_EXECUTE = {
    "create_transaction": "authenticated: their own payment, transfer or debit only (p_user_id ="
    " auth.uid()); wallets are the service's: a user's p_wallet_id is refused (42501)",
    "update_transaction_status": "authenticated: cancel their own pending payment, transfer or debit;"
    " only the status changes (error and provider fields from a user: 42501)",
}

_CREATE = """select public.create_transaction(p_user_id => %(owner)s, p_type => 'payment',
                 p_amount => 1500, p_currency => 'RWF',
                 p_idempotency_key => 'matrix-' || %(owner)s::text)"""

TABLES = [
    TableAccess(
        table="transactions",
        seed=_CREATE,
        match="id = %(key)s",
        insert="""insert into public.transactions (user_id, type, amount, currency)
                  values (%(owner)s, 'credit', 1000000, 'RWF')""",
        update="status = 'completed'",
        owner="s",
        service="s",
        why="money: read by its owner and services; written only through create_transaction"
        " and update_transaction_status",
    ),
    TableAccess(
        table="transaction_events",
        seed=_CREATE,
        match="transaction_id = %(key)s",
        insert="""insert into public.transaction_events
                      (transaction_id, user_id, previous_status, new_status, triggered_by_role,
                       triggered_by)
                  values (%(key)s, %(owner)s, 'pending', 'completed', 'forged', 'forged')""",
        update="new_status = 'completed'",
        owner="s",
        service="s",
        why="append-only status history, written by the transactions triggers;"
        " a user reads their own",
    ),
    TableAccess(
        table="transaction_directory",
        seed=_CREATE,
        match="id = %(key)s",
        insert="""insert into public.transaction_directory (id, transaction_ref, user_id, created_at)
                  values (gen_random_uuid(), 'TX-FORGED-' || left(%(owner)s::text, 8),
                          %(owner)s, now())""",
        # a constant, not gen_random_uuid(): Citus refuses volatile calls in an UPDATE of a
        # distributed table before privileges are checked (the cell would test Citus instead)
        update="transaction_ref = 'TX-TAMPERED-' || left(%(owner)s::text, 8)",
        owner="s",
        service="s",
        why="global id/reference index written by the insert trigger; a user reads their own",
    ),
    TableAccess(
        table="transaction_idempotency_keys",
        seed=_CREATE,
        match="transaction_id = %(key)s",
        insert="""insert into public.transaction_idempotency_keys
                      (idempotency_key, transaction_id, transaction_created_at, user_id)
                  values ('forged-' || %(owner)s::text, gen_random_uuid(), now(), %(owner)s)""",
        update="transaction_id = %(owner)s",
        service="s",
        why="idempotency bookkeeping of create_transaction; services may inspect it",
    ),
    TableAccess(
        table="payment_methods",
        seed="""insert into public.payment_methods
                    (user_id, type, provider, masked_number, encrypted_details)
                values (%(owner)s, 'mobile_money', 'mtn_momo', '********3456', '\\x01'::bytea)
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.payment_methods (user_id, type, provider, masked_number)
                  values (%(owner)s, 'mobile_money', 'airtel_money', '********9999')""",
        update="label = 'renamed'",
        owner="siud",
        service="siud",
        why="the owner manages their own (never the encrypted details: column privileges);"
        " services manage all",
    ),
    TableAccess(
        table="currencies",
        seed="""insert into public.currencies (code, minor_units, name)
                values ('XTS', 2, 'testing code') returning code""",
        match="code = %(key)s",
        insert="""insert into public.currencies (code, minor_units, name)
                  values ('XXX', 0, 'no currency')""",
        update="minor_units = 0",
        owner="s",
        other="s",
        service="s",
        why="reference data readable by signed-in users and services; changed by migrations",
    ),
]
