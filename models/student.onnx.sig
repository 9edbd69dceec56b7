{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 6399,
    "sha256": "ec1d7026e22ebec47b406f473be4b6bfc82925656c26646d9cfb6cb44ae67367"
  },
  "model": {
    "bytes": 823016,
    "sha256": "88b530cda894ec4f02dceab11c9001dcf517b926d1dedef8fc7e14687a83bd62"
  },
  "signature": "tBS1TUcbZxbgbfnwosbXBYeutYUW2Msxqx4+Z1KgNGDwIHWi/upwLojikDQhITcIbc8WT4L0e5BERwko/K7gCw==",
  "version": 1
}
