"""GradBench eval `ht`: not implemented in this tool yet (not attempted;
no missing s2sad feature is known for it)."""

from common import Unsupported

F = {}
FUNCTIONS = {}


def define():
    raise Unsupported("not implemented")
