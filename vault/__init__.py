"""The domain core: models, access policy, documents, encryption, keyring and audit log.

Modules are imported by name (`vault.crypto`, `vault.documents`, …); this package imports
none of `storage`, `notify` or `web`, and no web or S3 library.
"""
