"""The ingest function's settings: read once at cold start, every problem named with what to set."""

from __future__ import annotations

import pytest

from pinwatch.config import ConfigError, IngestConfig, StreamIngestConfig


def test_given_only_the_table_when_read_then_defaults_fill_the_rest() -> None:
    config = IngestConfig.from_env({"SUMMARY_TABLE_NAME": "pinwatch-SummaryTable-1ABC"})

    assert config == IngestConfig(
        summary_table_name="pinwatch-SummaryTable-1ABC", ttl_days=90, metrics_namespace="Pinwatch"
    )


def test_given_every_setting_when_read_then_each_is_used() -> None:
    config = IngestConfig.from_env(
        {"SUMMARY_TABLE_NAME": "t-1", "SUMMARY_TTL_DAYS": " 30 ", "POWERTOOLS_METRICS_NAMESPACE": "Team/Pins"}
    )

    assert (config.summary_table_name, config.ttl_days, config.metrics_namespace) == ("t-1", 30, "Team/Pins")


@pytest.mark.parametrize(
    ("environ", "problems"),
    [
        ({}, ["SUMMARY_TABLE_NAME is not set"]),
        ({"SUMMARY_TABLE_NAME": "  "}, ["SUMMARY_TABLE_NAME is not set"]),
        ({"SUMMARY_TABLE_NAME": "no spaces allowed"}, ["SUMMARY_TABLE_NAME='no spaces allowed' is not valid"]),
        ({"SUMMARY_TABLE_NAME": "t-1", "SUMMARY_TTL_DAYS": "ninety"}, ["SUMMARY_TTL_DAYS='ninety' is not a number"]),
        ({"SUMMARY_TABLE_NAME": "t-1", "SUMMARY_TTL_DAYS": "0"}, ["SUMMARY_TTL_DAYS='0' is out of range"]),
        ({"SUMMARY_TABLE_NAME": "t-1", "SUMMARY_TTL_DAYS": "1.5"}, ["SUMMARY_TTL_DAYS='1.5' is not a number"]),
        ({"SUMMARY_TTL_DAYS": "-1"}, ["SUMMARY_TABLE_NAME is not set", "SUMMARY_TTL_DAYS='-1' is out of range"]),
    ],
)
def test_given_bad_settings_when_read_then_every_problem_is_reported_with_what_to_set(
    environ: dict[str, str], problems: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        IngestConfig.from_env(environ)

    assert len(caught.value.problems) == len(problems)
    for reported, expected in zip(caught.value.problems, problems, strict=True):
        assert reported.startswith(expected)
        assert "set" in reported.removeprefix(expected)


QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/pinwatch-DeadLetterQueue-1ABC"


def test_given_the_table_and_a_parking_queue_when_the_stream_settings_are_read_then_both_are_used() -> None:
    config = StreamIngestConfig.from_env(
        {"SUMMARY_TABLE_NAME": "t-1", "SUMMARY_TTL_DAYS": "30", "PARKING_QUEUE_URL": f" {QUEUE_URL} "}
    )

    assert config == StreamIngestConfig(IngestConfig("t-1", ttl_days=30), parking_queue_url=QUEUE_URL)


@pytest.mark.parametrize(
    ("environ", "problems"),
    [
        ({"SUMMARY_TABLE_NAME": "t-1"}, ["PARKING_QUEUE_URL is not set"]),
        (
            {"SUMMARY_TABLE_NAME": "t-1", "PARKING_QUEUE_URL": "arn:aws:sqs:us-east-1:123456789012:q"},
            ["PARKING_QUEUE_URL='arn:aws:sqs:us-east-1:123456789012:q' is not an SQS queue URL"],
        ),
        (
            {"SUMMARY_TABLE_NAME": "t-1", "PARKING_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/q"},
            ["PARKING_QUEUE_URL='https://sqs.us-east-1.amazonaws.com/q' is not an SQS queue URL"],
        ),
        (
            {"SUMMARY_TTL_DAYS": "0"},
            ["SUMMARY_TABLE_NAME is not set", "SUMMARY_TTL_DAYS='0' is out of range", "PARKING_QUEUE_URL is not set"],
        ),
    ],
)
def test_given_bad_stream_settings_when_read_then_every_problem_is_reported_with_what_to_set(
    environ: dict[str, str], problems: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        StreamIngestConfig.from_env(environ)

    assert [p.split(";")[0] for p in raised.value.problems] == problems
