"""The dashboard and the webhooks: one Flask blueprint per feature. Views call the same service
functions the CLI calls and hold no rules of their own.

May import every package below it: jobs, imports, reporting, conversation, contact, sessions,
sending, care, outbox, content, db and engine.
"""
