"""Creates the stack's AWS resources from `template.yaml` itself, against whatever endpoint boto3
is pointed at (moto in-process or moto server): one source of truth for names, keys, queue
settings and the bucket notification, so the sandbox cannot drift from what `sam deploy` makes.

CloudFormation is not emulated: this reads the handful of resource types the template uses and
evaluates the intrinsic functions it needs. Functions are not created in AWS; their environment
and event sources are returned for the local runtime (`portdocs_sandbox.runtime`).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
_NO_VALUE = object()


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) as long-form dicts."""

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class EventSource:
    """An SQS event source mapping of one function, as the template declares it."""

    function: str
    queue_url: str
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Schedule:
    """A function's schedule (EventBridge Scheduler or a schedule rule), as the template declares it."""

    function: str
    every_seconds: int


@dataclass(frozen=True)
class HttpRoute:
    """A function's HTTP API route (payload format 2.0), as the template declares it."""

    function: str
    method: str
    path: str


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout: int
    environment: dict[str, str]
    memory_mb: int = 128  # Lambda's default
    # The LoggingConfig's format and application level, which Lambda hands its runtime as
    # AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL.
    log_format: str = "Text"
    log_level: str | None = None


@dataclass
class Stack:
    name: str
    region: str
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    event_sources: list[EventSource] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    http_routes: list[HttpRoute] = field(default_factory=list)
    physical_ids: dict[str, str] = field(default_factory=dict)


