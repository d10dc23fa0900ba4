pytest_plugins = ["medmesh.platform.testing", "tests.synthetic.live_phi"]
