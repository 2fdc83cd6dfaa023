"""The outbox: the one place outbound texts are written (`writer.queue_sms`, `writer.queue_text`)
and withdrawn (`writer.withdraw_outbox`), each with the same defaults. Sending them is
`assistant.sending`'s job, after the writer's unit of work commits.

May import content, db, runtime and the base modules.
"""
