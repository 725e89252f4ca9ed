"""Screenshots for the site, taken with headless Chromium (selenium, chromium-driver).

    # the explorer's pages, on the runs of `steerlens tour --quick --out RUNS`:
    PYTHONPATH=. python docs/_gen/screenshots.py explorer RUNS docs/images
    # pages of a built site (`mkdocs build -d SITE`), to look at before publishing:
    python docs/_gen/screenshots.py site SITE /tmp/docs-shots

`explorer` starts `steerlens app --runs RUNS` on a free port, opens the run list, every run
(`?run=NAME`), the first vector file in RUNS and the playground (the zoo model loaded, one
generation with the first vector it offers), waits until every chart is drawn and saves
`explorer-NAME.png` (256-colour PNGs, to keep the repository small). `site` serves SITE over
http and saves the home page, two analysis pages, an API page and a notebook page.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLOT = "[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg"
SITE_PAGES = {"home": "", "dla": "analyses/dla/", "sinks": "analyses/sinks/",
              "api": "reference/interp/", "notebook": "notebooks/01_dla_and_lens/",
              "sites": "engine/sites/", "explorer": "explorer/"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(width: int, height: int):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in [*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)


def save(driver, path: Path, colours: int | None = 256) -> None:
    driver.save_screenshot(str(path))
    if colours:
        Image.open(path).convert("RGB").quantize(colours).save(path, optimize=True)
    print(path, path.stat().st_size // 1024, "KiB")


def streamlit_ready(driver) -> bool:
    """The script finished and every chart on the page is drawn."""
    if driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget'], [data-stale='true']"):
        return False
    charts = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stPlotlyChart']")
    return bool(driver.find_elements(By.CSS_SELECTOR, "h1")) and len(driver.find_elements(By.CSS_SELECTOR, PLOT)) >= len(charts)


def explorer(runs: Path, out: Path, model: str = "smollm2-135m-instruct") -> None:
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "interp.cli", "app", "--runs", str(runs), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    driver = browser(1400, 1500)
    try:
        deadline = time.time() + 180
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        names = sorted(p.parent.name for p in runs.glob("*/manifest.json"))
        vectors = sorted(p.name for p in runs.glob("*.safetensors"))
        pages = [("runs", ""), *[(n, f"?run={n}") for n in names],
                 *[("vector", f"?run={v}") for v in vectors[:1]]]
        for name, query in pages:
            driver.get(f"{url}/{query}")
            time.sleep(2)
            WebDriverWait(driver, 180, poll_frequency=0.2).until(streamlit_ready)
            time.sleep(1.5)  # let plotly finish its transitions
            save(driver, out / f"explorer-{name.replace('_', '-')}.png")
        playground(driver, url, model, out)
    finally:
        driver.quit()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def button(driver, text: str):
    """The enabled button labelled `text`, or None (also while Streamlit replaces the page's elements)."""
    try:
        return next((b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text == text and b.is_enabled()),
                    None)
    except StaleElementReferenceException:
        return None


def until(driver, condition, timeout: float):
    def safe(d):
        try:
            return condition(d)
        except StaleElementReferenceException:
            return False
    return WebDriverWait(driver, timeout, poll_frequency=1).until(safe)


def playground(driver, url: str, model: str, out: Path) -> None:
    """The steering playground with `model` loaded, the first vector chosen, one generation."""
    driver.get(f"{url}/?view=playground")
    deadline = time.time() + 300
    while not button(driver, "Generate"):  # press Load until the model is loaded
        assert time.time() < deadline, "the playground did not load the model"
        load = button(driver, "Load model")
        if load is not None:
            try:
                load.click()
            except (StaleElementReferenceException, ElementClickInterceptedException):
                pass
        time.sleep(3)
    until(driver, lambda d: button(d, "Generate").click() or True, 60)
    until(driver, lambda d: "unsteered" in d.find_element(By.TAG_NAME, "body").text
          and len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stCode']")) >= 2 and streamlit_ready(d), 300)
    time.sleep(1)
    save(driver, out / "explorer-playground.png")


def site(folder: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = browser(1400, 1100)
    try:
        for name, page in SITE_PAGES.items():
            driver.get(f"http://127.0.0.1:{server.server_port}/{page}")
            time.sleep(2)
            save(driver, out / f"{name}.png", colours=None)
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    kind, source, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    {"explorer": explorer, "site": site}[kind](source, target)
