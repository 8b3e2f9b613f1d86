"""The user API: what `import s2sad` offers.

`transforms` (grad, value_and_grad, jvp, vjp, jacfwd, jacrev, hessian,
stop_gradient, source) specializes a function per argument signature through
s2sad.codegen and runs it on a backend; `checks` is check_grads, `vmap` maps a
derivative over a batch (`vmap_cuda` on the GPU), `display` shows generated code
in notebooks. Below it: codegen, backends, and the pipeline's stages.
"""
