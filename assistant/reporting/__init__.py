"""Reading the record back: reports for specialists, managers and commissioners, and a
participant's own data export. Read-only over everything below it.

May import contact, sessions, sending, care, outbox, content, db and engine.
"""
