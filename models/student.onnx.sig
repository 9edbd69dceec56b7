{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 9044,
    "sha256": "d2ce4aeb0e6e1663cefdc993d36098db5aa4f8753e90f00700ce21bfed5fbf52"
  },
  "model": {
    "bytes": 823016,
    "sha256": "771f480b029f2c34db3da6dec6fba1466e788f429ce997017398e538866c2d94"
  },
  "signature": "1ZBaB3jEMgoXxZMO/m4hR6rw8sp5+RDZAurDrqmpx1ksEoQvg6C3q1Mvknqmln/Lzw2ZIGiskp0DNaTnSrH4AQ==",
  "version": 1
}
