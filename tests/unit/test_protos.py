"""services.runtime.protos: timestamps agree with protobuf's own conversion."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2

from services.runtime.protos import timestamp

MOMENTS = [
    dt.datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC),  # before the epoch: nanos stay positive
    dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-7, minutes=-30))),
    dt.datetime(2026, 6, 1, 12, 0, 0, 1),  # naive: local time
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_timestamp_matches_protobufs_conversion(moment: dt.datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(moment.astimezone(dt.UTC))
    assert timestamp(moment) == expected
    assert expected.ToDatetime(dt.UTC) == moment.astimezone(dt.UTC)


def test_no_time_is_no_timestamp() -> None:
    assert timestamp(None) is None
