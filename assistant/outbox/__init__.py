"""Outbound texts: the one place they are written and withdrawn, the sender that claims and sends
them after commit, the shared sending pace, delivery status, and the transports (Twilio, console).

May import content, db and the top-level base modules (config, clock, runtime).
"""
