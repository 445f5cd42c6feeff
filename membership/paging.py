"""Limit/offset pages, as the membership API returns them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total


async def paginate(session: AsyncSession, statement: Select[Any], limit: int, offset: int) -> Page[Any]:
    """One page of `statement` (already ordered) and the count of all its rows."""
    total = (
        await session.execute(select(func.count()).select_from(statement.order_by(None).subquery()))
    ).scalar_one()
    items = list((await session.scalars(statement.limit(limit).offset(offset))).all())
    return Page(items=items, total=total, limit=limit, offset=offset)
