"""
Norwegian organisation numbers and the ISO 6523 ids Maskinporten wraps them in.

An orgno has nine digits; the last is a mod-11 check digit over the first eight
with weights 3, 2, 7, 6, 5, 4, 3, 2. Maskinporten writes the consumer as
`{"authority": "iso6523-actorid-upis", "ID": "0192:<orgno>"}`, where 0192 is the
ISO 6523 code for Enhetsregisteret.
"""

from __future__ import annotations

from operator import mul

__all__ = ["NORWEGIAN_ICD", "ORGNO_AUTHORITY", "is_valid_orgno"]

ORGNO_AUTHORITY = "iso6523-actorid-upis"
NORWEGIAN_ICD = "0192"

_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
# The weighted sum is taken over the digits' ASCII codes; this takes off what
# the code of "0" adds under each weight.
_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)


def is_valid_orgno(value: str) -> bool:
    """
    Tell whether `value` is a nine-digit orgno with a correct check digit.

    Only ASCII digits count: a fullwidth or Arabic-Indic digit is refused even
    though `str.isdigit` would accept it.
    """
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        return False

    digits = value.encode("ascii")
    remainder: int = (sum(map(mul, digits, _WEIGHTS)) - _ZERO_OFFSET) % 11
    # 11 - 0 is written as 0; a remainder of 1 asks for 10, which no orgno has.
    check = (11 - remainder) % 11

    return check != 10 and check == digits[8] - ord("0")
