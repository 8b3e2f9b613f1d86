"""Codegen: the driver of the pipeline, and the modules it writes.

`compiler` runs frontend -> normalize -> analysis -> transform for one function
and one argument signature and collects the generated functions (the user's
helpers and their derivatives too) into one module; `standalone` writes such a
module as a file that runs without s2sad (the CLI's `emit`). Next: a backend
(s2sad.backends) runs the module; s2sad.api is what users call.
"""
