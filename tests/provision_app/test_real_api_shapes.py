"""Against AWS-shaped answers (botocore Stubber) where moto 5.2 drops what AWS returns."""

from __future__ import annotations

import json

from botocore.stub import Stubber

from configs.models import Config
from tasks.core.aws import connect
from tasks.resources.queues import dlq_attributes, ensure_queues, source_attributes


def test_queues_as_aws_returns_them_need_no_change(sandbox_cfg: Config) -> None:
    cfg = sandbox_cfg.model_copy(update={"queues": sandbox_cfg.queues[:1]})
    q = cfg.queues[0]
    aws = connect(cfg)
    sqs = aws.client("sqs", "us-east-1")
    base = "https://sqs.us-east-1.amazonaws.com/123456789012/"
    src_arn = "arn:aws:sqs:us-east-1:123456789012:shop-sandbox-orders"
    dlq_arn = src_arn + "-dlq"
    tags = {"app": "shop", "env": "sandbox", "component": "queues", "managed-by": "tierbook"}
    tags["cost-center"] = "demo"
    with Stubber(sqs) as stub:
        for name, attrs in (
            ("shop-sandbox-orders-dlq", dlq_attributes(q, src_arn)),
            ("shop-sandbox-orders", source_attributes(q, dlq_arn)),
        ):
            stub.add_response("get_queue_url", {"QueueUrl": base + name}, {"QueueName": name})
            # AWS answers with every attribute, JSON policies re-serialised its own way.
            returned = {**attrs, "QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{name}"}
            for key in ("RedrivePolicy", "RedriveAllowPolicy"):
                if key in returned:
                    returned[key] = json.dumps(json.loads(returned[key]), separators=(",", ":"))
            stub.add_response("get_queue_attributes", {"Attributes": returned})
            stub.add_response("list_queue_tags", {"Tags": tags})
        result = ensure_queues.fn(cfg, "primary")
        stub.assert_no_pending_responses()
    assert result.changes == []
