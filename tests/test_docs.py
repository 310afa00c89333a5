"""The documentation matches the code: every public name is in docs/api.md, every doc the
README points to exists, and the README gives the test command that .ci/run runs."""

import pathlib
import re

import pyengine as pe

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_public_name_is_in_the_api_docs():
    api = (ROOT / "docs" / "api.md").read_text()
    missing = [n for n in pe.__all__ if n != "__version__" and f"`{n}`" not in api]
    assert not missing, f"add these to docs/api.md: {missing}"


def test_readme_links_point_to_existing_docs():
    readme = (ROOT / "README.md").read_text()
    for doc in set(re.findall(r"docs/[\w.]+\.md", readme)):
        assert (ROOT / doc).exists(), doc


def test_readme_gives_the_ci_test_command():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("<!-- test-command -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0].strip()
    assert "pytest" in command and "pip install" in command


def test_the_readme_tour_runs_as_it_stands(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("<!-- tour -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(tour, "README.md (tour)", "exec"), {"__name__": "tour"})
    assert (tmp_path / "tour-out" / "index.html").is_file()
