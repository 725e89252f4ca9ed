"""End to end in headless Chromium: `steerlens app` on a free port, run list, every page kind.

Needs Debian's chromium and chromium-driver packages and selenium (the `dev` extra); skipped
where they are missing. Screenshots and the measured open times go to test-artifacts/.

    apt-get install -y chromium chromium-driver && pip install selenium
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("headless Chromium not installed (apt-get install -y chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_app_runs import saved_runs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1600"]
PLOT = "[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg"
# one run page of each kind, with a label of a figure it must draw
PAGES = {"dla-1": "Heads: DLA", "lens-1": "Logit lens", "sinks-1": "Sink importance", "massive-1": "max |a|",
         "voids-1": "LAC activation map", "austeer-eval-1": "atomic units", "v.safetensors": "Norm of the direction",
         "refusal-1": "Refusal rate", "probe-1": "probe scores"}


@pytest.fixture(scope="module")
def runs_root(tiny_llama_folder, tmp_path_factory) -> Path:
    """The saved runs of every page kind, and next to them a tour folder (runs one level down)
    of the tiny llama saved as a folder, so its runs name a model the explorer can load."""
    from interp.cli import main

    root = tmp_path_factory.mktemp("e2e") / "runs"
    shutil.copytree(saved_runs(), root)
    assert main(["tour", "--quick", "--only", "dla,skills", "--model", str(tiny_llama_folder), "--out",
                 str(root / "tour-x")]) == 0
    deep_routing(root / "routing-deep")
    return root


def deep_routing(folder: Path) -> None:
    """A routing run of a 24-layer tiny llama: its maps have many thin rows (about 12 px each)."""
    import torch
    from tiny import tiny_model

    from interp.routing.config import RoutingConfig
    from interp.routing.pairs import load_pairs
    from interp.routing.pipeline import run_routing

    torch.set_num_threads(1)
    config = RoutingConfig(n=8, steps=["interchange"], method="exact", permutations=100, bootstrap=5, gen_tokens=2)
    run_routing(tiny_model("llama", num_hidden_layers=24), load_pairs(), config, out=folder)


@contextlib.contextmanager
def app_server(runs_root, log_name: str):
    """`steerlens app --runs runs_root` on a free localhost port: yields its URL once healthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")
    proc = subprocess.Popen([sys.executable, "-m", "interp.cli", "app", "--runs", str(runs_root), "--port",
                             str(port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log.name}") from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the CLI and the streamlit process it started
        proc.wait(timeout=30)
        log.close()


@contextlib.contextmanager
def chromium_driver():
    """A headless Chromium WebDriver with a fresh profile, removed afterwards."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="steerlens-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server(runs_root):
    with app_server(runs_root, "e2e-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium_driver() as driver:
        yield driver


def wait(driver, condition, timeout: float = 120):
    """Wait for `condition(driver)`, retrying while Streamlit replaces the elements it reads."""
    def safe(d):
        try:
            return condition(d)
        except (StaleElementReferenceException, ElementClickInterceptedException, IndexError, StopIteration):
            return False
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(safe)


def choose(driver, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label`."""
    def open_box(d):
        box = next(b for b in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSelectbox']")
                   if b.text.split("\n")[0] == label)
        box.find_element(By.CSS_SELECTOR, "button[aria-label='Open']").click()
        return True

    def pick(d):
        next(o for o in d.find_elements(By.CSS_SELECTOR, "[role='option']") if o.text == option).click()
        return True
    wait(driver, open_box)
    wait(driver, pick, timeout=30)


OPEN_AND_TIME = """
const [name, done] = [arguments[0], arguments[arguments.length - 1]];
const button = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === name);
const start = performance.now();
button.click();
const check = () => {  // script finished (no status widget, nothing stale), title shown, every chart drawn
  const h1 = document.querySelector('h1');
  const running = document.querySelector('[data-testid=stStatusWidget]') || document.querySelector('[data-stale=true]');
  const built = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]
    .find(e => e.textContent.startsWith('page built in'));
  const charts = document.querySelectorAll('[data-testid=stPlotlyChart]').length;
  const drawn = document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot .main-svg').length;
  if (!running && h1 && h1.textContent.includes(name) && built && charts && drawn >= charts)
    done({open_s: (performance.now() - start) / 1000, charts: charts, server: built.textContent});
  else setTimeout(check, 25);
};
check();
"""


def open_run_timed(driver, name: str) -> dict:
    """Click the run's button; seconds until every chart of its page is drawn, timed in the page."""
    wait(driver, lambda d: any(b.text == name for b in d.find_elements(By.CSS_SELECTOR, "button")))
    return driver.execute_async_script(OPEN_AND_TIME, name)


def figure_titles(driver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .gtitle")]


def page_ready(name: str):
    def ready(d):
        if d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget'], [data-stale='true']"):
            return False  # the script is still running
        built = [e.text for e in d.find_elements(By.CSS_SELECTOR, "[data-testid='stCaptionContainer']")
                 if e.text.startswith("page built in")]
        return name in d.find_element(By.CSS_SELECTOR, "h1").text and built and d.find_elements(By.CSS_SELECTOR, PLOT)
    return ready


def test_browse_every_page_kind_and_change_a_control(server, browser):
    browser.get(server)
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, PLOT))  # the overview chart
    browser.save_screenshot(str(ARTIFACTS / "explorer-runs.png"))
    timings = {}
    browser.set_script_timeout(120)
    for name, title in PAGES.items():
        timings[name] = open_run_timed(browser, name)
        wait(browser, page_ready(name))
        wait(browser, lambda d, t=title: any(t in text for text in figure_titles(d)))
        browser.save_screenshot(str(ARTIFACTS / f"explorer-{name}.png"))
        if name == "dla-1":  # change a control: the layer bar chart follows the layer picker
            (shown,) = [t.split(":")[0] for t in figure_titles(browser) if t.startswith("Layer ")]
            other = "0" if shown != "Layer 0" else "1"
            choose(browser, "Layer", other)
            wait(browser, lambda d, o=other: any(t.startswith(f"Layer {o}:") for t in figure_titles(d)))
            browser.save_screenshot(str(ARTIFACTS / "explorer-dla-other-layer.png"))
        choose(browser, "Run", "(all runs)")
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs")
    (ARTIFACTS / "e2e-open-times.json").write_text(json.dumps(timings, indent=2))
    assert all(t["charts"] >= 1 and t["open_s"] < 60 for t in timings.values()), timings


def test_run_query_parameter_opens_a_run_and_a_bad_one_the_list(server, browser):
    browser.get(f"{server}/?run=sinks-1")
    wait(browser, page_ready("sinks-1"))
    browser.get(f"{server}/?run=..%2F..%2Fetc")
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs")


# ---- issue 18: tour folder as parent, Plot a tensor, playground with the tour's vector, patterns ----
def test_tour_folder_given_as_its_parent_lists_every_run(server, browser):
    browser.get(server)
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs")
    buttons = lambda d: {b.text for b in d.find_elements(By.CSS_SELECTOR, "button")}
    wait(browser, lambda d: {"tour-x/dla", "tour-x/skills"} <= buttons(d))
    assert not any(b.startswith("⚠") for b in buttons(browser))  # nothing listed as broken


PLOT_DATA = """
const plots = [...document.querySelectorAll('.js-plotly-plot')];
const title = p => String((p.layout && p.layout.title && (p.layout.title.text || p.layout.title)) || '');
const gd = plots.find(p => title(p).replace(/<[^>]+>/g, '') === arguments[0]);  // streamlit wraps titles in <b>
if (!gd || !gd._fullData || !gd._fullLayout) return null;
const z = gd._fullData[0].z;
return {rows: z.length, cells: z.flat().filter(v => v !== null && !Number.isNaN(v)).length,
        yrange: gd._fullLayout.yaxis.range, images: gd.querySelectorAll('.hm image').length};
"""


def test_plot_a_tensor_draws_non_empty_cells(server, browser):
    browser.get(f"{server}/?run=probe-1")
    wait(browser, page_ready("probe-1"))
    choose(browser, "Plot a tensor", "scores")
    data = wait(browser, lambda d: d.execute_script(PLOT_DATA, "scores"))
    assert data["rows"] == 4 and data["cells"] == 4 * 5 and data["images"] >= 1
    low, high = sorted(data["yrange"])
    assert low < 0 < data["rows"] - 1 < high  # every row inside the drawn range (not -1.5..0.5)
    browser.save_screenshot(str(ARTIFACTS / "explorer-plot-a-tensor.png"))


def body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def load_model(driver, spec: str) -> None:
    """Type `spec` into the playground's model box and press Load until the page says it is loaded."""
    box = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label^='Model (zoo alias']"))
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(spec, Keys.ENTER)
    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))
    deadline = time.time() + 180
    while f"loaded {spec}" not in body(driver).replace("*", ""):
        assert time.time() < deadline, body(driver)[-500:]
        try:
            next(b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text == "Load model").click()
        except (StopIteration, StaleElementReferenceException, ElementClickInterceptedException):
            pass
        time.sleep(3)


