"""README.md and docs/*.md say what is true: the README's code prints what its comments show,
every relative link leads to a file, and the docs read as a reference, not a diary.

The README's ```python blocks run in a subprocess with S2SAD_BACKEND=python (PYTHONPATH at the
repository root, a private S2SAD_CACHE_DIR). A `print(...)` whose trailing comment is a value
(digits, signs, points, commas, brackets: `# 42.0 1.0`, `# (4.0, 3.0)`) must print that value;
a comment in words (`# the generated Python`) is not checked. Each print is matched to the
output of its own line by a wrapper around `print` that records the caller's line number.
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DOCS = os.path.join(ROOT, "docs")

PY_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
VALUE_COMMENT = re.compile(r"^\s*print\(.*\)\s*#\s*(?P<want>[-+0-9.eE(),\[\]\s]*\d[-+0-9.eE(),\[\]\s]*)$")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

# Runs the block with `print` recording (line in the block, text printed) into a JSON file.
RUNNER = """\
import builtins, json, runpy, sys
block, record = sys.argv[1], sys.argv[2]
printed = []
_print = builtins.print
def recording_print(*args, sep=" ", end="\\n", file=None, flush=False):
    frame = sys._getframe(1)
    if frame.f_code.co_filename == block and file is None:
        printed.append((frame.f_lineno, sep.join(str(a) for a in args)))
    _print(*args, sep=sep, end=end, file=file, flush=flush)
builtins.print = recording_print
try:
    runpy.run_path(block, run_name="__main__")
finally:
    with open(record, "w") as f:
        json.dump(printed, f)
"""


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def readme_blocks():
    return PY_BLOCK.findall(read(README))


def expected_prints(code):
    """{line number in the block: the value its comment shows}."""
    out = {}
    for k, line in enumerate(code.splitlines(), start=1):
        m = VALUE_COMMENT.match(line)
        if m:
            out[k] = m.group("want").strip()
    return out


def same_value(got, want):
    """Same text once numbers are compared as numbers (to 1e-12) and spaces are ignored."""
    skeleton = lambda s: re.sub(r"\s+", "", NUMBER.sub("N", s))
    if skeleton(got) != skeleton(want):
        return False
    return all(abs(float(g) - float(w)) <= 1e-12 * max(1.0, abs(float(w)))
               for g, w in zip(NUMBER.findall(got), NUMBER.findall(want)))


def test_the_readme_shows_expected_output_in_comments():
    assert any(expected_prints(code) for code in readme_blocks())


@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_code_prints_what_its_comments_show(index, tmp_path):
    code = readme_blocks()[index]
    block = tmp_path / f"readme_block_{index}.py"
    block.write_text(code, encoding="utf-8")
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER, encoding="utf-8")
    record = tmp_path / "printed.json"
    env = dict(os.environ, S2SAD_BACKEND="python", S2SAD_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, str(runner), str(block), str(record)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"README block {index} failed:\n{run.stdout}\n{run.stderr}"
    printed = {}
    for line, text in json.loads(record.read_text(encoding="utf-8")):
        printed.setdefault(line, []).append(text)
    for line, want in expected_prints(code).items():
        got = printed.get(line)
        assert got is not None, f"README block {index}, line {line}: printed nothing, comment shows {want!r}"
        assert len(got) == 1 and same_value(got[0], want), \
            f"README block {index}, line {line}: printed {got!r}, comment shows {want!r}"


def test_readme_commands_name_what_exists():
    text = read(README)
    assert ".venv/bin/python examples/demo.py" in text
    assert ".venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q" in text
    assert os.path.isfile(os.path.join(ROOT, "examples", "demo.py"))
    assert re.search(r"^test\s*=", read(os.path.join(ROOT, "pyproject.toml")), re.M)


# ---- links ----------------------------------------------------------------------------------

MARKDOWN = [README] + sorted(os.path.join(DOCS, f) for f in os.listdir(DOCS) if f.endswith(".md"))
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text):
    """The text without fenced code blocks and inline code spans (a link there is not a link)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(path):
    for target in LINK.findall(prose(read(path))):
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, https:, mailto:, an anchor in the same file
        yield target.split("#", 1)[0]


def test_the_docs_have_relative_links():
    assert sum(1 for p in MARKDOWN for _ in relative_links(p)) >= 10


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_points_to_an_existing_file(path):
    missing = [t for t in relative_links(path)
               if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), t)))]
    assert not missing, f"{os.path.relpath(path, ROOT)} links to missing files: {missing}"


# ---- a reference, not a diary ---------------------------------------------------------------

ORDINAL = r"(?:second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth)"
DIARY = [
    r"\bsessions?\b",                      # "the fifth session", "this session", "later session"
    r"\bthis issue\b", r"\bthe issue's\b", r"\bissue \d+\b",
    r"\bre-measured\b", r"\bre-run at the end\b",
    rf"\b{ORDINAL} run\b",                 # "a sixth run", "fifth run" ("first run" is plain English)
    r"\((?:fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth)\b",   # "(eleventh session, ...)"
    r"\blatest figures\b",
]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: os.path.relpath(p, ROOT))
def test_docs_read_as_a_reference_not_a_diary(path):
    text = read(path)
    found = []
    for pattern in DIARY:
        for m in re.finditer(pattern, text, re.I):
            line = text.count("\n", 0, m.start()) + 1
            found.append(f"line {line}: {m.group(0)!r}")
    assert not found, (f"{os.path.relpath(path, ROOT)} reads as a diary (history lives in git): "
                       + "; ".join(found))
