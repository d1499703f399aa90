"""End to end in a real browser: JupyterLab on loopback, 02_label_review (labelling by hand) in headless
Chromium, keys pressed, the labels file checked on disk.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the test extra's
``jupyterlab`` and ``selenium``; skipped without them. No browser is downloaded: Selenium drives
``/usr/bin/chromium`` through ``/usr/bin/chromedriver``. The screenshot of the widget is saved in
the test's folder and in ``tests/output/`` (git-ignored); with ``SCREENTIME_UPDATE_SCREENSHOTS=1``
it also replaces ``docs/labeller-screenshot.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import active
from helpers.backbones import ColourBackbone
from helpers.features import extract_features
from helpers.shots import shot_starts

REPO = Path(__file__).resolve().parents[1]
#: The notebook the test opens, with papermill's parameters set as a user would set them:
#: ``label_by_hand = True`` on the test's video and labels file.
NOTEBOOK = REPO / "notebooks" / "02_label_review.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
OUTPUT = REPO / "tests" / "output"
TOKEN = "screentime-test-token"
LABELS = 12  # frames labelled with the keyboard


def _missing() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return ("needs Debian's chromium and chromium-driver (/usr/bin/chromium, chromedriver); "
                "CI installs them: apt-get install chromium chromium-driver")
    for module in ("selenium", "jupyterlab", "ipyevents"):
        try:
            __import__(module)
        except ImportError:
            return f"needs {module} (pip install -e '.[test]')"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return response.read()


def _our_kernels(runtime: Path) -> list[int]:
    """Process ids of kernels whose connection file lies in our runtime folder (ours, and only ours)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "ipykernel" in cmdline and str(runtime) in cmdline:
                pids.append(int(proc.name))
    return pids


