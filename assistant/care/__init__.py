"""The participant's record and the people around it: flags and the rules that raise them,
measures, staff notifications, privacy and erasure, service settings, access, audit, reports.

May import outbox, content, db and engine.
"""
