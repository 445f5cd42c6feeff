"""The audit pages: the organization's timeline, filtered by person, board and date; and a person's
page — their access now as the store has it, and the story that led there, oldest first, as `trellis
why` tells it (Trello's own view is the CLI's: the receiver never calls Trello)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from starlette.responses import Response

from membership import history
from membership.board_views import list_boards
from membership.errors import RuleViolation
from membership.history import AuditFilter, access_now, find_person, names_of
from receiver.console.calls import Call, Problems

ENTRIES_A_PAGE = 50
BOARDS_LISTED = 1000  # the board filter's choices


async def show(call: Call, problems: Problems) -> Response:
    actor, organization = call.actor, call.organization_id
    query = call.request.query_params
    who, board, since = query.get("person", "").strip(), query.get("board", ""), query.get("since", "")
    refused: dict[str, str] = {}
    person = None
    if who:
        try:
            person = await find_person(call.session, who)
        except RuleViolation as exc:
            refused["person"] = exc.message
    board_id = int(board) if board.isdigit() and len(board) < 19 else None
    since_day = day(since)
    if since and since_day is None:
        refused["since"] = "a date, as YYYY-MM-DD"
    page = call.page_number("page")
    entries = await history.audit_page(
        call.session,
        AuditFilter(organization_id=organization, person=person, board_id=board_id, since=since_day),
        limit=ENTRIES_A_PAGE,
        offset=page * ENTRIES_A_PAGE,
    ) if not refused else None  # fmt: skip
    boards = await list_boards(call.session, actor, organization, limit=BOARDS_LISTED, offset=0)
    items = entries.items if entries else []
    return call.render(
        "audit.html", status=422 if refused else problems.status, problems=Problems(by_field=refused),
        entries=items, names=await names_of(call.session, items), boards=boards.items, page=page,
        more=entries.has_more if entries else False, filters={"person": who, "board": board, "since": since},
    )  # fmt: skip


async def person(call: Call, problems: Problems) -> Response:
    """`/console/people?who=EMAIL|TRELLO ID|USERNAME`: the person's page."""
    organization = call.operator.organization
    who = call.request.query_params.get("who", "").strip()
    found = await find_person(call.session, who)
    stored = [a for a in await access_now(call.session, found) if a.organization_id == organization.id]
    story = await history.history(call.session, AuditFilter(organization_id=organization.id, person=found))
    return call.render(
        "person.html", person=found, stored=stored, entries=story, names=await names_of(call.session, story)
    )


def day(text: str) -> datetime | None:
    """The start of a day given as YYYY-MM-DD, in UTC."""
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError:
        return None
