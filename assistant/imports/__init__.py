"""CSV imports: caseloads and appointments, and the record of each import run.

An import validates every row before it changes anything. May import conversation, contact, care,
outbox, content and db; never the web or CLI layers.
"""
