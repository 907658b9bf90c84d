"""The order state machine (pure)."""

import itertools
import random

import pytest

from hub.orders.state_machine import FINAL, MAIN_LINE, advance


def test_forward_along_the_main_line():
    status = "received"
    for nxt in MAIN_LINE[1:]:
        step = advance(status, nxt)
        assert step.applied and step.after == nxt
        status = step.after


@pytest.mark.parametrize("late", ["received", "accepted", "preparing", "ready"])
def test_late_events_never_move_back(late):
    step = advance("picked_up", late)
    assert not step.applied and step.after == "picked_up"


def test_skipping_ahead_is_allowed():
    assert advance("accepted", "picked_up").after == "picked_up"


@pytest.mark.parametrize("final, event", list(itertools.product(sorted(FINAL), ["accepted", "ready", "cancelled", "delivered", "rejected"])))
def test_final_states_are_final(final, event):
    assert advance(final, event).after == final


def test_cancel_from_any_open_state_and_reject_only_when_received():
    for status in MAIN_LINE[:-1]:
        assert advance(status, "cancelled").after == "cancelled"
    assert advance("received", "rejected").after == "rejected"
    assert advance("accepted", "rejected").after == "accepted"


def test_duplicates_change_nothing_but_are_reported():
    step = advance("ready", "ready")
    assert (step.applied, step.why) == (False, "duplicate")


def test_any_order_of_the_same_events_ends_in_the_same_state():
    events = ["accepted", "preparing", "ready", "picked_up", "delivered"]
    rng = random.Random(5)
    for _ in range(50):
        shuffled = events + rng.sample(events, 2)  # with duplicates
        rng.shuffle(shuffled)
        status = "received"
        for event in shuffled:
            status = advance(status, event).after
        assert status == "delivered"


def test_unknown_status_is_an_error():
    with pytest.raises(ValueError, match="unknown order status"):
        advance("received", "teleported")
