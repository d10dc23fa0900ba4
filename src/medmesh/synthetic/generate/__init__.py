"""Small runs answered synchronously: POST /v1/generate and POST /v1/realism."""
