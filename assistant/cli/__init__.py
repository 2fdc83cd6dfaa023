"""The `assistant` command: every operational task, as click command groups.

Top of the house beside `web`: commands call the same service functions the dashboard calls and may
import any package below them.
"""

from assistant.cli import campaigns, flags, privacy, users  # noqa: F401  (each adds its commands to main)
from assistant.cli.commands import main

__all__ = ["main"]
