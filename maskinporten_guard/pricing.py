"""
The yearly Maskinporten price an API provider pays, as pure functions.

Digdir invoices the provider once a year, in advance: a base price plus a
price per consumer that falls in marginal tiers, capped in total. Consumers
are counted as accesses granted per scope, so one organisation granted three
scopes counts three. All amounts are whole NOK, excluding VAT.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BASE_PRICE",
    "PRICE_CAP",
    "TIERS",
    "PriceBreakdown",
    "PriceTier",
    "TierLine",
    "price_breakdown",
    "yearly_price",
]

BASE_PRICE = 50_000
PRICE_CAP = 799_500


@dataclass(frozen=True, slots=True)
class PriceTier:
    """
    One band of the marginal per-consumer price.

    Attributes:
        first: the first consumer (1-based) the band prices.
        last: the last consumer it prices, or None for every one after `first`.
        unit_price: NOK per consumer in the band.
    """

    first: int
    last: int | None
    unit_price: int

    @property
    def label(self) -> str:
        """The band as people write it: `1-5` or `16+`."""
        return f"{self.first}+" if self.last is None else f"{self.first}-{self.last}"

    def consumers_in(self, consumers: int) -> int:
        """How many of `consumers` fall in this band."""
        upper = consumers if self.last is None else min(consumers, self.last)

        return max(0, upper - self.first + 1)


TIERS: tuple[PriceTier, ...] = (
    PriceTier(1, 5, 5_000),
    PriceTier(6, 10, 3_000),
    PriceTier(11, 15, 1_500),
    PriceTier(16, None, 1_000),
)


@dataclass(frozen=True, slots=True)
class TierLine:
    """
    What one band adds to the price, for a bill's breakdown.

    Attributes:
        tier: the band.
        consumers: how many consumers fall in it.
        amount: consumers times the band's unit price.
    """

    tier: PriceTier
    consumers: int
    amount: int


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    """
    The yearly price for a number of consumers, line by line.

    Attributes:
        consumers: the counted consumers (accesses granted per scope).
        base: the base price.
        lines: one line per band, in order, including empty bands.
        uncapped: base plus every line, before the cap.
        total: the price invoiced: `uncapped`, at most `PRICE_CAP`.
    """

    consumers: int
    base: int
    lines: tuple[TierLine, ...]
    uncapped: int
    total: int

    @property
    def capped(self) -> bool:
        """Tell whether the cap lowered the price."""
        return self.total < self.uncapped


def price_breakdown(consumers: int) -> PriceBreakdown:
    """
    Price `consumers` accesses line by line, as a report shows it.

    Args:
        consumers: the number of accesses granted per scope; zero or more.

    Raises:
        ValueError: `consumers` is negative.
    """
    if consumers < 0:
        raise ValueError(f"consumers must be zero or more, not {consumers}")

    lines = tuple(
        TierLine(tier, count, count * tier.unit_price)
        for tier in TIERS
        for count in (tier.consumers_in(consumers),)
    )
    uncapped = BASE_PRICE + sum(line.amount for line in lines)

    return PriceBreakdown(
        consumers, BASE_PRICE, lines, uncapped, min(uncapped, PRICE_CAP)
    )


def yearly_price(consumers: int) -> int:
    """
    The yearly price in NOK, excluding VAT, for `consumers` accesses.

    Args:
        consumers: the number of accesses granted per scope; zero or more.

    Raises:
        ValueError: `consumers` is negative.
    """
    return price_breakdown(consumers).total
