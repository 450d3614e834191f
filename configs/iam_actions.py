"""API operation -> IAM action: the prefix and the names that differ from the operation's.

Pure data. botocore names a service by its SDK name (``elbv2``) and an operation by its API
name (``ListObjectsV2``); an IAM policy names the service prefix and the action that
authorizes the operation (``elasticloadbalancing:...``, ``s3:ListBucket``). Sources: the
Service Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/
"""

from __future__ import annotations

# SDK service name -> IAM service prefix, where they differ.
PREFIX = {
    "elbv2": "elasticloadbalancing",
}

# (SDK service, operation) -> the IAM action that authorizes it, where the names differ;
# None when the operation needs no permission at all.
ACTION = {
    # "No permissions are required to perform this operation."
    # https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    ("sts", "GetCallerIdentity"): None,
    # S3's actions are named after the REST resource, not the SDK operation.
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    # A copy (and its multipart form) writes the target object and reads the source.
    ("s3", "CopyObject"): "s3:PutObject",
    ("s3", "UploadPartCopy"): "s3:PutObject",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    # SQS batch calls are authorized by their single-message action.
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    # CloudFront authorizes the tagged create as CreateDistribution (+ TagResource).
    ("cloudfront", "CreateDistributionWithTags"): "cloudfront:CreateDistribution",
}

# Actions an operation needs besides its own. CloudFront's tagged create also tags:
# https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CreateDistributionWithTags.html
ALSO = {
    ("cloudfront", "CreateDistributionWithTags"): ("cloudfront:TagResource",),
    ("s3", "CopyObject"): ("s3:GetObject",),
    ("s3", "UploadPartCopy"): ("s3:GetObject",),
}


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    """The IAM actions that authorize one API call (none for ``sts:GetCallerIdentity``)."""
    key = (service, operation)
    action = ACTION.get(key, f"{PREFIX.get(service, service)}:{operation}")
    return (() if action is None else (action,)) + ALSO.get(key, ())
