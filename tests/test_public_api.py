from __future__ import annotations

import maskinporten_guard

EXPORTED = {
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
    "OPTIONAL",
    "OrgId",
    "PUBLIC",
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
}


def test_exported_names_are_pinned() -> None:
    """The public names change only on purpose: this list changes with them."""
    assert set(maskinporten_guard.__all__) == EXPORTED


def test_every_exported_name_exists() -> None:
    """Each name in `__all__` is importable from the package."""
    for name in maskinporten_guard.__all__:
        assert hasattr(maskinporten_guard, name), name
