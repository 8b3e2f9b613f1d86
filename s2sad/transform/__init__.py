"""Transform: normalized, analyzed code -> derivative code.

In: a normalized FunctionDef and its `Analysis` (s2sad.analysis).
Out: a FunctionDef of the derivative, made of rules (s2sad.rules) expanded in
place: `reverse` (adjoint code, `f_vjp(*params, _out_bar) -> (out, grads)`)
or `forward` (tangent code, `f_jvp(*params, *param_dots) -> (out, out_dot)`).
Higher orders transform generated code again. Next: `s2sad.optimize`.
"""
