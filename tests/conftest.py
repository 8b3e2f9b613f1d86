import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# The suite runs generated code as plain Python unless a test asks for Numba
# (tests/test_numba.py and others compile for real with backend="numba"):
# compiling every test's functions would take far longer than the checks.
os.environ.setdefault("S2SAD_BACKEND", "python")
