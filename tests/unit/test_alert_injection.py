"""Hostile text renders inert on every channel: Slack, SNS e-mail/SMS text and the Amazon Q chat schema.

Digests and reason texts come from the proxy's log (whatever SQL the application sent), error
texts from AWS answers. None of it may mention people (``<!channel>``, ``<!here>``), form a link
(``<url|label>``), close or open a code span, or forge a line of the message.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pinwatch.alerts.render import (
    DIGEST_MAX,
    RenderSettings,
    render_chat,
    render_slack,
    render_sns,
    render_text,
    untrusted,
)
from pinwatch.diagnose import not_checked_finding
from pinwatch.findings import Severity
from pinwatch.records import ReasonCount
from tests.unit.test_alert_render import PINNED_CRITICAL, PROXY, alert_for, finding, report

HOSTILE = (
    "select 1 ` <!channel> `",
    "`<!here>` and `<!everyone>`",
    "update t set x = 1 <https://evil.example/login|click to fix>",
    "a & b &amp; <b>bold</b> &lt;",
    "select 1;\nINJECTED LINE <!channel>\r\nSECOND FORGED LINE",
    "``` code fence ``` <@U12345>",
    "x" * 10_240 + " <!channel>",
)
# No region and no dashboard: pinwatch itself adds no link, so any "<" in mrkdwn would be injected.
SETTINGS = RenderSettings(mention_on_critical="none")
MARKUP = re.compile(r"<[!@#]|<https?:|<mailto:|<[^>]*\|")


def hostile_report(digest: str) -> Any:
    error = f"DescribeDBProxyTargetGroups failed: {digest}"
    return report(
        PINNED_CRITICAL,
        not_checked_finding(PROXY, error),
        top_reasons_last_hour=(
            ReasonCount(PROXY, "set_variable", 40, example_digest=digest, reason_text=digest),
            ReasonCount(PROXY, "prepared_statement", 7, example_digest=digest),
        ),
        hints={"set_variable": (f"Fix the statement {digest}",)},
    )


def slack_mrkdwn(payload: dict[str, Any]) -> list[str]:
    texts = [payload["text"]]
    for block in payload["blocks"]:
        if block.get("text", {}).get("type") == "mrkdwn":
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def assert_inert_mrkdwn(text: str) -> None:
    assert not MARKUP.search(text), text[:300]
    assert "<" not in text
    assert ">" not in text
    for line in text.split("\n"):
        assert line.count("`") % 2 == 0, line[:300]  # every code span that opens, closes on its line
    assert not re.search(r"&(?!amp;|lt;|gt;)", text), "a bare & would let Slack read an entity"


@pytest.mark.parametrize("digest", HOSTILE, ids=lambda d: d[:24])
def test_given_a_hostile_digest_when_rendered_for_slack_then_it_neither_mentions_links_nor_breaks_code_spans(
    digest: str,
) -> None:
    payload = render_slack(alert_for(hostile_report(digest)), SETTINGS)
    for text in slack_mrkdwn(payload):
        assert_inert_mrkdwn(text)
        assert not any(line.lstrip().startswith(("INJECTED", "SECOND FORGED")) for line in text.split("\n"))


@pytest.mark.parametrize("digest", HOSTILE, ids=lambda d: d[:24])
def test_given_a_hostile_digest_when_rendered_for_the_chat_schema_then_description_and_next_steps_are_inert(
    digest: str,
) -> None:
    schema = render_chat(alert_for(hostile_report(digest)), SETTINGS)
    for text in [schema["content"]["description"], *schema["content"]["nextSteps"]]:
        assert_inert_mrkdwn(text)
        assert not any(line.lstrip().startswith(("INJECTED", "SECOND FORGED")) for line in text.split("\n"))
    # What the digest said is still there to read, escaped.
    if "<!channel>" in digest and len(digest) < DIGEST_MAX:
        assert "&lt;!channel&gt;" in schema["content"]["description"]


@pytest.mark.parametrize("digest", HOSTILE, ids=lambda d: d[:24])
def test_given_a_hostile_digest_when_rendered_for_sns_then_email_and_sms_lines_cannot_be_forged(digest: str) -> None:
    alert = alert_for(hostile_report(digest))
    text = render_text(alert, SETTINGS)
    assert not any(line.lstrip().startswith(("INJECTED", "SECOND FORGED")) for line in text.split("\n"))
    assert "\r" not in text
    examples = [line.strip() for line in text.split("\n") if line.strip().startswith("e.g. ")]
    assert len(examples) == 2
    assert all(len(line) <= len("e.g. ") + DIGEST_MAX for line in examples)
    for chat in (False, True):
        payload = render_sns(alert, RenderSettings(mention_on_critical="none", chat_notifications=chat))
        message = json.loads(payload["Message"])
        assert "\n" not in message["sms"]
        assert "\n" not in payload["Subject"]
        if chat:
            assert_inert_mrkdwn(json.loads(message["default"])["content"]["description"])


def test_given_benign_text_when_made_inert_then_it_is_unchanged() -> None:
    for text in ("set search_path = $1; set names $2;", "SQL changed session settings that the proxy doesn't track."):
        assert untrusted(text) == text
        assert untrusted(text, "code") == text
        assert untrusted(text, "plain") == text


@pytest.mark.parametrize(
    ("raw", "markup", "expected"),
    [
        ("a `b` <!here> & c", "mrkdwn", "a 'b' &lt;!here&gt; &amp; c"),
        ("x`y", "code", "x'y"),
        ("one\ntwo\r\n\tthree\x00four", "plain", "one two three four"),
        ("<https://evil|x>", "plain", "<https://evil|x>"),  # plain text: no markup to escape
    ],
)
def test_given_untrusted_text_when_escaped_then_only_inert_text_remains(raw: str, markup: Any, expected: str) -> None:
    assert untrusted(raw, markup) == expected


def test_given_a_long_string_when_escaped_with_a_limit_then_the_cut_never_splits_an_entity() -> None:
    out = untrusted("&" * 10_000, "mrkdwn", 50)
    assert out.endswith("…")
    assert re.fullmatch(r"(&amp;)+…", out)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda d: d[:24])
def test_given_hostile_pool_size_advice_when_rendered_for_chat_and_email_then_it_is_inert(text: str) -> None:
    # The pool-size section names the proxy: it is escaped in the chat schema as it is in Slack.
    undersized = finding("undersized_pool", Severity.CRITICAL, "the pool is too small", f"Raise it on {text}")
    alert = alert_for(report(undersized))
    schema = render_chat(alert, SETTINGS)
    email = render_text(alert, SETTINGS)

    assert "What to change: pool size" in schema["content"]["description"]
    for line in [schema["content"]["description"], *schema["content"]["nextSteps"]]:
        assert_inert_mrkdwn(line)
    assert not any(line.lstrip().startswith(("INJECTED", "SECOND FORGED")) for line in email.split("\n"))
