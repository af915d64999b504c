"""The dashboard in a real browser: every page renders, Retrain runs and cancels jobs, Report exports.

Runs ``streamlit run app.py`` on a free local port against a tiny demo home (2 people at 12 mm,
one small study) and drives it with Playwright and Debian's chromium (/usr/bin/chromium;
Playwright cannot download its own browser here). Skipped when chromium, playwright or app.py is
missing. Screenshots (1280 x 800) go to tests/e2e/screenshots/<page>.png (gitignored).

What the test expects of the pages (Streamlit's own test ids and accessible names):

* URL paths (pages/<path>.py): / (overview, the default page), /subject, /emotion-accuracy, /brain-viewer,
  /misclassified, /representations, /annotations, /retrain, /report; no page shows an
  ``stException`` element or "Page not found".
* Retrain: number inputs labelled "...Epochs..." and (optional) "...Folds...", multiselects
  "Designs" and "Subjects" defaulting to the retrained study's, a button named
  "Start ..." / "Train ..." / "Launch ..." / "Run ..." that starts one job through
  ``emocore.workflows.jobs.start_job`` with the study's other settings, a button "Cancel <run id>" (or
  just "Cancel ..." / "Stop ...") while it runs, and a line naming the run id and its status
  ("completed", "cancelled") once it has finished (in place, or after a reload); for a
  completed job "Run <id> completed. <design>: balanced accuracy ... (<split>, permutation
  chance ...)" and a button "Open run <id> on Overview" that makes it the sidebar's "Run". A
  new visit still opens on the complete study (the sidebar "Run" reads "<date> · study · ...").
* Every page about a person (/subject, /misclassified, /emotion-accuracy, /brain-viewer,
  /report), opened first on a fresh server with ``?subject=05``, and the Overview, show the
  person's verdict sentence (as the run holds it) in an alert box that lies whole on the first
  screen, 1280 x 900 (screenshots verdict-<page>.png).
* Report: an optional "Export / Build / Generate / Create ... report" button, then an
  ``st.download_button`` (test id ``stDownloadButton``) giving an HTML file that names the
  subject (sub-01 or sub-02) and says "chance".

``EMOCORE_E2E_APP_DIR`` points the test at another folder holding app.py (default: the checkout).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = Path(os.environ.get("EMOCORE_E2E_APP_DIR", ROOT))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Screenshots for a person to look at; CI keeps this folder as an artifact (gitignored).
SHOTS = Path(os.environ.get("EMOCORE_E2E_SHOTS", Path(__file__).resolve().parent / "screenshots"))
VIEWPORT = {"width": 1280, "height": 800}
#: page name -> URL path below the server root ('' = the default page)
PAGES = {
    "overview": "",
    "subject": "subject",
    "emotion-accuracy": "emotion-accuracy",
    "brain-viewer": "brain-viewer",
    "misclassified": "misclassified",
    "representations": "representations",
    "annotations": "annotations",
    "retrain": "retrain",
    "assess": "assess",
    "report": "report",
}
RUN_TIMEOUT_MS = 90_000  # one page run, cold caches, 2 shared cores
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} not found; install Debian's chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed (pip install -e '.[e2e]')"
)
pytest.importorskip("streamlit", reason="streamlit not installed")
if not (APP_DIR / "app.py").is_file():
    pytest.skip(
        f"app.py not found in {APP_DIR}; the dashboard is not there", allow_module_level=True
    )


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo home (cohort, cache and one finished study in the registry): a copy of the
    session's, since Retrain adds runs to it."""
    import shutil

    return Path(shutil.copytree(tiny_home, tmp_path_factory.mktemp("e2e") / "home"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no server log)"


@pytest.fixture(scope="module")
def server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` with EMOCORE_HOME=home; stopped (with any jobs) at the end."""
    with serve(home, tmp_path_factory.mktemp("server")) as url:
        yield url


@contextmanager
def serve(home: Path, log_dir: Path) -> Iterator[str]:
    """Run the dashboard on ``home`` on a free local port; yield its URL; stop it and its jobs."""
    from emocore.workflows.demo import demo_paths
    from emocore.workflows.jobs import active_jobs, cancel_job

    port = _free_port()
    log_path = log_dir / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    env = {**os.environ, "EMOCORE_HOME": str(home), **ONE_THREAD}
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=APP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not serve {url} within 60 s:\n{_tail(log_path)}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        registry = demo_paths(home)["registry"]
        for record in active_jobs(registry):  # jobs outlive the server by design
            cancel_job(registry, record.id, grace_s=5)
        if os.environ.get("EMOCORE_E2E_SHOW_LOG"):
            print(_tail(log_path, 200))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(RUN_TIMEOUT_MS)
    try:
        yield pg
    finally:
        context.close()


# -- helpers -----------------------------------------------------------------------------------
def wait_for_app_run(page, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Until Streamlit is connected and the page script has finished running (Streamlit's way)."""
    app = '[data-testid="stApp"]'
    page.wait_for_selector(f'{app}[data-test-connection-state="CONNECTED"]', timeout=timeout_ms)
    page.wait_for_selector(f'{app}[data-test-script-state="notRunning"]', timeout=timeout_ms)
    # The one fixed wait left: the state reads notRunning both after a run and in the moment
    # before the run a click or a page load asks for has begun, and the page offers no sign of
    # the request in between. Two painted frames were too short (the report test then looked
    # for its Build button before the page had run); 300 ms has held in every run so far.
    page.wait_for_timeout(300)
    page.wait_for_selector(f'{app}[data-test-script-state="notRunning"]', timeout=timeout_ms)


def next_frames(page) -> None:
    """Until the fonts are loaded and the browser has painted two more frames."""
    page.evaluate(
        "() => document.fonts.ready.then(() => new Promise(done =>"
        " requestAnimationFrame(() => requestAnimationFrame(done))))"
    )


def settle(page, timeout_ms: int = 20_000) -> None:
    """Until every plotly chart on the page has drawn its SVG (plotly draws after the script
    run has ended) and the browser has painted: what a screenshot or a look at the charts needs."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
        ".every(chart => chart.querySelector('.main-svg'))",
        timeout=timeout_ms,
    )
    next_frames(page)


def open_page(page, url: str, name: str) -> None:
    page.goto(f"{url}/{PAGES[name]}", wait_until="domcontentloaded")
    wait_for_app_run(page)
    assert_no_exception(page, name)


def assert_no_exception(page, name: str) -> None:
    errors = page.locator('[data-testid="stException"]')
    if errors.count():
        pytest.fail(f"page {name} shows an exception:\n{errors.first.inner_text()}")
    assert "Page not found" not in _main_text(page), f"no page at /{PAGES[name]} ({name})"


#: Pages whose tables hold the columns that matter (95 % interval, p, "predicted as") at the
#: right: at 1280 px they must show without horizontal scrolling.
WIDE_TABLE_PAGES = ("overview", "emotion-accuracy", "misclassified")


def assert_tables_fit(page, name: str) -> None:
    """No visible st.dataframe of the page scrolls sideways (its glide grid's scroller is no wider than
    its box), so its last columns are on screen."""
    grids = page.locator('[data-testid="stDataFrame"]')
    assert grids.count(), f"page {name} shows no table"
    for i in range(grids.count()):
        grid = grids.nth(i)
        if not grid.is_visible():  # inside a closed expander ("All runs")
            continue
        grid.scroll_into_view_if_needed()
        overflow = grid.evaluate(
            "g => { const s = g.querySelector('.dvn-scroller');"
            " return s ? s.scrollWidth - s.clientWidth : -1; }"
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        grid.screenshot(path=str(SHOTS / f"{name}-table-{i + 1}.png"))
        assert overflow <= 1, (
            f"table {i + 1} of {name} scrolls sideways by {overflow} px at 1280 px"
        )


def button(page, pattern: str):
    return page.get_by_role("button", name=re.compile(pattern, re.I))


def wait_status(registry, run_id: str, want: set[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = registry.get_run(run_id).status
        if status in want:
            return status
        assert time.monotonic() < deadline, f"run {run_id} is still {status} after {timeout_s} s"
        time.sleep(0.5)


def see_text(page, url: str, name: str, pattern: str, timeout_s: float = 30) -> None:
    """Until ``pattern`` shows: first in place (the page polls its jobs), then after reloads."""
    regex = re.compile(pattern, re.I)
    try:
        sync_api.expect(page.get_by_text(regex).first).to_be_attached(timeout=timeout_s * 1000)
        return
    except AssertionError:
        pass
    for _ in range(3):  # a page that shows job status only on a fresh run
        open_page(page, url, name)
        try:
            sync_api.expect(page.get_by_text(regex).first).to_be_attached(timeout=2000)
            return
        except AssertionError:
            continue
    pytest.fail(f"page {name} never showed /{pattern}/:\n{_main_text(page)[-2000:]}")


def _main_text(page) -> str:
    return page.locator(
        '[data-testid="stMain"], [data-testid="stAppViewContainer"]'
    ).first.inner_text()


def new_run(registry, before: set[str], timeout_s: float = 30) -> str:
    """The one run the page has just created."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [i for i in registry.list_runs()["id"] if i not in before]
        if runs:
            assert len(runs) == 1, f"one click should start one job; new runs: {runs}"
            return runs[0]
        assert time.monotonic() < deadline, "the Start button started no job (no new run)"
        time.sleep(0.5)


# -- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_exception(page, server: str, home: Path, name: str) -> None:
    open_page(page, server, name)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    if charts.count():  # plotly draws after the script run ends: wait for the first chart's SVG
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=20_000)
    settle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    if name == "overview":  # the runs table sits in a closed expander: open it to check it too
        _open_all_runs(page)
    if name == "emotion-accuracy":  # an empty cell's table would fit whatever its columns
        _pick_a_full_cell(page, home)
    if name in WIDE_TABLE_PAGES:
        assert_tables_fit(page, name)


def _open_all_runs(page) -> None:
    """Open Overview's "All runs (N)" expander and wait for its table."""
    expander = page.locator('[data-testid="stExpander"]').filter(has_text=re.compile(r"All runs"))
    expander.locator("summary").first.click()
    expander.locator('[data-testid="stDataFrame"]').first.wait_for(state="visible")


def _pick_a_full_cell(page, home: Path) -> None:
    """Choose, under "The volumes behind a cell", the true and predicted emotion that the shown
    design and person have most volumes of (a wrong one if there is any), so the table has rows."""
    from emocore.runs.registry import Registry
    from emocore.runs.results import RunResults
    from emocore.workflows.demo import demo_paths

    main = page.locator('[data-testid="stMain"], [data-testid="stAppViewContainer"]').first

    def chosen(label: str) -> str:
        return main.get_by_role("combobox", name=label).first.input_value()

    registry = Registry(demo_paths(home)["registry"])
    study = registry.list_runs(kind="study", status="completed")["id"][0]
    design = chosen("Design").split(" (")[0]  # "loso (primary analysis: the verdict)"
    held = RunResults(registry, study).predictions(design)
    person = page.get_by_role("combobox", name="Subject").first.input_value()  # the sidebar's
    held = held[held["subject"].astype(str) == person.removeprefix("sub-")]
    wrong = held[held["true"] != held["pred"]]
    pairs = (wrong if len(wrong) else held).groupby(["true", "pred"]).size()
    true, pred = pairs.idxmax()
    for label, value in (("True emotion", true), ("Predicted as", pred)):
        if chosen(label) == value:
            continue
        box = main.get_by_role("combobox", name=label).first
        box.scroll_into_view_if_needed()  # a click that scrolls the page first opens no list
        sync_api.expect(box).to_be_in_viewport()
        next_frames(page)
        box.click()
        option = page.get_by_role("option", name=value, exact=True)
        try:
            option.wait_for(timeout=2000)
        except sync_api.TimeoutError:
            box.click()
        option.click()
        wait_for_app_run(page)
    assert_no_exception(page, "emotion-accuracy")
    n = int(pairs.max())
    caption = page.get_by_text(re.compile(rf"\b{n} volumes; open one in the Brain viewer"))
    caption.first.wait_for(state="visible")


def _fill_number(page, label: str, value: int) -> None:
    field = page.get_by_label(re.compile(label, re.I))
    if field.count():
        field.first.fill(str(value))
        field.first.press("Tab")  # commit (also inside an st.form, where Enter may not)


def _drop_last_choice(page, label: str) -> None:
    """Remove the last chosen option of the multiselect ``label`` (Backspace in its box)."""
    box = page.get_by_role("combobox", name=re.compile(label, re.I))
    if box.count():
        box.first.click()
        box.first.press("Backspace")
        page.keyboard.press("Escape")


def _start_from_page(page, url: str, registry, *, epochs: int, smaller: bool = False) -> str:
    """Open Retrain, set tiny options, press Start; return the new run's id. ``smaller`` drops
    the last design and the last person, so the run covers less than the study."""
    open_page(page, url, "retrain")
    epochs_input = page.get_by_label(re.compile("epochs", re.I))
    try:  # the form can paint a moment after the script run ends on a busy machine
        epochs_input.first.wait_for(state="visible", timeout=30_000)
    except Exception:
        pass
    assert epochs_input.count(), "no 'Epochs' input on Retrain"
    _fill_number(page, "epochs", epochs)
    _fill_number(page, "folds", 2)
    if smaller:
        _drop_last_choice(page, "^Designs")
        _drop_last_choice(page, "^Subjects")
    before = set(registry.list_runs()["id"])
    button(page, r"^\W*(start|train|launch|run)\b").first.click()
    run_id = new_run(registry, before)
    wait_for_app_run(page)
    assert_no_exception(page, "retrain")
    return run_id


def test_retrain_runs_a_job_and_cancels_another(page, server: str, home: Path) -> None:
    from emocore.runs.registry import Registry
    from emocore.workflows.demo import demo_paths

    registry = Registry(demo_paths(home)["registry"])
    study = registry.list_runs(kind="study", status="completed")["id"][0]

    quick = _start_from_page(page, server, registry, epochs=1, smaller=True)
    config, recorded = registry.get_run(quick).config, registry.get_run(study).config
    assert config["train"]["epochs"] == 1
    # the form starts from the study's settings: what was not changed is passed as recorded
    assert config["designs"] == recorded["designs"][:-1], config["designs"]
    assert registry.get_run(quick).subjects == registry.get_run(study).subjects[:-1]
    same = ("n_permutations", "n_folds", "split", "alpha", "baseline", "saliency")
    assert {k: config[k] for k in same} == {k: recorded[k] for k in same}
    assert {**config["train"], "epochs": 1} == {**recorded["train"], "epochs": 1}
    status = wait_status(registry, quick, {"completed", "failed", "cancelled"}, 300)
    assert status == "completed", registry.get_run(quick).error
    see_text(
        page,
        server,
        "retrain",
        rf"Run {quick} completed\. .*balanced accuracy .*permutation chance",
    )
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "retrain-finished.png"), full_page=True)
    # its button opens it (on the Overview: this session came straight to /retrain) ...
    button(page, rf"^Open run {quick} on Overview").first.click()
    wait_for_app_run(page)
    assert_no_exception(page, "overview")
    picked = page.get_by_role("combobox", name="Run").first
    assert " · train · " in picked.input_value(), picked.input_value()
    # ... but a new visit still opens on the complete study, not on the newest, smaller run
    open_page(page, server, "overview")
    picked = page.get_by_role("combobox", name="Run").first
    assert " · study · " in picked.input_value(), picked.input_value()

    long = _start_from_page(page, server, registry, epochs=500)
    assert registry.get_run(long).config["train"]["epochs"] == 500
    wait_status(registry, long, {"running"}, 120)
    cancel = button(page, rf"^\W*(cancel|stop)\b.*{long}")
    if not cancel.count():
        cancel = button(page, r"^\W*(cancel|stop)\b")
    cancel.first.click()
    assert wait_status(registry, long, {"cancelled", "completed", "failed"}, 60) == "cancelled"
    wait_for_app_run(page)
    assert_no_exception(page, "retrain")
    pid = registry.get_run(long).pid
    assert pid is None or not Path(f"/proc/{pid}").exists() or _zombie(pid)
    see_text(page, server, "retrain", rf"{long}.*cancelled")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "retrain-cancelled.png"))


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_report_exports_html_naming_subject_and_chance(page, server: str) -> None:
    open_page(page, server, "report")
    build = button(
        page, r"(export|build|generate|create|make).*report|^\W*(export|build|generate)\b"
    )
    download = page.locator('[data-testid="stDownloadButton"] button')
    if not download.count() and build.count():
        build.first.click()
        wait_for_app_run(page)
        assert_no_exception(page, "report")
    download.first.wait_for(state="visible")
    with page.expect_download() as info:
        download.first.click()
    target = info.value.path()
    html = Path(target).read_text(errors="replace")
    assert re.search(r"<html|<!doctype", html, re.I), html[:200]
    assert re.search(r"sub-0[12]\b|subject\W{1,3}0[12]\b", html, re.I), (
        "the report names no subject"
    )
    assert "chance" in html.lower()
    from emocore.reporting.report import chromium_path

    if chromium_path() is not None:  # the same chromium prints the report to PDF
        pdf_button = page.get_by_role("button", name=re.compile(r"^Download sub-0[12]\.pdf"))
        if not pdf_button.count():  # a report built before PDFs: rebuild it
            button(page, r"^rebuild report").first.click()
            wait_for_app_run(page)
        pdf_button.first.wait_for(state="visible")
        with page.expect_download() as info:
            pdf_button.first.click()
        assert Path(info.value.path()).read_bytes()[:4] == b"%PDF"


# -- single-case findings ----------------------------------------------------------------------
def _findings_home(root: Path) -> Path:
    """A home whose run holds findings and verdicts: eight people, sub-05 planted (LOVE mostly
    called SADNESS), through emocore's own evaluation (no training)."""
    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort
    from emocore.runs.registry import Registry
    from emocore.workflows.demo import demo_paths
    from tests.conftest import write_findings_run

    paths = demo_paths(root)
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=2, grid_mm=12.0))
    cache = prepare_cache(paths["cohort"], paths["annotations"], paths["cache"])
    write_findings_run(Registry(paths["registry"]), cache_key=cache.key)
    return root


@pytest.fixture(scope="module")
def findings_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _findings_home(tmp_path_factory.mktemp("emocore-findings"))


@pytest.fixture(scope="module")
def findings_server(findings_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard on the findings home."""
    with serve(findings_home, tmp_path_factory.mktemp("findings-server")) as url:
        yield url


def test_the_planted_person_is_named_where_a_clinician_looks(page, findings_server: str) -> None:
    """Overview names the flagged person and their sentence first (the exploratory designs'
    flags collapsed apart); the Misclassified scenes page for sub-05 and LOVE states the finding
    in a sentence beside the chart of the others' values."""
    open_page(page, findings_server, "overview")
    text = _main_text(page)
    assert "Verdicts of run" in text and "atypical decoding" in text, text[:2000]
    assert re.search(r"Atypical decoding for sub-05 \(leave-one-subject-out CNN", text), text[:2000]
    assert "Exploratory flags in other designs" in text
    page.screenshot(path=str(SHOTS / "findings-overview.png"), full_page=True)
    expander = page.locator('[data-testid="stExpander"]').filter(
        has_text=re.compile(r"Exploratory flags in other designs")
    )
    expander.locator("summary").first.click()  # collapsed: open it to check its table too
    expander.locator('[data-testid="stDataFrame"]').first.wait_for(state="visible")
    assert_tables_fit(page, "findings-overview")
    open_page(page, findings_server, "misclassified")
    page.get_by_role("combobox", name=re.compile("Subject")).click()
    page.get_by_role("option", name="sub-05").click()
    wait_for_app_run(page)
    text = _main_text(page)
    assert re.search(r"of sub-05's LOVE volumes were decoded as SADNESS, against", text), text[
        :3000
    ]
    assert "atypical at α = 0.05" in text
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
    settle(page)
    page.screenshot(path=str(SHOTS / "findings-misclassified.png"), full_page=True)


#: The first screen the issue names: 1280 x 900, nothing scrolled.
FIRST_SCREEN = {"width": 1280, "height": 900}
#: Pages about one person, each of which must lead with the person's verdict.
PERSON_PAGES = (
    "overview",
    "subject",
    "misclassified",
    "emotion-accuracy",
    "brain-viewer",
    "report",
)


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _on_first_screen(page, sentence: str) -> dict:
    """The alert box (st.warning / st.info) that holds ``sentence`` whole, and its box; fails
    unless it lies entirely inside the first screen."""
    alerts = page.locator('[data-testid="stAlert"]')
    want = _normalised(sentence)
    for i in range(alerts.count()):
        alert = alerts.nth(i)
        if want in _normalised(alert.inner_text()):
            box = alert.bounding_box()
            assert box is not None, "the verdict's box is not drawn"
            assert box["y"] >= 0 and box["y"] + box["height"] <= FIRST_SCREEN["height"], (
                f"the verdict's box spans y = {box['y']:.0f} to {box['y'] + box['height']:.0f} px: "
                f"not all of it on the first {FIRST_SCREEN['height']} px"
            )
            return box
    shown = [_normalised(alerts.nth(i).inner_text())[:120] for i in range(alerts.count())]
    pytest.fail(f"no box holds the verdict sentence {want[:120]!r}…; boxes: {shown}")


@pytest.mark.parametrize("name", PERSON_PAGES)
def test_every_page_about_sub_05_leads_with_its_verdict_on_a_cold_server(
    browser, findings_home: Path, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """A fresh server, a first visit to /<page>?subject=05 (the Overview: /): the sentence of
    sub-05's verdict, as the run holds it, is on the first screen (1280 x 900, not scrolled),
    the same on every page. The screenshots (verdict-<page>.png) are for a person to look at."""
    import shutil

    from emocore.runs.registry import Registry
    from emocore.runs.results import RunResults
    from emocore.workflows.demo import demo_paths

    home = Path(shutil.copytree(findings_home, tmp_path_factory.mktemp("cold") / "home"))
    registry = Registry(demo_paths(home)["registry"])
    verdict = RunResults(registry, registry.list_runs()["id"][0]).verdict("05")
    assert verdict is not None and verdict["status"] == "flagged"
    context = browser.new_context(viewport=FIRST_SCREEN)
    pg = context.new_page()
    pg.set_default_timeout(RUN_TIMEOUT_MS)
    try:
        with serve(home, tmp_path_factory.mktemp("cold-server")) as cold:
            pg.goto(f"{cold}/{PAGES[name]}?subject=05", wait_until="domcontentloaded")
            wait_for_app_run(pg)
            assert_no_exception(pg, name)
            settle(pg)
            SHOTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(SHOTS / f"verdict-{name}.png"))
            _on_first_screen(pg, verdict["sentence"])
            if name != "overview":
                heading = pg.get_by_text("Verdict on sub-05", exact=True)
                assert heading.count() and heading.first.is_visible()
            if name == "report":
                # the first click on a cold deep link counts: the page's first run goes through
                # Streamlit's automatic navigation, whose widget ids differ from app.py's, and
                # without ensure_app_frame's one rerun this click was lost
                build = button(pg, r"^build report")
                assert build.count() == 1
                build.first.click()
                wait_for_app_run(pg)
                assert_no_exception(pg, name)
                download = pg.locator('[data-testid="stDownloadButton"] button')
                download.first.wait_for(state="visible", timeout=30_000)
                assert "sub-05" in (download.first.text_content() or "")
    finally:
        context.close()


# -- brain viewer ------------------------------------------------------------------------------
VIEWER = 'iframe[title="niivue_component.niivue_viewer"]'  # NiiVue (niivue-streamlit)


def _svg_texts(chart, selector: str) -> list[str]:
    return [t.text_content() or "" for t in chart.locator(selector).all()]


def _viewer_slices(page) -> str:
    """The crosshair readout under NiiVue (whose canvas, WebGL, is checked by
    tests/e2e/test_niivue_browser.py in a browser with WebGL)."""
    return (
        page.locator('[data-testid="stMarkdown"]').filter(has_text="Crosshair").first.inner_text()
    )


def test_brain_viewer_shows_anatomy_in_mm(
    page, home: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A cold deep link: the first visit to a fresh server is /brain-viewer. It lands on the
    page, under the app's own sidebar (page titles, not file names), with no "Page not found".
    Then: slices in mm with L/R and A/P marked over the MNI152 template, the map's colour bar, and
    NiiVue's canvas; the x slider (mm) moves the slices and the crosshair readout together. The screenshot is for a person to look at: anatomy under the map."""
    with serve(home, tmp_path_factory.mktemp("cold-server")) as cold:
        open_page(page, cold, "brain-viewer")
        settle(page)  # a dialog would come with the first run's last deltas
        assert "Page not found" not in page.inner_text("body")
        assert page.locator("h1").first.inner_text().startswith("Brain viewer")
        links = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        assert [link.split("\n")[-1] for link in links][:4] == [
            "Overview",
            "Subject",
            "Emotion accuracy",
            "Brain viewer",
        ], links
        _brain_viewer_checks(page)


def _brain_viewer_checks(page) -> None:
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".main-svg").first.wait_for(timeout=20_000)
    titles = _svg_texts(chart, "text[class$='title']")
    assert "L ← x (mm) → R" in titles and "P ← y (mm) → A" in titles, titles
    marks = set(_svg_texts(chart, ".annotation-text"))
    assert {"L", "R", "A", "P"} <= marks, marks
    assert chart.locator(".colorbar").count() == 1, "no saliency colour bar"
    page.frame_locator(VIEWER).locator("canvas").first.wait_for(timeout=20_000)
    before = _viewer_slices(page)
    sagittal = next(t for t in marks if t.startswith("sagittal"))
    page.get_by_role("slider", name="x (mm)").focus()
    page.keyboard.press("ArrowLeft")
    wait_for_app_run(page)
    chart.locator(".main-svg").first.wait_for()
    assert sagittal not in _svg_texts(chart, ".annotation-text"), "the slices did not move"
    assert _viewer_slices(page) != before, "the interactive viewer did not follow the slider"
    chart.scroll_into_view_if_needed()
    settle(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "brain-viewer-anatomy.png"))
    page.locator(VIEWER).screenshot(path=str(SHOTS / "brain-viewer-interactive.png"))


# -- what a user relies on ---------------------------------------------------------------------
_LEGEND_JS = """
root => [...root.querySelectorAll('.legend .traces')].map(t => {
  const mark = t.querySelector('.legendpoints path');
  const style = mark ? getComputedStyle(mark) : null;
  const paint = style ? (style.stroke !== 'none' && style.stroke ? style.stroke : style.fill) : '';
  return {name: (t.querySelector('.legendtext') || {}).textContent || '', colour: paint};
})
"""


def _hex(css: str) -> str:
    found = re.findall(r"\d+(?:\.\d+)?", css)
    assert len(found) >= 3, f"not an rgb colour: {css!r}"
    return "#" + "".join(f"{round(float(v)):02X}" for v in found[:3])


def test_timeline_legend_gives_every_emotion_its_own_colour(page, server: str) -> None:
    """The Subject page's timeline legend, as the browser drew it: each emotion once, no two
    emotions sharing a colour, and any two at least CIE76 delta E 40 apart (issue 11)."""
    import itertools

    import numpy as np

    from emocore.constants import EMOTIONS
    from tests.unit.test_colours import lab

    open_page(page, server, "subject")
    timeline = page.locator('[data-testid="stPlotlyChart"]').filter(
        has=page.locator(".legendtext", has_text="misclassified")
    )
    timeline.first.locator(".legend").first.wait_for(timeout=20_000)
    entries = timeline.first.evaluate(_LEGEND_JS)
    colours = {}
    for entry in entries:
        name = entry["name"].split(" (")[0]
        if name in EMOTIONS:
            assert name not in colours, f"{name} is twice in the legend: {entries}"
            colours[name] = _hex(entry["colour"])
    assert len(colours) >= 3, f"the legend shows too few emotions: {entries}"
    assert len(set(colours.values())) == len(colours), f"two emotions share a colour: {colours}"
    for a, b in itertools.combinations(colours, 2):
        delta = float(np.linalg.norm(lab(colours[a]) - lab(colours[b])))
        assert delta >= 40, f"{a} {colours[a]} and {b} {colours[b]}: delta E {delta:.0f} < 40"
    timeline.first.scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "subject-timeline-legend.png"))


def test_emotion_accuracy_curves_and_tuning(page, server: str) -> None:
    """Training curves of held-out balanced accuracy against chance 1/K with the split named,
    and what each outer fold used beside the CNN-vs-linear comparison."""
    open_page(page, server, "emotion-accuracy")
    text = _main_text(page)
    assert "What each outer fold used" in text, text[-2000:]
    assert "fixed (poster setting)" in text or "inner fold" in text, text[-2000:]
    curves = page.locator('[data-testid="stPlotlyChart"]').filter(
        has=page.locator("text", has_text="Training curves")
    )
    curves.first.locator(".main-svg").first.wait_for(timeout=20_000)
    svg = " ".join(curves.first.locator("text").all_text_contents())
    assert "balanced accuracy" in svg and "chance 1/5 classes" in svg, svg
    assert "held out" in svg and "(" in svg, svg  # the legend names each design's split
    curves.first.scroll_into_view_if_needed()
    settle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "emotion-accuracy-curves.png"), full_page=True)
