"""Where a load goes (a FHIR base and how to get a token) and how hard it pushes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PhiTarget:
    """A FHIR server's base URL (``http://127.0.0.1:8002/fhir`` for phi-service) and credentials.

    Either an ``access_token`` to send as is, or OAuth client credentials (``token_url``,
    ``client_id``, ``client_secret``, ``scope``): the token is then fetched, cached and renewed
    by :class:`medmesh.platform.service_client.ServiceClient`. phi-service needs create, read, update
    and search rights (``system/*.crus``): creates for the patients, updates for the directory
    (PUT with its ids), reads and searches to find what an interrupted attempt already stored.
    """

    fhir_url: str
    token_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str = "system/*.crus"
    access_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.fhir_url.startswith(("http://", "https://")):
            raise ValueError("the FHIR base URL must start with http:// or https://")
        if not self.access_token and not (self.token_url and self.client_id and self.client_secret):
            raise ValueError(
                "loading needs an access token, or a token URL, client id and client secret"
            )


@dataclass(frozen=True)
class LoadSettings:
    """How a load batches, parallelises and retries.

    ``batch_size`` patients (at most ``max_entries`` resources) go into one transaction Bundle,
    so phi commits them together; ``concurrency`` Bundles are in flight at once. A Bundle that
    meets a connection error, a 5xx or a 429 is retried up to ``retries`` times with
    exponential backoff from ``backoff_seconds`` (a 429's ``Retry-After`` is honoured).
    """

    batch_size: int = 10
    max_entries: int = 2000
    concurrency: int = 4
    retries: int = 5
    backoff_seconds: float = 0.5
    timeout_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_entries < 1 or self.concurrency < 1:
            raise ValueError("batch_size, max_entries and concurrency must be at least 1")
        if self.retries < 0 or self.backoff_seconds < 0 or self.timeout_seconds <= 0:
            raise ValueError("retries and backoff_seconds must be ≥ 0, timeout_seconds > 0")
