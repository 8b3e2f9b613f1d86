"""Best-of-N wall-clock timing shared by the benchmark scripts."""

import time


def best(f, *args, repeat=5, warmup=True):
    """The shortest of `repeat` timed calls `f(*args)`, in seconds; one untimed call first when `warmup`."""
    if warmup:
        f(*args)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t0)
    return min(times)
