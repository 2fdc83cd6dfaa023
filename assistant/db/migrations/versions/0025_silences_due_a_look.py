"""every silence under way has the moment it is next due a look, so the rhythm's sweep finds them
through the index on look_at alone: silences begun before this kept none (read on every tick
through everyone on the caseload) and are given one now; silences told of need none

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Their last ask: due a look at once, and the sweep still judges none within a day of it.
    op.execute("UPDATE replyrhythm SET look_at = last_ask_at WHERE pending > 0 AND noted != 'flagged' AND look_at IS NULL")
    op.execute("UPDATE replyrhythm SET look_at = NULL WHERE noted = 'flagged'")


def downgrade() -> None:
    pass  # the old sweep read silences without a moment as due: the moments do no harm
