"""Events: written with each state change; retrieved and listed under ``/v1/events``."""
