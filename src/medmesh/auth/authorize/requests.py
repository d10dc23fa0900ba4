"""An authorization request (RFC 6749 §4.1.1 with PKCE, OIDC and SMART parameters), checked.

Two kinds of failure: the client or its redirect URI cannot be trusted (an error page, never a
redirect: RFC 6749 §4.1.2.1), or the request is wrong (a redirect back to the app with
``error`` and ``state``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from medmesh.auth.clients.service import ClientView

#: The parameters an authorization request may carry (the pages pass them on as hidden fields).
PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "aud",
    "launch",
    "prompt",
)
#: Scopes that ask for context or a kind of token, not for data: a user holds them without a role.
PROTOCOL_SCOPES = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "offline_access",
        "online_access",
    }
)
#: Scopes the consent page shows without a checkbox: the launch needs them.
REQUIRED_SCOPES = frozenset({"openid", "fhirUser", "profile", "launch", "launch/patient"})
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class UntrustedRequest(Exception):
    """The client or redirect URI is unknown or does not match: shown on a page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"UntrustedRequest({self.message!r})"


class AuthorizationDenied(Exception):
    """An error sent back to the app's redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, request: AuthorizationRequest, error: str, description: str) -> None:
        super().__init__(description)
        self.request, self.error, self.description = request, error, description

    def __repr__(self) -> str:
        return f"AuthorizationDenied({self.error!r}, {self.description!r})"

    def location(self, issuer: str) -> str:
        return self.request.redirect(issuer, error=self.error, error_description=self.description)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: ClientView
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    code_challenge: str
    nonce: str | None
    aud: str | None
    params: dict[str, str]

    def redirect(self, issuer: str, **fields: str) -> str:
        """The redirect URI with ``fields``, ``state`` and ``iss`` (RFC 9207) added to its query."""
        values = dict(fields)
        if self.state is not None:
            values["state"] = self.state
        values["iss"] = issuer
        parts = urlsplit(self.redirect_uri)
        query = "&".join(q for q in (parts.query, urlencode(values)) if q)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    @property
    def optional_scopes(self) -> tuple[str, ...]:
        return tuple(s for s in self.scope if s not in REQUIRED_SCOPES)


def check_client(client: ClientView | None, params: dict[str, str]) -> tuple[ClientView, str]:
    """The client and its redirect URI, when both can be trusted; else :class:`UntrustedRequest`.

    The redirect URI is required (SMART App Launch) and must equal a registered one exactly: no
    prefix, path or query matching."""
    if client is None:
        raise UntrustedRequest("This app is not registered here.")
    if "authorization_code" not in client.grant_types or not client.redirect_uris:
        raise UntrustedRequest("This app may not sign people in.")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        raise UntrustedRequest("The app did not say where to return.")
    if redirect_uri not in client.redirect_uris:
        raise UntrustedRequest("The app asked to return to an address it has not registered.")
    return client, redirect_uri


def parse(
    client: ClientView, redirect_uri: str, params: dict[str, str], fhir_bases: list[str]
) -> AuthorizationRequest:
    """The checked request; :class:`AuthorizationDenied` for anything the app got wrong."""
    kept = {name: params[name] for name in PARAMETERS if name in params}
    kept["redirect_uri"] = redirect_uri
    request = AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scope=tuple(dict.fromkeys(params.get("scope", "").split())),
        state=params.get("state"),
        code_challenge=params.get("code_challenge", ""),
        nonce=params.get("nonce"),
        aud=params.get("aud"),
        params=kept,
    )
    if params.get("response_type") != "code":
        raise AuthorizationDenied(
            request, "unsupported_response_type", "response_type must be code"
        )
    method = params.get("code_challenge_method")
    if not request.code_challenge:
        raise AuthorizationDenied(request, "invalid_request", "code_challenge (PKCE) is required")
    if method != "S256":
        raise AuthorizationDenied(
            request, "invalid_request", "code_challenge_method must be S256 (plain is refused)"
        )
    if not _CHALLENGE.match(request.code_challenge):
        raise AuthorizationDenied(request, "invalid_request", "code_challenge is malformed")
    if not request.scope:
        raise AuthorizationDenied(request, "invalid_scope", "scope is required")
    # An EHR launch names its context by a launch value; one without the other means nothing.
    if "launch" in request.scope and not params.get("launch"):
        raise AuthorizationDenied(
            request, "invalid_request", "the launch scope needs a launch parameter (EHR launch)"
        )
    if params.get("launch") and "launch" not in request.scope:
        raise AuthorizationDenied(
            request, "invalid_scope", "a launch parameter needs the launch scope"
        )
    if request.aud is not None and request.aud.rstrip("/") not in {
        base.rstrip("/") for base in fhir_bases
    }:
        raise AuthorizationDenied(
            request, "invalid_request", "aud is not a FHIR server of this deployment"
        )
    return request
