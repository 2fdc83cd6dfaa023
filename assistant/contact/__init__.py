"""When and whether to contact someone: the contact policy, quiet hours and the calendar,
appointment reminders and missed-appointment follow-ups, and campaigns.

May import care, outbox, content, db and engine.
"""
