"""``python -m medmesh.cli``: what ``medmesh up`` runs for each service process."""

from medmesh.cli import app

# Guarded: processes spawned by a service (synthetic jobs) import the main module again.
if __name__ == "__main__":
    app()
