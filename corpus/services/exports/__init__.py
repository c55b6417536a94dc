"""Exports: policy-enforced, immutable, verifiable snapshots of a dataset's approved items.

``build`` (requests, previews, the build itself), ``selection`` (which items, under the policy),
``rows`` (the row format shared with the feed), ``merkle`` (the row hash tree) and ``verify``
(recomputing an export's hashes). Import from the submodules.
"""
