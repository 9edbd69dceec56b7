#!/usr/bin/env python3
"""
Build-time check of the model baked into the robot image (docker/Dockerfile).

    verify_model.py MODEL.onnx MODEL_ID PUBLIC_KEY.pem

Exits 0 when MODEL.onnx and its metadata JSON carry a valid signature of PUBLIC_KEY.pem (the
key the robots trust, build argument MODEL_PUBLIC_KEY), the model matches its metadata (SHA-256,
valid metadata) and the metadata's model_id is MODEL_ID, the value the image's
`dev.softmaint.model-id` label gets. Otherwise it prints why and exits 1, which fails the build:
an image never carries a label that lies about its model, nor a model that the inference node
would refuse.
"""
import sys
from typing import List, Optional

from softmaint_core.metadata import load_verified, MetadataError
from softmaint_core.signing import load_public_key, verify_model


def check(model_path: str, model_id: str, public_key: str) -> str:
    """Return a confirmation line, or raise ValueError saying what does not match."""
    signer = verify_model(model_path, load_public_key(public_key))   # SignatureError: ValueError
    try:
        meta = load_verified(model_path)
    except MetadataError as err:
        raise ValueError(str(err)) from err
    if not model_id:
        raise ValueError(f'MODEL_ID is empty: build with --build-arg MODEL_ID={meta.model_id}')
    if meta.model_id != model_id:
        raise ValueError(f'MODEL_ID is {model_id!r} but {model_path} is {meta.model_id!r}')
    return f'model {meta.model_id} verified (sha256 {meta.sha256[:12]}, signed by key {signer})'


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: MODEL.onnx MODEL_ID PUBLIC_KEY.pem."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        print(check(*argv))
    except ValueError as err:
        print(f'verify_model: error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
