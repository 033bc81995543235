"""Checks what `sam build` produced runs on its own: each function imports its handler with
nothing but the built layer on the path (run with `python -S`, so no site-packages can hide a
dependency missing from layers/portdocs/requirements.txt), and the layer's schemas load; and that
the layer is built for Lambda's runtime (layers/portdocs/Makefile), not for this machine: every
wheel pure Python or for CPython on aarch64 Linux, every compiled module an aarch64 ELF for that
CPython."""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
from pathlib import Path

BUILD = Path(".aws-sam/build")
LAYER_MAKEFILE = Path("layers/portdocs/Makefile")
TEMPLATE = Path("template.yaml")
ELF_MACHINE_AARCH64 = 183


def functions() -> list[str]:
    """Every function template.yaml declares (read as text: `-S` leaves no YAML parser here)."""
    declared = re.findall(
        r"^  (\w+):\n    Type: AWS::Serverless::Function$", TEMPLATE.read_text(), re.MULTILINE
    )
    assert declared, f"{TEMPLATE} declares no function"
    return declared


def lambda_python() -> str:
    """The runtime's Python version ("3.13"), as the layer's Makefile builds for it."""
    match = re.search(r"^LAMBDA_PYTHON := (\d+\.\d+)$", LAYER_MAKEFILE.read_text(), re.MULTILINE)
    assert match, f"{LAYER_MAKEFILE} names no LAMBDA_PYTHON"
    return match.group(1)


def check_platform(layer: Path) -> None:
    cpython = "cp" + lambda_python().replace(".", "")
    for wheel in layer.glob("*.dist-info/WHEEL"):
        for tag in re.findall(r"^Tag: (\S+)$", wheel.read_text(), re.MULTILINE):
            interpreter, abi, platform = tag.split("-")
            pure = platform == "any" and abi == "none" and interpreter.startswith("py")
            # A stable-ABI wheel (cp3X-abi3) runs on every CPython from 3.X on (cryptography's).
            stable_abi = (
                abi == "abi3" and interpreter.startswith("cp3") and int(interpreter[3:]) <= int(cpython[3:])
            )
            for_lambda = platform.endswith("_aarch64") and (interpreter == cpython or stable_abi)
            assert pure or for_lambda, (
                f"{wheel.parent.name} is built for {tag}, not for Lambda ({cpython}, aarch64)"
            )
    suffix = f".cpython-{lambda_python().replace('.', '')}-aarch64-linux-gnu.so"
    for module in layer.rglob("*.so"):
        header = module.read_bytes()[:20]
        machine = int.from_bytes(header[18:20], "little")
        assert header[:4] == b"\x7fELF" and machine == ELF_MACHINE_AARCH64, f"{module} is not an aarch64 ELF"
        assert module.name.endswith((suffix, ".abi3.so")), f"{module} is not built for {suffix} or abi3"


def check_worker_imports(layer: Path) -> None:
    """The file checker's worker (portdocs/file_check_worker.py) runs in a process of its own and
    imports libraries no handler does, some compiled for aarch64 (so not importable here): every
    module it imports at its top is checked to be in the layer, and Pillow's and pi-heif's
    compiled cores with them."""
    worker = layer / "portdocs" / "file_check_worker.py"
    tree = ast.parse(worker.read_text())
    imported = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    for module in sorted({name.split(".")[0] for name in imported} - set(sys.stdlib_module_names)):
        found = (layer / module).is_dir() or (layer / f"{module}.py").is_file()
        assert found, f"{worker.name} imports {module}, which the layer does not have"
    for core in ("PIL/_imaging.*.so", "_pi_heif.*.so"):
        assert list(layer.glob(core)), f"the layer has no {core}"


def main() -> None:
    sys.path[:0] = [str(BUILD / "PortdocsLayer" / "python")]
    for function in functions():
        sys.path.insert(0, str(BUILD / function))
        sys.modules.pop("app", None)
        handler = importlib.import_module("app").lambda_handler
        assert callable(handler), function
        sys.path.pop(0)
    from portdocs.messages import parse_association_message, parse_intake_message

    for event, parse in (
        ("intake-upload-request.json", parse_intake_message),
        ("association-request.json", parse_association_message),
    ):
        parse(json.loads(Path("events", event).read_text())["Records"][0]["body"])
    layer = BUILD / "PortdocsLayer" / "python"
    # The receiver's Ed25519 check needs cryptography's compiled core, which `-S` above cannot
    # load (it is built for aarch64): that it is in the layer at all is checked here.
    assert list(layer.glob("cryptography/hazmat/bindings/_rust*.so")), "the layer has no cryptography"
    check_worker_imports(layer)
    retired = sorted(p.name for p in layer.glob("aws_xray_sdk*"))
    assert not retired, f"the layer ships the retired AWS X-Ray SDK: {retired}"
    check_platform(layer)
    print(
        "built functions import their handlers from the layer alone; schemas load; the file "
        "checker's libraries are there; no X-Ray SDK; "
        f"every wheel and compiled module is for CPython {lambda_python()} on aarch64"
    )


if __name__ == "__main__":
    main()
