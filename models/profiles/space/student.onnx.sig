{
  "algorithm": "ed25519",
  "format": "softmaint-model-signature",
  "key_id": "a8c7ff9b82d09f98",
  "metadata": {
    "bytes": 7158,
    "sha256": "477c4ad6a1b2c4e646120f7cdec4d31ca9cb38c2341e9dbb00cda8488c682e73"
  },
  "model": {
    "bytes": 823016,
    "sha256": "7a0df372b26eea9d888588c76ac17b1cd46d1f69d7f5fbaee35898006d74b52b"
  },
  "signature": "Re6/SuSWWj9KgJvTKhguoOYUKV3p7cI3yK8oi+1NlK4OzdeLJIAJexJEGrhfK0oQxsn5AHdVJxrkmNtNpyR7AA==",
  "version": 1
}
