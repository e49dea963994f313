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
-- (the blocks below read the key's transaction first and then call the function, each its own
-- statement: on Citus a query on one shard of a distributed table is run on that shard whole,
-- and a function writing other shards cannot run there)
do $check$
declare
    v_again uuid;
    v_tx uuid;
begin
    v_again := public.create_transaction(p_user_id => '00000000-0000-4000-8000-00000000a11c',
        p_type => 'payment', p_amount => 1500, p_currency => 'RWF',
        p_idempotency_key => 'platformdb-verify');
    select k.transaction_id into v_tx
      from public.transaction_idempotency_keys k where k.idempotency_key = 'platformdb-verify';
    if v_again is distinct from v_tx then
        raise exception 'the same idempotency key returned another transaction';
    end if;
end
$check$;

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
do $check$
declare
    v_tx uuid;
begin
    select k.transaction_id into v_tx
      from public.transaction_idempotency_keys k where k.idempotency_key = 'platformdb-verify';
    if not (public.update_transaction_status(p_transaction_id => v_tx, p_new_status => 'processing')
            and public.update_transaction_status(p_transaction_id => v_tx, p_new_status => 'completed')) then
        raise exception 'pending -> processing -> completed was not applied';
    end if;
end
$check$;

-- check: a completed transaction cannot go back to pending (PD002)
do $check$
declare
    v_tx uuid;
begin
    select k.transaction_id into v_tx
      from public.transaction_idempotency_keys k where k.idempotency_key = 'platformdb-verify';
    begin
        perform public.update_transaction_status(p_transaction_id => v_tx, p_new_status => 'pending');
        raise exception 'completed -> pending was accepted';
    exception when sqlstate 'PD002' then
        null;
    end;
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
do $check$
declare
    v_tx uuid;
    v_status text;
begin
    select k.transaction_id into v_tx
      from public.transaction_idempotency_keys k where k.idempotency_key = 'platformdb-verify';
    select t.status into v_status from public.get_transaction(p_transaction_id => v_tx) t;
    if v_status is distinct from 'completed' then
        raise exception 'get_transaction did not find the completed transaction (got %)', v_status;
    end if;
end
$check$;

-- check: transaction_summary counts it
select count(*) >= 1 from public.transaction_summary where currency = 'RWF' and status = 'completed';

-- check: user_recent_transactions answers
select count(*) >= 1 from public.user_recent_transactions
 where user_id = '00000000-0000-4000-8000-00000000a11c';
