"""The database: the schema (models), units of work (transactions, participant units, claims) and
the Alembic migrations.

May import only the base modules (config, clock, timing).
"""
