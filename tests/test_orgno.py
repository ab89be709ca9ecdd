from __future__ import annotations

import pytest

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
