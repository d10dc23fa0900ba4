pytest_plugins = ["medmesh.platform.testing"]
