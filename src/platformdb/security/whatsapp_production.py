"""Security matrix rows for the WhatsApp webhook quarantine and templates (20260401210000).

Items of signed notifications that could not be stored: raw user data for the backend to
inspect and retry (the webhook receiver and `platformdb whatsapp requeue-quarantine` act as
service_role). Nobody else reads them; deleting is the table owner's.
"""

from platformdb.security import TableAccess

MIGRATION = "20260401210000_whatsapp_production"

TABLES = [
    TableAccess(
        table="whatsapp_quarantine",
        seed="""insert into public.whatsapp_quarantine
                    (notification_id, item_path, item_kind, item, reason)
                values (encode(sha256(convert_to(%(owner)s::text, 'UTF8')), 'hex'),
                        'entry[0].changes[0].value.messages[0]', 'message', '{}', 'seed')
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.whatsapp_quarantine
                      (notification_id, item_path, item_kind, item, reason)
                  values (encode(sha256(convert_to(%(owner)s::text, 'UTF8')), 'hex'),
                          'entry[0].changes[0].value.messages[1]', 'message', '{}', 'insert')""",
        update="attempts = attempts + 1",
        service="siu",
        why="webhook items that could not be stored: for the backend to inspect and retry",
    ),
    TableAccess(
        table="whatsapp_templates",
        seed="""insert into public.whatsapp_templates (name, language, status)
                values ('seed_' || replace(%(owner)s::text, '-', ''), 'en_US', 'APPROVED')
                returning name""",
        match="name = %(key)s",
        insert="""insert into public.whatsapp_templates (name, language, status)
                  values ('ins_' || replace(%(owner)s::text, '-', ''), 'en_US', 'APPROVED')""",
        update="status = 'PAUSED'",
        service="siu",
        why="the account's message templates: synced and read by services",
    ),
]
