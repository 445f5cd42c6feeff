"""The dead letters page: jobs that failed for good, to read, queue again or drop. Either is audited:
a dropped job is work Trellis will not do."""

from __future__ import annotations

from starlette.responses import Response

from jobs.deadletters import DeadLetters
from membership import audit
from membership.errors import NotFound
from receiver.console.calls import Call, Done, Problems

ACTIONS = {"replay": "dead_letter_replayed", "drop": "dead_letter_dropped"}


async def show(call: Call, problems: Problems) -> Response:
    letters = await DeadLetters(call.services.redis).list()
    return call.render("dead_letters.html", status=problems.status, problems=problems, letters=letters)


async def handle(call: Call) -> Done:
    what, job_id = call.request.path_params["what"], call.form.get("job_id", "")
    letters = DeadLetters(call.services.redis)
    letter = await letters.get(job_id)
    if letter is None or what not in ("replay", "drop"):
        raise NotFound(f"no dead letter {job_id!r} to {what}")
    if what == "replay":
        done = await letters.replay(job_id, call.services.queue)
    else:
        done = await letters.drop(job_id)
    if not done:  # another operator was quicker
        raise NotFound(f"no dead letter {job_id!r} any more")
    audit.record(
        call.session, actor=call.actor, cause=call.cause, action=ACTIONS[what], entity="dead_letter",
        entity_id=None,
        organization_id=call.organization_id,
        after={"job_id": job_id, "function": letter.function, "args": letter.args, "error": letter.error},
    )  # fmt: skip
    outcome = "queued again" if what == "replay" else "dropped"
    return Done(f"{letter.function} ({job_id}) {outcome}.", "/console/dead-letters")
