"""The `cloud` setting picks the family; AWS says clearly it is not built yet."""

from tests.infra.stackrun import STACK_FILES, run_stacks


def test_cloud_switch_rejects_unknown_and_unbuilt_families(tmp_path):
    gcp_stack = next(f for f in STACK_FILES if "gcp" in f.name)
    aws_dir = tmp_path / "aws"
    bad_dir = tmp_path / "bad"
    aws_dir.mkdir()
    bad_dir.mkdir()
    (aws_rc, _, aws_err), = run_stacks([gcp_stack], {"kiosk:cloud": "aws"}, aws_dir).values()
    (bad_rc, _, bad_err), = run_stacks([gcp_stack], {"kiosk:cloud": "azure"}, bad_dir).values()
    assert aws_rc != 0 and "'aws' is not implemented yet" in aws_err, aws_err[-2000:]
    assert bad_rc != 0 and "kiosk:cloud must be one of" in bad_err, bad_err[-2000:]
