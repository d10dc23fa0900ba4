"""The services' /docs in a real headless Chromium that reaches nothing but this machine:
auth's page renders, its Authorize button obtains a token for a client, and an operation that
needs that token answers 200 from "Try it out"; phi's page obtains its token from auth, another
origin (auth answers CORS for phi's origin), and its FHIR search carries it.

Chromium and its driver are Debian's (``deploy/install-tools.sh`` installs them). Where CI's
test servers are configured (``MEDMESH_TEST_POSTGRES_URL``) a missing browser fails the test;
elsewhere it is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from medmesh.platform.testing import test_environment
from tests.e2e.test_auth_process import MEDMESH, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
SCREENSHOT = ROOT / "var" / "docs-ui.png"
PHI_SCREENSHOT = ROOT / "var" / "docs-ui-phi.png"
WAIT_SECONDS = 60


@dataclass
class Browser:
    chromium: str
    chromedriver: str


@pytest.fixture
def browser() -> Browser:
    """Debian's chromium and chromedriver; required where CI's test servers are configured."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        missing = "chromium" if chromium is None else "chromedriver"
        reason = f"{missing} is not installed (deploy/install-tools.sh installs it as root)"
        if test_environment().postgres_url:
            pytest.fail(f"{reason}; MEDMESH_TEST_POSTGRES_URL is set, so the browser test runs")
        pytest.skip(f"{reason}; required only where MEDMESH_TEST_POSTGRES_URL is set")
    return Browser(chromium, chromedriver)


@dataclass
class RunningAuth:
    url: str
    secrets: dict[str, str]


def service_env(name: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a service process: the test's own (PATH, HOME ...) without any
    MEDMESH_ setting, then ``settings`` as ``MEDMESH_<NAME>_<KEY>``."""
    prefix = f"MEDMESH_{name.upper()}_"
    return {
        **{
            k: v
            for k, v in os.environ.items()  # noqa: TID251 - the process inherits PATH, HOME ...
            if not k.startswith("MEDMESH_")
        },
        prefix + "VAR_DIR": str(tmp_path),
        prefix + "DRAIN_SECONDS": "0",
        prefix + "LOG_FILE": str(tmp_path / f"{name}.log"),
        **{prefix + key.upper(): value for key, value in settings.items()},
    }


@contextlib.contextmanager
def serving(name: str, port: int, env: dict[str, str], log_file: Path) -> Iterator[str]:
    """A real service process on ``port`` (migrated on start), once it is ready; its URL."""
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*MEDMESH, "serve", name, "--port", str(port), "--migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            assert process.poll() is None, log_file.read_text() if log_file.exists() else "exited"
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} did not become ready"
            time.sleep(0.1)
        yield url
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def bootstrap(env: dict[str, str]) -> dict[str, str]:
    """``medmesh admin bootstrap`` against a running auth: the secrets of the clients it made."""
    boot = subprocess.run(
        [*MEDMESH, "admin", "bootstrap"], env=env, capture_output=True, text=True, timeout=60
    )
    assert boot.returncode == 0, boot.stderr
    return dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))


@pytest.fixture
def running_auth(tmp_path: Path) -> Iterator[RunningAuth]:
    """A real auth-service process (SQLite in tmp_path), bootstrapped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = service_env("auth", tmp_path, issuer=url, argon2_memory_kib="1024", argon2_time_cost="1")
    with serving("auth", port, env, tmp_path / "auth.log"):
        yield RunningAuth(url, bootstrap(env))


@dataclass
class AuthAndPhi:
    auth_url: str
    phi_url: str
    secrets: dict[str, str]


@pytest.fixture
def auth_and_phi(tmp_path: Path) -> Iterator[AuthAndPhi]:
    """Real auth and phi processes on two origins; auth answers CORS for phi's origin only, phi
    knows auth by its issuer URL (its /docs page's tokenUrl, its JWKS)."""
    auth_port, phi_port = free_port(), free_port()
    auth_url, phi_url = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{phi_port}"
    auth_env = service_env(
        "auth",
        tmp_path,
        issuer=auth_url,
        argon2_memory_kib="1024",
        argon2_time_cost="1",
        cors_origins=json.dumps([phi_url]),
    )
    phi_env = service_env("phi", tmp_path, issuer=auth_url)
    with (
        serving("auth", auth_port, auth_env, tmp_path / "auth.log"),
        serving("phi", phi_port, phi_env, tmp_path / "phi.log"),
    ):
        yield AuthAndPhi(auth_url, phi_url, bootstrap(auth_env))


@dataclass
class Client:
    client_id: str
    secret: str


@pytest.fixture
def docs_client(running_auth: RunningAuth) -> Client:
    """A client-credentials client allowed ``auth:admin``, registered through the admin API."""
    url = running_auth.url
    admin = httpx.post(
        url + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "auth:admin"},
        auth=("medmesh-cli", running_auth.secrets["medmesh-cli"]),
    )
    assert admin.status_code == 200, admin.text
    client_id = f"docs-browser-{secrets.token_hex(4)}"
    created = httpx.post(
        url + "/admin/clients",
        json={
            "client_id": client_id,
            "name": "the docs page's browser test",
            "grant_types": ["client_credentials"],
            "scope": "auth:admin",
            "audiences": ["medmesh-auth"],
        },
        headers={"authorization": f"Bearer {admin.json()['access_token']}"},
    )
    assert created.status_code == 201, created.text
    return Client(client_id, created.json()["client_secret"])


