"""The dashboard in real headless Chromium, against ``docmill serve`` and ``docmill queue work``.

Debian's ``chromium`` (``/usr/lib/chromium/chromium``, installed by ``.ci/run``) is driven
by Playwright; ``playwright install`` is never used. The server and the worker are the
installed console scripts in subprocesses over an SQLite queue and database under a
temporary directory; the LLM is the offline extractive provider, priced through
``DOCMILL_LLM_PRICES`` so an estimate can exceed the auto-approval budget of zero.

With ``DOCMILL_DASHBOARD_SCREENSHOTS=<dir>`` the last test writes each page's screenshot
there (``docs/dashboard/`` holds the ones the README shows).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import playwright.sync_api as playwright_api
import pytest

from conftest import IN_CI
from docmill.queue import Backend, Client, Dispatch, JobOptions, JobState, backend_from_url
from docmill.web.dashboard.passwords import hash_password

CHROMIUM = Path("/usr/lib/chromium/chromium")
DOCMILL = str(Path(sys.executable).parent / "docmill")
HERE = Path(__file__).parent
OPERATOR, OPERATOR_PASSWORD = "ops", "correct horse battery"
VIEWER, VIEWER_PASSWORD = "watcher", "look but do not touch"
WATCH_QUEUE, FLAKY_QUEUE = "dash-watch", "dash-flaky"
PAGES = ("/", "/failed", "/jobs", "/documents", "/documents/1", "/approvals", "/workers", "/money", "/charts")
REPORT = """\
# Field report

## Findings

The survey found that the northern sites produced twice the yield of the southern ones,
mostly because of the earlier planting season and the better drainage of the soil.

## Next steps

