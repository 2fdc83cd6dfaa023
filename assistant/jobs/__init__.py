"""The clock's jobs: timeouts, due tasks, campaigns, sending, email and the nightly work.

Each tick runs the jobs independently; each due row is handled in its own unit of work, so one bad
row never stops the others. May import conversation, contact, care, outbox, content, db and engine.
"""
