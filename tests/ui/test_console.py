"""The web console (gateway/ui/, served at /ui) in a real browser: Debian's Chromium
driven by Playwright, against a real gateway on loopback, with the official `openai`
SDK making the traffic the pages show. Each test saves screenshots of what it saw in
tests/ui/screenshots/ (git-ignored; the best are copied to docs/images/)."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.harness import base_config, chat_model

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium: apt-get install chromium (.ci/run does)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="needs playwright: pip install -e '.[test]' (the browser is Debian's chromium)")
expect = sync_api.expect

ADMIN = "admin-secret"
VIEWER = "sk-viewer-secret"
SHOTS = Path(__file__).parent / "screenshots"
NAV = ["Overview", "Keys", "Config", "Providers", "Requests", "Videos", "Audit"]
# Roles of controls that must carry a name (aria_snapshot writes a name in quotes after the role).
_CONTROL = re.compile(r"^\s*- (textbox|combobox|spinbutton|checkbox|radio|slider|searchbox)\b(?! \")", re.M)


def config() -> dict:
    cfg = base_config(
        [{"name": "mock", "type": "mock", "video_sizes": ["320x180"], "video_seconds": [1], "video_fps": 8}],
        [chat_model("mock-chat", {"provider": "mock"}),
         {"name": "mock-video", "kind": "video", "route": {"targets": [{"provider": "mock"}]}}],
        logging={"prompts": True}, videos={"poll_after_ms": 50})
    cfg["auth"]["admin_key"] = ADMIN
    cfg["auth"]["keys"].append({"name": "watcher", "key": VIEWER, "role": "viewer"})
    return cfg


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[sync_api.Page]:
    """A fresh browser context (no cookies); an uncaught script error or a CSP refusal fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" and (
        "Content Security Policy" in m.text or "Refused" in m.text or "SyntaxError" in m.text) else None)
    yield pg
    context.close()
    assert problems == []


@pytest.fixture
def serve(start_gateway, tmp_path):
    """serve(cfg) -> a running gateway; its config written in the order given (as a person writes it)."""
    def start(cfg: dict):
        cfg.setdefault("state", {"data_dir": str(tmp_path)})
        return start_gateway(yaml.safe_dump(cfg, sort_keys=False))
    return start


@pytest.fixture
def gw(serve):
    return serve(config())


