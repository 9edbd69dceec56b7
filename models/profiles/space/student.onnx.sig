{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 8147,
    "sha256": "d6fb9433f42e10a539a3b735e695fab8f9491d495f9246db95079fa9e37ab116"
  },
  "model": {
    "bytes": 1347761,
    "sha256": "f045935f1e673362374d0cb68be05cd179ac597864f19c1a920d66ecbb06d269"
  },
  "signature": "qreL0+1/Vl7suya6qUvFUNB2F0aO8aunCE2/f0PiP3Ad0Emij5uXbTwPvUPT3t4UkrolzfT3pEPUquWnf1DYBg==",
  "version": 1
}
