{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 8644,
    "sha256": "13cfbf4d798269a60582a3562bd1322a9256d1be9ffb8a8a78355ba3c669f96c"
  },
  "model": {
    "bytes": 823016,
    "sha256": "a7a1c837c56afa31426ff034eb6efef4bee2ede5c738eb1d944245f0fb3b7020"
  },
  "signature": "Cmkn7w+GNAQc3P+k8LdjaqAx8fsrxgUtY13jo6XNk498MGA4gW7g83SfBIhuekDMlg4Gk71IsLnxs/cWlAuAAw==",
  "version": 1
}
