"""``pinwatch demo``: the deployed pipeline, end to end, on local emulated AWS and a simulated clock.

What runs is what Lambda runs: the two handlers in ``functions/`` are imported as a cold start
does, with their environment taken from ``template.yaml`` and pointed at local endpoints —

* moto in server mode for RDS (a real ``create_db_proxy`` with a target), CloudWatch metrics,
  CloudWatch Logs, SNS (a topic with an SQS queue subscribed, capturing what a subscriber gets),
  SQS and Secrets Manager (holding the URL of a local Slack receiver, read through the check's own
  secret provider);
* DynamoDB Local for the summary table (created from the template's definition), or moto's
  DynamoDB when Java or the jar is missing.

An :class:`~pinwatch.local.incident.Incident` is replayed minute by minute: the proxy's metrics go
to CloudWatch with their simulated timestamps, its log lines go to the log group and, as real
subscription payloads (base64(gzip(JSON))), through the ingest handler; then the check handler
runs at that simulated minute. One payload is delivered twice. Nothing sleeps: the simulated
clock only moves the timestamps.

The Lambda handlers print JSON logs and EMF metrics to stdout, as in Lambda; the replay captures
them (see :attr:`DemoResult.function_output`) so they do not interleave with the demo's own output.

Three parts: :mod:`.stack` (the emulation, the resources, the functions), :mod:`.replay` (the
incident on the simulated clock) and :mod:`.verdicts` (what makes the run a success).

``pinwatch demo --org`` (:mod:`.org`, :mod:`.org_verdicts`) runs organization mode the same way:
the central stack, two member accounts with a proxy of the same name, their pin lines through the
emulated CloudWatch Logs destination, Kinesis stream and event source mapping into the stream
function, and their alarms' contributor events into the check.
"""

from pinwatch.local.demo.org import (
    OrgDemoResult,
    OrgFunctions,
    OrgReplay,
    OrgStack,
    OrgTick,
    create_org_stack,
    incident_start,
    org_functions,
)
from pinwatch.local.demo.org_verdicts import verify_org
from pinwatch.local.demo.replay import (
    AlertEvent,
    DemoResult,
    IngestCall,
    Replay,
    SlackMessage,
    SnsMessage,
    Tick,
)
from pinwatch.local.demo.stack import (
    AWS_VARIABLES_TO_CLEAR,
    DEMO_OVERRIDES,
    DemoError,
    DemoStack,
    Endpoints,
    LocalFunctions,
    client,
    create_stack,
    emulation,
    local_functions,
)
from pinwatch.local.demo.verdicts import Stage, verify
from pinwatch.local.lambda_harness import patched_environ

__all__ = [
    "AWS_VARIABLES_TO_CLEAR",
    "DEMO_OVERRIDES",
    "AlertEvent",
    "DemoError",
    "DemoResult",
    "DemoStack",
    "Endpoints",
    "IngestCall",
    "LocalFunctions",
    "OrgDemoResult",
    "OrgFunctions",
    "OrgReplay",
    "OrgStack",
    "OrgTick",
    "Replay",
    "SlackMessage",
    "SnsMessage",
    "Stage",
    "Tick",
    "client",
    "create_org_stack",
    "create_stack",
    "emulation",
    "incident_start",
    "local_functions",
    "org_functions",
    "patched_environ",
    "verify",
    "verify_org",
]
