"""Model signatures: a signed model verifies; every kind of tampering is refused, saying why."""
import json
from pathlib import Path
import shutil
import stat
import subprocess

import pytest
from softmaint_core.metadata import metadata_path
from softmaint_core.signing import (DEVELOPMENT_KEY_ID, generate_keypair, key_id,
                                    load_private_key, load_public_key, sign_model,
                                    signature_path, SignatureError, UnsignedModelError,
                                    verify_model)
from softmaint_core.student import ModelError, StudentModel

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / 'models' / 'student.onnx'


@pytest.fixture(scope='module')
def keys(tmp_path_factory):
    """Make the trusted pair and a stranger's pair."""
    folder = tmp_path_factory.mktemp('keys')
    return generate_keypair(folder, 'trusted'), generate_keypair(folder, 'stranger')


@pytest.fixture
def model(tmp_path, keys):
    """Copy the committed student and its metadata; sign them with the trusted key."""
    path = tmp_path / 'student.onnx'
    shutil.copyfile(COMMITTED, path)
    shutil.copyfile(metadata_path(COMMITTED), metadata_path(path))
    sign_model(path, load_private_key(keys[0].private))
    return path


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _recalibrate(path: Path) -> None:
    """Change the calibration in the metadata: still valid, read differently."""
    meta = json.loads(metadata_path(path).read_text())
    meta['temperature_damage'] /= 3       # as many digits: only the digest tells
    metadata_path(path).write_text(json.dumps(meta, indent=2, sort_keys=True) + '\n')


def _forge(path: Path) -> None:
    """Alter the model and write its new size and digest into the signature file."""
    from softmaint_core.metadata import sha256_file
    _flip_byte(path)
    sig = json.loads(signature_path(path).read_text())
    sig['model']['sha256'] = sha256_file(path)
    signature_path(path).write_text(json.dumps(sig))


TAMPERING = {
    'unsigned': (lambda path, keys: signature_path(path).unlink(),
                 r'student.onnx is unsigned: no signature file .*student.onnx.sig: sign it with '
                 r'softmaint-sign sign .*student.onnx --key PRIVATE.pem'),
    'another key': (lambda path, keys: sign_model(path, load_private_key(keys[1].private)),
                    r'student.onnx was signed with key [0-9a-f]{16}, but this robot trusts key '
                    r'[0-9a-f]{16}: sign it with this deployment key'),
    'truncated onnx': (lambda path, keys: path.write_bytes(path.read_bytes()[:1000]),
                       r'student.onnx is truncated or altered: 1000 of \d+ signed bytes'),
    'one altered byte': (lambda path, keys: _flip_byte(path),
                         r'student.onnx was altered after signing \(\d+ bytes, SHA-256'),
    'altered metadata': (lambda path, keys: _recalibrate(path),
                         r'student.json was altered after signing'),
    'garbage signature': (lambda path, keys: signature_path(path).write_bytes(b'\x00junk'),
                          r'signature file student.onnx.sig is unreadable .*: sign the model '
                          r'again'),
    'forged digest': (lambda path, keys: _forge(path),
                      r'the signature in student.onnx.sig does not verify against key '
                      r'[0-9a-f]{16}: the signature file was altered or forged'),
    'metadata missing': (lambda path, keys: metadata_path(path).unlink(),
                         r'student.json not found: the signature covers the model and the '
                         r'metadata'),
}


def test_a_signed_model_verifies_and_serves(model, keys):
    public = load_public_key(keys[0].public)
    assert verify_model(model, public) == key_id(public)
    served = StudentModel(model, public_key=public)
    assert served.signed_by == key_id(public)


@pytest.mark.parametrize('case', sorted(TAMPERING))
def test_tampered_models_are_refused_with_the_reason(model, keys, case):
    tamper, message = TAMPERING[case]
    tamper(model, keys)
    public = load_public_key(keys[0].public)
    with pytest.raises(SignatureError, match=message):
        verify_model(model, public)
    # StudentModel refuses before anything reads the files; only 'unsigned' may be allowed
    with pytest.raises(ModelError, match=message):
        StudentModel(model, public_key=public)
    if case != 'unsigned':
        with pytest.raises(ModelError, match=message):
            StudentModel(model, public_key=public, allow_unsigned=True)


def test_unsigned_models_load_only_when_allowed_or_without_a_key(model, keys):
    signature_path(model).unlink()
    public = load_public_key(keys[0].public)
    with pytest.raises(UnsignedModelError):
        verify_model(model, public)
    assert StudentModel(model, public_key=public, allow_unsigned=True).signed_by is None
    assert StudentModel(model).signed_by is None      # offline tools: no key, no check


