"""The intermediate representation every stage shares.

Code is a gast tree (Python's own AST, version-neutral) all the way through;
`types` gives values their abstract types (scalar or array of a kind and rank,
tuple, other object), `emit` prints a tree as the readable Python source users
see, and `nested` is where the user API declares the transforms that may appear
inside differentiated code. Nothing here imports another s2sad package.
"""
