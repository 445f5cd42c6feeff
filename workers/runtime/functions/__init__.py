"""The arq job functions. Each is thin and idempotent: it fetches its inputs, calls the core, records.

Their names and arguments are the job contract's (`jobs.builders`): a test binds every builder's job
to the function of the same name here.
"""

from workers.runtime.functions.events import apply_event
from workers.runtime.functions.people import deactivate_account, offboard_member, push_member_change
from workers.runtime.functions.reconciles import reconcile_board, reconcile_workspace
from workers.runtime.functions.upkeep import (
    ensure_webhooks,
    full_resync,
    prune_history,
    sweep_outbox,
)

__all__ = [
    "apply_event",
    "deactivate_account",
    "ensure_webhooks",
    "full_resync",
    "offboard_member",
    "prune_history",
    "push_member_change",
    "reconcile_board",
    "reconcile_workspace",
    "sweep_outbox",
]
