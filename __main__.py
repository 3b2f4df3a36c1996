"""The Pulumi program: validate this stack's config, build the integration, export its outputs."""

import pulumi

from infra.component import EncordS3Integration
from infra.config import load_settings

integration = EncordS3Integration("encord", load_settings())
for name, value in integration.stack_outputs.items():
    pulumi.export(name, value)
