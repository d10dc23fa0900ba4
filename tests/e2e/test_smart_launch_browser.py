"""A SMART standalone launch in a real headless Chromium against real auth and phi processes.

The app (a small page server on this machine) sends the browser to auth's authorization
endpoint; the person signs in, unticks one scope on the consent page and allows the rest; the
app exchanges the code with its PKCE verifier and reads the patient from phi with the token.
The granted scope is the narrowed one. The patient then disconnects the app on the
connected-apps page: its refresh token fails at once and phi refuses its access token. Screenshots of the login and consent pages are kept under
``var/``. Chromium is required where CI's test servers are configured (see
``test_docs_browser``)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import fhirclient.client
import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.auth.authorize.flow import form_fields, post_form
from tests.e2e.test_docs_browser import ROOT, WAIT_SECONDS, browser, driver, errors, wait_for
from tests.e2e.test_phi_process import MEDMESH, _cli, _wait_ready, free_port

pytestmark = pytest.mark.e2e
__all__ = ["browser", "driver"]  # fixtures this module uses

LOGIN_SCREENSHOT = ROOT / "var" / "smart-launch-login.png"
CONSENT_SCREENSHOT = ROOT / "var" / "smart-launch-consent.png"
PASSWORD = "a patient's long password"
UNTICKED = "patient/Observation.rs"
SCOPE = "openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs"


@dataclass
class Services:
    auth_url: str
    phi_url: str
    secrets: dict[str, str]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """auth and phi processes; auth knows phi's FHIR base as an allowed ``aud``."""
    auth_port, phi_port = free_port(), free_port()
    auth_url, phi_url = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{phi_port}"
    base = {
        k: v
        for k, v in os.environ.items()  # noqa: TID251 - the processes inherit PATH, HOME ...
        if not k.startswith("MEDMESH_")
    }
    auth_env = {
        **base,
        "MEDMESH_AUTH_VAR_DIR": str(tmp_path),
        "MEDMESH_AUTH_ISSUER": auth_url,
        "MEDMESH_AUTH_DRAIN_SECONDS": "0",
        "MEDMESH_AUTH_ARGON2_MEMORY_KIB": "1024",
        "MEDMESH_AUTH_ARGON2_TIME_COST": "1",
        "MEDMESH_AUTH_LOG_FILE": str(tmp_path / "auth.log"),
        "MEDMESH_AUTH_FHIR_BASE_URLS": json.dumps([phi_url + "/fhir"]),
    }
    phi_env = {
        **base,
        "MEDMESH_PHI_VAR_DIR": str(tmp_path),
        "MEDMESH_PHI_ISSUER": auth_url,
        "MEDMESH_PHI_DRAIN_SECONDS": "0",
        "MEDMESH_PHI_LOG_FILE": str(tmp_path / "phi.log"),
    }
    processes = []
    try:
        for name, port, env in (("auth", auth_port, auth_env), ("phi", phi_port, phi_env)):
            process = subprocess.Popen(
                [*MEDMESH, "serve", name, "--port", str(port), "--migrate"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            _wait_ready(f"http://127.0.0.1:{port}", process, tmp_path / f"{name}.log")
        boot = _cli(auth_env, "admin", "bootstrap")
        assert boot.returncode == 0, boot.stderr
        yield Services(
            auth_url, phi_url, dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@dataclass
class App:
    """A SMART app: ``/launch`` redirects to the authorization endpoint, ``/callback`` keeps
    what comes back."""

    url: str
    client_id: str = ""
    authorize_url: str = ""
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    callback: dict[str, str] = field(default_factory=dict)
    aud: str = ""

    @property
    def redirect_uri(self) -> str:
        return self.url + "/callback"

    def launch_location(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": self.state,
            "aud": self.aud,
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        return self.authorize_url + "?" + urlencode(params)


@pytest.fixture
def app_server() -> Iterator[App]:
    port = free_port()
    app = App(f"http://127.0.0.1:{port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/launch":
                self.send_response(302)
                self.send_header("Location", app.launch_location())
                self.end_headers()
                return
            if parts.path != "/callback":
                self.send_response(404)
                self.end_headers()
                return
            app.callback = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body = b"<!doctype html><html lang='en'><title>App</title><h1>Back in the app</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()


def _admin_headers(services: Services) -> dict[str, str]:
    admin = httpx.post(
        services.auth_url + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "auth:admin"},
        auth=("medmesh-cli", services.secrets["medmesh-cli"]),
        timeout=30,
    )
    assert admin.status_code == 200, admin.text
    return {"Authorization": f"Bearer {admin.json()['access_token']}"}


def _register(services: Services, app: App) -> str:
    """The app registered, a patient in phi and a user bound to them; returns the patient id."""
    auth = services.auth_url
    headers = _admin_headers(services)
    system = httpx.post(
        auth + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
        auth=("demo-service", services.secrets["demo-service"]),
        timeout=30,
    )
    patient = httpx.post(
        services.phi_url + "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Quillfeather", "given": ["Ada"]}]},
        headers={
            "Authorization": f"Bearer {system.json()['access_token']}",
            "Content-Type": "application/fhir+json",
        },
        timeout=30,
    )
    assert patient.status_code == 201, patient.text
    patient_id = str(patient.json()["id"])
    user = httpx.post(
        auth + "/admin/users",
        json={
            "username": "ada",
            "password": PASSWORD,
            "roles": ["patient"],
            "patient_id": patient_id,
            "fhir_user": f"Patient/{patient_id}",
        },
        headers=headers,
        timeout=30,
    )
    assert user.status_code == 201, user.text
    client = httpx.post(
        auth + "/admin/clients",
        json={
            "name": "Growth chart",
            "public": True,
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": SCOPE,
            "redirect_uris": [app.redirect_uri],
        },
        headers=headers,
        timeout=30,
    )
    assert client.status_code == 201, client.text
    assert client.json()["client_secret"] is None
    app.client_id = client.json()["client_id"]
    app.authorize_url = auth + "/oauth/authorize"
    app.aud = services.phi_url + "/fhir"
    return patient_id


def test_standalone_launch_with_one_scope_unticked(
    driver: Chrome, services: Services, app_server: App
) -> None:
    app = app_server
    patient_id = _register(services, app)

    driver.get(app.url + "/launch")
    wait_for(driver, "#username")
    assert driver.title == "Sign in · medmesh"
    LOGIN_SCREENSHOT.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(LOGIN_SCREENSHOT))
    driver.find_element(By.ID, "username").send_keys("ada")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()

    wait_for(driver, "#allow")
    assert driver.title == "Allow access · medmesh"
    heading = driver.find_element(By.TAG_NAME, "h1").text
    assert heading == "Allow Growth chart to use your account?"
    listed = driver.find_element(By.CSS_SELECTOR, "ul.scopes").text
    assert "Read and search your observation records" in listed
    box = driver.find_element(By.CSS_SELECTOR, f"input[name=grant][value='{UNTICKED}']")
    box.click()
    assert not box.is_selected()
    assert driver.save_screenshot(str(CONSENT_SCREENSHOT))
    driver.find_element(By.ID, "allow").click()

    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.current_url.startswith(app.redirect_uri))
    # No CSP violation on the way (the app's own page has no icon: its 404 is the app's).
    assert [e for e in errors(driver) if "favicon.ico" not in e] == []
    assert app.callback["state"] == app.state
    assert app.callback["iss"] == services.auth_url

    exchanged = httpx.post(
        services.auth_url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": app.callback["code"],
            "redirect_uri": app.redirect_uri,
            "code_verifier": app.verifier,
            "client_id": app.client_id,
        },
        timeout=30,
    )
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert tokens["scope"].split() == [s for s in SCOPE.split() if s != UNTICKED]
    assert tokens["patient"] == patient_id
    assert tokens["need_patient_banner"] is True
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    read = httpx.get(f"{services.phi_url}/fhir/Patient/{patient_id}", headers=bearer, timeout=30)
    assert read.status_code == 200, read.text
    assert read.json()["name"][0]["family"] == "Quillfeather"
    observations = httpx.get(
        f"{services.phi_url}/fhir/Observation", params={"patient": patient_id}, headers=bearer
    )
    assert observations.status_code == 403

    # The patient takes the app's access back on the connected-apps page.
    driver.get(services.auth_url + "/oauth/apps")
    assert driver.find_element(By.TAG_NAME, "h2").text == "Growth chart"
    wait_for(driver, "#disconnect-1").click()
    wait_for(driver, "[role=status]")
    assert "No app holds access to your account." in driver.page_source
    refreshed = httpx.post(
        services.auth_url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app.client_id,
        },
        timeout=30,
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    # phi refuses the access token once it has pulled the revocation (docs/auth.md: 1-2 s).
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        read = httpx.get(f"{services.phi_url}/fhir/Patient/{patient_id}", headers=bearer)
        if read.status_code == 401:
            break
        assert read.status_code == 200
        assert time.monotonic() < deadline, "phi still honours the disconnected app's token"
        time.sleep(0.2)


