"""
Model signatures: Ed25519 over a student's ONNX file and its metadata JSON together.

A deployment has its own key pair: the private key signs models where they are trained, the
robot holds only the public key (docs/deployment.md). The signature is a detached JSON file
beside the model, `student.onnx.sig`:

    {"format": "softmaint-model-signature", "version": 1, "algorithm": "ed25519",
     "key_id": ..., "model": {"bytes": ..., "sha256": ...},
     "metadata": {"bytes": ..., "sha256": ...}, "signature": <base64>}

What is signed is that manifest without its `signature`, as canonical JSON behind a fixed
domain tag, and why:

* the ONNX file and its metadata are signed as one statement, so neither can be swapped: the
  metadata decides how the outputs are read (calibration, conformal thresholds, input spec),
  and a graph paired with another model's metadata is as wrong as an altered graph;
* sizes and SHA-256 digests rather than the raw bytes: once the signature proves the manifest
  authentic, comparing it with the files says exactly what changed (truncated or altered,
  graph or metadata), which is what an operator needs to know;
* the domain tag and version keep a model signature from meaning anything else made with the
  same key, and let the format change;
* file names are not signed: a model renamed for a field update (student-v2.onnx) still
  verifies. A signature says who released a model, not that it is the newest one: an older
  signed model verifies too, until the key that signed it is rotated out.
"""
import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Tuple

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from .metadata import metadata_path, ModelMetadata, sha256_file

FORMAT = 'softmaint-model-signature'
VERSION = 1
DOMAIN_TAG = b'softmaint-model-signature v1\n'
SIGNATURE_SUFFIX = '.sig'
PRIVATE_SUFFIX, PUBLIC_SUFFIX = '.key.pem', '.pub.pem'
# The committed development key (config/keys/softmaint_dev.pub.pem): its private half is in the
# repository too, so a robot trusting it accepts models signed by anyone.
DEVELOPMENT_KEY_ID = 'a8c7ff9b82d09f98'


class SignatureError(ValueError):
    """A model that is not signed by the trusted key as it is now, or an unusable key file."""


class UnsignedModelError(SignatureError):
    """A model without a signature file."""


class KeyFiles(NamedTuple):
    """A key pair on disk."""

    private: Path
    public: Path


def signature_path(model_path) -> Path:
    """Detached signature of a model: its file name plus .sig (student.onnx.sig)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + SIGNATURE_SUFFIX)


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(folder, name: str) -> KeyFiles:
    """Write NAME.key.pem (mode 0600) and NAME.pub.pem into folder; never overwrite a file."""
    folder = Path(folder)
    files = KeyFiles(folder / (name + PRIVATE_SUFFIX), folder / (name + PUBLIC_SUFFIX))
    existing = [str(path) for path in files if path.exists()]
    if existing:
        raise FileExistsError(f'{" and ".join(existing)} exist already: keys are never '
                              'overwritten (move them away first if you mean to replace them)')
    folder.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    _write_new(files.private, private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    _write_new(files.public, private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return files


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create path with mode (no moment with wider permissions); fail if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, 'wb') as stream:
        stream.write(data)


def load_private_key(path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key (PEM); raise SignatureError saying what is wrong."""
    key = _load_pem(path, serialization.load_pem_private_key, 'private', password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f'private key {path} is not an Ed25519 key')
    return key


def load_public_key(path) -> Ed25519PublicKey:
    """Read an Ed25519 public key (PEM); raise SignatureError saying what is wrong."""
    key = _load_pem(path, serialization.load_pem_public_key, 'public')
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f'public key {path} is not an Ed25519 key')
    return key


def _load_pem(path, loader, kind: str, **kwargs):
    if not str(path):
        raise SignatureError(f'no {kind} key file given')
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SignatureError(f'cannot read the {kind} key {path}: {err.strerror}') from err
    try:
        return loader(data, **kwargs)
    # TypeError: a key encrypted with a passphrase; UnsupportedAlgorithm: e.g. an EC curve
    # the cryptography build lacks
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise SignatureError(f'{path} is not an unencrypted {kind} key in PEM: {err}') from err


def _file_entry(path: Path) -> dict:
    return {'bytes': path.stat().st_size, 'sha256': sha256_file(path)}


def _signed_bytes(manifest: dict) -> bytes:
    """Return the bytes the signature covers: the domain tag, then canonical JSON."""
    return DOMAIN_TAG + json.dumps(manifest, sort_keys=True, separators=(',', ':')).encode()


def sign_model(model_path, private_key: Ed25519PrivateKey) -> Path:
    """Sign a model and its metadata JSON; write (or replace) the signature file, return it."""
    model_path = Path(model_path)
    meta_path = metadata_path(model_path)
    for path in (model_path, meta_path):
        if not path.is_file():
            raise SignatureError(f'cannot sign: {path} not found (a model is signed together '
                                 'with the metadata JSON beside it)')
    manifest = {'format': FORMAT, 'version': VERSION, 'algorithm': 'ed25519',
                'key_id': key_id(private_key.public_key()),
                'model': _file_entry(model_path), 'metadata': _file_entry(meta_path)}
    manifest['signature'] = base64.b64encode(
        private_key.sign(_signed_bytes(manifest))).decode('ascii')
    path = signature_path(model_path)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + '\n')
    return path


