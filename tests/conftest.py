import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# The suite runs generated code as plain Python unless a test asks for Numba
# (tests/test_numba.py and others compile for real with backend="numba"):
# compiling every test's functions would take far longer than the checks.
os.environ.setdefault("S2SAD_BACKEND", "python")


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="run every generated case of tests/test_rule_table.py, not a sample of them, "
                          "and the random-program sweeps at their full size")
    parser.addoption("--rule-table-seed", default=None,
                     help="the seed that picks tests/test_rule_table.py's sample (default: "
                          "S2SAD_RULE_TABLE_SEED, else the day's number)")


def pytest_configure(config):
    import datetime
    if config.getoption("--full"):
        os.environ["S2SAD_FULL_SWEEPS"] = "1"   # read where the sweeps' sizes are set (at import)
    seed = config.getoption("--rule-table-seed") or os.environ.get("S2SAD_RULE_TABLE_SEED")
    config.rule_table_seed = int(seed) if seed is not None else datetime.date.today().toordinal()


def pytest_report_header(config):
    mode = "every case (--full)" if config.getoption("--full") else f"a sample, seed {config.rule_table_seed}"
    return f"rule table: {mode}"


@pytest.fixture
def cdir(tmp_path, monkeypatch):
    """A fresh, empty disk cache of s2sad's for the test (S2SAD_CACHE_DIR), on."""
    from s2sad import cache
    d = tmp_path / "cache"
    monkeypatch.setenv("S2SAD_CACHE_DIR", str(d))
    monkeypatch.delenv("S2SAD_CACHE", raising=False)
    cache._warned.clear()
    return d
