"""The doctor's image check: an ECR image must exist before jobs try to pull it.

A missing image only shows once a job starts (CannotPullContainerError), after it waited for an
instance; checking first saves that wait.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from snakemake_executor_awsbatch.ops.checks import Check, Status, error_code, guard

if TYPE_CHECKING:
    from snakemake_executor_awsbatch.ops.doctor import Clients

_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def check_image(clients: Clients, image: str | None) -> list[Check]:
    """The job image: ECR images are looked up; others are only named."""
    if not image:
        return [Check("image", Status.SKIP, "no image given (--image)")]
    if clients.is_local:
        return [Check("image", Status.SKIP, "the local cloud runs commands on the host")]
    match = _ECR.match(image)
    if match is None:
        return [
            Check(
                "image",
                Status.WARN,
                f"{image} is not in ECR: not checked",
                "push it to ECR in the queue's region (docs/aws-setup.md, step 2) to avoid "
                "registry pull limits.",
            )
        ]
    if match["region"] != clients.region:
        return [
            Check(
                "image",
                Status.WARN,
                f"{image} is in {match['region']}, the queue in {clients.region}",
                "push the image to ECR in the queue's region (cross-region pulls are slower and "
                "cost data transfer).",
            )
        ]
    image_id = {"imageDigest": match["digest"]} if match["digest"] else {}
    if not image_id:
        image_id = {"imageTag": match["tag"] or "latest"}
    repo = match["repo"]

    def body() -> list[Check]:
        try:
            clients.ecr.describe_images(
                registryId=match["account"], repositoryName=repo, imageIds=[image_id]
            )
        except ClientError as exc:
            if error_code(exc) in ("RepositoryNotFoundException", "ImageNotFoundException"):
                return [
                    Check(
                        "image",
                        Status.FAIL,
                        f"{image} not found ({error_code(exc)})",
                        "build and push it: docker build -t <image> . && docker push <image> "
                        "(docs/aws-setup.md, step 2).",
                    )
                ]
            raise
        return [Check("image", Status.PASS, f"{image} exists in ECR")]

    return guard("image", "ecr:DescribeImages on the repository", body)
