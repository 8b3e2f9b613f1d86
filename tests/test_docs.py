"""docs/rules.md is generated from the rule registry and must match it."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_generator():
    path = os.path.join(ROOT, "tools", "gen_rules_doc.py")
    spec = importlib.util.spec_from_file_location("gen_rules_doc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rules_doc_is_up_to_date_with_the_registry():
    gen = load_generator()
    with open(os.path.join(ROOT, "docs", "rules.md"), encoding="utf-8") as f:
        committed = f.read()
    assert committed == gen.render(), "docs/rules.md is stale: run `python tools/gen_rules_doc.py`"


def test_rules_doc_names_every_registered_function():
    from s2sad import rules
    gen = load_generator()
    names = gen.names_by_key()
    assert set(gen.builtin_rules()) | set(rules.NONDIFF) <= set(names)
    text = gen.render()
    for expected in ("`np.sin`, `math.sin`", "x: `g * np.cos(x)`", "`np.sum`", "`s2sad.stop_gradient`"):
        assert expected in text
