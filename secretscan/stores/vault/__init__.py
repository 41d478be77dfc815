"""HashiCorp Vault (and OpenBao) KV v2 as a managed-secret store: ``connect`` (settings and auth),
``read`` (every readable version into the index), ``write`` (migration with check-and-set)."""
