"""WhatsApp Cloud API: the webhook receiver (`webhook`), the sender (`sender`), the wire
shapes (`payloads`), a local Graph API stand-in (`graph_stub`) and the CLI (`cli`)."""
