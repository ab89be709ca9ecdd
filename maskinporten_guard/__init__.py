"""
maskinporten-guard: verify Maskinporten access tokens and decide per route.
"""

from __future__ import annotations

from .clock import Clock, ManualClock, system_clock
from .errors import (
    AuthError,
    ConfigurationError,
    ConsumerNotAllowed,
    InsufficientScope,
    InvalidClaim,
    InvalidRequest,
    InvalidSignature,
    InvalidToken,
    KeyFetchError,
    KeysUnavailable,
    MalformedToken,
    MaskinportenGuardError,
    MissingToken,
    TokenExpired,
    UnknownKey,
    UnsupportedAlgorithm,
)
from .identity import Consent, Identity, OrgId, SystemUser
from .metrics import Metrics, NullMetrics
from .settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "Clock",
    "ConfigurationError",
    "Consent",
    "ConsumerNotAllowed",
    "Identity",
    "InsufficientScope",
    "InvalidClaim",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "KeyFetchError",
    "KeysUnavailable",
    "MalformedToken",
    "ManualClock",
    "MaskinportenGuardError",
    "Metrics",
    "MissingToken",
    "NullMetrics",
    "OrgId",
    "Settings",
    "SystemUser",
    "TokenExpired",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "__version__",
    "system_clock",
]
