"""``python -m medmesh.cli``: what ``medmesh up`` runs for each service process."""

from medmesh.cli import app

app()
