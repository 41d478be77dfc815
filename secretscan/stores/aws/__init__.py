"""AWS Secrets Manager as a managed-secret store: ``connect`` (boto3's configuration, deadlines,
one-line errors), ``read`` (every version still held into the index), ``write`` (migration)."""
