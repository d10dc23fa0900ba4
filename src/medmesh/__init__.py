"""medmesh: an open-source healthcare backend."""
