"""Security matrix rows for §3.2 WhatsApp sessions and messages.

A signed-in user reads their own session (user_id = auth.uid()), every column but the
session_token; everything else is the backend's (the webhook receiver and the sender act as
service_role). Retention deletes of queue and inbound rows are the table owner's
(purge_whatsapp_history), so service_role cannot delete them.
"""

from platformdb.security import TableAccess

MIGRATION = "20260401110000_whatsapp_sessions"

TABLES = [
    TableAccess(
        table="whatsapp_sessions",
        seed="""insert into public.whatsapp_sessions (phone_number, user_id)
                values ('+250788000001', %(owner)s) returning id""",
        match="id = %(key)s",
        insert="""insert into public.whatsapp_sessions (phone_number, user_id)
                  values ('+250788000002', %(owner)s)""",
        update="conversation_state = 'tampered'",
        owner="s",
        service="siud",
        why="a user reads their own session (not its token); written by services only",
    ),
    TableAccess(
        table="whatsapp_message_queue",
        seed="""insert into public.whatsapp_message_queue (recipient_phone, message_type, payload)
                values ('+250788000001', 'text', jsonb_build_object('body', %(owner)s::text))
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.whatsapp_message_queue (recipient_phone, message_type, payload)
                  values ('+250788000002', 'text', jsonb_build_object('body', %(owner)s::text))""",
        update="priority = 1",
        service="siu",
        why="outbound messages: enqueued and sent by services; purged by the owner",
    ),
    TableAccess(
        table="whatsapp_inbound_messages",
        seed="""insert into public.whatsapp_inbound_messages
                    (whatsapp_message_id, from_phone, message_type, payload)
                values ('wamid.seed-' || %(owner)s::text, '+250788000001', 'text', '{}')
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.whatsapp_inbound_messages
                      (whatsapp_message_id, from_phone, message_type, payload)
                  values ('wamid.ins-' || %(owner)s::text, '+250788000002', 'text', '{}')""",
        update="handled_at = now()",
        service="siu",
        why="users' messages as the webhook recorded them: for the backend to handle",
    ),
    TableAccess(
        table="whatsapp_status_backlog",
        seed="""insert into public.whatsapp_status_backlog (whatsapp_message_id, status, status_at)
                values ('wamid.seed-' || %(owner)s::text, 'delivered', now())
                returning whatsapp_message_id""",
        match="whatsapp_message_id = %(key)s",
        insert="""insert into public.whatsapp_status_backlog (whatsapp_message_id, status, status_at)
                  values ('wamid.ins-' || %(owner)s::text, 'read', now())""",
        update="status_at = now()",
        service="sid",
        why="delivery statuses waiting for their message: written and consumed by services",
    ),
]
