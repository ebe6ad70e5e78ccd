"""pinwatch: find, count and explain Amazon RDS Proxy connection pinning."""

__version__ = "0.1.0"
