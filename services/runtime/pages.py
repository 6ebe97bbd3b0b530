"""AIP pagination: page_size and page_token in; one page and the next page's token out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from services.runtime.errors import InvalidArgument

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    """Where a page starts and how long it is. Tokens are opaque to callers; here they are a decimal offset."""

    offset: int
    size: int

    @classmethod
    def of(cls, page_size: int, page_token: str, *, default: int = 20, maximum: int = 100) -> Page:
        """0 means the default size, large sizes are capped, negatives and foreign tokens are refused."""
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        if page_token and not page_token.isdigit():
            raise InvalidArgument.field("page_token", "is not a token returned by this server")
        return cls(int(page_token or 0), min(page_size or default, maximum))

    def next_token(self, more: bool) -> str:
        return str(self.offset + self.size) if more else ""

    def cut(self, items: Sequence[T]) -> tuple[list[T], bool]:
        """This page of an in-memory list, and whether more items follow."""
        return list(items[self.offset : self.offset + self.size]), self.offset + self.size < len(items)
