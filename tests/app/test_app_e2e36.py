"""Issue 36 in headless Chromium: the broken items fixed (lens hover, damaged runs, vectors inside
runs, ``?run=`` naming nothing), what the new figures draw, and screenshots of the new views.

Needs chromium, chromium-driver and selenium, as tests/app/test_app_e2e.py (skipped without).
Screenshots go to $STEERLENS_SHOTS (default test-artifacts/).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from test_app_e2e import (
    ARTIFACTS,
    app_server,
    body,
    chromium_driver,
    choose,
    figure_titles,
    load_model,
    page_ready,
    wait,
)
from test_app_runs import saved_runs

from app.axes import decade_label

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

SHOTS = Path(os.environ.get("STEERLENS_SHOTS", ARTIFACTS))


@pytest.fixture(scope="module")
def root36(tiny_llama_folder, tmp_path_factory) -> Path:
    """Saved runs, a tour of the tiny llama saved as a folder (dla, skills: its vector inside the
    skills run), a voids_eval run, a copy of dla-1 to damage later and a run with an empty tensor file."""
    import torch

    from interp.cli import main
    from interp.voids.evaluation import VoidEvalConfig, evaluate_voids
    from tiny import tiny_model

    root = tmp_path_factory.mktemp("e2e36") / "runs"
    shutil.copytree(saved_runs(), root)
    assert main(["tour", "--quick", "--only", "dla,skills", "--model", str(tiny_llama_folder), "--out",
                 str(root / "tour-x")]) == 0
    torch.set_num_threads(1)
    evaluate_voids(tiny_model("llama"), VoidEvalConfig(alphas=[0.5, 1.0], limit=8)).save(root / "veval-1")
    shutil.copytree(root / "dla-1", root / "dla-2")
    shutil.copytree(root / "lens-1", root / "lens-empty")
    (root / "lens-empty" / "tensors.safetensors").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def server36(root36):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with app_server(root36, "e2e36-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium_driver() as driver:
        yield driver


def shot(driver, name: str, element=None) -> None:
    if element is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        time.sleep(0.5)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def chart_named(driver, needle: str):
    return wait(driver, lambda d: next(c for c in d.find_elements(By.CSS_SELECTOR, "[data-testid='stPlotlyChart']")
                                       if needle in c.text))


POINT_OFFSET = """
const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p => String(p.layout.title.text || '')
  .replace(/<[^>]+>/g, '').startsWith(arguments[0]));
const n = arguments[1], x = arguments[2], y = arguments[3];
const [xa, ya] = [gd._fullLayout['xaxis' + (n > 1 ? n : '')], gd._fullLayout['yaxis' + (n > 1 ? n : '')]];
const box = gd.querySelector('.main-svg').getBoundingClientRect();
return [xa._offset + xa.d2p(x) - box.width / 2, ya._offset + ya.d2p(y) - box.height / 2];
"""


def move_to(driver, title: str, chart, subplot: int, x, y, click: bool = False) -> None:
    """Move the mouse onto data point (x, y) of `subplot` of the figure titled `title` (and click)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    time.sleep(0.5)
    dx, dy = driver.execute_script(POINT_OFFSET, title, subplot, x, y)
    svg = chart.find_element(By.CSS_SELECTOR, ".main-svg")
    actions = ActionChains(driver).move_to_element_with_offset(svg, int(dx), int(dy)).pause(0.8)
    (actions.click() if click else actions).perform()


def test_lens_hover_shows_the_top_5(server36, browser):
    browser.get(f"{server36}/?run=lens-1")
    wait(browser, page_ready("lens-1"))
    chart = chart_named(browser, "Logit lens")
    x = browser.execute_script("""const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p =>
        String(p.layout.title.text || '').includes('Logit lens')); return [gd._fullData[0].x[1], gd._fullData[0].y[2]];""")
    move_to(browser, "Logit lens", chart, 1, x[0], x[1])
    text = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".hoverlayer .hovertext").text, timeout=20)
    assert "1. " in text and "5. " in text and "target" in text and f"{x[1]}, position" in text
    assert not re.match(r"^\d+,\d+,", text)  # not the raw customdata "30,4,0.7725..." of the click markers
    shot(browser, "lens-hover-top5")


