-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- check: currencies include RWF with 0 decimal places and USD with 2
select (select minor_units from public.currencies where code = 'RWF') = 0
   and (select minor_units from public.currencies where code = 'USD') = 2;

-- check: create_transaction returns an id for an RWF payment
select public.create_transaction(p_user_id => '00000000-0000-4000-8000-00000000a11c',
    p_type => 'payment', p_amount => 1500, p_currency => 'RWF',
    p_idempotency_key => 'platformdb-verify', p_metadata => '{"verify": true}') is not null;

-- check: the same idempotency key returns the same transaction
select public.create_transaction(p_user_id => '00000000-0000-4000-8000-00000000a11c',
    p_type => 'payment', p_amount => 1500, p_currency => 'RWF',
    p_idempotency_key => 'platformdb-verify')
     = (select transaction_id from public.transaction_idempotency_keys
         where idempotency_key = 'platformdb-verify');

-- check: the same key with another amount is refused with PD001
do $check$
begin
    perform public.create_transaction(p_user_id => '00000000-0000-4000-8000-00000000a11c',
        p_type => 'payment', p_amount => 1600, p_currency => 'RWF',
        p_idempotency_key => 'platformdb-verify');
    raise exception 'an idempotency key was reused with another amount';
exception when sqlstate 'PD001' then
    null;
end
$check$;

-- check: an over-precise RWF amount is refused with 22023
do $check$
begin
    perform public.create_transaction(p_user_id => '00000000-0000-4000-8000-00000000a11c',
        p_type => 'payment', p_amount => 10.5, p_currency => 'RWF');
    raise exception 'an RWF amount with decimals was accepted';
exception when sqlstate '22023' then
    null;
end
$check$;

-- check: the transaction moves pending -> processing -> completed
select public.update_transaction_status(p_transaction_id => k.transaction_id, p_new_status => 'processing')
   and public.update_transaction_status(p_transaction_id => k.transaction_id, p_new_status => 'completed')
  from public.transaction_idempotency_keys k where k.idempotency_key = 'platformdb-verify';

-- check: a completed transaction cannot go back to pending (PD002)
do $check$
begin
    perform public.update_transaction_status(p_transaction_id => k.transaction_id,
                                             p_new_status => 'pending')
       from public.transaction_idempotency_keys k where k.idempotency_key = 'platformdb-verify';
    raise exception 'completed -> pending was accepted';
exception when sqlstate 'PD002' then
    null;
end
$check$;

-- check: every status change is in transaction_events and completed_at is set
-- (the key's transaction first, then its rows: on Citus the keys and the transactions are in
-- different co-location groups, which a join cannot span)
select (select array_agg(e.new_status order by e.created_at)
          from public.transaction_events e
         where e.transaction_id = (select k.transaction_id from public.transaction_idempotency_keys k
                                    where k.idempotency_key = 'platformdb-verify'))
       = array['pending', 'processing', 'completed']
   and (select t.completed_at is not null
          from public.transactions t
         where (t.id, t.created_at) = (select k.transaction_id, k.transaction_created_at
                                         from public.transaction_idempotency_keys k
                                        where k.idempotency_key = 'platformdb-verify'));

-- check: get_transaction finds it through the directory
select count(*) = 1 from public.transaction_idempotency_keys k,
       lateral public.get_transaction(p_transaction_id => k.transaction_id) t
 where k.idempotency_key = 'platformdb-verify' and t.status = 'completed';

-- check: transaction_summary counts it
select count(*) >= 1 from public.transaction_summary where currency = 'RWF' and status = 'completed';

-- check: user_recent_transactions answers
select count(*) >= 1 from public.user_recent_transactions
 where user_id = '00000000-0000-4000-8000-00000000a11c';
