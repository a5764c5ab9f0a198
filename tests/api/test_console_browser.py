"""The console in a real browser: Debian's chromium driven by Playwright for Python (never
Playwright's own browser download; scripts/setup.sh installs chromium with apt-get).

The walk of issue 22: a scoped auditor signs in, finds the county, opens its 2025 02表, clicks
the 402 amount, reaches the journal, a voucher and the events that recorded it (verified,
under a seal); known_at before the reversal shows the old figure; a masked page holds no
identity number, name or birth date; a clerk of another union gets no access; and no request
goes to any host but the server. Every page is photographed into SCREENSHOTS."""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from api.console.formatting import CHINA
from tests.api.conftest import Api, _open_api
from tests.api.console_walk import MEMBER_NAME, Walk, build_walk
from tests.api.test_console_reconciliations import make_runs

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "console"
FIRST_VIEW_LIMIT_BYTES = 300_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:  # a failure, not a skip: these tests must run wherever tests run
        pytest.fail("chromium is not installed: run `bash scripts/test.sh` (it installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """SQLite only: what the browser adds is the browser's side (cookies, links, requests);
    tests/api/test_console.py reads the same pages on both stores."""
    yield from _open_api("sqlite", tmp_path_factory.mktemp("console-browser"))


@pytest.fixture(scope="module")
def walk(api: Api) -> Walk:
    return build_walk(api)


class Recorded:
    """Every request a browser context makes, and the bytes each response carried."""

    def __init__(self, context: BrowserContext) -> None:
        self.urls: list[str] = []
        self.sizes: dict[str, int] = {}
        context.on("request", self._request)
        context.on("requestfinished", self._finished)

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)

    def _finished(self, request: Request) -> None:
        sizes = request.sizes()
        self.sizes[request.url] = sizes["responseBodySize"] + sizes["responseHeadersSize"]

    def hosts(self) -> set[str]:
        return {
            urlsplit(url).netloc for url in self.urls if urlsplit(url).scheme in ("http", "https")
        }


def shot(page: Page, name: str, backend: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{backend}-{name}.png"), full_page=True)


def sign_in(page: Page, api: Api, token_name: str) -> None:
    page.goto(f"{api.server.url}/console")
    assert "/console/sign-in" in page.url
    page.fill("#token", api.tokens[token_name])
    page.click("button[type=submit]")
    page.wait_for_url(f"{api.server.url}/console")


def picker(moment: str) -> str:
    return datetime.datetime.fromisoformat(moment).astimezone(CHINA).strftime("%Y-%m-%dT%H:%M:%S")


def test_the_auditors_walk(api: Api, walk: Walk, browser: Browser) -> None:
    backend = api.backend.kind
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    recorded = Recorded(context)
    page = context.new_page()
    try:
        page.goto(f"{api.server.url}/")
        assert "/console/sign-in" in page.url
        shot(page, "01-sign-in", backend)
        first_view = sum(recorded.sizes.values())
        assert 0 < first_view < FIRST_VIEW_LIMIT_BYTES, first_view
        assert api.tokens["east_auditor"] not in page.url

        sign_in(page, api, "east_auditor")
        assert api.tokens["east_auditor"] not in page.url
        page.fill("input[name=q]", "朝阳")
        page.click("form.row button[type=submit]")
        page.wait_for_load_state()
        shot(page, "02-find", backend)
        page.click(f"text={walk.county_name} >> nth=0")
        page.wait_for_url(f"**/console/organizations/{walk.county}")
        assert page.locator("#membership-rate").is_visible()
        shot(page, "03-organization", backend)

        page.click("nav.tabs >> text=02表")
        page.fill("input[name=from]", "2025-01-01")
        page.fill("input[name=to]", "2025-12-31")
        page.click("form.row >> button[type=submit] >> nth=0")
        page.wait_for_url("**to=2025-12-31**")
        amount = page.locator('tr[data-account="402"] td.amount a')
        assert amount.inner_text() == walk.amount_now
        shot(page, "04-income-expenditure-2025", backend)

        amount.click()
        page.wait_for_url("**/journal?**account_code=402**")
        assert "序时账：402" in page.inner_text("h1")
        shot(page, "05-journal-402", backend)

        page.click(f'a[href="/console/vouchers/{walk.kept_voucher}"]')
        page.wait_for_url(f"**/console/vouchers/{walk.kept_voucher}")
        event = page.locator("section.event").first
        assert "✓ 已核验" in event.inner_text()
        seal = event.locator("dd.seal").inner_text()
        assert f"封印至序号 {walk.seal_position}" in seal and "签名有效" in seal
        shot(page, "06-voucher-events", backend)

        # As known before the reversal was recorded: the old figure.
        page.go_back()
        page.go_back()
        page.wait_for_url("**/statements/income-expenditure**")
        page.fill("#known_at", picker(walk.before_reversal))
        page.click("form.row >> button[type=submit] >> nth=0")
        page.wait_for_url("**known_at=**")
        assert page.locator('tr[data-account="402"] td.amount a').inner_text() == (
            walk.amount_before
        )
        shot(page, "07-income-expenditure-known-at", backend)

        page.fill("input[name=known_at_a]", picker(walk.before_reversal))
        page.click("text=并排比较")
        page.wait_for_url("**/compare/income-expenditure**")
        row = page.locator('tr.changed[data-account="402"]')
        assert "≠ 有变化" in row.inner_text()
        assert walk.amount_before in row.inner_text() and walk.amount_now in row.inner_text()
        shot(page, "08-compare", backend)

        page.click("nav.tabs >> text=图表")
        page.fill("input[name=from]", "2020-01-01")
        page.fill("input[name=to]", "2020-12-31")
        page.click("form.row >> button[type=submit] >> nth=0")
        page.wait_for_url("**/charts?**")
        assert page.locator("#members-chart svg").is_visible()
        shot(page, "13-charts", backend)
        page.fill("input[name=from]", "2025-01-01")
        page.fill("input[name=to]", "2025-12-31")
        page.select_option("select[name=scope]", "self")
        page.click("form.row >> button[type=submit] >> nth=0")
        page.wait_for_url("**scope=self**")
        assert "402 拨缴经费收入" in page.inner_text("#flow-table")
        shot(page, "14-fund-flow-2025", backend)

        # The roll of a base union, masked for this token.
        page.goto(f"{api.server.url}/console/organizations/{api.tree.base_a}/roll")
        html = page.content()
        birth = walk.member_birth
        for secret in (walk.member_id_number, MEMBER_NAME, birth, birth.replace("-", "")):
            assert secret not in html, secret
        assert "欧***" in html
        shot(page, "09-roll-masked", backend)

        page.click("text=退出")
        page.wait_for_url("**/console/sign-in")
        page.goto(f"{api.server.url}/console/organizations/{walk.county}")
        assert "/console/sign-in" in page.url
    finally:
        context.close()
    assert recorded.hosts() == {urlsplit(api.server.url).netloc}, recorded.hosts()


def test_a_clerk_of_another_union_and_the_verification_page(
    api: Api, walk: Walk, browser: Browser
) -> None:
    backend = api.backend.kind
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    recorded = Recorded(context)
    page = context.new_page()
    try:
        sign_in(page, api, "west_clerk")
        response = page.goto(f"{api.server.url}/console/organizations/{walk.county}")
        assert response is not None and response.status == 403
        assert "无权访问" in page.inner_text("h1")
        assert walk.county_name not in page.content()
        shot(page, "10-other-union-refused", backend)
        page.click("text=退出")
        page.wait_for_url("**/console/sign-in")

        sign_in(page, api, "auditor")
        page.click("text=审计链核验")
        page.wait_for_url("**/console/verification")
        assert "已证明至序号" in page.inner_text("#verification-result")
        shot(page, "11-verification", backend)

        for path in ("/docs", "/redoc"):
            page.goto(f"{api.server.url}{path}")
            page.wait_for_load_state("networkidle")
        page.goto(f"{api.server.url}/docs")
        page.wait_for_selector(".swagger-ui .information-container")
        shot(page, "12-docs", backend)
    finally:
        context.close()
    assert recorded.hosts() == {urlsplit(api.server.url).netloc}, recorded.hosts()


def test_a_reconciliation_run_opened_and_signed_off(api: Api, walk: Walk, browser: Browser) -> None:
    """From the county's page to its runs, one run with its differences, and its sign-off."""
    runs = make_runs(api)
    backend = api.backend.kind
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    recorded = Recorded(context)
    page = context.new_page()
    try:
        sign_in(page, api, "east_auditor")
        page.goto(f"{api.server.url}/console/organizations/{walk.county}")
        page.click("nav.tabs >> text=月末对账")
        page.wait_for_url(f"**/console/organizations/{walk.county}/reconciliations")
        page.click(f'a[href="/console/reconciliations/{runs.with_files}"]')
        page.wait_for_url(f"**/console/reconciliations/{runs.with_files}")
        assert "账簿缺少" in page.inner_text("#differences")
        assert "税务已代收而账簿无记录的单位" in page.inner_text("#monitors")
        shot(page, "15-reconciliation-run", backend)

        page.click("#sign-off-link")
        page.wait_for_url("**/sign-off")
        page.fill("textarea[name=note]", "已核对：手续费和退款下月入账")
        page.click("#sign-off-form button[type=submit]")
        page.wait_for_url(f"**/console/reconciliations/{runs.with_files}")
        assert "已签核" in page.inner_text("#run-status")
        assert "已核对：手续费和退款下月入账" in page.inner_text("#sign-off-note")
        assert page.locator("#sign-off-link").count() == 0
        shot(page, "16-reconciliation-signed-off", backend)
    finally:
        context.close()
    assert recorded.hosts() == {urlsplit(api.server.url).netloc}, recorded.hosts()
