"""HashiCorp Vault: which found secrets are values Vault manages (``--vault``), and the migration
of the others into Vault KV v2 (``secretscan migrate``)."""
