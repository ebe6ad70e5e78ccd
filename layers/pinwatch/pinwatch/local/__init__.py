"""Local emulation of the stack's AWS services, for tests and `pinwatch demo`.

Never imported by the Lambda functions.
"""

from pathlib import Path

# The source checkout the package runs from (template.yaml, functions/, events/).
PROJECT_ROOT = Path(__file__).resolve().parents[4]
