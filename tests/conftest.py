import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def driver():
    """Headless Chromium (tests/browser.py); skips the test where it is not installed."""
    pytest.importorskip("selenium.webdriver")
    from browser import CHROMIUM, DRIVER, chromium

    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium and chromedriver not installed")
    chrome = chromium()
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny torch models run fastest on one thread (and leave the other core to the rest)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
