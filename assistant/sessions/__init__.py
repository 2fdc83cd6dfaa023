"""Flow sessions: starting, resuming and ending a scripted flow for one participant and applying
the engine's events (texts to the outbox, answers, flags); the effects a flow declares are
resolved by name in `effects`.

May import care, outbox, content, db and engine; conversation and contact call it.
"""