def test_damaged_runs_are_flagged_with_their_reason_and_vectors_inside_runs_open(server36, browser):
    browser.get(server36)
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs")
    wait(browser, lambda d: any(b.text == "⚠ lens-empty" for b in d.find_elements(By.CSS_SELECTOR, "button")))
    assert "broken: tensors.safetensors is empty (0 bytes)" in body(browser)
    assert "tour-x/skills/direction-0.safetensors" in {b.text for b in browser.find_elements(By.CSS_SELECTOR, "button")}
    assert "sink rate" in body(browser)  # each run's finding under its button
    shot(browser, "run-list-findings-and-damage", browser.find_element(By.XPATH, "//*[contains(text(), 'Open a run')]"))
    browser.get(f"{server36}/?run=tour-x/skills/direction-0.safetensors")
    wait(browser, page_ready("tour-x/skills/direction-0.safetensors"))
    browser.get(f"{server36}/?run=massive-1")
    wait(browser, page_ready("massive-1"))
    wait(browser, lambda d: any("in tour-x/skills/direction-0.safetensors" in b.text
                                for b in d.find_elements(By.CSS_SELECTOR, "button")))  # massive -> vector link
    browser.get(f"{server36}/?run=tour-x/nothing")
    wait(browser, lambda d: "No run or vector file named 'tour-x/nothing'" in body(d))
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs"


def test_voids_eval_page_and_austeer_intervals_draw(server36, browser):
    browser.get(f"{server36}/?run=veval-1")
    wait(browser, page_ready("veval-1"))
    title = next(t for t in figure_titles(browser) if "accuracy without and with void layers skipped" in t)
    points = browser.execute_script("""const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p =>
        String(p.layout.title.text || '').replace(/<[^>]+>/g, '') === arguments[0]);
        return [gd.querySelectorAll('.scatterlayer .point').length, gd.querySelectorAll('.errorbar').length,
                gd._fullLayout.xaxis._categories];""", title)
    assert points[0] == 3 and points[1] == 3
    assert points[2] == ["no skipping", "paper skipping, alpha 0.5", "paper skipping, alpha 1"]
    shot(browser, "voids-eval-page", chart_named(browser, "accuracy without and with"))
    browser.get(f"{server36}/?run=austeer-eval-1")
    wait(browser, page_ready("austeer-eval-1"))
    chart = chart_named(browser, "test accuracy")
    assert len(chart.find_elements(By.CSS_SELECTOR, ".errorbar")) >= 3


def test_residual_norm_log_axis_reads_in_decades(server36, browser):
    browser.get(f"{server36}/?run=sinks-1")
    wait(browser, page_ready("sinks-1"))
    chart = chart_named(browser, "Residual-state norm")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    ticks = wait(browser, lambda d: d.execute_script("""const gd = [...document.querySelectorAll('.js-plotly-plot')]
        .find(p => String(p.layout.title.text || '').includes('Residual-state norm'));
        return gd && gd._fullLayout.yaxis._vals ? gd._fullLayout.yaxis._vals.map(v => v.text) : null;"""))
    allowed = {decade_label(m * 10.0 ** e) for e in range(-3, 7) for m in (1, 2, 5)}
    assert len(ticks) >= 2 and set(ticks) <= allowed, ticks  # "0.1, 0.2, 0.5, 1" or "1, 10, 100, 1k", not "2, 5, 2"
    shot(browser, "sinks-resid-norm-decades", chart)


