#!/usr/bin/env python3
"""s2sad as a GradBench tool: JSON messages on stdin, one JSON response per line on stdout.

    python3 tools/gradbench/run.py

start -> {"id", "tool": "s2sad"}; define -> {"id", "success", "error"?, "timings"};
evaluate -> {"id", "success", "output", "timings": [{"name": "evaluate", "nanoseconds"}...]};
anything else (analysis, unknown kinds) -> {"id"}.
"""

import importlib
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import common  # noqa: E402

EVALS = ("hello", "lse", "llsq", "gmm", "kmeans", "ode", "lstm", "det",
         "ba", "ht", "particle", "saddle")

_defined = {}   # module name -> (module or None, error or None)


def define(name):
    if name in _defined:
        return _defined[name]
    if name not in EVALS:
        _defined[name] = (None, "not implemented")
        return _defined[name]
    try:
        mod = importlib.import_module(name)
        mod.define()
        _defined[name] = (mod, None)
    except common.Unsupported as e:
        _defined[name] = (None, str(e))
    except Exception as e:  # noqa: BLE001
        _defined[name] = (None, "".join(traceback.format_exception(e)))
    return _defined[name]


def handle(msg):
    kind = msg.get("kind")
    resp = {"id": msg.get("id")}
    if kind == "start":
        resp["tool"] = "s2sad"
    elif kind == "define":
        t0 = time.perf_counter_ns()
        mod, err = define(msg["module"])
        t1 = time.perf_counter_ns()
        resp["success"] = err is None
        if err is not None:
            resp["error"] = err
        else:
            resp["timings"] = [{"name": "compile", "nanoseconds": t1 - t0}]
    elif kind == "evaluate":
        try:
            mod, err = define(msg["module"])
            if err is not None:
                raise RuntimeError(f"module {msg['module']} is not defined: {err}")
            if msg["function"] not in mod.FUNCTIONS:
                raise RuntimeError(f"no function {msg['function']!r} in module {msg['module']}")
            prepare, key, post = mod.FUNCTIONS[msg["function"]]
            inp = msg["input"]
            args = prepare(inp)
            if post is getattr(mod, "_post_jacobian_for", None):
                post = post(inp)
            result, timings = common.multiple_runs(mod.F[key], args, inp)
            resp["success"] = True
            resp["output"] = post(result)
            resp["timings"] = timings
        except Exception as e:  # noqa: BLE001
            resp["success"] = False
            resp["error"] = "".join(traceback.format_exception(e))
    return resp


def main():
    out = sys.stdout
    # Anything a compiler prints must not corrupt the protocol stream.
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        resp = handle(json.loads(line))
        out.write(json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
