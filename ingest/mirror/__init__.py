"""Mirroring: a sync that also removes, replaces and re-points, not only adds.

`diff` decides (pure: what each scanned entry is to the items a previous sync left, which
gone item moved where, whether the limits allow it); `apply` carries the decisions out in
Encord, each one recorded in the run state as an intent before and done after.
"""
