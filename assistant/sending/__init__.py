"""Sending what the outbox holds: the sender that claims each due text in a committed transaction
before calling the provider, each send's slot in the shared pace (`db.send_pace`), the post-commit
dispatch, and what a failed or refused send means for the record (a flag, an unreachable mark).

May import care, outbox, content, db and the base modules.
"""
