-- platformdb 20260401120000 down: the exact reverse of transactions_payments.
-- Drops only what the up file created (partitions go with their parent, triggers with
-- their table) and its partition_settings row.
-- Rolling back deletes every transaction: only for development or a failed deploy.
BEGIN;

drop view public.user_recent_transactions;
drop view public.transaction_summary;
drop function public.get_transaction(uuid);
drop table public.transactions;
drop table public.transaction_events;
drop table public.transaction_idempotency_keys;
drop table public.transaction_directory;
drop table public.payment_methods;
drop table public.currencies;
delete from public.partition_settings where table_name = 'transactions';
drop function public.payments_refuse_change();
drop function public.payment_methods_before_write();
drop function public.transactions_after_status_change();
drop function public.transactions_before_update();
drop function public.transactions_before_insert();
drop function public.set_default_payment_method(uuid);
drop function public.update_transaction_status(uuid, text, text, text, text);
drop function public.create_transaction(uuid, text, numeric, text, text, jsonb, text, uuid, uuid,
                                        text, text, text);
drop function public.transaction_next_statuses(text);
drop function public.next_transaction_ref();
drop sequence public.transaction_ref_seq;

COMMIT;
