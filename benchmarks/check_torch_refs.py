"""Shows that the project's PyTorch references are the models of ``../shared/bench``: their
parameter counts, module by module, are equal. Run with a python that has torch:

    PYTHON benchmarks/check_torch_refs.py [--shared ../shared/bench]

Prints one line per model and exits non-zero on any difference. (``jaxgan bench --vs-torch``
also checks each reference's counts against jaxgan's own networks at every run.)
"""

import argparse
import importlib.util
import sys
from pathlib import Path

from torch_timing import count  # this folder

HERE = Path(__file__).resolve().parent


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"ref_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "bench"))
    a = p.parse_args()
    shared = Path(a.shared)
    theirs_lsgan, ours_lsgan = load(shared / "torch_lsgan.py"), load(HERE / "torch_lsgan.py")
    theirs_ring, ours_ring = load(shared / "torch_ring.py"), load(HERE / "torch_ring.py")
    pairs = {
        "lsgan G": (theirs_lsgan.G(), ours_lsgan.Generator()),
        "lsgan D": (theirs_lsgan.D(), ours_lsgan.Discriminator()),
        "cgan mlp G": (theirs_lsgan.GM(), ours_lsgan.MLPGenerator()),
        "cgan mlp D": (theirs_lsgan.DM(), ours_lsgan.MLPDiscriminator()),
        "ring8 G": (theirs_ring.mlp(256, 2), ours_ring.mlp(256, 2)),
        "ring8 D": (theirs_ring.mlp(2, 1), ours_ring.mlp(2, 1)),
    }
    bad = 0
    for name, (theirs, ours) in pairs.items():
        shapes = [tuple(q.shape) for q in theirs.parameters()]
        same = shapes == [tuple(q.shape) for q in ours.parameters()]
        bad += not same
        print(f"{name:11s} ../shared/bench {count(theirs):>10,}  benchmarks/ {count(ours):>10,}  "
              f"{'same layers' if same else 'DIFFERENT'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
