"""The local services every integration test relies on behave like the real ones."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from pinwatch.store import keys

pytestmark = pytest.mark.integration


def test_given_template_table_when_created_on_dynamodb_local_then_keys_and_ttl_match_the_template(
    dynamodb_client: Any, summary_table: str
) -> None:
    described = dynamodb_client.describe_table(TableName=summary_table)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]} == {
        keys.PK: "HASH",
        keys.SK: "RANGE",
    }
    ttl = dynamodb_client.describe_time_to_live(TableName=summary_table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == keys.TTL_ATTRIBUTE


def test_given_dynamodb_local_when_a_condition_fails_in_a_transaction_then_nothing_is_written(
    dynamodb_client: Any, summary_table: str
) -> None:
    item = {keys.PK: {"S": "A"}, keys.SK: {"S": "1"}}
    dynamodb_client.put_item(TableName=summary_table, Item=item)
    with pytest.raises(dynamodb_client.exceptions.TransactionCanceledException):
        dynamodb_client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": summary_table, "Item": {keys.PK: {"S": "B"}, keys.SK: {"S": "1"}}}},
                {
                    "Put": {
                        "TableName": summary_table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert "Item" not in dynamodb_client.get_item(
        TableName=summary_table, Key={keys.PK: {"S": "B"}, keys.SK: {"S": "1"}}
    )


def test_given_moto_server_when_publishing_to_sns_then_the_sqs_subscriber_receives_it(moto_endpoint: str) -> None:
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    topic = sns.create_topic(Name="t")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message="hello")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]
