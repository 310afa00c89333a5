"""Every docstring example in the installed package runs and prints what it shows.

The examples are collected from the imported modules (not from the source tree), so they
run against the package as installed: `--doctest-modules` over ``pyengine/`` would import
the source files a second time beside an installed copy."""

import doctest
import importlib
import pkgutil

import pytest

import pyengine

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(pyengine.__path__, "pyengine.")
    if not m.name.endswith("__main__") and ".tests" not in m.name
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for test in doctest.DocTestFinder().find(module, name):
        if test.examples:
            runner.run(test, out=failures.append, clear_globs=True)
    assert not failures, "".join(failures)
