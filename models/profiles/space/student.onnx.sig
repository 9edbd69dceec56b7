{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 8261,
    "sha256": "c98872ccf9d73c1401b3d694b98c72205f04b2f275be2580a3f93b3ddc7d5724"
  },
  "model": {
    "bytes": 1351112,
    "sha256": "02357050bbfbd354c56cbd16edd6b16f1334093d4cd9ccfbc5e5eb33d195dcd1"
  },
  "signature": "o47wPdOXEp2kmmpx9F6IyARp1BJ+x4RI08A3UAkFY0cFXJL4/6dtNKrzianqxJTy7uQrRqcJcSd5XVQ5nVkwDQ==",
  "version": 1
}
