"""Generation jobs: the queue (rows), the supervisor that runs them, their processes and output."""
