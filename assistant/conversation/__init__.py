"""Talking with a participant: the inbound unit of work, the router that decides what a text is,
and flow sessions (start, resume, apply the engine's events, end).

May import contact, care, outbox, content, db and engine; the web layer calls it, never the reverse.
"""
