"""Seeding the emulator: a JSON fixture, or the built-in sample workspace.

{"members": [{"username", "fullName", "email"?, "id"?}],
 "workspaces": [{"name", "displayName", "plan"?, "id"?,
                 "members": [{"username", "memberType", "unconfirmed"?, "deactivated"?}],
                 "boards": [{"name", "id"?, "closed"?, "members": [{"username", "memberType"}]}]}],
 "tokens": [{"token", "member", "dateExpires"?}],
 "scim": {"users": [{"userName", "name"?, "emails"?, "active"?}]}}
"""

from __future__ import annotations

from typing import Any

from emulator.world import Board, BoardMembership, WorkspaceMembership, World, new_id, now_iso

TEAM = [
    ("trellis_admin", "Trellis Admin"),
    ("ada.lovelace", "Ada Lovelace"),
    ("grace.hopper", "Grace Hopper"),
    ("alan.turing", "Alan Turing"),
    ("katherine.johnson", "Katherine Johnson"),
    ("linus.pauling", "Linus Pauling"),
    ("zoe.celik", "Zoë Çelik"),
    ("hedy.lamarr", "Hedy Lamarr"),
    ("edsger.dijkstra", "Edsger Dijkstra"),
    ("barbara.liskov", "Barbara Liskov"),
    ("ken.thompson", "Ken Thompson"),
    ("margaret.hamilton", "Margaret Hamilton"),
]


def sample() -> dict[str, Any]:
    """Acme, a premium workspace: a dozen members, five boards, people on boards directly."""
    members = [
        {"username": u, "fullName": n, "email": f"{u.replace('_', '.')}@acme.example"} for u, n in TEAM
    ]
    workspace_members = [
        {"username": "trellis_admin", "memberType": "admin"},
        {"username": "ada.lovelace", "memberType": "admin"},
    ]
    workspace_members += [{"username": u, "memberType": "normal"} for u, _ in TEAM[2:]]
    names = [u for u, _ in TEAM]
    boards = [
        {"name": "Roadmap", "members": names[:6]},
        {"name": "Engineering", "members": names[:1] + names[3:10]},
        {"name": "Marketing", "members": names[:2] + names[6:9]},
        {"name": "Support", "members": names[:1] + names[5:12]},
        {"name": "Hiring", "members": names[:3] + names[9:]},
    ]
    return {
        "members": members,
        "workspaces": [
            {
                "name": "acme",
                "displayName": "Acme",
                "plan": "premium",
                "members": workspace_members,
                "boards": [
                    {
                        "name": b["name"],
                        "members": [
                            {"username": u, "memberType": "admin" if u == "trellis_admin" else "normal"}
                            for u in b["members"]
                        ],
                    }
                    for b in boards
                ],
            }
        ],
        "scim": {
            "users": [{"userName": m["email"], "active": True, "displayName": m["fullName"]} for m in members]
        },
    }


def load(world: World, data: dict[str, Any], default_token: str) -> list[dict[str, Any]]:
    """Put the fixture's state in the world (no actions: this is how things were). Returns its SCIM users."""
    by_username = {}
    for m in data.get("members", []):
        member = world.add_member_account(m["username"], m["fullName"], m.get("email"), id=m.get("id"))
        by_username[member.username] = member
    for w in data.get("workspaces", []):
        workspace = world.add_workspace(
            w["name"], w.get("displayName", w["name"]), w.get("plan", "standard"), id=w.get("id")
        )
        for m in w.get("members", []):
            member = by_username[m["username"]]
            workspace.memberships[member.id] = WorkspaceMembership(
                new_id(), member.id, m["memberType"], m.get("unconfirmed", False), m.get("deactivated", False)
            )
        for b in w.get("boards", []):
            board = Board(
                b.get("id") or new_id(), b["name"], new_id()[-8:], workspace.id, b.get("closed", False)
            )
            for m in b.get("members", []):
                member = by_username[m["username"]]
                board.memberships[member.id] = BoardMembership(new_id(), member.id, m["memberType"])
            world.boards[board.id] = board
    tokens = data.get("tokens") or [{"token": default_token, "member": first_admin(world, data)}]
    for t in tokens:
        world.tokens[t["token"]] = {
            "id": new_id(),
            "member_id": by_username[t["member"]].id,
            "date_created": now_iso(),
            "date_expires": t.get("dateExpires"),
        }
    users: list[dict[str, Any]] = data.get("scim", {}).get("users", [])
    return users


def first_admin(world: World, data: dict[str, Any]) -> str:
    for w in data.get("workspaces", []):
        for m in w.get("members", []):
            if m["memberType"] == "admin":
                username: str = m["username"]
                return username
    raise ValueError("the fixture names no token and no workspace admin to own one")
