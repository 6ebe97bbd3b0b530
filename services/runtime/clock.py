"""The one clock: timezone-aware UTC times for records, events and tokens."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
