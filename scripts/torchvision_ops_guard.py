"""Make PyPI's torchvision import beside the CPU torch (the vLLM CPU venv, `make vllm-env`).

PyPI carries torchvision for Linux only as CUDA builds: their C ops (`torchvision/_C.so`)
need torch's CUDA libraries and do not load beside torch's CPU build. torchvision is made to
run without them (`torchvision.extension._has_ops()` is then False, and every meta kernel in
`_meta_registrations.py` is registered only when it is True), except two fake kernels, for
`nms` and `qnms`, registered unconditionally: `import torchvision` then fails with "operator
torchvision::nms does not exist". transformers' Qwen2-VL image processor, which vLLM imports,
needs only torchvision's Python transforms. This script puts the same `_has_ops()` check on
those two registrations, in the given venv's copy, and checks the import; run it again and it
changes nothing.

    python scripts/torchvision_ops_guard.py .venv-vllm
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GUARD = "(torch.library.register_fake({op}) if torchvision.extension._has_ops() else (lambda f: f))"
OPS = ('"torchvision::nms"', '"torchvision::qnms"')


def guard(source: str) -> str:
    for op in OPS:
        source = source.replace(f"@torch.library.register_fake({op})", "@" + GUARD.format(op=op))
    return source


def main(venv: str) -> int:
    python = Path(venv) / "bin" / "python"
    found = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('torchvision').submodule_search_locations[0])"],
                           capture_output=True, text=True, timeout=120, check=True)
    target = Path(found.stdout.strip()) / "_meta_registrations.py"
    source = target.read_text("utf-8")
    guarded = guard(source)
    if guarded != source:
        target.write_text(guarded, "utf-8")
    check = subprocess.run([str(python), "-c", "import torchvision.transforms.v2.functional"],
                           capture_output=True, text=True, timeout=300)
    if check.returncode != 0:
        print(f"torchvision still fails to import in {venv}:\n{check.stderr[-2000:]}",
              file=sys.stderr)
        return 1
    print(f"{target}: {'guarded' if guarded != source else 'already guarded'}; imports")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
