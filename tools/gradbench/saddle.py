"""GradBench eval `saddle`: needs nested AD (a gradient inside the objective).
Not implemented while s2sad cannot differentiate a call to grad; see NEEDS.md."""

import nested

F = {}
FUNCTIONS = {}


def define():
    nested.probe("saddle")
