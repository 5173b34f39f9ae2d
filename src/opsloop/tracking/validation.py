"""Input checks other rooms share with tracking (keys, tag values, ids, artifact paths).

Each raises ``InvalidArgument`` (or ``PayloadTooLarge``) naming the offending field and value;
nothing here touches storage, and importing it stays light.
"""

from opsloop.tracking._validation import (
    MAX_KEY,
    MAX_NAME,
    MAX_TAG_VALUE,
    artifact_path,
    check_id,
    check_key,
    check_name,
    param_value,
    tag_value,
)

__all__ = [
    "MAX_KEY",
    "MAX_NAME",
    "MAX_TAG_VALUE",
    "artifact_path",
    "check_id",
    "check_key",
    "check_name",
    "param_value",
    "tag_value",
]
