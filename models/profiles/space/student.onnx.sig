{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 6379,
    "sha256": "d249ad4cce1c700a0f5b1088a53ce18b31dc36b150a86f75d0344a8ccf768f2c"
  },
  "model": {
    "bytes": 823016,
    "sha256": "fa8ffdaa1af85c92d439ca356487b99d472b20ab69d3622a4b406cceba19b6de"
  },
  "signature": "ll+4W27kbS5eM9vz8NhPlfCHImyBSOH2k3dB9eSzsvVG6oABpv4Bq7/+ndYlkkbTOmaO4pRS57NX2WwrLwnxCA==",
  "version": 1
}
