"""The image data layer: every command reads, lists, resizes and pairs images through this package, so that all of
them see a photo the same way (the rules and their reasons: docs/data.md).

- :mod:`scgan.data.imageio`: decoding files to uint8 RGB, the gray rule, tensors, writing PNGs.
- :mod:`scgan.data.listing`: folders, list files, the embedded samples, labels, scanning, pairing by name.
- :mod:`scgan.data.resize`: resize policies and the decode-and-resize path of the evaluation commands.
- :mod:`scgan.data.dataset`: the training/inference data set.

``scgan.data`` is the public front: import the names below from it.
"""

from __future__ import annotations

from scgan.data.dataset import DatasetImageReadError, ImageDataset, load_batch
from scgan.data.imageio import (
    GRAY_CHROMA_THRESHOLD,
    ImageEntry,
    chroma_p99,
    is_gray,
    load_image,
    save_image,
    to_tensor,
    to_uint8,
)
from scgan.data.listing import (
    IMAGE_EXTENSIONS,
    SAMPLE_NAMES,
    ScanResult,
    attach_labels,
    list_images,
    load_labels,
    name_stem,
    output_name,
    pair_by_name,
    sample_entries,
    scan_images,
)
from scgan.data.resize import (
    MAX_NATIVE_PIXELS,
    RESIZE_POLICIES,
    ResizePolicy,
    get_resize_policy,
    load_for_protocol,
    resize_bilinear_opencv,
    resize_image,
    resize_policy_info,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "GRAY_CHROMA_THRESHOLD",
    "SAMPLE_NAMES",
    "RESIZE_POLICIES",
    "ImageEntry",
    "ResizePolicy",
    "ScanResult",
    "ImageDataset",
    "DatasetImageReadError",
    "load_image",
    "load_for_protocol",
    "MAX_NATIVE_PIXELS",
    "chroma_p99",
    "is_gray",
    "list_images",
    "sample_entries",
    "load_labels",
    "attach_labels",
    "scan_images",
    "get_resize_policy",
    "resize_image",
    "resize_policy_info",
    "resize_bilinear_opencv",
    "to_tensor",
    "to_uint8",
    "save_image",
    "pair_by_name",
    "name_stem",
    "output_name",
    "load_batch",
]
