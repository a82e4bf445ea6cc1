"""The web page in a real browser (headless Debian Chromium via Selenium): upload, wait, play, download.

Needs the Debian packages chromium and chromium-driver (`make test-slow` installs them).
"""

import shutil
import socket
import time
import urllib.request

import numpy as np
import pytest
import soundfile as sf

from sepkit import load_separator
from sepkit.inference import SeparationEngine
from sepkit.web import WebSeparator, build_app

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromium-driver are missing: run `make test-slow` (it installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


def test_upload_separate_play_and_download(tmp_path, tiny_ckpt, tiny_root, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    mix, rate = sf.read(next((tiny_root / "train").iterdir()) / "mixture.wav")
    song = tmp_path / "Browser Song.mp3"
    sf.write(song, mix[: rate * 4], rate, format="MP3")
    web = WebSeparator(SeparationEngine(load_separator(tiny_ckpt)), tmp_path / "work")
    app = build_app(web, "sepkit test page")
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 120)
        upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#upload input[type=file]")))
        upload.send_keys(str(song))
        time.sleep(2)  # let the upload finish
        browser.find_element(By.CSS_SELECTOR, "#separate").click()
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#status"), "Separated"))
        for target in ("vocals", "accompaniment"):
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"#player-{target} audio")))
        link = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#download-vocals a[href]")))
        href = link.get_attribute("href")
        assert "Browser%20Song%20-%20vocals.wav" in href or "Browser Song - vocals.wav" in href
        out = tmp_path / "downloaded.wav"
        out.write_bytes(urllib.request.urlopen(href, timeout=30).read())
        data, out_rate = sf.read(out)
        assert out_rate == rate and abs(len(data) - sf.info(song).frames) == 0 and np.isfinite(data).all()
        shot = tmp_path / "page.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        app.close()
