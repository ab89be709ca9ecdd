from __future__ import annotations

import pytest

from maskinporten_guard.pricing import PRICE_CAP, price_breakdown, yearly_price


@pytest.mark.parametrize(
    ("consumers", "price"),
    [
        pytest.param(0, 50_000, id="none"),
        pytest.param(1, 55_000, id="one"),
        pytest.param(5, 75_000, id="first-band-full"),
        pytest.param(6, 78_000, id="second-band-starts"),
        pytest.param(10, 90_000, id="second-band-full"),
        pytest.param(13, 94_500, id="product-page-example"),
        pytest.param(15, 97_500, id="third-band-full"),
        pytest.param(18, 100_500, id="eighteen"),
        pytest.param(716, 798_500, id="just-under-cap"),
        pytest.param(717, 799_500, id="cap-reached"),
        pytest.param(10_000, 799_500, id="far-over-cap"),
    ],
)
def test_yearly_price(consumers: int, price: int) -> None:
    """The tiered price matches the published model."""
    assert yearly_price(consumers) == price


def test_cap_is_reached_at_717() -> None:
    """716 consumers cost less than the cap, 717 exactly the cap."""
    assert yearly_price(716) < PRICE_CAP == yearly_price(717)


def test_negative_consumers_are_refused() -> None:
    """A negative count is a programming error, not a price."""
    with pytest.raises(ValueError, match="zero or more"):
        yearly_price(-1)


def test_breakdown_lists_each_band() -> None:
    """The breakdown of 13 shows five, five and three consumers in the bands."""
    breakdown = price_breakdown(13)

    assert [line.consumers for line in breakdown.lines] == [5, 5, 3, 0]
    assert [line.tier.label for line in breakdown.lines] == [
        "1-5",
        "6-10",
        "11-15",
        "16+",
    ]
    assert breakdown.total == breakdown.uncapped == 94_500


def test_breakdown_says_when_capped() -> None:
    """Over the cap the breakdown keeps the uncapped sum and flags it."""
    breakdown = price_breakdown(1_000)

    assert breakdown.capped
    assert breakdown.uncapped == 1_082_500
    assert breakdown.total == PRICE_CAP
