"""Bodies of the EHR launch API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: A FHIR resource id (R4 ``id``): what ``patient`` and ``encounter`` hold.
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


class LaunchCreate(BaseModel):
    """The context an EHR puts up for one app's launch."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=64, description="the app being launched")
    patient: str | None = Field(
        default=None, pattern=FHIR_ID, description="the Patient id in context"
    )
    encounter: str | None = Field(
        default=None, pattern=FHIR_ID, description="the Encounter id in context"
    )
    need_patient_banner: bool = Field(
        default=False,
        description="true when the EHR does not show the patient, so the app must",
    )


class LaunchOut(BaseModel):
    """A minted launch value: give it to the app as its `launch` parameter, once."""

    launch: str
    client_id: str
    patient: str | None
    encounter: str | None
    need_patient_banner: bool
    expires_in: int
