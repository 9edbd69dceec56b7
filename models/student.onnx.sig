{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 9294,
    "sha256": "dd7e3ebe324dcf61c11db5e91c1bae16e9127ec4cd1815e59e6ac8bff4bc347d"
  },
  "model": {
    "bytes": 1347761,
    "sha256": "b80c4768367b53ea12360fe814eae22e8d3ba46fbec9cffdc1c9c4d7e86d32bc"
  },
  "signature": "x7msIQwORs/1mVALJjJvp46ciVLLbLmCM/B7QCqQ5RAASaCo/C9KsXI1iI2KiZvl7gdc/hZhvkQ4/uLzSs6cCA==",
  "version": 1
}