PICKER_SCOPE = "openid fhirUser launch/patient offline_access user/Patient.rs"


async def _launch_as(
    services: Services, client_id: str, username: str, password: str
) -> tuple[httpx.AsyncClient, httpx.Response, str]:
    """A browser (httpx) that signed in to a launch of ``client_id``, the page it is on and the
    launch's PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    http = httpx.AsyncClient(base_url=services.auth_url, timeout=30)
    page = await http.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "http://127.0.0.1/callback",
            "scope": PICKER_SCOPE,
            "state": "s",
            "aud": services.phi_url + "/fhir",
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
    )
    fields = [*form_fields(page.text), ("username", username), ("password", password)]
    signed_in = await post_form(http, "/oauth/authorize/login", fields)
    assert signed_in.status_code == 303, signed_in.text
    return http, await http.get(signed_in.headers["location"]), verifier


async def _pick(http: httpx.AsyncClient, page: httpx.Response, patient: str) -> httpx.Response:
    fields = [*form_fields(page.text), ("patient", patient)]
    return await post_form(http, "/oauth/authorize/patient", fields)


def _register_ward_app(services: Services) -> str:
    """An app asking for a patient with user-level scopes, a clinician and a scheduler (who
    holds no Patient scope); returns the app's client id."""
    headers = _admin_headers(services)
    auth = services.auth_url
    client = httpx.post(
        auth + "/admin/clients",
        json={
            "name": "Ward round",
            "public": True,
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": PICKER_SCOPE,
            "redirect_uris": ["http://127.0.0.1/callback"],
        },
        headers=headers,
    ).json()
    role = httpx.put(
        auth + "/admin/roles/scheduler",
        json={"scope": "openid fhirUser user/Appointment.rs"},
        headers=headers,
    )
    assert role.status_code in (200, 201), role.text
    for username, roles in (("dr.grey", ["clinician"]), ("desk", ["scheduler"])):
        made = httpx.post(
            auth + "/admin/users",
            json={"username": username, "password": PASSWORD, "roles": roles},
            headers=headers,
        )
        assert made.status_code == 201, made.text

    return str(client["client_id"])


