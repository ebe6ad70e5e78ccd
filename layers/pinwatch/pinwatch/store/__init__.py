"""Adapters for the DynamoDB summary table (the only module tree that talks to DynamoDB)."""