Plant earlier in the south and improve drainage before the next season begins.
"""
T = TypeVar("T")
_loop_thread = ThreadPoolExecutor(max_workers=1)


def run(coroutine_factory: Callable[[], Any]) -> Any:
    """Run a coroutine in a thread of its own: Playwright's sync API holds this thread's loop."""
    return _loop_thread.submit(lambda: asyncio.run(coroutine_factory())).result(timeout=60)


def wait_until(condition: Callable[[], T], what: str, timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """The running server and worker, and a queue backend of the test's own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.queue_url = f"sqlite:///{root / 'storage' / 'queue.db'}"
        self.allow_dir = root / "allow"
        self.allow_dir.mkdir(parents=True)
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DOCMILL_", "DOCUMENT_", "REDIS_", "CLAUDE_", "ANTHROPIC_", "OPENAI_"))
            and k not in {"DATABASE_URL", "QUEUE_CONNECTION"}
        }
        users = (
            f"{OPERATOR}:operator:{hash_password(OPERATOR_PASSWORD)},"
            f"{VIEWER}:viewer:{hash_password(VIEWER_PASSWORD)}"
        )
        self.env = {
            **inherited,
            "DOCMILL_STORAGE": str(root / "storage"),
            "DOCMILL_QUEUE_URL": self.queue_url,
            "DOCMILL_LLM_PROVIDER": "extractive",
            "DOCMILL_LLM_PRICES": '{"extractive": {"input_per_mtok": 500, "output_per_mtok": 500}}',
            "DOCUMENT_AUTO_APPROVE_MAX_USD": "0",
            "DOCMILL_DASHBOARD_USERS": users,
            "DOCMILL_DASHBOARD_SECRET": "a-test-secret-that-is-long-enough-to-sign",
            "DASH_ALLOW_DIR": str(self.allow_dir),
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self._spawn("server", [DOCMILL, "serve", "--port", str(self.port), "--log-level", "warning"])
        wait_until(self._answers, "docmill serve to answer", 60)
        queues = f"document-analysis,document-processing,default,{WATCH_QUEUE},{FLAKY_QUEUE}"
        self._spawn(
            "worker",
            [
                DOCMILL, "queue", "work", "--queue", queues, "--app", "docmill.documents.jobs:registry",
                "--app", "dashboard_jobs:registry", "--concurrency", "4", "--sleep", "0.2", "--tries", "1",
            ],
        )  # fmt: skip

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.root / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.base}/signin", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def backend_call(self, call: Callable[[Backend], Any]) -> Any:
        async def go() -> Any:
            backend = backend_from_url(self.queue_url)
            await backend.connect()
            try:
                return await call(backend)
            finally:
                await backend.close()

        return run(go)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    running = Stack(tmp_path_factory.mktemp("dashboard"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    context = browser.new_context(base_url=stack.base, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()


def sign_in(page: Any, user: str, password: str) -> None:
    page.goto("/")
    assert "/signin" in page.url
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.signin button")
    page.wait_for_url(lambda url: "/signin" not in url)


def open_upload_form(page: Any) -> None:
    if not page.evaluate("() => document.querySelector('details.upload').open"):
        page.locator("details.upload summary").click()


def dispatch(stack: Stack, queue: str, name: str, *args: Any, paused: bool = False) -> list[str]:
    async def go(backend: Backend) -> list[str]:
        if paused:
            await backend.pause(queue)
        client = Client(backend)
        return await client.dispatch_many(
            [Dispatch(name, list(args), options=JobOptions(queue=queue, tries=1))]
        )

    ids: list[str] = stack.backend_call(go)
    return ids


# ------------------------------------------------------------------------------ the tests
def test_a_request_without_a_session_gets_nothing_and_an_action_without_csrf_is_refused(
    stack: Stack, page: Any
) -> None:
    # Given no session: pages send to the sign-in form, the stream and actions answer 401
    anonymous = httpx.get(f"{stack.base}/failed", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/signin?next=%2Ffailed"
    assert anonymous.content == b""
    assert httpx.get(f"{stack.base}/live").status_code == 401
    assert httpx.post(f"{stack.base}/actions/workers/restart", data={}).status_code == 401
    # A wrong password is refused with one sentence, and no cookie
    page.goto("/signin")
    page.fill("input[name=username]", OPERATOR)
    page.fill("input[name=password]", "not the password")
    page.click("form.signin button")
    assert page.locator("p.error").inner_text() == "The user name or the password is wrong."
    assert page.context.cookies() == []
    # Signed in, an action posted without the CSRF token is refused and changes nothing
    sign_in(page, OPERATOR, OPERATOR_PASSWORD)
    cookie = next(c for c in page.context.cookies() if c["name"] == "docmill_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    refused = page.request.post("/actions/queues/pause", form={"queue": WATCH_QUEUE})
    assert refused.status == 403
    assert "did not come from the dashboard" in refused.text()
    assert stack.backend_call(lambda b: b.paused_queues()) == set()


def test_the_read_only_role_sees_everything_and_changes_nothing(stack: Stack, page: Any) -> None:
    sign_in(page, VIEWER, VIEWER_PASSWORD)
    page.goto("/workers")
    assert "Read-only" in page.inner_text("body")
    assert page.locator("main form[action^='/actions/']").count() == 0
    # Even with the session's own CSRF token (the sign-out form carries it)
    token = page.get_attribute("form[action='/signout'] input[name=csrf_token]", "value")
    refused = page.request.post("/actions/workers/stop", form={"csrf_token": token or ""})
    assert refused.status == 403
    assert "watcher may look but not act (role viewer)." in refused.text()
    assert stack.backend_call(lambda b: b.get_flag("workers-stopped")) is None


def test_a_job_goes_from_pending_to_completed_while_the_page_is_open(stack: Stack, page: Any) -> None:
    sign_in(page, OPERATOR, OPERATOR_PASSWORD)
    # Given a job on a paused queue
    (job_id,) = dispatch(stack, WATCH_QUEUE, "dash.echo", "hello", paused=True)
    page.goto(f"/jobs/{job_id}")
    assert page.inner_text(".job-state") == "pending"
    page.evaluate("() => { window.sameDocument = true; }")
    # When an operator continues the queue from the workers page in another tab
    other = page.context.new_page()
    other.goto("/workers")
    other.locator(f"tr[data-queue='{WATCH_QUEUE}'] button", has_text="Continue").click()
    assert f"{WATCH_QUEUE} continues." in other.inner_text("p.notice")
    # Then the first page shows the job completed, without a reload
    page.wait_for_function(
        "() => document.querySelector('.job-state').innerText === 'completed'", timeout=30_000
    )
    assert page.evaluate("() => window.sameDocument") is True


def test_retry_a_failed_job_and_a_group_of_failures_by_reason(stack: Stack, page: Any) -> None:
    sign_in(page, OPERATOR, OPERATOR_PASSWORD)
    (single,) = dispatch(stack, FLAKY_QUEUE, "dash.flaky", "single", 1)
    grouped = [dispatch(stack, FLAKY_QUEUE, "dash.flaky", "grouped", n)[0] for n in (17, 942, 3)]
    wait_until(lambda: stack.backend_call(lambda b: b.failed_count(FLAKY_QUEUE)) == 4, "four failures")
    page.goto(f"/failed?queue={FLAKY_QUEUE}")
    assert page.inner_text(".failed-total") == "4"
    group_row = page.locator("table.groups tr", has_text="ValueError: record N is locked")
    assert group_row.locator("td").first.inner_text() == "3"
    # The handlers may now succeed
    (stack.allow_dir / "single").touch()
    (stack.allow_dir / "grouped").touch()
    # Retry one job
    page.locator(f"li[data-job='{single}'] button", has_text="Retry").click()
    assert f"Retried job {single}." in page.inner_text("p.notice")
    wait_until(
        lambda: stack.backend_call(lambda b: b.get(single)).state == JobState.COMPLETED, "the retried job"
    )
    # Retry every job with the group's reason
    page.locator("table.groups tr", has_text="ValueError: record N is locked").locator(
        "button", has_text="Retry every job with this reason"
    ).click()
    assert "Retried 3 jobs failed with ValueError: record N is locked." in page.inner_text("p.notice")
    for job_id in grouped:
        wait_until(
            lambda job_id=job_id: stack.backend_call(lambda b: b.get(job_id)).state == JobState.COMPLETED,
            f"grouped job {job_id}",
        )
    page.wait_for_function("() => document.querySelector('.failed-total').innerText === '0'", timeout=30_000)


def test_upload_a_document_and_watch_it_complete(stack: Stack, page: Any, tmp_path: Path) -> None:
    sign_in(page, OPERATOR, OPERATOR_PASSWORD)
    report = tmp_path / "field-report.md"
    report.write_text(REPORT)
    page.goto("/documents")
    open_upload_form(page)
    page.set_input_files("input[type=file]", str(report))
    page.check("input[name=auto_approve]")
    page.click("details.upload button.primary")
    page.wait_for_url("**/documents/*")
    assert "Uploaded field-report.md as document" in page.inner_text("p.notice")
    page.wait_for_function(
        "() => document.querySelector('section.meta').dataset.status === 'completed'", timeout=60_000
    )
    assert page.locator("article.markdown").count() == 1
    assert page.locator("ul.tree li > span", has_text="Findings").count() == 1
    assert page.locator("table.timeline tr.llm_call").count() >= 1


def test_approve_a_document_over_the_budget_from_the_inbox(stack: Stack, page: Any, tmp_path: Path) -> None:
    sign_in(page, OPERATOR, OPERATOR_PASSWORD)
    report = tmp_path / "costly.md"
    report.write_text(REPORT.replace("Field report", "Costly report"))
    page.goto("/documents")
    open_upload_form(page)
    page.set_input_files("input[type=file]", str(report))
    page.click("details.upload button.primary")
    page.wait_for_url("**/documents/*")
    document_id = page.url.rsplit("/", 1)[-1]
    page.wait_for_function(
        "() => document.querySelector('section.meta').dataset.status === 'awaiting_approval'", timeout=60_000
    )
    page.goto("/approvals")
    row = page.locator(f"tr[data-document='{document_id}']")
    row.locator("input[type=checkbox]").check()
    page.click("button[value=approve]")
    assert "1 document approved." in page.inner_text("p.notice")
    page.goto(f"/documents/{document_id}")
    page.wait_for_function(
        "() => document.querySelector('section.meta').dataset.status === 'completed'", timeout=60_000
    )


def test_every_page_renders_on_a_phone_and_can_be_photographed(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    target = Path(os.environ.get("DOCMILL_DASHBOARD_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    # Something on every page: failures with two reasons, and a document awaiting approval
    (stack.allow_dir / "single").unlink(missing_ok=True)
    for number in (7, 8, 9):
        dispatch(stack, FLAKY_QUEUE, "dash.flaky", "broken", number)
    dispatch(stack, FLAKY_QUEUE, "dash.flaky", "single", 404)
    wait_until(lambda: stack.backend_call(lambda b: b.failed_count(FLAKY_QUEUE)) >= 4, "new failures")
    screens = (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844}))
    for name, viewport in screens:
        context = browser.new_context(base_url=stack.base, viewport=viewport)
        page = context.new_page()
        sign_in(page, OPERATOR, OPERATOR_PASSWORD)
        if name == "desktop":
            upload = tmp_path / "quarterly-review.md"
            upload.write_text(REPORT.replace("Field report", "Quarterly review"))
            page.goto("/documents")
            open_upload_form(page)
            page.set_input_files("input[type=file]", str(upload))
            page.click("details.upload button.primary")
            page.wait_for_function(
                "() => document.querySelector('section.meta').dataset.status === 'awaiting_approval'",
                timeout=60_000,
            )
        for path in PAGES:
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            # Nothing wider than the screen but the tables, which scroll inside their box
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, name, overflow)
            slug = path.strip("/").replace("/", "-") or "overview"
            if name == "desktop" or path in ("/", "/documents"):
                suffix = "-phone" if name == "phone" else ""
                page.screenshot(path=str(target / f"{slug}{suffix}.png"), full_page=True)
        context.close()
    assert (target / "overview.png").stat().st_size > 10_000
