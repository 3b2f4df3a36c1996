"""standins/pulumi_offline.py: stacks run one after another in one process without mixing."""

from __future__ import annotations

import pytest
from stack_harness import ROLE, FakeAws, run_stack

from standins.pulumi_offline import load_stack_config, run_program


class FailingAws(FakeAws):
    def new_resource(self, args):
        if args.typ == ROLE:
            raise RuntimeError("the cloud said no")
        return super().new_resource(args)


def test_exports_and_resources_do_not_pile_up_across_runs():
    first = run_stack("prod")
    with_mrap = run_stack("dev", {"multiRegionAccessPoint": True})
    adopted = run_stack("prod")
    assert "mrapArn" in with_mrap.outputs and "mrapArn" not in adopted.outputs
    assert sorted((r.type, r.name) for r in adopted.resources) == sorted(
        (r.type, r.name) for r in first.resources
    )


def test_a_failed_run_does_not_poison_the_next():
    config = load_stack_config("dev", {"encordPrincipal": "999988887777"}, {"externalId": "abc"})
    with pytest.raises(RuntimeError, match="the cloud said no"):
        run_program(config, FailingAws())
    assert run_stack("dev").outputs["roleName"] == "encord-s3-dev"


def test_config_comes_from_the_stack_file_with_overrides_on_top():
    config = load_stack_config("prod", {"allowWrite": True}, {"externalId": "abc"})
    assert config.values["aws:region"] == "us-east-1"
    assert config.values["encord-s3:createBucket"] == "false"  # as the CLI passes it
    assert config.values["encord-s3:prefixes"] == '["annotation/images/", "annotation/videos/"]'
    assert config.values["encord-s3:allowWrite"] == "true"
    assert config.secret_keys == {"encord-s3:externalId"}
