"""AIP pagination: sizes, tokens, and cutting an in-memory list."""

from __future__ import annotations

import pytest

from services.runtime.errors import InvalidArgument
from services.runtime.pages import Page


def test_defaults_and_cap() -> None:
    assert Page.of(0, "") == Page(0, 20)
    assert Page.of(500, "40") == Page(40, 100)


@pytest.mark.parametrize(("size", "token", "field"), [(-1, "", "page_size"), (10, "abc", "page_token"), (10, "-5", "page_token")])
def test_bad_input_names_the_field(size: int, token: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        Page.of(size, token)
    assert [v.field for v in error.value.violations] == [field]


def test_cut_walks_a_list_to_its_end() -> None:
    items, seen, token = list(range(7)), [], ""
    while True:
        page = Page.of(3, token)
        chunk, more = page.cut(items)
        seen += chunk
        token = page.next_token(more)
        if not token:
            break
    assert seen == items
