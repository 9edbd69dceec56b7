{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 8637,
    "sha256": "6921079c87a4877a9de4af5087e9f8c4b018d287417a636cfbe43538374e33d8"
  },
  "model": {
    "bytes": 823016,
    "sha256": "270fcf8e814e538c81e4b3d63c49a02af1078109ee69a2ee94b87b928ca573b5"
  },
  "signature": "HH01goPzWqiZY/Xo+pPBUCyyQnTRielTpok+LPYvVaZl14bw3xu0skVUsyfes6DsqFGMPj63iW4KsVIFilz+Dg==",
  "version": 1
}