def _read_signature(path: Path) -> Tuple[dict, bytes]:
    """Parse a signature file into (manifest without signature, signature bytes)."""
    try:
        manifest = json.loads(path.read_bytes())
        if manifest.get('format') != FORMAT or manifest.get('version') != VERSION:
            raise ValueError(f'not a {FORMAT} version {VERSION}')
        if manifest.get('algorithm') != 'ed25519':
            raise ValueError(f'algorithm {manifest.get("algorithm")!r} is not ed25519')
        signature = base64.b64decode(manifest.pop('signature'), validate=True)
        for part in ('model', 'metadata'):
            entry = manifest[part]
            if not (isinstance(entry['bytes'], int) and isinstance(entry['sha256'], str)):
                raise ValueError(f'{part} needs integer bytes and a sha256 string')
        if not isinstance(manifest['key_id'], str):
            raise ValueError('key_id is not a string')
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as err:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SignatureError(f'signature file {path.name} is unreadable ({err}): sign the model '
                             'again with softmaint-sign sign') from err
    return manifest, signature


def verify_model(model_path, public_key: Ed25519PublicKey,
                 contents: Optional[Tuple[bytes, bytes]] = None) -> str:
    """
    Check that the model and its metadata are exactly what the holder of the key signed.

    Return the key id; raise UnsignedModelError without a signature file, SignatureError (the
    message says what is wrong and what to do) when it was signed with another key, the
    signature does not verify, or either file changed since signing. `contents` are the
    model's and the metadata's bytes as the caller read them (and will use them): those are
    checked instead of the files, so nothing can swap a file between the check and its use.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise SignatureError(f'model file {model_path} not found')
    path = signature_path(model_path)
    if not path.is_file():
        raise UnsignedModelError(
            f'{model_path.name} is unsigned: no signature file {path}: sign it with '
            f'softmaint-sign sign {model_path} --key PRIVATE.pem (the deployment key)')
    manifest, signature = _read_signature(path)
    trusted = key_id(public_key)
    if manifest['key_id'] != trusted:
        raise SignatureError(
            f'{model_path.name} was signed with key {manifest["key_id"]}, but this robot trusts '
            f'key {trusted}: sign it with this deployment key, or trust the key that signed '
            'it (model_public_key)')
    try:
        public_key.verify(signature, _signed_bytes(manifest))
    except InvalidSignature:
        raise SignatureError(
            f'the signature in {path.name} does not verify against key {trusted}: the '
            'signature file was altered or forged; do not use this model') from None
    files = (model_path, metadata_path(model_path))
    for part, file, data in zip(('model', 'metadata'), files, contents or (None, None)):
        if data is None:
            data = _read_signed(file)
        _check_bytes(file.name, data, manifest[part])
    return trusted


def _read_signed(path: Path) -> bytes:
    """Bytes of a file the signature covers; SignatureError when it is missing."""
    if not path.is_file():
        raise SignatureError(f'{path} not found: the signature covers the model and the '
                             'metadata JSON beside it')
    return path.read_bytes()


def _check_bytes(name: str, data: bytes, signed: dict) -> None:
    """Compare a file's bytes with its entry in a verified manifest."""
    size = len(data)
    if size < signed['bytes']:
        raise SignatureError(f'{name} is truncated or altered: {size} of '
                             f'{signed["bytes"]} signed bytes (an incomplete copy?): copy the '
                             'signed file again')
    actual = hashlib.sha256(data).hexdigest()
    if size != signed['bytes'] or actual != signed['sha256']:
        raise SignatureError(
            f'{name} was altered after signing ({size} bytes, SHA-256 {actual[:12]}…; '
            f'signed: {signed["bytes"]} bytes, SHA-256 {signed["sha256"][:12]}…): restore the '
            'signed file, or sign the new one')


def add_to_card(path: Path, metrics: Dict[str, float],
                private_key: Optional[Ed25519PrivateKey]) -> ModelMetadata:
    """Add figures to an exported model's metadata (its model card) and sign it again."""
    path = Path(path)
    meta = ModelMetadata.from_json(metadata_path(path).read_text())
    meta.metrics.update({k: float(v) for k, v in metrics.items()})
    metadata_path(path).write_text(meta.to_json() + '\n')
    sign_export(path, private_key)
    return meta


def sign_export(path: Path, private_key: Optional[Ed25519PrivateKey]) -> Optional[str]:
    """
    Sign an exported model and its metadata; return the key id, or None when left unsigned.

    An unsigned export removes the signature file of the model it replaced: that one no longer
    matches, and the robot would report the new model as altered instead of unsigned.
    """
    if private_key is None:
        signature_path(path).unlink(missing_ok=True)
        return None
    sign_model(path, private_key)
    return key_id(private_key.public_key())