class _Provisioner:
    def __init__(
        self,
        template: dict[str, Any],
        stack_name: str,
        region: str,
        parameters: dict[str, str],
        endpoint_url: str | None,
    ) -> None:
        self.template = template
        self.resources: dict[str, Any] = template["Resources"]
        self.stack = Stack(name=stack_name, region=region)
        self.pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": region,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/{uuid.uuid4()}",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.parameters = {
            name: str(parameters.get(name, spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise ValueError(f"template has no parameters {sorted(unknown)}")
        self.conditions = {name: self.evaluate(expr) for name, expr in template.get("Conditions", {}).items()}
        self.attributes: dict[str, dict[str, str]] = {}
        self.s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint_url)
        self.sqs = boto3.client("sqs", region_name=region, endpoint_url=endpoint_url)
        self.dynamodb = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
        self.secrets = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
        self.logs = boto3.client("logs", region_name=region, endpoint_url=endpoint_url)
        self.events = boto3.client("events", region_name=region, endpoint_url=endpoint_url)
        self.sns = boto3.client("sns", region_name=region, endpoint_url=endpoint_url)

    # -- intrinsic functions ------------------------------------------------------------------

    def evaluate(self, value: Any, variables: dict[str, Any] | None = None) -> Any:
        if isinstance(value, list):
            return [v for v in (self.evaluate(item, variables) for item in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self.ref(arg)
            if name == "Condition":
                return self.conditions[arg]
            if name.startswith("Fn::"):
                return getattr(self, "fn_" + name[4:].lower())(arg, variables)
        return {
            k: v
            for k, v in ((k, self.evaluate(v, variables)) for k, v in value.items())
            if v is not _NO_VALUE
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.ensure(name)["Ref"]

    def fn_getatt(self, arg: list[str], _: Any) -> str:
        return self.ensure(arg[0])[arg[1]]

    def fn_sub(self, arg: Any, variables: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.evaluate(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return self.fn_getatt(name.split(".", 1), None)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def fn_join(self, arg: list[Any], variables: Any) -> str:
        return str(arg[0]).join(str(v) for v in self.evaluate(arg[1], variables))

    def fn_select(self, arg: list[Any], variables: Any) -> Any:
        return self.evaluate(arg[1], variables)[int(self.evaluate(arg[0], variables))]

    def fn_split(self, arg: list[Any], variables: Any) -> list[str]:
        return str(self.evaluate(arg[1], variables)).split(arg[0])

    def fn_if(self, arg: list[Any], variables: Any) -> Any:
        return self.evaluate(arg[1] if self.conditions[arg[0]] else arg[2], variables)

    def fn_equals(self, arg: list[Any], variables: Any) -> bool:
        left, right = self.evaluate(arg, variables)
        return str(left) == str(right)

    def fn_not(self, arg: list[Any], variables: Any) -> bool:
        return not self.evaluate(arg[0], variables)

    # -- resources ------------------------------------------------------------------------------

    def ensure(self, logical_id: str) -> dict[str, str]:
        if logical_id not in self.attributes:
            resource = self.resources[logical_id]
            if "Condition" in resource and not self.conditions[resource["Condition"]]:
                raise ValueError(f"{logical_id} is not created under its condition")
            creator = getattr(self, "create_" + resource["Type"].replace("::", "_").lower(), None)
            physical_name = f"{self.stack.name}-{logical_id}"
            properties = resource.get("Properties", {})
            self.attributes[logical_id] = (
                creator(logical_id, physical_name, properties) if creator else {"Ref": physical_name}
            )
            self.stack.physical_ids[logical_id] = self.attributes[logical_id]["Ref"]
        return self.attributes[logical_id]

    def create_aws_sqs_queue(self, logical_id: str, name: str, properties: dict[str, Any]) -> dict[str, str]:
        props = self.evaluate(properties)
        # Any: the names come from the template, checked by SQS (moto), not by the type stubs.
        attributes: dict[Any, str] = {
            key: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled", "DelaySeconds")
            if key in props
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.stack.region}:{ACCOUNT_ID}:{name}"
        return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}

    def create_aws_sqs_queuepolicy(
        self, logical_id: str, name: str, properties: dict[str, Any]
    ) -> dict[str, str]:
        props = self.evaluate(properties)
        for queue_url in props["Queues"]:
            self.sqs.set_queue_attributes(
                QueueUrl=queue_url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        return {"Ref": name}

    def create_aws_s3_bucket(self, logical_id: str, name: str, properties: dict[str, Any]) -> dict[str, str]:
        for dependency in _as_list(self.resources[logical_id].get("DependsOn")):
            self.ensure(dependency)
        props = self.evaluate(properties)
        bucket = props.get("BucketName", name.lower())
        location: dict[str, Any] = (
            {}
            if self.stack.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": self.stack.region}}
        )
        self.s3.create_bucket(Bucket=bucket, **location)
        if "VersioningConfiguration" in props:
            self.s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        if "BucketEncryption" in props:
            rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            self.s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                        for r in rules
                    ]
                },
            )
        if "PublicAccessBlockConfiguration" in props:
            self.s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        queues = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if queues:
            self.s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [{"QueueArn": q["Queue"], "Events": [q["Event"]]} for q in queues]
                },
            )
        return {"Ref": bucket, "Arn": f"arn:aws:s3:::{bucket}"}

    def create_aws_dynamodb_table(
        self, logical_id: str, name: str, properties: dict[str, Any]
    ) -> dict[str, str]:
        props = self.evaluate(properties)
        table = props.get("TableName", name)
        arguments = {
            "TableName": table,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        self.dynamodb.create_table(**arguments)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            self.dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
        return {"Ref": table, "Arn": f"arn:aws:dynamodb:{self.stack.region}:{ACCOUNT_ID}:table/{table}"}

    def create_aws_secretsmanager_secret(
        self, logical_id: str, name: str, properties: dict[str, Any]
    ) -> dict[str, str]:
        props = self.evaluate(properties)
        arn = self.secrets.create_secret(Name=name, SecretString=props.get("SecretString", "{}"))["ARN"]
        return {"Ref": arn, "Id": arn}

    def create_aws_logs_loggroup(
        self, logical_id: str, name: str, properties: dict[str, Any]
    ) -> dict[str, str]:
        props = self.evaluate(properties)
        group = props.get("LogGroupName", name)
        self.logs.create_log_group(logGroupName=group)
        if "RetentionInDays" in props:
            self.logs.put_retention_policy(logGroupName=group, retentionInDays=int(props["RetentionInDays"]))
        # As CloudFormation answers: GetAtt's Arn ends in ":*" (the template does not target it).
        return {"Ref": group, "Arn": f"arn:aws:logs:{self.stack.region}:{ACCOUNT_ID}:log-group:{group}:*"}

    def create_aws_iam_role(self, logical_id: str, name: str, properties: dict[str, Any]) -> dict[str, str]:
        # Not created: moto does not enforce IAM. Its ARN is what queue policies name.
        return {"Ref": name, "Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"}

    def create_aws_sns_topic(self, logical_id: str, name: str, properties: dict[str, Any]) -> dict[str, str]:
        arn = self.sns.create_topic(Name=name)["TopicArn"]
        return {"Ref": arn, "TopicArn": arn, "TopicName": name}

    def create_aws_events_rule(
        self, logical_id: str, name: str, properties: dict[str, Any]
    ) -> dict[str, str]:
        props = self.evaluate(properties)
        bus = props.get("EventBusName", "default")
        arn = self.events.put_rule(
            Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]), State="ENABLED"
        )["RuleArn"]
        targets: list[Any] = [{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", [])]
        if targets:
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return {"Ref": name, "Arn": arn}

    def create_aws_serverless_function(
        self, logical_id: str, name: str, properties: dict[str, Any]
    ) -> dict[str, str]:
        merged = _merge(self.template.get("Globals", {}).get("Function", {}), properties)
        props = self.evaluate({k: v for k, v in merged.items() if k not in ("Layers", "Policies")})
        self.stack.functions[logical_id] = LocalFunction(
            logical_id=logical_id,
            name=name,
            code_dir=PROJECT_ROOT / props["CodeUri"],
            handler=props["Handler"],
            timeout=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment={k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
            log_format=props.get("LoggingConfig", {}).get("LogFormat", "Text"),
            log_level=props.get("LoggingConfig", {}).get("ApplicationLogLevel"),
        )
        for event in props.get("Events", {}).values():
            if (
                event["Type"] in ("Schedule", "ScheduleV2")
                and event["Properties"].get("State", "ENABLED") == "ENABLED"
            ):
                self.stack.schedules.append(
                    Schedule(logical_id, _rate_seconds(event["Properties"]["ScheduleExpression"]))
                )
            if event["Type"] == "HttpApi":
                route = event["Properties"]
                self.stack.http_routes.append(HttpRoute(logical_id, route["Method"].upper(), route["Path"]))
            if event["Type"] != "SQS":
                continue
            queue_arn = event["Properties"]["Queue"]
            queue_name = queue_arn.rsplit(":", 1)[-1]
            self.stack.event_sources.append(
                EventSource(
                    function=logical_id,
                    queue_url=self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
                    batch_size=int(event["Properties"].get("BatchSize", 10)),
                    batching_window_seconds=int(event["Properties"].get("MaximumBatchingWindowInSeconds", 0)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in event["Properties"].get("FunctionResponseTypes", []),
                )
            )
        return {"Ref": name, "Arn": f"arn:aws:lambda:{self.stack.region}:{ACCOUNT_ID}:function:{name}"}

    def run(self) -> Stack:
        for logical_id, resource in self.resources.items():
            if "Condition" not in resource or self.conditions[resource["Condition"]]:
                self.ensure(logical_id)
        for name, output in self.template.get("Outputs", {}).items():
            self.stack.outputs[name] = str(self.evaluate(output["Value"]))
        return self.stack


def provision(
    stack_name: str = "portdocs",
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
    template_path: Path = TEMPLATE,
    endpoint_url: str | None = None,
) -> Stack:
    """Creates every resource the template declares; returns outputs, functions and event sources."""
    return _Provisioner(
        load_template(template_path), stack_name, region, parameters or {}, endpoint_url
    ).run()


def _rate_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours)\)", expression)
    if not match:
        raise ValueError(f"the sandbox runs rate(N minutes|hours) schedules only, not {expression!r}")
    return int(match.group(1)) * (60 if match.group(2).startswith("minute") else 3600)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
