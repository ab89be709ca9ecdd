"""
The verified identity a Maskinporten token carries, as immutable values.

Access decisions use `Identity.consumer_orgno`: the organisation that is
legally the consumer. `supplier` (a data processor acting through an Altinn
delegation), `client_id` and `system_user` are for logging and traceability;
none of them says who the data is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Consent", "Identity", "OrgId", "SystemUser"]


@dataclass(frozen=True, slots=True)
class OrgId:
    """
    An organisation id object from a token, such as the `consumer` claim.

    Attributes:
        authority: the id scheme, `iso6523-actorid-upis` for Norwegian orgs.
        id: the full id string, e.g. `0192:991825827`.
        orgno: the nine-digit organisation number the id names.
    """

    authority: str
    id: str
    orgno: str

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class SystemUser:
    """
    An Altinn system user (`urn:altinn:systemuser` in `authorization_details`).

    Attributes:
        org: the customer organisation the system user belongs to.
        ids: the system user ids (UUIDs).
        system_id: the vendor system registered in Altinn.
    """

    org: OrgId
    ids: tuple[str, ...]
    system_id: str


@dataclass(frozen=True, slots=True)
class Consent:
    """
    An Altinn consent (`urn:altinn:consent` in `authorization_details`).

    Attributes:
        id: the consent id.
        from_party: who gave consent (a person or an organisation id object).
        to: the organisation the consent was given to.
        consented: when consent was given, as the token states it.
        valid_to: when consent ends, as the token states it.
        rights: the consented rights, as the token lists them.
    """

    id: str
    from_party: Mapping[str, Any] | None
    to: OrgId | None
    consented: str | None
    valid_to: str | None
    rights: tuple[Mapping[str, Any], ...]


# Not slotted, unlike the other values: `Identity._from_fields` fills the
# instance dictionary in one step, which costs a sixth of the frozen
# `__init__` on the verifier's hot path. Instances are as immutable.
@dataclass(frozen=True)
class Identity:
    """
    Who called, as a verified Maskinporten access token says.

    Attributes:
        consumer: the legal consumer; base every access decision on it.
        supplier: the supplier acting for the consumer, when delegated.
        delegation_source: where the delegation was made (an Altinn URL).
        scopes: the granted scopes, split from the `scope` claim.
        client_id: the client that asked for the token; never for access control.
        client_amr: how the client authenticated (`private_key_jwt`, ...).
        jti: the token id; a consumer reuses one token until it expires.
        issuer: the `iss` claim, equal to the configured issuer.
        issued_at: `iat`, seconds since the epoch.
        expires_at: `exp`, seconds since the epoch.
        audience: the `aud` values, empty for tokens without an audience.
        pid: the national identity number of a pid-restricted token.
        system_user: the Altinn system user, for system-user tokens.
        consents: Altinn consents the token carries.
        kid: the id of the key that signed the token.
        claims: every claim of the token, read-only.
    """

    consumer: OrgId
    scopes: frozenset[str]
    client_id: str
    client_amr: str | None
    jti: str
    issuer: str
    issued_at: float
    expires_at: float
    supplier: OrgId | None = None
    delegation_source: str | None = None
    audience: tuple[str, ...] = ()
    pid: str | None = None
    system_user: SystemUser | None = None
    consents: tuple[Consent, ...] = ()
    kid: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> Identity:
        """
        Build an identity from a dict naming every field, without `__init__`.

        For the verifier only: it passes every field, checked already, in a
        copy of `_BLANK_FIELDS` that it never touches again.
        """
        identity = object.__new__(cls)
        identity.__dict__.update(fields)

        return identity

    @property
    def consumer_orgno(self) -> str:
        """The consumer's nine-digit organisation number."""
        return self.consumer.orgno

    @property
    def supplier_orgno(self) -> str | None:
        """The supplier's organisation number, when the token is delegated."""
        return self.supplier.orgno if self.supplier is not None else None

    def has_scope(self, scope: str) -> bool:
        """Tell whether `scope` is one of the granted scopes, compared whole."""
        return scope in self.scopes

    def as_dict(self) -> dict[str, Any]:
        """The identity as plain JSON-ready values (no raw claims)."""
        system_user = None
        if self.system_user is not None:
            system_user = {
                "org": self.system_user.org.orgno,
                "ids": list(self.system_user.ids),
                "system_id": self.system_user.system_id,
            }

        return {
            "consumer": self.consumer.orgno,
            "supplier": self.supplier_orgno,
            "delegation_source": self.delegation_source,
            "scopes": sorted(self.scopes),
            "client_id": self.client_id,
            "client_amr": self.client_amr,
            "jti": self.jti,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "audience": list(self.audience),
            "pid": self.pid is not None,
            "system_user": system_user,
        }


# Every field of an identity, for `Identity._from_fields` callers to copy and
# fill in: setting the fields of a copy costs a third less than writing all
# sixteen out. The first eight have no default and must always be set.
_BLANK_FIELDS: dict[str, Any] = {
    "consumer": None,
    "scopes": None,
    "client_id": None,
    "client_amr": None,
    "jti": None,
    "issuer": None,
    "issued_at": None,
    "expires_at": None,
    "supplier": None,
    "delegation_source": None,
    "audience": (),
    "pid": None,
    "system_user": None,
    "consents": (),
    "kid": "",
    "claims": None,
}
