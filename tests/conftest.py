import os

# The suite imports phi's sources, not their compiled build (coverage is measured on them):
# tests/phi/test_native.py compares the two, and .ci/run runs phi's tests again with
# MEDMESH_NATIVE=on. Set before anything imports medmesh.phi.
os.environ.setdefault("MEDMESH_NATIVE", "off")  # noqa: TID251

pytest_plugins = ["medmesh.platform.testing", "tests.synthetic.live_phi"]
