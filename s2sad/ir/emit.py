"""Emit: gast trees -> readable Python source.

A comment in generated code (the user's source line the statements below it
come from) is a statement of its own, made by `comment`: a string constant
with a marker, printed as `# ...`.
"""

import re

import astor
import astor.source_repr
import gast

_MARK = "__s2sad_comment__:"


def comment(text, like=None):
    """A statement that prints as `# text`."""
    node = gast.Expr(value=gast.Constant(value=_MARK + text, kind=None))
    if like is not None:
        gast.copy_location(node, like)
    return node


def comment_text(s):
    """The text of a comment statement (made by `comment`), or None for any other statement."""
    if isinstance(s, gast.Expr) and isinstance(s.value, gast.Constant) and isinstance(s.value.value, str) \
            and s.value.value.startswith(_MARK):
        return s.value.value
    return None


LINE = 120  # columns: astor breaks a longer line (inside its parentheses)


def _pretty(source):
    return "".join(astor.source_repr.split_lines(source, maxline=LINE))


def to_source(node):
    tree = gast.gast_to_ast(gast.fix_missing_locations(node))
    text = astor.to_source(tree, pretty_source=_pretty)
    return re.sub(r"""^(\s*)('\'\'|\"\"\"|'|")%s(.*?)\2$""" % re.escape(_MARK), _uncomment, text, flags=re.M)


def _uncomment(match):
    body = match.group(3).replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
    return f"{match.group(1)}# {body}"
