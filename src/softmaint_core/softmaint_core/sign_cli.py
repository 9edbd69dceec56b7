"""
softmaint-sign: make signing keys, sign student models, verify them (docs/deployment.md).

    softmaint-sign keygen --out DIR [--name NAME]
    softmaint-sign sign MODEL.onnx --key NAME.key.pem
    softmaint-sign verify MODEL.onnx --public-key NAME.pub.pem

keygen writes NAME.key.pem (private, mode 0600: keep it where models are trained, never on a
robot) and NAME.pub.pem (public: the robots' model_public_key); it never overwrites a key.
sign writes MODEL.onnx.sig over the model and the metadata JSON beside it. verify checks them
as the inference node does. Exit status 0 on success, 1 on failure, 2 on a usage error.
"""
import argparse
import sys

from .signing import (DEVELOPMENT_KEY_ID, generate_keypair, key_id, load_private_key,
                      load_public_key, sign_model, SignatureError, verify_model)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='softmaint-sign', description=__doc__.split('\n')[1])
    commands = parser.add_subparsers(dest='command', required=True)
    keygen = commands.add_parser('keygen', help='write a new Ed25519 key pair')
    keygen.add_argument('--out', required=True, metavar='DIR', help='folder for the key files')
    keygen.add_argument('--name', default='softmaint',
                        help='file name stem: NAME.key.pem, NAME.pub.pem (default softmaint)')
    sign = commands.add_parser('sign', help='sign a model and its metadata JSON')
    sign.add_argument('model', metavar='MODEL', help='student ONNX file')
    sign.add_argument('--key', required=True, metavar='PRIVATE.pem', help='private key')
    verify = commands.add_parser('verify', help="check a model's signature")
    verify.add_argument('model', metavar='MODEL', help='student ONNX file')
    verify.add_argument('--public-key', required=True, metavar='PUBLIC.pem', help='public key')
    return parser


def _warn_if_development(signer: str) -> None:
    """Say so when a signature is the development key's, which anyone can make."""
    if signer == DEVELOPMENT_KEY_ID:
        print(f'softmaint-sign: warning: key {signer} is the DEVELOPMENT key, whose private half '
              'is in the repository: anyone can make this signature. Sign models for robots '
              'with a key of your own (softmaint-sign keygen, docs/deployment.md)',
              file=sys.stderr)


def main(argv=None) -> int:
    """Run the command; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == 'keygen':
            files = generate_keypair(args.out, args.name)
            print(f'wrote {files.private} (private, mode 0600) and {files.public} (public), key '
                  f'id {key_id(load_public_key(files.public))}; keep the private key off the '
                  'robots')
        elif args.command == 'sign':
            private_key = load_private_key(args.key)
            path = sign_model(args.model, private_key)
            signer = key_id(private_key.public_key())
            print(f'wrote {path} (key id {signer})')
            _warn_if_development(signer)
        else:
            signer = verify_model(args.model, load_public_key(args.public_key))
            print(f'{args.model}: signature of key {signer} verified')
            _warn_if_development(signer)
        return 0
    except (SignatureError, OSError) as err:   # FileExistsError from keygen is an OSError
        print(f'softmaint-sign: {err}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    raise SystemExit(main())