async def test_a_practitioner_picks_only_a_patient_they_may_see(
    services: Services, app_server: App
) -> None:
    patient_id = _register(services, app_server)
    client_id = _register_ward_app(services)
    http, picker, verifier = await _launch_as(services, client_id, "dr.grey", PASSWORD)
    try:
        assert picker.status_code == 200
        assert "<h1>Choose a patient</h1>" in picker.text
        unknown = await _pick(http, picker, "no-such-patient")
        assert unknown.status_code == 403
        assert "You may not open this patient" in unknown.text
        consent = await _pick(http, picker, patient_id)
        assert consent.status_code == 200, consent.text
        assert f"Patient record: <strong>{patient_id}</strong>" in consent.text
        # The hidden field changed by the browser is checked again.
        forged = [
            (n, "no-such-patient" if n == "patient" else v) for n, v in form_fields(consent.text)
        ]
        refused = await post_form(
            http, "/oauth/authorize/consent", [*forged, ("decision", "allow")]
        )
        assert refused.status_code == 403
        allowed = await post_form(
            http, "/oauth/authorize/consent", [*form_fields(consent.text), ("decision", "allow")]
        )
        assert allowed.status_code == 303
        code = parse_qs(urlsplit(allowed.headers["location"]).query)["code"][0]
        tokens = await http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://127.0.0.1/callback",
                "code_verifier": verifier,
                "client_id": client_id,
            },
        )
        assert tokens.status_code == 200, tokens.text
        assert tokens.json()["patient"] == patient_id
        assert tokens.json()["scope"] == PICKER_SCOPE
        # The refreshed tokens keep the picked patient.
        refreshed = await http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens.json()["refresh_token"],
                "client_id": client_id,
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        access = refreshed.json()["access_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(access + "=" * (-len(access) % 4)))
        assert claims["patient"] == patient_id
    finally:
        await http.aclose()

    http, picker, _ = await _launch_as(services, client_id, "desk", PASSWORD)
    try:
        refused = await _pick(http, picker, patient_id)
        assert refused.status_code == 403
        assert "You may not open this patient" in refused.text
    finally:
        await http.aclose()


def test_the_fhirclient_library_completes_its_own_flow(services: Services, app_server: App) -> None:
    """SMART on FHIR's Python client finds the endpoints in phi's CapabilityStatement, builds
    the authorization URL (PKCE S256, aud = phi's base), exchanges the code and reads the
    patient in context."""
    app = app_server
    patient_id = _register(services, app)
    smart = fhirclient.client.FHIRClient(
        settings={
            "app_id": app.client_id,
            "api_base": services.phi_url + "/fhir",
            "redirect_uri": app.redirect_uri,
            "scope": SCOPE,
        }
    )
    with httpx.Client(base_url=services.auth_url, timeout=30) as browser_http:
        page = browser_http.get(smart.authorize_url)
        assert page.status_code == 200, page.text
        fields = [*form_fields(page.text), ("username", "ada"), ("password", PASSWORD)]
        signed_in = browser_http.post(
            "/oauth/authorize/login",
            content=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        consent = browser_http.get(signed_in.headers["location"])
        allowed = browser_http.post(
            "/oauth/authorize/consent",
            content=urlencode([*form_fields(consent.text), ("decision", "allow")]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert allowed.status_code == 303, allowed.text
    smart.handle_callback(allowed.headers["location"])
    assert smart.ready
    assert smart.patient_id == patient_id
    patient = smart.patient
    assert patient is not None
    assert patient.name[0].family == "Quillfeather"