def test_playground_generates_with_the_vector_the_tour_left(server, browser, tiny_llama_folder):
    browser.get(f"{server}/?view=playground")
    load_model(browser, str(tiny_llama_folder))
    vector = wait(browser, lambda d: next(b for b in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSelectbox']")
                                          if b.text.split("\n")[0] == "Vector"))
    assert "tour-x/skills · direction-0.safetensors" in vector.get_attribute("innerHTML")  # the tour's skill direction
    generate = wait(browser, lambda d: next(b for b in d.find_elements(By.CSS_SELECTOR, "button")
                                            if b.text == "Generate" and b.is_enabled()))
    generate.click()
    wait(browser, lambda d: "unsteered" in d.find_element(By.TAG_NAME, "body").text
         and len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stCode']")) >= 4)
    browser.save_screenshot(str(ARTIFACTS / "explorer-playground.png"))


def test_attention_pattern_view_from_a_dla_head(server, browser):
    browser.get(f"{server}/?run=tour-x/dla")
    wait(browser, page_ready("tour-x/dla"))
    button = wait(browser, lambda d: next(b for b in d.find_elements(By.CSS_SELECTOR, "button")
                                          if b.text == "Compute the pattern"))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)
    wait(browser, lambda d: any("attention, prompt 0" in t for t in figure_titles(d)))
    title = next(t for t in figure_titles(browser) if "attention, prompt 0" in t)
    data = wait(browser, lambda d: d.execute_script(PLOT_DATA, title))
    assert data["rows"] >= 2 and data["cells"] == data["rows"] * (data["rows"] + 1) // 2  # causal: lower triangle
    browser.save_screenshot(str(ARTIFACTS / "explorer-attention-pattern.png"))


