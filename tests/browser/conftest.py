"""Fixtures of the console's browser tests: Debian's chromium driven by Playwright (no browser
is downloaded), a real `polyhost serve` with the test workflows deployed, and a folder the
tests save screenshots to (tests/browser/screenshots/, not committed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from polyhost.server._console import CONSOLE_DIST
from tests.browser.flows import write_flows
from tests.helpers.server import ServerProcess, running_server

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def console_built() -> Path:
    if not (CONSOLE_DIST / "index.html").is_file():
        pytest.fail("the console is not built: run `make console`")
    return CONSOLE_DIST


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright, console_built: Path) -> Iterator[Browser]:
    executable = shutil.which("chromium") or CHROMIUM
    if not Path(executable).exists():
        pytest.fail("the browser tests need Debian's chromium: `make chromium`")
    launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield opened
    context.close()
    # A script error or a refused script or style (a CSP violation) fails the test; failed
    # requests (a 401 before the token, a server being restarted) are the tests' own business.
    assert not problems, problems


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    write_flows(folder)
    return folder


@pytest.fixture
def server(tmp_path: Path, workflows: Path, console_built: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "home", "--workflows", str(workflows)) as started:
        yield started
