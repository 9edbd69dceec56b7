"""Tampered copies of a signed model: the ways a model can reach a robot other than as signed."""
import json
from pathlib import Path
import shutil
from typing import Dict, Tuple


def tampered_models(signed: Path, root: Path) -> Dict[str, Tuple[Path, str]]:
    """
    Copy the signed model with its metadata and signature into root/CASE/ and tamper with each.

    Return CASE -> (model path, regular expression the refusal must match).
    """
    from softmaint_core.metadata import metadata_path
    from softmaint_core.signing import generate_keypair, load_private_key, sign_model
    from softmaint_core.signing import signature_path
    cases = {}

    def copy(case: str, reason: str) -> Path:
        folder = root / case
        folder.mkdir(parents=True)
        model = folder / signed.name
        for source, target in ((signed, model), (metadata_path(signed), metadata_path(model)),
                               (signature_path(signed), signature_path(model))):
            shutil.copyfile(source, target)
        cases[case] = (model, reason)
        return model

    signature_path(copy('unsigned', r'is unsigned: no signature file .*\.sig: sign it with '
                        'softmaint-sign sign')).unlink()
    stranger = load_private_key(generate_keypair(root / 'stranger', 'stranger').private)
    sign_model(copy('another_key', r'was signed with key [0-9a-f]{16}, but this robot trusts '
                    r'key [0-9a-f]{16}'), stranger)
    model = copy('truncated', r'is truncated or altered: \d+ of \d+ signed bytes')
    model.write_bytes(model.read_bytes()[:model.stat().st_size // 2])
    model = copy('altered', r'was altered after signing \(\d+ bytes, SHA-256')
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01                    # one bit of one weight
    model.write_bytes(bytes(data))
    model = copy('altered_metadata', r'\.json was altered after signing')
    meta = json.loads(metadata_path(model).read_text())
    meta['conformal_damage'] = 0.999                # a valid file that reads outputs differently
    metadata_path(model).write_text(json.dumps(meta, indent=2, sort_keys=True) + '\n')
    signature_path(copy('garbage_signature', r'signature file .*\.sig is unreadable')
                   ).write_bytes(b'\x89 not a signature')
    return cases
