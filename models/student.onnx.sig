{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 12623,
    "sha256": "fd26270d7546d4a5bae8f9f73e3dcb179e77ba9803a62d9bbeb840480b584379"
  },
  "model": {
    "bytes": 1347761,
    "sha256": "b80c4768367b53ea12360fe814eae22e8d3ba46fbec9cffdc1c9c4d7e86d32bc"
  },
  "signature": "nWsLb9AbizKLeaX0mF66OG7MS3VZkwwTQClNL55LdhDyTpXIhVRHhrxHEpigFRKdtWKW5WezRryZp+x/MK1hBg==",
  "version": 1
}
