"""`make demo`: the whole journey on this machine, with no cloud account.

moto stands in for AWS (IAM authorization on), the sandbox for Encord. The real Pulumi
program is applied to moto through the bridge, the integration is registered in the sandbox
the way a user does it in Encord's web app, a sample corpus is uploaded, and the real
`python -m ingest run` imports it into a Dataset and verifies it.
"""

from demo.journey import main

raise SystemExit(main())
