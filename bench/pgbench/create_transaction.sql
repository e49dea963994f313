-- payments: a new RWF payment with a fresh idempotency key (SPEC §1 create_transaction)
\set amt random(100, 100000)
select public.create_transaction(
    p_user_id => gen_random_uuid(), p_type => 'payment', p_amount => :amt,
    p_currency => 'RWF', p_idempotency_key => gen_random_uuid()::text);
