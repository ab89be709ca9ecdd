"""
Norwegian organisation numbers and the ISO 6523 ids Maskinporten wraps them in.

An orgno has nine digits; the last is a mod-11 check digit over the first eight
with weights 3, 2, 7, 6, 5, 4, 3, 2. Maskinporten writes the consumer as
`{"authority": "iso6523-actorid-upis", "ID": "0192:<orgno>"}`, where 0192 is the
ISO 6523 code for Enhetsregisteret.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["NORWEGIAN_ICD", "ORGNO_AUTHORITY", "is_valid_orgno"]

ORGNO_AUTHORITY = "iso6523-actorid-upis"
NORWEGIAN_ICD = "0192"

_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


@lru_cache(maxsize=4096)
def is_valid_orgno(value: str) -> bool:
    """
    Tell whether `value` is a nine-digit orgno with a correct check digit.

    Only ASCII digits count: a fullwidth or Arabic-Indic digit is refused even
    though `str.isdigit` would accept it. Answers are cached, since the same
    few consumers call again and again.
    """
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        return False

    remainder = sum(int(d) * w for d, w in zip(value, _WEIGHTS, strict=False)) % 11
    check = 0 if remainder == 0 else 11 - remainder

    return check != 10 and check == int(value[8])