def test_renamed_model_still_verifies(model, keys):
    # file names are not signed: a field update is the same pair under a new name
    renamed = model.with_name('student-v2.onnx')
    for src, dst in ((model, renamed), (metadata_path(model), metadata_path(renamed)),
                     (signature_path(model), signature_path(renamed))):
        src.rename(dst)
    verify_model(renamed, load_public_key(keys[0].public))


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    files = generate_keypair(tmp_path, 'site')
    assert stat.S_IMODE(files.private.stat().st_mode) == 0o600
    assert key_id(load_private_key(files.private).public_key()) == key_id(
        load_public_key(files.public))
    before = files.private.read_bytes(), files.public.read_bytes()
    files.private.unlink()       # one of the two left is enough to refuse
    with pytest.raises(FileExistsError, match='site.pub.pem exist already'):
        generate_keypair(tmp_path, 'site')
    assert not files.private.exists() and files.public.read_bytes() == before[1]


# A throwaway EC key on secp112r1, a curve cryptography refuses (UnsupportedAlgorithm).
SECP112R1_PEM = b"""-----BEGIN EC PRIVATE KEY-----
MD4CAQEEDqMa6zfiGTMKRmO2HZsfoAcGBSuBBAAGoSADHgAEbuFQm5e2PBwdQ3vq
A/4aF0gZH8yrBEHqkq8pSQ==
-----END EC PRIVATE KEY-----
"""


@pytest.mark.parametrize('content, message', [
    (None, 'cannot read the public key .*none.pem: No such file'),
    (b'not a key', 'is not an unencrypted public key in PEM'),
])
def test_unusable_public_keys_are_reported(tmp_path, content, message):
    path = tmp_path / 'none.pem'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SignatureError, match=message):
        load_public_key(path)


def test_a_key_of_a_curve_cryptography_lacks_is_reported(tmp_path):
    path = tmp_path / 'ec112.pem'
    path.write_bytes(SECP112R1_PEM)
    with pytest.raises(SignatureError, match='is not an unencrypted private key in PEM'):
        load_private_key(path)


def test_a_private_key_is_no_public_key(keys):
    with pytest.raises(SignatureError, match='is not an unencrypted public key'):
        load_public_key(keys[0].private)


def test_committed_development_key_is_the_one_the_node_warns_about():
    public = load_public_key(REPO / 'config' / 'keys' / 'softmaint_dev.pub.pem')
    private = load_private_key(REPO / 'config' / 'keys' / 'softmaint_dev.key.pem')
    assert key_id(public) == key_id(private.public_key()) == DEVELOPMENT_KEY_ID


def _sign_cli(*args):
    command = shutil.which('softmaint-sign')
    assert command, 'softmaint-sign is not on PATH: run make setup and source tools/env.sh'
    return subprocess.run([command, *map(str, args)], capture_output=True, text=True,
                          timeout=30)


def test_command_line_keygen_sign_verify(tmp_path):
    model = tmp_path / 'student.onnx'
    shutil.copyfile(COMMITTED, model)
    shutil.copyfile(metadata_path(COMMITTED), metadata_path(model))
    done = _sign_cli('keygen', '--out', tmp_path / 'keys', '--name', 'site')
    assert done.returncode == 0, done.stderr
    private, public = tmp_path / 'keys' / 'site.key.pem', tmp_path / 'keys' / 'site.pub.pem'
    assert 'key id' in done.stdout and stat.S_IMODE(private.stat().st_mode) == 0o600
    again = _sign_cli('keygen', '--out', tmp_path / 'keys', '--name', 'site')
    assert again.returncode == 1 and 'exist already' in again.stderr

    unsigned = _sign_cli('verify', model, '--public-key', public)
    assert unsigned.returncode == 1 and 'sign it with softmaint-sign sign' in unsigned.stderr
    assert _sign_cli('sign', model, '--key', private).returncode == 0
    assert signature_path(model).is_file()
    verified = _sign_cli('verify', model, '--public-key', public)
    assert verified.returncode == 0 and 'verified' in verified.stdout
    _flip_byte(model)
    altered = _sign_cli('verify', model, '--public-key', public)
    assert altered.returncode == 1 and 'altered after signing' in altered.stderr
    wrong_key = _sign_cli('sign', model, '--key', public)      # the public half cannot sign
    assert wrong_key.returncode == 1 and 'private key in PEM' in wrong_key.stderr
    assert _sign_cli('sign').returncode == 2                   # usage error
    assert 'DEVELOPMENT key' not in verified.stderr


def test_command_line_warns_about_the_development_key(tmp_path):
    model = tmp_path / 'student.onnx'
    shutil.copyfile(COMMITTED, model)
    shutil.copyfile(metadata_path(COMMITTED), metadata_path(model))
    keys = REPO / 'config' / 'keys'
    signed = _sign_cli('sign', model, '--key', keys / 'softmaint_dev.key.pem')
    verified = _sign_cli('verify', model, '--public-key', keys / 'softmaint_dev.pub.pem')
    for done in (signed, verified):
        assert done.returncode == 0 and f'key {DEVELOPMENT_KEY_ID} is the DEVELOPMENT key' \
            in done.stderr and 'anyone can make this signature' in done.stderr
