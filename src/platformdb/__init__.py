"""platformdb: the PostgreSQL infrastructure layer of a WhatsApp-first platform."""

__version__ = "0.1.0"
