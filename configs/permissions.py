"""The IAM actions each runbook needs: pure data, read by ``tierbook iam-policy``.

Two parts per runbook, both checked by ``tests/iam/``:

* ``calls``: the IAM actions of the AWS API calls the runbook's steps make, every code path
  included (Aurora, ARC routing controls, CodeBuild, native SQS moves, which the sandbox does not
  run). The tests prove the list true both ways: every call a run on the sandbox makes is in it,
  and it equals what a scan of the steps' source finds (``tests/iam/calls.py``), so a call added
  to a step without its action here fails a test, and so does an action here no step calls.
* ``implicit``: actions AWS checks although the runbook never calls them by that name (a role
  passed to ECS, a KMS grant RDS makes on the caller's behalf...), each with the reason.

Names are IAM action names (``elasticloadbalancing:...``, ``s3:ListBucket``); how an API
operation maps to its action is in :mod:`configs.iam_actions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The runbook lock (tasks/core/locks.py): the DynamoDB table is made on first use, an item is the lock.
LOCK = (
    "dynamodb:CreateTable",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",  # the heartbeat renewing the lease
)

# Fencing on return (tasks/runbooks/failover/fencing.py), the first step of every runbook: the
# pending fences read in the DR lock table; when one is pending, the region probed and, once it
# answers, its services and autoscaling floor set to 0 and the record deleted. (The probe's other
# reads need no permission: an AccessDenied answer is an answer.)
FENCE_ON_RETURN = (
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:RegisterScalableTarget",
    "dynamodb:BatchGetItem",
    "dynamodb:DeleteItem",
    "ecs:DescribeServices",
    "ecs:ListClusters",  # the region probe
    "ecs:UpdateService",
)

# Restoring the network a game day cut off (tasks/runbooks/drills/isolation.py): the game day
# at its end, and the next game day or the readiness drill after a crash, put the AZ's subnets
# back on their recorded ACLs and delete the deny-all ACL (and the record: dynamodb:DeleteItem).
NETWORK_ISOLATION = (
    "ec2:DeleteNetworkAcl",
    "ec2:DescribeNetworkAcls",
    "ec2:ReplaceNetworkAclAssociation",
)

# A tierbook bucket converged (tasks/resources/buckets.py, _converge_bucket): made, then its
# public access block, ownership, encryption, versioning, lifecycle, policy and tags.
BUCKET = (
    "s3:CreateBucket",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:ListBucket",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
)

# The backup drill's staging bucket per region (ensure_drill_bucket): a bucket, and the ACL
# that lets ElastiCache export to it and restore from it.
DRILL_BUCKET = (*BUCKET, "s3:GetBucketAcl", "s3:PutBucketAcl")

# Failover and failback: readiness checks, fence, promote, scale up, flip DNS or ARC, verify.
REGION_MOVE = (
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:RegisterScalableTarget",
    # The DNS switch: its alarm read and its metric written, in the DR region.
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:PutMetricData",
    "ecr:DescribeImages",
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "ecs:ListClusters",  # the region probe
    "ecs:UpdateService",
    "elasticache:DescribeGlobalReplicationGroups",
    "elasticache:DescribeReplicationGroups",
    "elasticache:FailoverGlobalReplicationGroup",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "rds:DescribeDBClusters",
    "rds:DescribeDBInstances",
    "rds:DescribeGlobalClusters",
    "rds:FailoverGlobalCluster",
    "rds:ModifyDBInstance",
    "rds:PromoteReadReplica",
    "rds:PromoteReadReplicaDBCluster",
    "route53-recovery-cluster:GetRoutingControlState",
    "route53-recovery-cluster:UpdateRoutingControlStates",
    "route53:ChangeResourceRecordSets",
    "route53:ChangeTagsForResource",
    "route53:CreateHealthCheck",
    "route53:GetChange",
    "route53:ListHealthChecks",
    "route53:ListHostedZones",  # the probe of Route 53's control plane
    "route53:ListHostedZonesByName",
    "route53:ListResourceRecordSets",
    "route53:ListTagsForResources",
    "route53:UpdateHealthCheck",
    "secretsmanager:DescribeSecret",
    *LOCK,
)

# The planned moves (switchover, failback, the region drill): a region move that confirms the
# replica's lag after the fence, switches an Aurora global database over, and re-protects the
# stack with a replica of the new writer in the region left.
PLANNED_MOVE = (
    *REGION_MOVE,
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "rds:CreateDBInstanceReadReplica",
    "rds:SwitchoverGlobalCluster",
)
# Pilot light: a move to DR creates the services there, their autoscaling and the alarms
# (provision's own steps, on what DR holds); a move home removes them (destroy's own steps).
LIGHT_UP = (
    "application-autoscaling:DescribeScalingPolicies",
    "application-autoscaling:PutScalingPolicy",
    "cloudwatch:PutMetricAlarm",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ecs:CreateService",
    "ecs:TagResource",
    # backup and restore: the newest snapshot copy, task definitions on the restored database
    "ecs:RegisterTaskDefinition",
    "rds:DescribeDBSnapshots",
)
PUT_OUT = (
    "application-autoscaling:DeleteScalingPolicy",
    "application-autoscaling:DeregisterScalableTarget",
    "cloudwatch:DeleteAlarms",
    "ecs:DeleteService",
    "rds:DeleteDBSnapshot",  # backup and restore: copies beyond dr.snapshot_copy.keep
)
# Backup and restore: a fresh snapshot of the primary copied to DR, the source deleted.
SNAPSHOT_COPY = (
    "kms:DescribeKey",
    "rds:CopyDBSnapshot",
    "rds:CreateDBSnapshot",
    "rds:DeleteDBSnapshot",
    "rds:DescribeDBSnapshots",
)
# Deleting the restored DR database with its final snapshot (the newest copy) at failback.
PUT_AWAY_IMPLICIT = {
    "rds:CreateDBSnapshot": (
        "DeleteDBInstance with a final snapshot (backup and restore: the DR database put away "
        "as the newest copy) is also authorized as rds:CreateDBSnapshot"
    ),
}
# Home again: the primary's readers re-pointed at the new writer (provision's own step).
HOME = (
    "rds:AddTagsToResource",
    "rds:CreateDBInstance",
    "rds:DeleteDBInstance",
)

# RDS and ElastiCache authorize "tag on create" (a Tags parameter) as a separate action.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-create-and-tag.html
TAG_ON_CREATE_CACHE = (
    "ElastiCache checks elasticache:AddTagsToResource when a create call carries Tags"
)
TAG_ON_CREATE_RDS = "RDS checks rds:AddTagsToResource when a create or copy call carries Tags"
# RDS (and ElastiCache) make a KMS grant on the caller's behalf to use tierbook's customer
# managed key: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.Encryption.Keys.html
KMS_GRANT = "RDS and ElastiCache create a grant on tierbook's KMS key as the caller"
KMS_DESCRIBE = "RDS and ElastiCache describe the KMS key they are given, as the caller"
# A replica made in the region a planned move left: encrypted with that region's key.
REPROTECT_IMPLICIT = {"kms:CreateGrant": KMS_GRANT, "kms:DescribeKey": KMS_DESCRIBE}


@dataclass(frozen=True)
class Permissions:
    calls: tuple[str, ...]
    implicit: dict[str, str] = field(default_factory=dict)  # action -> why it is needed

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self.calls) | frozenset(self.implicit)


RUNBOOKS: dict[str, Permissions] = {
    "preflight": Permissions(calls=("ec2:DescribeAvailabilityZones",)),
    "provision": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            *SNAPSHOT_COPY,  # backup and restore: the first copy
            "route53:ListHostedZones",  # the region probe of us-east-1 (fencing on return)
            "acm:DescribeCertificate",
            "acm:ListCertificates",
            "acm:ListTagsForCertificate",
            "acm:RequestCertificate",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:RegisterScalableTarget",
            "cloudfront:CreateDistribution",
            "cloudfront:CreateOriginAccessControl",
            "cloudfront:GetDistributionConfig",
            "cloudfront:ListDistributions",
            "cloudfront:ListOriginAccessControls",
            "cloudfront:TagResource",
            "cloudfront:UpdateDistribution",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:PutMetricData",  # arms the DNS switch (PrimaryActive = 1)
            "ec2:AllocateAddress",
            "ec2:AssociateRouteTable",
            "ec2:AttachInternetGateway",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateFlowLogs",
            "ec2:CreateInternetGateway",
            "ec2:CreateNatGateway",
            "ec2:CreateRoute",
            "ec2:CreateRouteTable",
            "ec2:CreateSecurityGroup",
            "ec2:CreateSubnet",
            "ec2:CreateTags",
            "ec2:CreateVpc",
            "ec2:CreateVpcEndpoint",
            "ec2:DeleteRoute",
            "ec2:DescribeFlowLogs",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeManagedPrefixLists",
            "ec2:DescribeNatGateways",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeVpcs",
            "ec2:ModifySubnetAttribute",
            "ec2:ModifyVpcAttribute",
            "ec2:ModifyVpcEndpoint",
            "ec2:ReplaceRoute",
            "ec2:ReplaceRouteTableAssociation",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ecr:CreateRepository",
            "ecr:DescribeRegistry",
            "ecr:DescribeRepositories",
            "ecr:ListTagsForResource",
            "ecr:PutImageScanningConfiguration",
            "ecr:PutImageTagMutability",
            "ecr:PutReplicationConfiguration",
            "ecr:TagResource",
            "ecs:CreateCluster",
            "ecs:CreateService",
            "ecs:DescribeClusters",
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:RegisterTaskDefinition",
            "ecs:TagResource",
            "ecs:UpdateCluster",
            "ecs:UpdateService",
            "elasticache:CreateCacheSubnetGroup",
            "elasticache:CreateGlobalReplicationGroup",
            "elasticache:CreateReplicationGroup",
            "elasticache:DescribeCacheClusters",
            "elasticache:DescribeCacheSubnetGroups",
            "elasticache:DescribeGlobalReplicationGroups",
            "elasticache:DescribeReplicationGroups",
            "elasticache:IncreaseReplicaCount",
            "elasticache:ModifyCacheSubnetGroup",
            "elasticache:ModifyGlobalReplicationGroup",  # an adopted datastore's description
            "elasticache:ModifyReplicationGroup",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTags",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:SetSubnets",
            "iam:CreateRole",
            "iam:DeleteRolePolicy",
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:TagRole",
            "iam:UpdateAssumeRolePolicy",
            "kms:CreateAlias",
            "kms:CreateKey",
            "kms:DescribeKey",
            "kms:EnableKeyRotation",
            "kms:GetKeyRotationStatus",
            "kms:ListResourceTags",
            "kms:TagResource",
            "logs:CreateLogGroup",
            "logs:DescribeLogGroups",
            "logs:ListTagsForResource",
            "logs:PutRetentionPolicy",
            "logs:TagResource",
            "rds:AddTagsToResource",
            "rds:CreateDBCluster",
            "rds:CreateDBInstance",
            "rds:CreateDBInstanceReadReplica",
            "rds:CreateDBSubnetGroup",
            "rds:CreateGlobalCluster",
            "rds:DeleteDBInstance",  # a reader left copying a database a region move set aside
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:DescribeDBSubnetGroups",
            "rds:DescribeGlobalClusters",
            "rds:ModifyDBCluster",
            "rds:ModifyDBInstance",
            "rds:ModifyDBSubnetGroup",
            "route53:ChangeResourceRecordSets",
            "route53:ChangeTagsForResource",
            "route53:CreateHealthCheck",
            "route53:CreateHostedZone",
            "route53:ListHealthChecks",
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "route53:ListTagsForResources",
            "route53:UpdateHealthCheck",
            *BUCKET,
            "secretsmanager:DescribeSecret",
            "secretsmanager:ReplicateSecretToRegions",
            "sqs:CreateQueue",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ListQueueTags",
            "sqs:SetQueueAttributes",
            "sqs:TagQueue",
            "wafv2:AssociateWebACL",
            "wafv2:CreateWebACL",
            "wafv2:GetWebACL",
            "wafv2:GetWebACLForResource",
            "wafv2:ListTagsForResource",
            "wafv2:ListWebACLs",
            "wafv2:TagResource",
            "wafv2:UpdateWebACL",
        ),
        implicit={
            "iam:PassRole": "task definitions name the execution and task roles; flow logs "
            "deliver with their role (roles limited to the stack's, see the policy)",
            "iam:CreateServiceLinkedRole": "the first ECS service, load balancer, RDS instance, "
            "ElastiCache group, ECS autoscaling target or ECR replication rule in an account "
            "creates its service-linked role",
            "kms:CreateGrant": KMS_GRANT,
            "kms:Decrypt": "Secrets Manager decrypts the RDS-managed master secret under "
            "tierbook's key when it replicates it to the DR region",
            "kms:Encrypt": "Secrets Manager encrypts the replica secret under the DR key",
            "kms:GenerateDataKey": "RDS (ManageMasterUserPassword) and Secrets Manager encrypt "
            "the master secret under tierbook's key",
            "secretsmanager:CreateSecret": "RDS creates the master user secret as the caller "
            "(ManageMasterUserPassword)",
            "secretsmanager:TagResource": "RDS tags the master user secret it creates",
            "secretsmanager:RotateSecret": "RDS turns on rotation of the master user secret",
            "elasticache:AddTagsToResource": TAG_ON_CREATE_CACHE,
            "elasticloadbalancing:SetWebACL": "wafv2:AssociateWebACL on a load balancer also "
            "checks this action on the load balancer",
            "cloudwatch:DeleteAlarms": "Application Auto Scaling replaces the alarms of a "
            "target-tracking policy as the caller when the policy changes",
        },
    ),
    "deploy": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            "codebuild:BatchGetBuilds",
            "codebuild:BatchGetProjects",
            "codebuild:CreateProject",
            "codebuild:StartBuild",
            "ecr:DescribeImageScanFindings",
            "ecr:DescribeImages",
            "ecr:GetAuthorizationToken",
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:DescribeTasks",
            "ecs:ListTasks",
            "ecs:RegisterTaskDefinition",
            "ecs:UpdateService",
            "elasticloadbalancing:DescribeTargetHealth",
            "iam:CreateRole",
            "iam:GetRole",
            "iam:PutRolePolicy",
            "logs:GetLogEvents",
            *LOCK,
        ),
        implicit={
            "iam:PassRole": "the new task-definition revision names the execution and task "
            "roles; a CodeBuild project made by tierbook names its role",
            "ecr:BatchCheckLayerAvailability": "--source docker: the Docker engine pushes the "
            "image with the authorization token tierbook got",
            "ecr:InitiateLayerUpload": "--source docker: layer upload",
            "ecr:UploadLayerPart": "--source docker: layer upload",
            "ecr:CompleteLayerUpload": "--source docker: layer upload",
            "ecr:PutImage": "--source docker: the pushed manifest",
        },
    ),
    "rollback": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:DescribeTasks",
            "ecs:ListTaskDefinitions",
            "ecs:ListTasks",
            "ecs:RegisterTaskDefinition",  # pilot light: DR's revision back on the primary's image
            "ecs:UpdateService",
            "elasticloadbalancing:DescribeTargetHealth",
            *LOCK,
        )
    ),
    # ``prepare`` (the DNS switch's alarm, for a stack tierbook did not build) and a pilot light
    # (its alarms) both put metric alarms.
    "failover": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            *REGION_MOVE,
            *LIGHT_UP,
            "dynamodb:PutItem",
            "rds:RestoreDBInstanceFromDBSnapshot",  # backup and restore
        )
    ),
    "switchover": Permissions(
        calls=(*FENCE_ON_RETURN, *PLANNED_MOVE, *LIGHT_UP),
        implicit={**REPROTECT_IMPLICIT, "rds:AddTagsToResource": TAG_ON_CREATE_RDS},
    ),
    "failback": Permissions(
        calls=(*FENCE_ON_RETURN, *PLANNED_MOVE, *LIGHT_UP, *PUT_OUT, *HOME),
        implicit={**REPROTECT_IMPLICIT, **PUT_AWAY_IMPLICIT},
    ),
    # Out to DR and home again; the databases the moves set aside are deleted at the end.
    "drill-region": Permissions(
        calls=(*FENCE_ON_RETURN, *PLANNED_MOVE, *LIGHT_UP, *PUT_OUT, *HOME),
        implicit={**REPROTECT_IMPLICIT, **PUT_AWAY_IMPLICIT},
    ),
    "snapshot-copy": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            *SNAPSHOT_COPY,
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
        ),
        implicit={"rds:AddTagsToResource": TAG_ON_CREATE_RDS},
    ),
    "redrive": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            "s3:PutObject",
            "sqs:CancelMessageMoveTask",
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ListDeadLetterSourceQueues",
            "sqs:ListMessageMoveTasks",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
            "sqs:StartMessageMoveTask",
            *LOCK,
        )
    ),
    "backup-drill": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            *DRILL_BUCKET,
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",  # DR's network, for the temporary cache
            "ec2:DescribeVpcs",
            # the cache's backup: exported to S3, copied to DR, a temporary group seeded from it
            "elasticache:CopySnapshot",
            "elasticache:CreateCacheSubnetGroup",
            "elasticache:CreateReplicationGroup",
            "elasticache:CreateSnapshot",
            "elasticache:DeleteCacheSubnetGroup",
            "elasticache:DeleteReplicationGroup",
            "elasticache:DeleteSnapshot",
            "elasticache:DescribeReplicationGroups",
            "elasticache:DescribeSnapshots",
            "kms:DescribeKey",
            "rds:CopyDBSnapshot",
            "rds:CreateDBSnapshot",
            "rds:DeleteDBInstance",
            "rds:DeleteDBSnapshot",
            "rds:DescribeDBInstances",
            "rds:DescribeDBSnapshots",
            "rds:RestoreDBInstanceFromDBSnapshot",
            "s3:AbortMultipartUpload",  # S3's managed copy of a large export
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:GetObjectAcl",
            "s3:PutObject",
            "s3:PutObjectAcl",  # ElastiCache may read the copy in DR
        ),
        implicit={
            "s3:ListAllMyBuckets": "ElastiCache's CopySnapshot to a bucket checks the bucket "
            "as the caller",
            "kms:CreateGrant": "RDS copies the snapshot across regions and restores it under "
            "tierbook's keys with grants made as the caller",
            "rds:AddTagsToResource": TAG_ON_CREATE_RDS,
            "elasticache:AddTagsToResource": TAG_ON_CREATE_CACHE,
        },
    ),
    "game-day": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            *NETWORK_ISOLATION,
            "cloudwatch:DescribeAlarms",
            # --isolate-network: the AZ's subnets found by the address plan, the deny-all ACL
            "ec2:CreateNetworkAcl",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
            "ecs:DescribeServices",
            "ecs:DescribeTasks",
            "ecs:ListTasks",
            "ecs:StopTask",
            "elasticache:DescribeReplicationGroups",
            "elasticache:TestFailover",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:FailoverDBCluster",
            "rds:RebootDBInstance",
            *LOCK,
        ),
        implicit={
            "ec2:CreateTags": "EC2 authorizes the tags of a create call (TagSpecifications on "
            "the deny-all network ACL) as ec2:CreateTags",
        },
    ),
    "drill-readiness": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            *NETWORK_ISOLATION,
            # The failover's readiness checks, and the scorecard item (no lock: it reads only).
            "rds:DescribeDBSnapshots",  # backup and restore: the newest copy's age
            "cloudwatch:DescribeAlarms",  # the DNS switch's alarm in DR
            "cloudwatch:GetMetricStatistics",
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "ecr:DescribeImages",
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:ListClusters",  # the region probe
            # the session cache's Global Datastore, as DR sees it
            "elasticache:DescribeGlobalReplicationGroups",
            "elasticache:DescribeReplicationGroups",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTargetGroups",
            "rds:DescribeDBClusters",
            "rds:DescribeGlobalClusters",
            "rds:DescribeDBInstances",
            "route53-recovery-cluster:GetRoutingControlState",
            "route53:ListHealthChecks",
            "route53:ListHostedZones",  # the probe of Route 53's control plane
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "route53:ListTagsForResources",
            "secretsmanager:DescribeSecret",
        )
    ),
    "audit": Permissions(
        calls=(
            "dynamodb:BatchGetItem",  # a pending fence, reported (the audit changes nothing)
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:ListServices",
            "elasticache:DescribeReplicationGroups",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTargetGroups",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:DescribeGlobalClusters",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        )
    ),
    "destroy": Permissions(
        calls=(
            *FENCE_ON_RETURN,
            "route53:ListHostedZones",  # the region probe of us-east-1 (fencing on return)
            "acm:DeleteCertificate",
            "acm:ListCertificates",
            "acm:ListTagsForCertificate",
            "application-autoscaling:DeleteScalingPolicy",
            "application-autoscaling:DeregisterScalableTarget",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
            "cloudfront:DeleteDistribution",
            "cloudfront:DeleteOriginAccessControl",
            "cloudfront:GetDistribution",
            "cloudfront:GetDistributionConfig",
            "cloudfront:GetOriginAccessControl",
            "cloudfront:ListDistributions",
            "cloudfront:ListOriginAccessControls",
            "cloudfront:UpdateDistribution",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms",
            "dynamodb:CreateTable",
            "dynamodb:DeleteItem",
            "dynamodb:DeleteTable",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "ec2:DeleteFlowLogs",
            "ec2:DeleteInternetGateway",
            "ec2:DeleteNatGateway",
            "ec2:DeleteRouteTable",
            "ec2:DeleteSecurityGroup",
            "ec2:DeleteSubnet",
            "ec2:DeleteVpc",
            "ec2:DeleteVpcEndpoints",
            "ec2:DescribeAddresses",
            "ec2:DescribeFlowLogs",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeNatGateways",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeVpcs",
            "ec2:DetachInternetGateway",
            "ec2:DisassociateAddress",
            "ec2:DisassociateRouteTable",
            "ec2:ReleaseAddress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ecr:DeleteRepository",
            "ecr:DescribeRepositories",
            "ecs:DeleteCluster",
            "ecs:DeleteService",
            "ecs:DeregisterTaskDefinition",
            "ecs:DescribeClusters",
            "ecs:DescribeServices",
            "ecs:ListTaskDefinitions",
            "ecs:UpdateService",
            "elasticache:DeleteCacheSubnetGroup",
            "elasticache:DeleteGlobalReplicationGroup",
            "elasticache:DeleteReplicationGroup",
            "elasticache:DescribeCacheSubnetGroups",
            "elasticache:DescribeGlobalReplicationGroups",
            "elasticache:DescribeReplicationGroups",
            "elasticache:DisassociateGlobalReplicationGroup",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "iam:DeleteRole",
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:GetRole",
            "iam:ListAttachedRolePolicies",
            "iam:ListInstanceProfilesForRole",
            "iam:ListRolePolicies",
            "iam:RemoveRoleFromInstanceProfile",
            "kms:DeleteAlias",
            "kms:DescribeKey",
            "kms:ScheduleKeyDeletion",
            "logs:DeleteLogGroup",
            "logs:DescribeLogGroups",
            "rds:DeleteDBCluster",
            "rds:DeleteDBInstance",
            "rds:DeleteDBSubnetGroup",
            "rds:DeleteGlobalCluster",
            "rds:DescribeDBClusterSnapshots",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:DescribeDBSnapshots",
            "rds:DescribeDBSubnetGroups",
            "rds:DescribeGlobalClusters",
            "rds:ModifyDBCluster",
            "rds:ModifyDBInstance",
            "rds:RemoveFromGlobalCluster",
            "route53:ChangeResourceRecordSets",
            "route53:DeleteHealthCheck",
            "route53:ListHealthChecks",
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "route53:ListTagsForResources",
            "s3:DeleteBucket",
            "s3:DeleteObject",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "secretsmanager:DescribeSecret",
            "secretsmanager:RemoveRegionsFromReplication",
            "sqs:DeleteQueue",
            "sqs:GetQueueUrl",
            "wafv2:DeleteWebACL",
            "wafv2:DisassociateWebACL",
            "wafv2:GetWebACLForResource",
            "wafv2:ListWebACLs",
        ),
        implicit={
            "rds:CreateDBClusterSnapshot": (
                "DeleteDBCluster with a final snapshot (the default, Aurora) is also authorized "
                "as rds:CreateDBClusterSnapshot"
            ),
            "rds:CreateDBSnapshot": (
                "DeleteDBInstance with a final snapshot (the default) is also authorized as "
                "rds:CreateDBSnapshot"
            ),
            "rds:AddTagsToResource": TAG_ON_CREATE_RDS + " (the final snapshot copies the tags)",
            "s3:DeleteObjectVersion": (
                "DeleteObjects naming a VersionId (emptying a versioned bucket) is authorized as "
                "s3:DeleteObjectVersion"
            ),
        },
    ),
}

# What the CLI also accepts, as ``tierbook drill backup`` names it, -> the runbook's name.
ALIASES = {
    "drill-backup": "backup-drill",
    "drill-gameday": "game-day",
    "gameday": "game-day",
    "readiness": "drill-readiness",
    "region": "drill-region",
}

# Where each runbook starts in the source: its Prefect flow (the tests scan from there).
FLOWS = {
    "preflight": "flows.preflight.preflight",
    "provision": "flows.provision.provision",
    "deploy": "flows.deploy.deploy",
    "rollback": "flows.deploy.rollback",
    "failover": "flows.failover.failover",
    "switchover": "flows.failover.switchover",
    "failback": "flows.failover.failback",
    "drill-region": "flows.region_drill.region_drill",
    "redrive": "flows.redrive.redrive",
    "backup-drill": "flows.drills.backup_drill",
    "game-day": "flows.drills.game_day",
    "drill-readiness": "flows.readiness.readiness_drill",
    "audit": "flows.audit.audit",
    "destroy": "flows.destroy.destroy",
    "snapshot-copy": "flows.snapshot_copy.snapshot_copy",
}
