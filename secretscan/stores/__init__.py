"""Managed-secret stores: HashiCorp Vault (or OpenBao) KV v2 and AWS Secrets Manager.

Each store does two things through one interface (``model``): it reads every value it holds into
an index of keyed fingerprints, so that a leaked value is told *current* (rotate now), *former*
(already rotated) or *unmanaged* (``matcher``: ``--vault``, ``--aws-secrets``, and their sweep
forms); and it takes the unmanaged ones (``plan``, ``apply``: ``secretscan migrate``). The
store-specific parts are ``vault/`` and ``aws/``; everything else is shared.
"""
