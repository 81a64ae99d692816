"""AlignGAN's wiring tests against deliberate bugs: which tests fail under each breakage.

Copies ``src/`` to a temporary folder, applies one source edit per breakage (the issue's
list: fake infrared detached from the task losses, the joint discriminator's wrong-identity
pairs drawn from the same identity, ``G_rgb2ir`` replaced by the identity map, visible and
infrared batches of different identities), runs ``tests/training/test_aligngan_learning.py``
against that copy and prints the tests that failed. A breakage no test catches is printed as
``NOT CAUGHT`` and makes the script exit 1. Every edit must still apply to the current source
(the script stops naming the file otherwise). About 10-60 s per run on 2 cores.

Run: ``.venv/bin/python benchmarks/aligngan_breakages.py [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/training/test_aligngan_learning.py"
STEPS = "rgbir_reid/training/aligngan_steps.py"
DATA = "rgbir_reid/training/aligngan_data.py"

# name -> [(file under src/, old text, new text)]
BREAKAGES = {
    "fake infrared detached from the task losses": [
        (STEPS, "fake_feat = fwd(model.encode, fake_ir)\n            _, _, real_emb",
         "fake_feat = fwd(model.encode, fake_ir.detach())\n            _, _, real_emb"),
    ],
    "wrong-identity pairs of the joint D drawn from the same identity": [
        (STEPS, "fake_ir, fake_feat, s.gan_instances)", "fake_ir, fake_feat, 1)"),
    ],
    "G_rgb2ir replaced by the identity map": [
        (STEPS, "fake_ir = fwd(model.G_rgb2ir, rgb)", "fake_ir = rgb"),
        (STEPS, "lambda x: fwd(model.G_rgb2ir, x)", "lambda x: x"),
    ],
    "visible and infrared batches of different identities": [
        (DATA, "for i in ids]", "for i in (ids if modality == 0 else np.roll(ids, 1))]"),
    ],
}


def run_tests(src: Path) -> tuple[int, list[str]]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
                          cwd=REPO, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"FAILED \S+::(\w+)", proc.stdout)))
    return proc.returncode, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these breakages (names as printed)")
    args = parser.parse_args()
    names = [n for n in BREAKAGES if not args.only or n in args.only]
    uncaught = []
    with tempfile.TemporaryDirectory() as tmp:
        code, failed = run_tests(REPO / "src")
        print(f"healthy source: {'all tests pass' if code == 0 else 'FAILED ' + ', '.join(failed)}", flush=True)
        if code != 0:
            sys.exit(1)
        for name in names:
            src = Path(tmp) / "src"
            shutil.rmtree(src, ignore_errors=True)
            shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            for rel, old, new in BREAKAGES[name]:
                path = src / rel
                text = path.read_text()
                if text.count(old) != 1:
                    sys.exit(f"{rel}: the edit for {name!r} no longer applies ({old!r} found {text.count(old)} times)")
                path.write_text(text.replace(old, new))
            code, failed = run_tests(src)
            if code == 0:
                uncaught.append(name)
            print(f"{name}: {'NOT CAUGHT' if code == 0 else 'failed ' + ', '.join(failed)}", flush=True)
    sys.exit(1 if uncaught else 0)


if __name__ == "__main__":
    main()
