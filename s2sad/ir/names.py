"""The names a piece of code mentions: questions every stage that rewrites code asks."""

import gast


def names_in(node):
    """Every name `node` mentions (read or written, globals too)."""
    return {n.id for n in gast.walk(node) if isinstance(n, gast.Name)}


def mentions(node, v):
    """Does `node` mention the name v?"""
    return any(isinstance(n, gast.Name) and n.id == v for n in gast.walk(node))


def assigns(node, v):
    """Does `node` bind the name v (a target `v`, a loop variable `v`)?"""
    return any(isinstance(n, gast.Name) and n.id == v and isinstance(n.ctx, gast.Store) for n in gast.walk(node))
