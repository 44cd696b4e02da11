"""Histograms of timestamps without a time zone do not depend on the machine's time zone: SQL's
epoch reads them as UTC, and so must the bin edges computed in Python."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dataops_dev.diffing import profile_relation
from dataops_dev.engines import Relation

from .conftest import load


@pytest.fixture
def new_york_time() -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.mark.usefixtures("new_york_time")
def test_naive_timestamp_histogram_counts_every_row_off_utc(engine: Any) -> None:
    assert time.timezone != 0  # the test means nothing on a UTC clock
    rows = [f"({i}, TIMESTAMP '2024-03-01 00:00:00' + INTERVAL '{i} hours')" for i in range(24)]
    load(engine, "a", "id INTEGER, ts TIMESTAMP", rows)
    ts = profile_relation(engine, Relation("s", "a")).column("ts")
    assert len(ts.histogram) == 10
    assert sum(b.count for b in ts.histogram) == 24
    # Evenly spread hours: the first and last bins each hold the rows at the range's ends.
    assert ts.histogram[0].count >= 1 and ts.histogram[-1].count >= 1
