"""Checks what `sam build` produced runs on its own: each function imports its handler with
nothing but the built layer on the path (run with `python -S`, so no site-packages can hide a
dependency missing from layers/portdocs/requirements.txt), and the layer's schemas load."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

BUILD = Path(".aws-sam/build")


def main() -> None:
    sys.path[:0] = [str(BUILD / "PortdocsLayer" / "python")]
    for function in ("UploaderFunction", "AssociatorFunction"):
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
    retired = sorted(p.name for p in layer.glob("aws_xray_sdk*"))
    assert not retired, f"the layer ships the retired AWS X-Ray SDK: {retired}"
    print("built functions import their handlers from the layer alone; schemas load; no X-Ray SDK")


if __name__ == "__main__":
    main()