@pytest.fixture
def driver(browser: Browser) -> Iterator[Chrome]:
    """Headless Chromium that reaches only this machine: every other host resolves to nothing
    and goes to a proxy that is not there."""
    options = webdriver.ChromeOptions()
    options.binary_location = browser.chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chrome = webdriver.Chrome(service=Service(browser.chromedriver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@dataclass
class Traffic:
    """What the browser asked for and what was answered (http and https URLs only)."""

    requested: set[str]
    answered: set[str]

    def hosts(self, urls: set[str]) -> set[str]:
        return {urlsplit(u).netloc for u in urls}


def traffic(driver: Chrome) -> Traffic:
    """The browser's requests since the last call (Chrome's performance log)."""
    seen = Traffic(set(), set())
    for entry in log(driver, "performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            seen.requested.add(params["request"]["url"])
        elif message["method"] == "Network.responseReceived":
            seen.answered.add(params["response"]["url"])
    web = ("http://", "https://")
    return Traffic(
        {u for u in seen.requested if u.startswith(web)},
        {u for u in seen.answered if u.startswith(web)},
    )


def errors(driver: Chrome) -> list[str]:
    """The console's errors since the last call (a CSP violation is one)."""
    return [e["message"] for e in log(driver, "browser") if e["level"] == "SEVERE"]


def log(driver: Chrome, kind: str) -> list[dict[str, Any]]:
    """Chrome's ``kind`` log since the last call."""
    entries: list[dict[str, Any]] = driver.get_log(kind)  # type: ignore[no-untyped-call]
    return entries


def wait_for(driver: Chrome, css: str, within: WebElement | None = None) -> WebElement:
    """The first displayed element matching ``css`` (inside ``within``), once there is one."""
    scope: Chrome | WebElement = within or driver

    def shown(_: Chrome) -> WebElement | Literal[False]:
        return next(
            (e for e in scope.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), False
        )

    element: WebElement = WebDriverWait(driver, WAIT_SECONDS).until(shown)
    return element


def authorize_client(driver: Chrome, client_id: str, secret: str) -> dict[str, Any]:
    """Swagger UI's Authorize dialog, client-credentials flow: the token it obtained."""
    driver.find_element(By.CSS_SELECTOR, "button.authorize").click()
    wait_for(driver, "#client_id_clientCredentials")
    oauth2 = driver.find_element(
        By.XPATH,
        "//div[contains(@class, 'auth-container')][.//input[@id='client_id_clientCredentials']]",
    )
    oauth2.find_element(By.ID, "client_id_clientCredentials").send_keys(client_id)
    oauth2.find_element(By.ID, "client_secret_clientCredentials").send_keys(secret)
    oauth2.find_element(By.CSS_SELECTOR, "button.authorize").click()
    wait_for(driver, "button[aria-label='Remove authorization']", within=oauth2)
    authorized = driver.execute_script("return ui.authSelectors.authorized().toJS()")
    oauth2.find_element(By.CSS_SELECTOR, "button.btn-done").click()
    token: dict[str, Any] = authorized["oauth2"]["token"]
    return token


def try_it_out(
    driver: Chrome, method: str, path: str, **parameters: str
) -> tuple[WebElement, WebElement]:
    """Swagger UI's "Try it out" of one operation with ``parameters``: its answer's status and
    body elements."""
    operation = driver.find_element(
        By.XPATH,
        f"//div[contains(@class, 'opblock-{method}')]"
        f"[.//*[contains(@class, 'opblock-summary-path') and @data-path='{path}']]",
    )
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(driver, "button.try-out__btn", within=operation).click()
    for name, value in parameters.items():
        wait_for(driver, f"input[placeholder='{name}']", within=operation).send_keys(value)
    wait_for(driver, "button.execute", within=operation).click()
    answer = ".live-responses-table tr.response"
    status = wait_for(driver, f"{answer} .response-col_status", within=operation)
    body = wait_for(driver, f"{answer} .response-col_description pre", within=operation)
    return status, body


def test_docs_page_renders_offline_and_authorize_obtains_a_token(
    driver: Chrome, running_auth: RunningAuth, docs_client: Client
) -> None:
    url = running_auth.url
    driver.get(url + "/docs")
    wait_for(driver, ".opblock-summary-path")

    paths = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
    assert "/oauth/token" in paths
    assert "/admin/roles" in paths
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOT))
    page = traffic(driver)
    assert page.hosts(page.requested) == {urlsplit(url).netloc}
    assert page.answered == {
        url + "/docs",
        url + "/docs/static/swagger-ui.css",
        url + "/docs/static/swagger-ui-bundle.js",
        url + "/docs/static/favicon.png",
        url + "/openapi.json",
    }
    assert errors(driver) == []

    token = authorize_client(driver, docs_client.client_id, docs_client.secret)
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "auth:admin"

    status, body = try_it_out(driver, "get", "/admin/roles")

    assert status.text == "200"
    assert '"name": "admin"' in body.text
    calls = traffic(driver)
    assert calls.answered == {url + "/oauth/token", url + "/admin/roles"}
    assert calls.requested == calls.answered
    assert errors(driver) == []


def test_phi_docs_obtains_its_token_from_auth_across_origins(
    driver: Chrome, auth_and_phi: AuthAndPhi
) -> None:
    auth_url, phi_url = auth_and_phi.auth_url, auth_and_phi.phi_url
    driver.get(phi_url + "/docs")
    wait_for(driver, ".opblock-summary-path")
    page = traffic(driver)
    assert page.hosts(page.requested) == {urlsplit(phi_url).netloc}
    assert errors(driver) == []

    token = authorize_client(driver, "demo-service", auth_and_phi.secrets["demo-service"])
    assert token["token_type"] == "Bearer"
    assert "system/*.cruds" in token["scope"].split()

    status, body = try_it_out(driver, "get", "/fhir/{resource_type}", resource_type="Patient")
    curl = wait_for(driver, ".curl-command")

    assert status.text == "200"
    bundle = json.loads(body.text)
    assert (bundle["resourceType"], bundle["type"], bundle["total"]) == ("Bundle", "searchset", 0)
    assert f"Authorization: Bearer {token['access_token']}" in curl.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", status)
    PHI_SCREENSHOT.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(PHI_SCREENSHOT))
    calls = traffic(driver)
    assert calls.answered == {auth_url + "/oauth/token", phi_url + "/fhir/Patient"}
    assert calls.requested == calls.answered
    assert errors(driver) == []

    # A request auth's preflight does not allow (a header beyond the token request's) is
    # refused by the browser: the page never sees auth's answer.
    refused = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', headers: {'x-probe': '1'}})"
        ".then(r => done('answered ' + r.status), e => done(e.name + ': ' + e.message));",
        auth_url + "/oauth/token",
    )
    assert refused == "TypeError: Failed to fetch"
    blocked, failed = errors(driver)
    assert blocked.endswith(
        f"Access to fetch at '{auth_url}/oauth/token' from origin '{phi_url}' has been blocked by "
        "CORS policy: Response to preflight request doesn't pass access control check: No "
        "'Access-Control-Allow-Origin' header is present on the requested resource."
    ), blocked
    assert failed == f"{auth_url}/oauth/token - Failed to load resource: net::ERR_FAILED"


def test_redoc_renders_offline(driver: Chrome, running_auth: RunningAuth) -> None:
    url = running_auth.url
    driver.get(url + "/redoc")
    wait_for(driver, "[role=menuitem]")

    menu = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[role=menuitem]")]
    assert "admin: roles" in menu
    page = traffic(driver)
    assert page.answered == {
        url + "/redoc",
        url + "/docs/static/redoc.standalone.js",
        url + "/docs/static/favicon.png",
        url + "/openapi.json",
    }
    # ReDoc's footer shows its maker's logo from its CDN: the page's CSP refuses to load it.
    assert page.requested - page.answered == {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    assert len(errors(driver)) == 1