# ---- issue 18, second round: a click on a heatmap cell, the compare difference map, how-to-read notes ----
CELL_OFFSET = """
const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p => String(p.layout.title.text || '')
  .replace(/<[^>]+>/g, '').startsWith(arguments[0]));
const [xa, ya] = [gd._fullLayout.xaxis, gd._fullLayout.yaxis];
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
return [xa.d2p(arguments[1]) - box.width / 2, ya.d2p(arguments[2]) - box.height / 2];  // from the plot area's centre
"""


def test_clicking_a_dla_head_cell_picks_that_layer(server, browser, runs_root):
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(f"{server}/?run=dla-1")
    wait(browser, page_ready("dla-1"))
    (shown,) = [t.split(":")[0] for t in figure_titles(browser) if t.startswith("Layer ")]
    layer = 0 if shown != "Layer 0" else 1
    chart = next(c for c in browser.find_elements(By.CSS_SELECTOR, "[data-testid='stPlotlyChart']")
                 if c.text and "Heads: DLA" in c.text)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    time.sleep(0.5)
    dx, dy = browser.execute_script(CELL_OFFSET, "Heads: DLA", "H1", f"L{layer}")
    area = chart.find_element(By.CSS_SELECTOR, ".nsewdrag")
    ActionChains(browser).move_to_element_with_offset(area, int(dx), int(dy)).pause(0.5).click().perform()
    wait(browser, lambda d: any(t.startswith(f"Layer {layer}:") for t in figure_titles(d)), timeout=60)
    assert f"dla-1%3Alayer={layer}" in browser.current_url or f"dla-1:layer={layer}" in browser.current_url
    browser.save_screenshot(str(ARTIFACTS / "explorer-dla-clicked-cell.png"))
    # a map with many thin rows: the click picks the clicked row, not its neighbour (markers do not overlap)
    from interp.runs.results import load_run

    heads = [tuple(h) for h in load_run(runs_root / "routing-deep").step("interchange").heads]
    browser.get(f"{server}/?run=routing-deep")
    wait(browser, page_ready("routing-deep"))
    chart = next(c for c in browser.find_elements(By.CSS_SELECTOR, "[data-testid='stPlotlyChart']")
                 if c.text and "interchange necessity" in c.text)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    time.sleep(0.5)
    for layer, head in ((13, 1), (14, 2)):
        dx, dy = browser.execute_script(CELL_OFFSET, "interchange necessity", head, layer)
        area = chart.find_element(By.CSS_SELECTOR, ".nsewdrag")
        ActionChains(browser).move_to_element_with_offset(area, int(dx), int(dy)).pause(0.5).click().perform()
        title = f"L{layer}H{head}:"
        wait(browser, lambda d, title=title: any(t.startswith(title) for t in figure_titles(d)), timeout=60)
        assert f"routing-deep%3Ahead=L{layer}H{head}" in browser.current_url  # the head itself, not its index
        assert (layer, head) in heads
        chart = next(c for c in browser.find_elements(By.CSS_SELECTOR, "[data-testid='stPlotlyChart']")
                     if c.text and "interchange necessity" in c.text)


