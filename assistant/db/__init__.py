"""The database: the schema (models), units of work (transactions, participant locks, claims) and
the Alembic migrations.

Imports nothing of the assistant's but the base modules (config, clock).
"""
