"""Local emulation of the stack's AWS services, for tests and `pinwatch demo`.

Never imported by the Lambda functions.
"""
