"""What every PyTorch reference step in this folder prints, in the form ``jaxgan bench
--vs-torch`` parses (`jaxgan.bench.reference.torch_run`): the models' parameter counts, then
the steps per second after a warm-up. torch is the references' dependency, not jaxgan's."""

import time


def count(module) -> int:
    """Parameters of a torch module."""
    return sum(p.numel() for p in module.parameters())


def print_params(g, d) -> None:
    print(f"params_g={count(g)} params_d={count(d)}", flush=True)


def print_steps_per_s(step, steps: int, warmup: int) -> None:
    """Runs ``step`` ``warmup`` times (allocator and oneDNN primitive caches), then times
    ``steps`` more. Fixed-point digits: the parser reads ``[\\d.]+``, no exponent."""
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"steps_per_s={steps / (time.perf_counter() - t):.4f}")
