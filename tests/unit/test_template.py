"""Invariants of template.yaml that AWS would not catch until documents were lost or doubled."""

from __future__ import annotations

import json
import re
from pathlib import Path

from portdocs.config import DEFAULT_RECORD_CONCURRENCY, MAX_RECORD_CONCURRENCY
from portdocs_sandbox.stack import load_template
from tests.support import template_grants

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


def sqs_events():
    for name, function in FUNCTIONS.items():
        for event in function["Properties"]["Events"].values():
            if event["Type"] == "SQS":
                yield name, function, event["Properties"]


def test_every_queue_hides_a_message_for_at_least_six_function_timeouts():
    for _, function, event in sqs_events():
        queue = RESOURCES[event["Queue"]["Fn::GetAtt"][0]]
        assert queue["Properties"]["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]


def test_every_event_source_reports_partial_failures_and_is_throttled():
    for _, _, event in sqs_events():
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaximumConcurrency"}


def test_every_source_queue_has_a_dead_letter_queue_that_outlives_it():
    for _, _, event in sqs_events():
        queue = RESOURCES[event["Queue"]["Fn::GetAtt"][0]]["Properties"]
        dead_letter = RESOURCES[queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
        assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
        assert dead_letter["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_bucket_notification_waits_for_the_queue_policy_scoped_to_bucket_and_account():
    bucket = RESOURCES["IntakeBucket"]
    assert bucket["DependsOn"] == "IntakeQueuePolicy"
    condition = RESOURCES["IntakeQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Condition"]
    assert "aws:SourceArn" in condition["ArnLike"] and "aws:SourceAccount" in condition["StringEquals"]
    # The policy's ARN and the bucket's name are derived the same way, or S3 could not send.
    assert (
        condition["ArnLike"]["aws:SourceArn"]["Fn::Sub"][1]
        == bucket["Properties"]["BucketName"]["Fn::Sub"][1]
    )


def test_every_name_of_the_intake_bucket_is_made_as_the_bucket_makes_its_own():
    """Roles and policies name the bucket by the ARN its name makes rather than by GetAtt: the bucket
    waits for the intake queue's policy, which names the roles, so a GetAtt would be a cycle."""
    bucket = RESOURCES["IntakeBucket"]["Properties"]["BucketName"]["Fn::Sub"]

    def subs(node):
        if isinstance(node, dict):
            if isinstance(node.get("Fn::Sub"), list) and "portdocs-intake-" in node["Fn::Sub"][0]:
                yield node["Fn::Sub"]
            for value in node.values():
                yield from subs(value)
        elif isinstance(node, list):
            for value in node:
                yield from subs(value)

    named = list(subs(RESOURCES))
    assert len(named) >= 6
    for text, variables in named:
        assert variables == bucket[1]
        assert text.removesuffix("/*") in (bucket[0], "arn:${AWS::Partition}:s3:::" + bucket[0])
    assert "IntakeBucket" not in json.dumps([RESOURCES[r] for r in ("UploaderRole", "SweeperRole")])


def test_intake_bucket_is_private_encrypted_versioned_and_tls_only():
    props = RESOURCES["IntakeBucket"]["Properties"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    statement = RESOURCES["IntakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"


KEY_WHEN_GIVEN = {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
KEY_PROPERTY = {
    "AWS::SQS::Queue": "KmsMasterKeyId",
    "AWS::SNS::Topic": "KmsMasterKeyId",
    "AWS::Logs::LogGroup": "KmsKeyId",
    "AWS::SecretsManager::Secret": "KmsKeyId",
}


def test_everything_at_rest_is_under_the_customer_key_when_one_is_given_and_encrypted_when_not():
    covered = set()
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        if name == "ActionTopic":
            # No alarm publishes here, so the AWS-managed key serves when no key is given.
            assert props["KmsMasterKeyId"] == {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, "alias/aws/sns"]}
        elif resource["Type"] in KEY_PROPERTY:
            assert props[KEY_PROPERTY[resource["Type"]]] == KEY_WHEN_GIVEN, name
            covered.add(resource["Type"])
        if resource["Type"] == "AWS::SQS::Queue":
            assert props["SqsManagedSseEnabled"] == {
                "Fn::If": ["HasKmsKey", {"Ref": "AWS::NoValue"}, True]
            }, name
        if resource["Type"] == "AWS::DynamoDB::Table":
            sse = props["SSESpecification"]
            assert sse["SSEEnabled"] is True and sse["KMSMasterKeyId"] == KEY_WHEN_GIVEN, name
            assert sse["SSEType"] == {"Fn::If": ["HasKmsKey", "KMS", {"Ref": "AWS::NoValue"}]}, name
            covered.add(resource["Type"])
    assert len(covered) == len(KEY_PROPERTY) + 1
    intake = RESOURCES["IntakeBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][
        0
    ]
    assert intake["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": {"Fn::If": ["HasKmsKey", "aws:kms", "AES256"]},
        "KMSMasterKeyID": KEY_WHEN_GIVEN,
    }
    assert TEMPLATE["Globals"]["Function"]["KmsKeyArn"] == KEY_WHEN_GIVEN


def test_the_sample_key_policy_admits_every_service_that_writes_under_the_key():
    """A key without these statements would silence the intake queue, the alarms or the logs."""
    policy = json.loads((ROOT / "security/kms-key-policy.json").read_text())
    admitted = {s["Principal"].get("Service") for s in policy["Statement"] if s["Effect"] == "Allow"}
    writers = set()
    for resource in RESOURCES.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Logs::LogGroup":
            writers.add("logs.REGION.amazonaws.com")  # the log service encrypts, whoever writes
        if resource["Type"] == "AWS::SNS::Topic":
            writers.add("cloudwatch.amazonaws.com")  # alarms publish as the CloudWatch service
        if props.get("NotificationConfiguration", {}).get("QueueConfigurations"):
            writers.add("s3.amazonaws.com")  # bucket notifications into an encrypted queue
    assert writers == admitted - {None}
    (iam,) = [s for s in policy["Statement"] if s["Principal"] == {"AWS": "arn:aws:iam::ACCOUNT_ID:root"}]
    assert iam["Action"] == "kms:*"  # so the functions' KmsKeyUsePolicy (IAM) is what grants them use


def test_every_queue_refuses_requests_without_tls():
    queues = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::SQS::Queue"}
    guarded = set()
    for resource in RESOURCES.values():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == "TlsOnly":
                assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
                assert statement["Action"] == "sqs:*"
                assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                resources = statement["Resource"]
                guarded |= {
                    r["Fn::GetAtt"][0] for r in (resources if isinstance(resources, list) else [resources])
                }
    assert guarded == queues


def test_the_telnyx_base_url_must_be_https():
    pattern = re.compile(TEMPLATE["Parameters"]["TelnyxApiBaseUrl"]["AllowedPattern"])
    assert pattern.fullmatch(TEMPLATE["Parameters"]["TelnyxApiBaseUrl"]["Default"])
    assert pattern.fullmatch("https://api.telnyx.com/")
    for refused in (
        "http://api.telnyx.com",
        "https://api.telnyx.com?x=1",
        "https://user@evil",
        "ftp://x",
        "",
    ):
        assert not pattern.fullmatch(refused), refused


def test_every_checkov_skip_says_why():
    skips = [
        (name, skip)
        for name, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "").split()) >= 6, (name, skip["id"])


def test_every_setting_the_code_reads_is_set_by_the_template():
    config = (ROOT / "layers/portdocs/portdocs/config.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z_]+)"', config)) - {
        "TELNYX_API_USER",
        "TELNYX_API_TOKEN",
        "TELNYX_API_KEY",
    }
    read.discard("IDEMPOTENCY_TTL_SECONDS")  # optional tuning knob with a documented default
    read.discard("BACKOFF_BASE_SECONDS")  # shortened by the sandbox and the tests only
    assert read <= set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])


def test_the_record_concurrency_parameter_allows_what_the_code_allows():
    parameter = TEMPLATE["Parameters"]["RecordConcurrency"]
    assert (parameter["Default"], parameter["MaxValue"]) == (
        DEFAULT_RECORD_CONCURRENCY,
        MAX_RECORD_CONCURRENCY,
    )


def test_tables_expire_items_and_the_ledger_is_queryable_by_port_request_and_porting_order():
    ledger = RESOURCES["DocumentsTable"]["Properties"]
    assert ledger["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    from portdocs.ledger import BY_PENDING_EVENT_INDEX, BY_STATE_INDEX
    from portdocs_sandbox.ledger_admin import BY_PORT_REQUEST_INDEX, BY_PORTING_ORDER_INDEX

    indexes = {index["IndexName"] for index in ledger["GlobalSecondaryIndexes"]}
    assert indexes == {BY_PORT_REQUEST_INDEX, BY_PORTING_ORDER_INDEX, BY_STATE_INDEX, BY_PENDING_EVENT_INDEX}
    idempotency = RESOURCES["IdempotencyTable"]["Properties"]
    assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]  # Powertools' default
    assert idempotency["TimeToLiveSpecification"]["AttributeName"] == "expiration"


def test_functions_and_layer_target_one_runtime_on_arm64_and_the_layer_is_built_for_it():
    functions = TEMPLATE["Globals"]["Function"]
    makefile = (ROOT / "layers/portdocs/Makefile").read_text()
    (python,) = re.findall(r"^LAMBDA_PYTHON := (\S+)$", makefile, re.MULTILINE)
    (platforms,) = re.findall(r"^LAMBDA_PLATFORMS := (.+)$", makefile, re.MULTILINE)
    assert functions["Runtime"] == f"python{python}" and functions["Architectures"] == ["arm64"]
    tags = re.findall(r"--platform (\S+)", platforms)
    assert tags and all(tag.startswith("manylinux") and tag.endswith("_aarch64") for tag in tags)
    layer = RESOURCES["PortdocsLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == [functions["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/portdocs/"


def test_every_duplicate_protection_outlives_every_way_a_message_can_come_back():
    from portdocs.config import DEFAULT_IDEMPOTENCY_TTL_SECONDS
    from portdocs.ledger import RETENTION_SECONDS
    from portdocs.redelivery import MAX_AGE_SECONDS

    margin = 2 * 24 * 3600
    longest_return = 0
    for _, _, event in sqs_events():
        queue = RESOURCES[event["Queue"]["Fn::GetAtt"][0]]["Properties"]
        dead_letter = RESOURCES[queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
        # Copies handed back circle for up to MAX_AGE_SECONDS after the first was sent; the last
        # copy may then wait out the queue's retention, and the dead-letter queue keeps it after.
        longest_return = max(
            longest_return,
            MAX_AGE_SECONDS + queue["MessageRetentionPeriod"] + dead_letter["MessageRetentionPeriod"],
        )
    # The template leaves the TTL at the code's default, which is what is checked here.
    assert "IDEMPOTENCY_TTL_SECONDS" not in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert longest_return + margin <= DEFAULT_IDEMPOTENCY_TTL_SECONDS
    assert longest_return + margin <= RETENTION_SECONDS


def test_tracing_needs_no_sdk_and_opentelemetry_is_an_opt_in_layer():
    function = TEMPLATE["Globals"]["Function"]
    assert function["Tracing"] == "Active"  # Lambda records every invocation by itself
    assert function["Layers"][1] == {
        "Fn::If": ["HasOpenTelemetry", {"Ref": "OpenTelemetryLayerArn"}, {"Ref": "AWS::NoValue"}]
    }
    wrapper = function["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"]
    assert wrapper == {"Fn::If": ["HasOpenTelemetry", "/opt/otel-instrument", {"Ref": "AWS::NoValue"}]}
    assert TEMPLATE["Parameters"]["OpenTelemetryLayerArn"]["Default"] == ""
    locked = re.findall(
        r"(?m)^([a-z0-9_.-]+)==", (ROOT / "layers/portdocs/requirements.txt").read_text().lower()
    )
    assert "aws-lambda-powertools" in locked and "aws-xray-sdk" not in locked


ALARM_TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmActionArn"}]}


def test_every_alarm_notifies_the_alarm_topic():
    alarms = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {
        "IntakeDeadLetterAlarm",
        "AssociationDeadLetterAlarm",
        "IntakeQueueAgeAlarm",
        "AssociationQueueAgeAlarm",
        "UploaderErrorsAlarm",
        "AssociatorErrorsAlarm",
        "SweeperErrorsAlarm",
        "UploaderThrottlesAlarm",
        "AssociatorThrottlesAlarm",
        "UploaderRejectionsAlarm",
        "AssociatorRejectionsAlarm",
        "AssociatorPossibleDuplicatesAlarm",
        "StuckDocumentsAlarm",
        "NotificationsDeadLetterAlarm",
        "UnverifiedNotificationsAlarm",
        "TrackerErrorsAlarm",
        "PollerErrorsAlarm",
    }  # docs/operations.md's table lists each, with what to do
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [ALARM_TOPIC], name
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()}
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("portdocs", "DocumentsRejected"),
        ("portdocs", "StuckDocuments"),
    } <= watched
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert (
        subscription["Condition"] == "HasAlarmEmail" and subscription["Properties"]["TopicArn"] == ALARM_TOPIC
    )


def test_every_function_logs_to_its_own_group_kept_for_the_retention_period():
    functions = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {
        "UploaderFunction",
        "AssociatorFunction",
        "SweeperFunction",
        "NotificationsFunction",
        "TrackerFunction",
        "PollerFunction",
    }
    groups = set()
    for name, function in functions.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        groups.add(group)
    assert len(groups) == len(functions)
    assert RESOURCES["DocumentEventsLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_ledger_and_the_intake_bucket_outlive_the_stack():
    for name in ("DocumentsTable", "IntakeBucket"):
        assert RESOURCES[name]["DeletionPolicy"] == "Retain", name
        assert RESOURCES[name]["UpdateReplacePolicy"] == "Retain", name


def on(resource: str, *actions: str) -> dict[str, set[str]]:
    return {action: {resource} for action in actions}


OBJECTS = {
    **on(
        "IntakeBucket/*",
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
    ),
    "s3:ListBucket": {"IntakeBucket"},
}
BASICS = {
    "xray:PutTraceSegments": {"*"},
    "xray:PutTelemetryRecords": {"*"},
    "events:PutEvents": {"event-bus/EventBusName"},
}
STATE = {
    "dynamodb:GetItem": {"DocumentsTable", "IdempotencyTable"},
    "dynamodb:UpdateItem": {"DocumentsTable", "IdempotencyTable"},
    "dynamodb:PutItem": {"IdempotencyTable"},
    "dynamodb:DeleteItem": {"IdempotencyTable"},
    "secretsmanager:GetSecretValue": {"CredentialsSecret|TelnyxCredentialsSecretArn"},
}
KMS = on("KmsKeyArn", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


def consumer(queue: str, dead_letter_queue: str) -> dict[str, set[str]]:
    """An SQS event source's own permissions, plus handing a deferred record back to its queue or,
    too old, on to its dead-letter queue (portdocs.redelivery)."""
    actions = ["ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"]
    return {
        **on(queue, *(f"sqs:{action}" for action in actions)),
        "sqs:GetQueueUrl": {queue, dead_letter_queue},
    }


def logs(group: str) -> dict[str, set[str]]:
    return on(group, "logs:CreateLogStream", "logs:PutLogEvents")


EXPECTED_GRANTS = {
    "UploaderFunction": {
        **BASICS,
        **OBJECTS,
        **STATE,
        **logs("UploaderLogGroup"),
        **consumer("IntakeQueue", "IntakeDeadLetterQueue"),
        "sqs:SendMessage": {"IntakeQueue", "AssociationQueue", "IntakeDeadLetterQueue"},
        "s3:GetObjectVersion": {"IntakeBucket/*"},
    },
    "AssociatorFunction": {
        **BASICS,
        **OBJECTS,
        **STATE,
        **logs("AssociatorLogGroup"),
        **consumer("AssociationQueue", "AssociationDeadLetterQueue"),
        "sqs:SendMessage": {"IntakeQueue", "AssociationQueue", "AssociationDeadLetterQueue"},
        "dynamodb:UpdateItem": {"DocumentsTable", "IdempotencyTable", "PortingOrdersTable"},
    },
    "SweeperFunction": {
        **BASICS,
        **on("IntakeBucket/*", "s3:GetObject", "s3:GetObjectVersionTagging", "s3:PutObjectVersionTagging"),
        "s3:ListBucket": {"IntakeBucket"},
        **logs("SweeperLogGroup"),
        "dynamodb:Query": {"DocumentsTable/index/by-state", "DocumentsTable/index/by-pending-event"},
        "dynamodb:GetItem": {"DocumentsTable"},
        "dynamodb:UpdateItem": {"DocumentsTable"},
        "sqs:SendMessage": {"IntakeQueue", "AssociationQueue"},
    },
    # The public endpoint: the queue and the key, nothing else (no Telnyx credentials, no table).
    "NotificationsFunction": {
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
        **logs("NotificationsLogGroup"),
        "sqs:SendMessage": {"NotificationsQueue"},
        "secretsmanager:GetSecretValue": {"WebhookKeySecret|TelnyxWebhookKeySecretArn"},
    },
    "TrackerFunction": {
        **BASICS,
        **logs("TrackerLogGroup"),
        **consumer("NotificationsQueue", "NotificationsDeadLetterQueue"),
        "sqs:SendMessage": {"NotificationsQueue", "NotificationsDeadLetterQueue"},
        **on("PortingOrdersTable", "dynamodb:GetItem", "dynamodb:PutItem"),
        "dynamodb:UpdateItem": {"PortingOrdersTable", "DocumentsTable"},
        "dynamodb:Query": {"DocumentsTable/index/by-porting-order"},
        "sns:Publish": {"ActionTopic"},
    },
    "PollerFunction": {
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
        **logs("PollerLogGroup"),
        "sqs:SendMessage": {"NotificationsQueue"},
        **on("PortingOrdersTable", "dynamodb:GetItem", "dynamodb:UpdateItem"),
        "dynamodb:Query": {"PortingOrdersTable/index/by-following", "DocumentsTable/index/by-porting-order"},
        "secretsmanager:GetSecretValue": {"CredentialsSecret|TelnyxCredentialsSecretArn"},
    },
}


def test_each_function_may_do_exactly_what_it_does_on_only_its_resources():
    assert set(EXPECTED_GRANTS) == set(FUNCTIONS)
    for function, expected in EXPECTED_GRANTS.items():
        assert template_grants(function, with_kms_key=False) == expected, function
        assert template_grants(function, with_kms_key=True) == {**expected, **KMS}, function
    # No wildcard action anywhere, and "*" only where the service has no resource to name.
    for function in FUNCTIONS:
        for action, resources in template_grants(function, with_kms_key=True).items():
            assert "*" not in action
            assert "*" not in resources or action.startswith("xray:"), (function, action)


def test_the_dead_letter_rule_in_code_is_the_queues_own():
    from portdocs.delivery import MAX_RECEIVES

    for queue in ("IntakeQueue", "AssociationQueue"):
        assert RESOURCES[queue]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES, queue


def test_the_dashboard_shows_what_an_operator_looks_at_first():
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    shown = {(m[0], m[1]) for w in widgets for m in w["properties"]["metrics"]}
    assert {
        ("portdocs", "DocumentsAssociated"),
        ("portdocs", "DocumentsRejected"),
        ("portdocs", "DocumentsRetried"),
        ("portdocs", "StuckDocuments"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("portdocs", "OrdersEnteringStatus"),
        ("portdocs", "OrdersNeedingAction"),
        ("portdocs", "NotificationsRefused401"),
    } <= shown
