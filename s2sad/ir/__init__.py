"""The intermediate representation every stage shares.

Code is a gast tree (Python's own AST, version-neutral) all the way through;
`types` gives values their abstract types (scalar or array of a kind and rank,
tuple, other object), `emit` prints a tree as the readable Python source users
see, `nested` is where the user API declares the transforms that may appear
inside differentiated code, and `meta` declares the information one stage
notes on a node for a later one (what a call calls, the reverse sweep's
markers), one dataclass per kind; `names` answers which names a piece of code
mentions or binds. Nothing here imports another s2sad package.
"""