def test_heads_grid_follows_the_prompt_and_a_click_enlarges_a_head(server36, browser):
    browser.get(f"{server36}/?run=tour-x/dla")
    wait(browser, page_ready("tour-x/dla"))
    box = wait(browser, lambda d: next(b for b in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSelectbox']")
                                       if b.text.split("\n")[0] == "Prompt"))
    box.find_element(By.CSS_SELECTOR, "button[aria-label='Open']").click()
    wait(browser, lambda d: next(o for o in d.find_elements(By.CSS_SELECTOR, "[role='option']")
                                 if o.text.startswith("1: ")).click() or True, timeout=30)
    wait(browser, page_ready("tour-x/dla"))
    button = wait(browser, lambda d: next(b for b in d.find_elements(By.CSS_SELECTOR, "button")
                                          if b.text == "Compute the pattern"))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)
    wait(browser, lambda d: any("every head's attention pattern" in t for t in figure_titles(d)))
    # the enlarged head is a second chart, drawn after the grid: wait for it too
    enlarged = wait(browser, lambda d: next(t for t in figure_titles(d) if " attention, prompt " in t))
    assert "prompt 1" in enlarged
    grid_title = next(t for t in figure_titles(browser) if "every head's attention pattern" in t)
    layer = int(grid_title.split(":")[0].removeprefix("Layer "))
    grid = chart_named(browser, "every head's attention pattern")
    shot(browser, "dla-heads-grid", grid)
    other = 0 if not enlarged.startswith(f"L{layer}H0 ") else 1
    size = browser.execute_script("""const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p =>
        String(p.layout.title.text || '').includes("every head's attention")); return gd._fullData[0].z.length;""")
    move_to(browser, grid_title, grid, other + 1, (size - 1) / 2, (size - 1) / 2, click=True)
    wait(browser, lambda d: any(t.startswith(f"L{layer}H{other} attention, prompt 1") for t in figure_titles(d)),
         timeout=60)
    shot(browser, "dla-heads-grid-enlarged", chart_named(browser, f"L{layer}H{other} attention"))


def test_token_strips_and_the_dla_overview_draw(server36, browser):
    browser.get(f"{server36}/?run=voids-1")
    wait(browser, page_ready("voids-1"))
    strip = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".token-strip"))
    assert len(strip.find_elements(By.CSS_SELECTOR, ".tok")) >= 3
    shot(browser, "voids-layers-per-token", strip)
    browser.get(f"{server36}/?run=lens-1")
    wait(browser, page_ready("lens-1"))
    strip = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".token-strip"))
    shot(browser, "lens-every-position", strip)
    browser.get(f"{server36}/?run=tour-x/dla")
    wait(browser, page_ready("tour-x/dla"))
    shot(browser, "dla-per-layer-overview", chart_named(browser, "Per layer: DLA"))


def test_playground_shows_the_damage_of_each_steered_generation(server36, browser, tiny_llama_folder):
    browser.get(f"{server36}/?view=playground")
    load_model(browser, str(tiny_llama_folder))
    wait(browser, lambda d: "||alpha v|| = " in body(d))
    generate = wait(browser, lambda d: next(b for b in d.find_elements(By.CSS_SELECTOR, "button")
                                            if b.text == "Generate" and b.is_enabled()))
    generate.click()
    wait(browser, lambda d: "damage: the unsteered model's perplexity" in body(d), timeout=120)
    target = browser.find_element(By.XPATH, "//*[contains(text(), 'Prompt 1:')]")
    shot(browser, "playground-damage", target)


def test_comparing_with_a_run_damaged_after_listing_shows_one_line(server36, browser, root36):
    browser.get(server36)
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "steerlens runs")
    wait(browser, lambda d: any(b.text == "dla-2" for b in d.find_elements(By.CSS_SELECTOR, "button")))
    tensors = root36 / "dla-2" / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:100])  # damaged after the listing was read
    toggle = wait(browser, lambda d: next(t for t in d.find_elements(By.CSS_SELECTOR, "[data-testid='stCheckbox']")
                                          if t.text == "Compare two runs of one analysis"))
    toggle.find_element(By.TAG_NAME, "label").click()
    choose(browser, "Run A", "dla-1")
    choose(browser, "Run B", "dla-2")
    error = wait(browser, lambda d: next(e for e in d.find_elements(By.CSS_SELECTOR, "[data-testid='stAlert']")
                                         if "Cannot compare these runs" in e.text))
    assert "SafetensorError" in error.text and len(error.text.strip().splitlines()) == 1
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    assert "Open a run" in body(browser) and any(b.text == "dla-2" for b in browser.find_elements(By.CSS_SELECTOR, "button"))
    shot(browser, "compare-damaged-one-line", error)
    rescan = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button") if b.text == "Rescan runs folder")
    rescan.click()
    wait(browser, lambda d: any(b.text == "⚠ dla-2" for b in d.find_elements(By.CSS_SELECTOR, "button")))
    assert "broken: tensors.safetensors is truncated" in body(browser)