def test_compare_difference_map_and_a_how_to_read_note_render(server, browser):
    browser.get(server)
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs")
    toggle = wait(browser, lambda d: next(t for t in d.find_elements(By.CSS_SELECTOR, "[data-testid='stCheckbox']")
                                          if t.text == "Compare two runs of one analysis"))
    toggle.find_element(By.TAG_NAME, "label").click()
    choose(browser, "Run A", "dla-1")
    choose(browser, "Difference (B − A) of", "figure head_heatmap")
    title = "figure head_heatmap: tour-x/dla − dla-1"
    data = wait(browser, lambda d: d.execute_script(PLOT_DATA, title))
    assert data["cells"] >= 4 and data["images"] >= 1
    chart = next(c for c in browser.find_elements(By.CSS_SELECTOR, "[data-testid='stPlotlyChart']")
                 if title in c.text)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    time.sleep(0.5)
    browser.save_screenshot(str(ARTIFACTS / "explorer-compare-difference.png"))
    browser.get(f"{server}/?run=v.safetensors")
    wait(browser, page_ready("v.safetensors"))
    note = wait(browser, lambda d: next(e for e in d.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander']")
                                        if "How to read this page" in e.text))
    note.find_element(By.TAG_NAME, "summary").click()
    wait(browser, lambda d: "arxiv.org" in note.get_attribute("innerHTML") and "per layer" in note.text)
    wait(browser, page_ready("v.safetensors"))
    browser.save_screenshot(str(ARTIFACTS / "explorer-how-to-read.png"))
