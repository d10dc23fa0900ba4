"""Which patient a practitioner may open: phi decides, by reading the Patient with a token of the
practitioner's own (their scopes, audience phi). Nothing is decided here that phi would decide
differently, and an unknown patient looks the same as a forbidden one."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

from medmesh.auth.authorize.codes import FHIR_AUDIENCE
from medmesh.auth.authorize.requests import AuthorizationRequest
from medmesh.auth.models import User
from medmesh.auth.tokens.service import TokenService
from medmesh.platform.errors import ServiceUnavailable
from medmesh.platform.tokens import ScopeSet

#: A FHIR id (FHIR R4 §2.26.0.1).
PATIENT_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
READ_PATIENT = "user/Patient.r"
TIMEOUT_SECONDS = 10.0


class RecordServerUnavailable(ServiceUnavailable):
    code = "fhir_unavailable"


class PatientAccess:
    def __init__(self, tokens: TokenService, default_fhir_base: str) -> None:
        self.tokens = tokens
        self.default_fhir_base = default_fhir_base

    async def may_open(
        self, held: ScopeSet, req: AuthorizationRequest, user: User, patient_id: str
    ) -> bool:
        """True when phi lets ``user`` (holding scopes ``held``) read Patient ``patient_id``."""
        if not PATIENT_ID.match(patient_id):
            return False
        token, _ = self.tokens.issuer.issue_access_token(
            req.client,
            sub=user.id,
            scope=READ_PATIENT if held.has(READ_PATIENT) else "",
            roles=list(user.roles),
            audiences=[FHIR_AUDIENCE],
            fhir_user=user.fhir_user,
        )
        base = (req.aud or self.default_fhir_base).rstrip("/")
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                answer = await http.get(
                    f"{base}/Patient/{quote(patient_id)}",
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
                )
        except httpx.HTTPError:
            raise RecordServerUnavailable("the health record server cannot be reached") from None
        if answer.status_code >= 500:
            raise RecordServerUnavailable("the health record server failed")
        return answer.status_code == 200
