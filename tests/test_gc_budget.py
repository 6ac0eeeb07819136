"""The young-generation threshold a tick runs under, and that the process's own comes back."""

from __future__ import annotations

import asyncio
import gc

import pytest

from linkstar_dsl.runtime.gc_budget import YOUNG_THRESHOLD, fewer_collections


@pytest.fixture
def threshold():
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_put_back_after(threshold):
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        with fewer_collections():
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD  # the outer tick still runs
    assert gc.get_threshold() == (700, 10, 10)


def test_a_failing_tick_puts_the_threshold_back(threshold):
    gc.set_threshold(900, 11, 12)
    with pytest.raises(RuntimeError):
        with fewer_collections():
            raise RuntimeError("boom")
    assert gc.get_threshold() == (900, 11, 12)


def test_collection_switched_off_or_a_higher_threshold_is_left_alone(threshold):
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (0, 10, 10)
    gc.set_threshold(YOUNG_THRESHOLD * 2, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2


def test_overlapping_ticks_share_one_raise(threshold):
    gc.set_threshold(700, 10, 10)
    seen = []

    async def tick(delay):
        with fewer_collections():
            await asyncio.sleep(delay)
            seen.append(gc.get_threshold()[0])

    async def both():
        await asyncio.gather(tick(0.01), tick(0.03))

    asyncio.run(both())
    assert seen == [YOUNG_THRESHOLD, YOUNG_THRESHOLD]
    assert gc.get_threshold() == (700, 10, 10)
