"""How TF-Serving gets its models on AWS: an `aws s3 sync` sidecar.

TF-Serving 2.7 and later no longer read s3:// (the S3 filesystem moved to
tensorflow-io, which the model server does not load:
https://github.com/tensorflow/serving/issues/1963). The official AWS CLI
image copies `models/` into an emptyDir TF-Serving reads; the pod's Pod
Identity role may read only `models/`.
"""

from __future__ import annotations

import pulumi

from components.k8s.tf_serving import ModelSync
from components.shapes import MODELS

# --delete mirrors removals, as TF-Serving reading the bucket directly would
# see them; --exact-timestamps is not needed: objects are immutable versions.
COPY_COMMAND = 'aws s3 sync "$KIOSK_MODELS_SOURCE" "$KIOSK_MODELS_DIR" --delete --no-progress --only-show-errors'


def s3_model_sync(bucket: pulumi.Input[str], region: str, image: str, interval_seconds: int) -> ModelSync:
    """The ModelSync of TfServing for a kiosk bucket on S3."""
    return ModelSync(
        image=image,
        copy_command=COPY_COMMAND,
        interval_seconds=interval_seconds,
        env={
            "KIOSK_MODELS_SOURCE": pulumi.Output.from_input(bucket).apply(
                lambda b: f"s3://{b}/{MODELS.rstrip('/')}"
            ),
            "AWS_REGION": region,
        },
    )
