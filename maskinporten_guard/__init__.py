"""
maskinporten-guard: verify Maskinporten access tokens and decide per route.
"""

from __future__ import annotations

from .audit import AuditEvent, AuditLog, JsonFormatter
from .clock import Clock, ManualClock, system_clock
from .decision import Decision, Guard, SyncGuard
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
    StoreError,
    TokenExpired,
    UnknownKey,
    UnsupportedAlgorithm,
)
from .identity import Consent, Identity, OrgId, SystemUser
from .ledger import GrantLedger
from .metrics import Metrics, NullMetrics
from .policy import OPTIONAL, PUBLIC, Policy, Requirement, Rule, require
from .record import Recorder
from .settings import Settings
from .verifier import SyncVerifier, Verifier

__version__ = "0.1.0"

__all__ = [
    "OPTIONAL",
    "PUBLIC",
    "AuditEvent",
    "AuditLog",
    "AuthError",
    "Clock",
    "ConfigurationError",
    "Consent",
    "ConsumerNotAllowed",
    "Decision",
    "GrantLedger",
    "Guard",
    "Identity",
    "InsufficientScope",
    "InvalidClaim",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "JsonFormatter",
    "KeyFetchError",
    "KeysUnavailable",
    "MalformedToken",
    "ManualClock",
    "MaskinportenGuardError",
    "Metrics",
    "MissingToken",
    "NullMetrics",
    "OrgId",
    "Policy",
    "Recorder",
    "Requirement",
    "Rule",
    "Settings",
    "StoreError",
    "SyncGuard",
    "SyncVerifier",
    "SystemUser",
    "TokenExpired",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "Verifier",
    "__version__",
    "require",
    "system_clock",
]
