"""Flow sessions: starting, resuming and ending a scripted flow for one participant and applying
the engine's events (texts to the outbox, answers, flags), and the effects a flow declares by name.

May import care, outbox, content, db and engine; conversation and contact call it.
"""