@pytest.fixture
def lab(tmp_path, train_cartoon):
    """JupyterLab serving a folder with the labelling notebook, on a free loopback port; stopped afterwards."""
    import papermill

    root = tmp_path / "lab"
    root.mkdir()
    labels_csv = tmp_path / "labels.csv"
    papermill.execute_notebook(str(NOTEBOOK), str(root / NOTEBOOK.name), kernel_name="python3", prepare_only=True,
                               progress_bar=False, parameters={"video": str(train_cartoon.video),
                                                               "labels": str(labels_csv), "label_by_hand": True,
                                                               "run_dir": str(tmp_path / "run"), "quick": True})
    runtime, settings = tmp_path / "runtime", tmp_path / "settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(runtime),
           "IPYTHONDIR": str(tmp_path / "ipython"), "SCREENTIME_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={TOKEN}",
         f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                _get(f"{base}/api/status?token={TOKEN}")
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise AssertionError("JupyterLab did not start:\n"
                                         + (tmp_path / "jupyterlab.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield {"url": f"{base}/lab/tree/{NOTEBOOK.name}?token={TOKEN}", "labels": labels_csv,
               "notebook": root / NOTEBOOK.name,
               "video": train_cartoon.video, "truth": train_cartoon.truth, "log": tmp_path / "jupyterlab.log"}
    finally:
        try:  # shuts the kernels down too
            request = urllib.request.Request(f"{base}/api/shutdown?token={TOKEN}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        for pid in _our_kernels(runtime):
            os.kill(pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1400", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(what, predicate, timeout: float, driver=None, shot: Path | None = None):
    deadline = time.time() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # the page is still changing
            pass
        if time.time() > deadline:
            if driver is not None and shot is not None:
                driver.save_screenshot(str(shot))
            raise AssertionError(f"timed out waiting for {what}" + (f" (screenshot: {shot})" if shot else ""))
        time.sleep(0.25)


def _rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["frame", "time_s", "label"])


def test_label_with_the_keyboard_in_jupyterlab(lab, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    failed = tmp_path / "failed.png"
    browser.get(lab["url"])
    _wait("the notebook", lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 60, browser, failed)
    # Run all cells from the menu (the kernel starts when the notebook opens; the run waits for it).
    run_menu = _wait("the Run menu", lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                                                if e.text.strip() == "Run"], 30, browser, failed)[0]
    run_menu.click()
    _wait("Run All Cells", lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".lm-Menu-item")
                                     if e.text.strip().startswith("Run All Cells")], 10, browser, failed)[0].click()
    image = _wait("the labelling widget", lambda: [e for e in browser.find_elements(
        By.CSS_SELECTOR, ".screentime-labeller-frame img.screentime-labeller-image")
        if browser.execute_script("return arguments[0].naturalWidth", e) > 0], 120, browser, failed)[0]
    title = browser.find_element(By.CSS_SELECTOR, ".screentime-labeller-frame .widget-html")

    # What the widget should propose first: the initial order (one frame per shot, then evenly in time).
    feats = extract_features(lab["video"], ColourBackbone(), 1.0)
    order = active.initial_order(feats.frames["frame"].to_numpy(), feats.frames["time_s"].to_numpy(),
                                 shot_starts(lab["video"]))
    truth = dict(zip(lab["truth"]["frame"], lab["truth"]["label"]))
    time_of = dict(zip(feats.frames["frame"], feats.frames["time_s"]))

    def shown() -> int:
        return int(re.search(r"frame (\d+)", title.text).group(1))

    assert shown() == order[0]
    # The mouse over the frame gives the widget the keyboard (ipyevents); from here on, keys only:
    # 0 (none) then the digit of each character on screen (1 jerry, 2 tom), then Enter.
    ActionChains(browser).move_to_element(image).click().perform()
    done: dict[int, str] = {}
    for _ in range(LABELS):
        frame = shown()
        keys = "0" + "".join(str(1 + ["jerry", "tom"].index(n)) for n in truth[frame].split(";") if n != "none")
        ActionChains(browser).send_keys(keys).perform()
        done[frame] = truth[frame]
        _wait(f"frame {frame} labelled {truth[frame]} in the file", lambda: dict(zip(  # noqa: B023 (waited for here)
            _rows(lab["labels"])["frame"], _rows(lab["labels"])["label"])) == done, 30, browser, failed)
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        _wait("the next frame", lambda frame=frame: shown() != frame, 30, browser, failed)
    assert list(done)[:2] == order[:2]
    last = list(done)[-1]
    ActionChains(browser).send_keys(Keys.BACKSPACE).perform()
    _wait("back on the last labelled frame", lambda: shown() == last, 30, browser, failed)
    ActionChains(browser).send_keys(Keys.ARROW_LEFT).perform()
    _wait("back once more", lambda: shown() == list(done)[-2], 30, browser, failed)
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
    _wait("forward again", lambda: shown() == last, 30, browser, failed)

    labels = _rows(lab["labels"])
    assert list(labels.columns) == ["frame", "time_s", "label"]
    assert list(labels["frame"]) == sorted(done)
    assert dict(zip(labels["frame"], labels["label"])) == done
    assert np.allclose(labels["time_s"], [time_of[f] for f in labels["frame"]], atol=1e-3)
    # JupyterLab did not act on the keys itself (digits turn code cells into markdown, Enter edits a cell).
    import nbformat

    cells = nbformat.read(lab["notebook"], as_version=4).cells
    assert len(browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-MarkdownCell")) == sum(
        c.cell_type == "markdown" for c in cells)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")) == len(cells)
    # With 10 labels or more the background retrain shows its time-blocked accuracy estimate.
    _wait("the accuracy estimate", lambda: "estimated accuracy" in browser.find_element(
        By.CSS_SELECTOR, ".screentime-labeller").text, 30, browser, failed)

    widget = browser.find_element(By.CSS_SELECTOR, ".screentime-labeller")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", widget)
    ActionChains(browser).move_to_element(image).perform()
    time.sleep(0.5)
    shot = tmp_path / "labeller.png"
    widget.screenshot(str(shot))
    browser.save_screenshot(str(tmp_path / "jupyterlab.png"))
    OUTPUT.mkdir(exist_ok=True)
    shutil.copy(shot, OUTPUT / "labeller-screenshot.png")
    if os.environ.get("SCREENTIME_UPDATE_SCREENSHOTS"):
        shutil.copy(shot, REPO / "docs" / "labeller-screenshot.png")
    import cv2

    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[0] > 300 and picture.shape[1] > 500
    assert len(np.unique(picture.reshape(-1, 3) // 16, axis=0)) > 50, "the screenshot shows no frame"
