{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 12754,
    "sha256": "8b4d58371e3b4009ef5a20ff958198eab9ee135bd08974dffeacc677bd5db775"
  },
  "model": {
    "bytes": 1351112,
    "sha256": "553fcf4d762db4269d64b0bed79c15301ba45d9111f57d7d9844f074cbfd0922"
  },
  "signature": "ArrM7XxCrqBKo+BBao2q6qkKCtuDV0z0jrYpSk6BXUfnE8xmqcAegjKjtfrz1nFuk4W/fTrVO1t985yL4gBKDg==",
  "version": 1
}
