from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maskinporten_guard.orgno import is_valid_orgno


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("991825827", True, id="digdir"),
        pytest.param("889640782", True, id="nav"),
        pytest.param("314240979", True, id="test-consumer"),
        pytest.param("123456789", False, id="bad-check-digit"),
        pytest.param("987654321", False, id="another-bad-check-digit"),
        pytest.param("99182582", False, id="eight-digits"),
        pytest.param("9918258270", False, id="ten-digits"),
        pytest.param("99182582a", False, id="letter"),
        pytest.param(
            "\uff19\uff19\uff11\uff18\uff12\uff15\uff18\uff12\uff17",
            False,
            id="fullwidth-digits",
        ),
        pytest.param("", False, id="empty"),
    ],
)
def test_orgno_check_digit(value: str, valid: bool) -> None:
    """Only nine ASCII digits with a correct mod-11 check digit are valid."""
    assert is_valid_orgno(value) is valid


def _check_digit(prefix: str) -> int | None:
    """The check digit as Brønnøysundregistrene define it; None for remainder 1."""
    weighted = sum(
        int(d) * w for d, w in zip(prefix, (3, 2, 7, 6, 5, 4, 3, 2), strict=True)
    )
    check = 11 - weighted % 11

    return {11: 0, 10: None}.get(check, check)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_orgno_agrees_with_the_definition(prefix: str) -> None:
    """For any eight digits, only the defined check digit completes an orgno."""
    expected = _check_digit(prefix)
    valid = [d for d in range(10) if is_valid_orgno(f"{prefix}{d}")]

    assert valid == ([] if expected is None else [expected])