def shot(pg: sync_api.Page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(exist_ok=True)
    pg.evaluate("document.getElementById('status').textContent = ''")     # a passing message, not the page
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def sign_in(pg: sync_api.Page, gw, key: str = ADMIN) -> None:
    pg.goto(f"{gw.url}/ui/")
    pg.get_by_label("Admin key").fill(key)
    pg.get_by_role("button", name="Sign in").click()
    expect(pg.locator("#who")).to_be_visible()


def go(pg: sync_api.Page, route: str, heading: str) -> None:
    pg.goto(f"{pg.url.split('#')[0]}#/{route}")
    expect(pg.get_by_role("heading", level=1, name=heading)).to_be_visible()


def chat(gw, text: str = "hello console", key: str = "sk-test", model: str = "mock-chat"):
    return gw.client(key).chat.completions.create(model=model, messages=[{"role": "user", "content": text}])


def unlabelled_controls(pg: sync_api.Page) -> list[str]:
    """Form controls of the page with no accessible name: from the accessibility tree, and by the DOM."""
    from_tree = _CONTROL.findall(pg.locator("body").aria_snapshot())
    from_dom = pg.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.offsetParent !== null || el.closest('fieldset.segmented'))
        .filter((el) => !el.labels.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
        .map((el) => el.outerHTML)""")
    return from_tree + from_dom


def tab_until(pg: sync_api.Page, wanted: set[str], most: int = 40) -> list[str]:
    """Press Tab from the top of the page (a click on the header's title starts there); what got
    focus each time (its label or text), until all of `wanted` had it."""
    pg.locator(".brand").click()
    seen: list[str] = []
    for _ in range(most):
        pg.keyboard.press("Tab")
        seen.append(pg.evaluate("""() => { const el = document.activeElement;
            if (el === document.body) return '(page)';
            return (el.labels?.[0]?.textContent || el.getAttribute('aria-label') || el.textContent || '').trim(); }"""))
        if wanted <= set(seen):
            break
    return seen


# -- the scenarios --------------------------------------------------------------------------------

def test_sign_in_by_keyboard_landmarks_and_labels(gw, page):
    page.goto(f"{gw.url}/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert unlabelled_controls(page) == []
    seen = tab_until(page, {"Admin key", "Sign in"})
    assert seen[-2:] == ["Admin key", "Sign in"], seen     # Tab reaches the key's field, then the button
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("not-the-key")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")                          # on the button
    expect(page.locator("#sign-in-error")).to_contain_text("not accepted")
    shot(page, "sign-in")
    page.get_by_label("Admin key").fill(ADMIN)
    page.keyboard.press("Enter")
    expect(page.locator("#who-name")).to_have_text("admin key")
    expect(page.locator("#who-role")).to_have_text("admin")

    tree = page.locator("body").aria_snapshot()
    for landmark in ("banner", "navigation", "main"):
        assert f"- {landmark}" in tree, tree
    seen = tab_until(page, set(NAV))
    assert set(NAV) <= set(seen), seen                  # Tab reaches every menu link
    for name in NAV:                                     # and each page has no unlabelled control
        page.get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert unlabelled_controls(page) == [], name
    expect(page.get_by_role("link", name="Audit")).to_have_attribute("aria-current", "page")

    # A session that ends (here: its cookie gone) brings the sign-in form back at the next call.
    page.context.clear_cookies()
    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#sign-in-error")).to_contain_text("session ended")
    sign_in(page, gw)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.request.get(f"{gw.url}/admin/session").status == 401


def test_the_overview_fills_after_requests(gw, page):
    sign_in(page, gw)
    expect(page.get_by_role("heading", level=1, name="Overview")).to_be_visible()
    for i in range(6):
        chat(gw, f"question {i}")
    with pytest.raises(openai.NotFoundError):
        chat(gw, model="no-such-model")                 # an error, for the error-rate chart
    page.get_by_role("button", name="Refresh").click()
    requests_chart = page.locator("figure", has_text="Requests per second").locator("svg")
    expect(requests_chart).not_to_have_attribute("data-points", "0")
    expect(page.locator(".tile", has_text="Requests").first.locator("dd")).to_have_text("7")
    latency = page.locator("figure", has_text="Latency").locator("svg")
    expect(latency).not_to_have_attribute("data-points", "0")
    expect(latency.locator("path").first).to_be_attached()
    table = page.get_by_role("table", name="Per model and provider")
    expect(table.get_by_role("row", name=re.compile("mock-chat"))).to_contain_text("6")
    page.get_by_text("Last day").click()
    expect(page.locator("figure", has_text="Requests per second").locator("svg")).not_to_have_attribute(
        "data-points", "0")
    page.get_by_text("Last hour").click()
    expect(requests_chart).to_be_visible()
    shot(page, "overview")


def test_create_a_key_use_it_edit_it_and_revoke_it(gw, page):
    sign_in(page, gw)
    go(page, "keys", "Keys")
    form = page.locator("form", has=page.get_by_role("heading", name="Create a key"))
    form.get_by_label("Name").fill("team-app")
    form.get_by_label("Requests per minute").fill("100")
    form.get_by_label("Budget in USD").fill("5")
    form.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret")
    expect(secret).to_have_value(re.compile(r"^sk-gw-"))
    expect(page.get_by_text("shown this once")).to_be_visible()
    made = secret.input_value()
    page.get_by_role("button", name="Copy secret").click()
    shot(page, "keys-created")

    answer = chat(gw, "from the new key", key=made)
    assert answer.choices[0].message.content
    page.get_by_role("button", name="Done").click()
    page.get_by_role("button", name="Refresh").click()
    row = page.get_by_role("row", name=re.compile("team-app"))
    expect(row).to_contain_text("1 requests")
    expect(row.get_by_role("meter", name="team-app: budget used")).to_be_visible()
    expect(row).to_contain_text("100 rpm")

    row.get_by_role("button", name="Edit team-app").click()
    dialog = page.get_by_role("dialog", name="Edit \"team-app\"")
    dialog.get_by_label("Requests per minute").fill("250")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("row", name=re.compile("team-app"))).to_contain_text("250 rpm")
    shot(page, "keys")

    page.get_by_role("button", name="Revoke team-app").click()
    confirm = page.get_by_role("dialog", name="Revoke \"team-app\"?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Revoke key").click()
    expect(page.locator("#status")).to_contain_text("revoked")
    expect(page.get_by_role("row", name=re.compile("team-app"))).to_have_count(0)
    with pytest.raises(openai.AuthenticationError):
        chat(gw, key=made)


def test_each_limit_shows_this_moments_use_as_a_bar(serve, page):
    cfg = config()
    cfg["providers"].append({"name": "slow", "type": "mock", "latency_ms": 2500})
    cfg["models"].append(chat_model("slow-chat", {"provider": "slow"}))
    cfg["auth"]["keys"][0]["limits"] = {"rpm": 60, "tpm": 100_000, "concurrent": 2}
    gw = serve(cfg)
    for _ in range(3):
        chat(gw)
    sign_in(page, gw)
    go(page, "keys", "Keys")
    row = page.get_by_role("row", name=re.compile(r"^test\b"))
    expect(row.get_by_role("meter", name="test: Requests per minute")).to_have_attribute("aria-valuetext",
                                                                                          "3 / 60 rpm")
    expect(row.get_by_role("meter", name="test: Concurrent requests")).to_have_attribute("aria-valuenow", "0")

    def usage() -> dict:
        keys = gw.http(key=ADMIN).get("/admin/keys").json()["keys"]
        return next(k for k in keys if k["name"] == "test")["usage"]

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(chat, gw, "a slow one", model="slow-chat")
        deadline = time.monotonic() + 2
        while usage()["concurrent"]["used"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        page.get_by_role("button", name="Refresh").click()
        expect(row.get_by_role("meter", name="test: Concurrent requests")).to_have_attribute(
            "aria-valuetext", "1 / 2 concurrent")
        expect(row.get_by_role("meter", name="test: Requests per minute")).to_have_attribute("aria-valuenow", "4")
        shot(page, "keys-usage")
        assert held.result(10).choices
    deadline = time.monotonic() + 2
    while (after := usage())["concurrent"]["used"] != 0:      # settled: its slot freed, its tokens corrected
        assert time.monotonic() < deadline
        time.sleep(0.02)
    tokens = after["tpm"]["used"]
    assert tokens > 0
    page.get_by_role("button", name="Refresh").click()
    expect(row.get_by_role("meter", name="test: Concurrent requests")).to_have_attribute("aria-valuenow", "0")
    expect(row.get_by_role("meter", name="test: Tokens per minute")).to_have_attribute("aria-valuenow", str(tokens))
    expect(row).to_contain_text("/ 100,000 tpm")
    expect(page.get_by_role("row", name=re.compile(r"^watcher\b"))).to_contain_text("none")   # no limits: no bars


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


def test_edit_the_config_see_errors_at_their_line_apply_and_roll_back(gw, page):
    sign_in(page, gw)
    go(page, "config", "Config")
    editor = page.get_by_label("Config (YAML)")
    expect(editor).to_have_value(re.compile("mock-chat"))
    expect(page.get_by_role("button", name="Review and apply")).to_be_disabled()
    running = editor.input_value()
    check = page.locator("#config-check")

    # A schema error: its path (models[0].kind) marked at the line that holds it.
    bad = running.replace("kind: chat", "kind: chatt", 1)
    editor.fill(bad)
    expect(check).to_have_text("1 error:")
    expect(page.locator("#config-errors")).to_contain_text("models[0].kind")
    line = _line_of(bad, "kind: chatt")
    expect(page.locator(".gutter .bad")).to_have_text(str(line))
    page.get_by_role("button", name=f"Line {line}").click()              # the cursor goes to that line
    cursor = page.evaluate("""() => { const t = document.activeElement;
        return [t.id, t.value.slice(0, t.selectionStart).split('\\n').length]; }""")
    assert cursor == ["config-text", line]
    shot(page, "config-error")

    # A YAML syntax error: the line it names.
    broken = running.replace("kind: chat", "kind: [chat", 1)
    editor.fill(broken)
    expect(check).to_have_text(re.compile(r"^\d+ errors?:$"))
    expect(page.locator(".gutter .bad")).to_have_count(1)

    # Fixed, and a real change: mock-chat is renamed.
    fixed = running.replace("name: mock-chat\n", "name: mock-chat-2\n", 1)
    editor.fill(fixed)
    expect(check).to_have_text("Valid.")
    expect(page.locator(".gutter .bad")).to_have_count(0)
    page.get_by_role("button", name="Review and apply").click()
    dialog = page.get_by_role("dialog", name="Apply this config?")
    expect(dialog.locator(".d-add")).to_contain_text("mock-chat-2")
    expect(dialog.locator(".d-del")).to_contain_text("mock-chat")
    shot(page, "config-diff", full_page=False)
    dialog.get_by_role("button", name="Apply").click()
    expect(page.locator("#status")).to_contain_text("Applied: version 2")
    assert chat(gw, model="mock-chat-2").model == "mock-chat-2"
    with pytest.raises(openai.NotFoundError):
        chat(gw)

    history = page.get_by_role("table", name="Versions, newest first")
    expect(history.get_by_role("row")).to_have_count(3)                   # a header and two versions
    shot(page, "config")
    history.get_by_role("button", name="Roll back to version 1").click()
    page.get_by_role("dialog", name="Roll back to version 1?").get_by_role("button", name="Roll back").click()
    expect(page.locator("#status")).to_contain_text("now version 3")
    expect(editor).to_have_value(re.compile(r"name: mock-chat\n"))
    assert chat(gw).model == "mock-chat"


def test_an_edit_that_switches_something_off_asks_first(serve, page):
    cfg = config()
    cfg["providers"].append({"name": "real", "type": "openai", "api_key": "sk-real-secret"})
    cfg["models"].append(chat_model("gpt", {"provider": "real"}))
    gw = serve(cfg)
    sign_in(page, gw)
    go(page, "config", "Config")
    editor = page.get_by_label("Config (YAML)")
    expect(editor).to_have_value(re.compile(r"api_key: '\*\*\*'"))       # the secret is never shown
    editor.fill(editor.input_value().replace("api_key: '***'", "api_key: ''"))
    expect(page.locator("#config-check")).to_have_text("Valid.")

    def apply() -> sync_api.Locator:
        page.get_by_role("button", name="Review and apply").click()
        page.get_by_role("dialog", name="Apply this config?").get_by_role("button", name="Apply").click()
        ask = page.get_by_role("dialog", name="This switches something off")
        expect(ask).to_contain_text("real")
        return ask

    apply().get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_contain_text("Nothing was changed")
    assert gw.http(ADMIN).get("/admin/config").json()["version"] == 1
    ask = apply()
    shot(page, "config-switch-off", full_page=False)
    ask.get_by_role("button", name="Switch it off anyway").click()
    expect(page.locator("#status")).to_contain_text("Applied: version 2")
    providers = {p["name"]: p for p in gw.http(ADMIN).get("/admin/providers").json()["providers"]}
    assert providers["real"]["enabled"] is False


def test_open_a_request_from_the_log(gw, page):
    raw = gw.client().chat.completions.with_raw_response.create(
        model="mock-chat", messages=[{"role": "user", "content": "find me in the log"}])
    request_id = raw.headers["x-request-id"]
    chat(gw, "another one")
    sign_in(page, gw)
    go(page, "requests", "Requests")
    results = page.get_by_role("table", name="Requests, newest first")
    expect(results.get_by_role("row")).to_have_count(3)
    page.get_by_label("Status").fill("4xx")
    page.get_by_role("button", name="Search").click()
    expect(results.locator("td.empty")).to_have_text("No request matches.")
    page.get_by_label("Status").fill("")
    page.get_by_label("Model").fill("mock-chat")
    page.get_by_role("button", name="Search").click()
    expect(results.get_by_role("row")).to_have_count(3)
    assert "model=mock-chat" in page.url                 # the search is in the address, to share
    shot(page, "requests")

    page.get_by_role("button", name=f"Open {request_id}").click()
    dialog = page.get_by_role("dialog", name=f"Request {request_id}")
    attempts = dialog.get_by_role("table", name="Attempts")
    expect(attempts.locator("tbody tr")).to_have_count(1)
    expect(attempts.locator("tbody tr")).to_contain_text(re.compile(r"1\s*mock\s*mock-chat\s*200"))
    expect(dialog.get_by_role("table", name="Headers sent back")).to_contain_text("x-request-id")
    expect(dialog.locator("pre").first).to_contain_text("find me in the log")      # logging.prompts is on
    shot(page, "request-detail", full_page=False)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
def test_play_a_video(gw, page):
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="A lighthouse at dusk",
                                              size="320x180", seconds="1")
    assert video.status == "completed"
    sign_in(page, gw)
    go(page, "videos", "Videos")
    card = page.locator(".card", has_text=video.id)
    thumb = card.get_by_role("img", name=f"Thumbnail of {video.id}")
    expect(thumb).to_be_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    card.get_by_role("button", name=f"Play {video.id}").click()
    player = page.locator("video#player")
    page.wait_for_function("(v) => v.readyState >= 1 && v.duration > 0", arg=player.element_handle(), timeout=15_000)
    assert player.evaluate("(v) => v.error") is None
    assert 0.5 < player.evaluate("(v) => v.duration") < 2
    shot(page, "videos")

    card.get_by_role("button", name=f"Details of {video.id}").click()
    dialog = page.get_by_role("dialog", name=f"Video job {video.id}")
    expect(dialog).to_contain_text("completed")
    expect(dialog.get_by_role("table", name="Webhook deliveries")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("table", name="Local video providers and their workers")).to_be_visible()


def test_a_viewer_sees_everything_and_changes_nothing(gw, page):
    httpx.post(f"{gw.url}/admin/keys", headers={"authorization": f"Bearer {ADMIN}"},
               json={"name": "existing"}).raise_for_status()          # a second version, and a key to revoke
    sign_in(page, gw, VIEWER)
    expect(page.locator("#who-name")).to_have_text("watcher")
    expect(page.locator("#who-role")).to_have_text("viewer")
    go(page, "keys", "Keys")
    expect(page.locator("#viewer-note")).to_contain_text("viewer")
    expect(page.get_by_role("button", name="Create key")).to_be_disabled()
    expect(page.get_by_role("button", name="Revoke existing")).to_be_disabled()
    expect(page.get_by_role("button", name="Edit existing")).to_be_disabled()
    shot(page, "keys-viewer")
    go(page, "config", "Config")
    page.get_by_label("Config (YAML)").fill("models: []\n")
    expect(page.locator("#config-check")).not_to_have_text("Checking…")
    expect(page.get_by_role("button", name="Review and apply")).to_be_disabled()
    expect(page.get_by_role("button", name="Roll back to version 1")).to_be_disabled()

    # Called by hand from the page (the session cookie, the CSRF header): the gateway says no.
    forced = page.evaluate("""async () => {
        const r = await fetch('/admin/keys', {method: 'POST', credentials: 'same-origin',
            headers: {'content-type': 'application/json', 'x-console-csrf': '1'},
            body: JSON.stringify({name: 'sneaky'})});
        return {status: r.status, body: await r.json()}; }""")
    assert forced["status"] == 403 and forced["body"]["error"]["type"] == "permission_error", forced
    forced = page.evaluate("""async () => (await fetch('/admin/keys/existing', {method: 'DELETE',
        credentials: 'same-origin', headers: {'x-console-csrf': '1'}})).status""")
    assert forced == 403
    keys = httpx.get(f"{gw.url}/admin/keys", headers={"authorization": f"Bearer {ADMIN}"}).json()["keys"]
    assert {k["name"] for k in keys} == {"test", "watcher", "existing"}


def test_providers_and_the_audit_log(gw, page):
    chat(gw)
    page.goto(f"{gw.url}/ui/")
    page.get_by_label("Admin key").fill("a-wrong-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("not accepted")
    sign_in(page, gw)
    go(page, "providers", "Providers and routes")
    targets = page.get_by_role("table", name="Targets in this process")
    expect(targets.get_by_role("row", name="mock/mock-chat")).to_contain_text("closed")
    routes = page.get_by_role("table", name="Routes: models to targets")
    expect(routes.get_by_role("row", name=re.compile("mock-video"))).to_contain_text("mock")
    shot(page, "providers")

    go(page, "keys", "Keys")
    page.locator("form", has=page.get_by_role("heading", name="Create a key")).get_by_label("Name").fill("audited")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_label("Secret")).to_have_value(re.compile(r"^sk-gw-"))
    go(page, "audit", "Audit log")
    log = page.get_by_role("table", name="Admin actions and sign-ins, newest first")
    expect(log.get_by_role("row", name="POST /admin/keys")).to_contain_text("audited")
    expect(log.get_by_role("row", name="sign-in failed").first).to_be_visible()
    shot(page, "audit")


def test_the_api_docs_render_from_the_gateway_alone(gw, page):
    """/admin/docs on a network with no way out: every request the page makes to anything but the
    gateway is refused, and Swagger UI still draws the admin API's operations, under the page's own
    Content-Security-Policy (a refusal fails the test, as on every page)."""
    elsewhere: list[str] = []

    def only_the_gateway(route: sync_api.Route) -> None:
        if route.request.url.startswith(gw.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_gateway)
    loaded: list[str] = []
    page.on("requestfinished", lambda r: loaded.append(r.url.removeprefix(gw.url)))
    page.goto(f"{gw.url}/admin/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/admin/keys").first).to_be_visible()
    audit = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text=re.compile(r"^/admin/audit$")))
    audit.locator(".opblock-summary").click()
    audit.get_by_role("button", name="Try it out").click()
    audit.get_by_role("button", name="Execute").click()        # no admin key given: the gateway says 401
    expect(audit.locator(".live-responses-table tbody .response-col_status")).to_have_text("401")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "api-docs.png"))
    assert elsewhere == []
    assert {"/admin/docs", "/admin/openapi.json", "/admin/audit"} <= set(loaded)
    assert any(u.startswith("/admin/docs/assets/") and u.endswith("/swagger-ui-bundle.js") for u in loaded)
