{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 7428,
    "sha256": "7d2567292a650f775fa75ca21a822027d2e1517516b59f7138b3f22db585304e"
  },
  "model": {
    "bytes": 1347761,
    "sha256": "f045935f1e673362374d0cb68be05cd179ac597864f19c1a920d66ecbb06d269"
  },
  "signature": "5cvDYqGiDDKwe/i4G1m4UlUCGrEuhpKDW78RLtBnD2AgScvrcolF+ftKhkX+DmRiRdmCNOhQZaYaa6zhB2l/AA==",
  "version": 1
}
