"""Emit: gast trees -> readable Python source.

The comments of generated code come from node metadata (s2sad.ir.meta): a
statement's `Section` (the reverse sweep) and `Cites` (the user's source line
it comes from) print as `# ...` above the first of a run of statements that
carry the same one.
"""

import copy
import re

import astor
import astor.source_repr
import gast

from . import meta

_MARK = "__s2sad_comment__:"

LINE = 120  # columns: astor breaks a longer line (inside its parentheses)


def _pretty(source):
    return "".join(astor.source_repr.split_lines(source, maxline=LINE))


def to_source(node):
    tree = gast.gast_to_ast(gast.fix_missing_locations(_with_comments(node)))
    text = astor.to_source(tree, pretty_source=_pretty)
    return re.sub(r"""^(\s*)('\'\'|\"\"\"|'|")%s(.*?)\2$""" % re.escape(_MARK), _uncomment, text, flags=re.M)


def _with_comments(node):
    """A copy of `node` (sharing what it does not change) with a marked string statement, which
    to_source prints as a comment, above each statement whose Section or Cites differs from the
    last one printed in its block."""
    blocks = [f for f in ("body", "orelse", "finalbody") if isinstance(getattr(node, f, None), list)]
    if not blocks:
        return node
    node = copy.copy(node)
    for field in blocks:
        out, last = [], {}
        for s in getattr(node, field):
            for kind in (meta.Section, meta.Cites):
                info = meta.get(s, kind)
                if info is not None and info.text != last.get(kind):
                    out.append(gast.copy_location(gast.Expr(value=gast.Constant(value=_MARK + info.text, kind=None)),
                                                  s))
                    last[kind] = info.text
            out.append(_with_comments(s))
        setattr(node, field, out)
    return node


def _uncomment(match):
    body = match.group(3).replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
    return f"{match.group(1)}# {body}"
