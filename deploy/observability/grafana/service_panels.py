"""The domain panels of auth, phi, synthetic and payments (devices': ``devices_panels.py``)."""

from __future__ import annotations

from dashboard_model import RATE, Panel, ServiceDashboard

ON_PHI = 'service="phi"'
INSTANCE = "/fhir/{resource_type}/{resource_id}"
TYPE = "/fhir/{resource_type}"
SEARCH = "/fhir/{resource_type}(/_search)?"
PAYMENT_INTENT = "payments[.]payment_intent[.]"

AUTH = ServiceDashboard(
    name="auth",
    title="auth-service",
    domain_panels=[
        Panel(
            "Tokens issued by grant type",
            {
                "{{grant_type}}": "sum by (grant_type) "
                f"(rate(medmesh_auth_tokens_issued_total[{RATE}]))"
            },
            unit="reqps",
        ),
        Panel(
            "Login failures by reason",
            {"{{reason}}": f"sum by (reason) (rate(medmesh_auth_login_failures_total[{RATE}]))"},
            unit="reqps",
            description="Failed logins; a sustained rise may be credential stuffing.",
        ),
        Panel(
            "Rejected token requests by error",
            {
                "{{error}}": "sum by (error) "
                f"(rate(medmesh_auth_token_requests_rejected_total[{RATE}]))"
            },
            unit="reqps",
        ),
        Panel(
            "Active signing key age",
            {"age": "max(medmesh_auth_signing_key_age_seconds)"},
            unit="s",
            kind="stat",
            description="Rotate before MEDMESH_AUTH_KEY_ROTATION_DAYS (90 by default; alert "
            "MedmeshAuthSigningKeyRotationOverdue).",
            thresholds=(("green", None), ("orange", 60 * 86400), ("red", 90 * 86400)),
        ),
    ],
)

PHI = ServiceDashboard(
    name="phi",
    title="phi-service (FHIR store)",
    # phi's FHIR interactions are its routes: most panels slice the generic RED and audit
    # metrics by FHIR route template.
    domain_panels=[
        Panel(
            "FHIR interactions per second",
            {
                "read": f'sum(rate(medmesh_http_requests_total{{{ON_PHI},method="GET",'
                f'route="{INSTANCE}"}}[{RATE}]))',
                "search": f'sum(rate(medmesh_http_requests_total{{{ON_PHI},route=~"{SEARCH}"}}'
                f"[{RATE}]))",
                "create": f'sum(rate(medmesh_http_requests_total{{{ON_PHI},method="POST",'
                f'route="{TYPE}"}}[{RATE}]))',
                "update": f'sum(rate(medmesh_http_requests_total{{{ON_PHI},method="PUT"}}[{RATE}]))',
                "delete": f'sum(rate(medmesh_http_requests_total{{{ON_PHI},method="DELETE"}}'
                f"[{RATE}]))",
                "transaction/batch": f"sum(rate(medmesh_http_requests_total{{{ON_PHI},"
                f'method="POST",route="/fhir"}}[{RATE}]))',
                "Patient everything": f"sum(rate(medmesh_http_requests_total{{{ON_PHI},"
                f'route=~".*[$]everything"}}[{RATE}]))',
                "history": f'sum(rate(medmesh_http_requests_total{{{ON_PHI},route=~".*_history.*"}}'
                f"[{RATE}]))",
            },
            unit="reqps",
        ),
        Panel(
            "Refused FHIR requests by status",
            {
                "{{status}}": "sum by (status) (rate(medmesh_http_requests_total"
                f'{{{ON_PHI},route=~"/fhir.*",status=~"4.."}}[{RATE}]))'
            },
            unit="reqps",
            description="403: scope, compartment or consent refused the access; 412: stale "
            "If-Match; 422/400: invalid resources. A rise in 403 may be a probing client.",
        ),
        Panel(
            "p95 latency: read, search, transaction",
            {
                "read": "histogram_quantile(0.95, sum by (le) (rate("
                f'medmesh_http_request_duration_seconds_bucket{{{ON_PHI},method="GET",'
                f'route="{INSTANCE}"}}[{RATE}])))',
                "search": "histogram_quantile(0.95, sum by (le) (rate("
                f'medmesh_http_request_duration_seconds_bucket{{{ON_PHI},route=~"{SEARCH}"}}'
                f"[{RATE}])))",
                "transaction/batch": "histogram_quantile(0.95, sum by (le) (rate("
                f'medmesh_http_request_duration_seconds_bucket{{{ON_PHI},method="POST",'
                f'route="/fhir"}}[{RATE}])))',
            },
            unit="s",
        ),
        Panel(
            "Audit records per FHIR request",
            {
                "records/request": f"sum(rate(medmesh_audit_records_total{{{ON_PHI}}}[{RATE}]))"
                f' / sum(rate(medmesh_http_requests_total{{{ON_PHI},route=~"/fhir.*"}}[{RATE}]))',
            },
            description="Every FHIR read, search, write, transaction entry and export is "
            "audited: about 1 per request, more for transactions; near 0 means auditing "
            "stopped.",
        ),
        Panel(
            "Audit group commit size",
            {
                "p50": "histogram_quantile(0.5, sum by (le) (rate("
                f"medmesh_audit_batch_size_bucket{{{ON_PHI}}}[{RATE}])))",
                "p95": "histogram_quantile(0.95, sum by (le) (rate("
                f"medmesh_audit_batch_size_bucket{{{ON_PHI}}}[{RATE}])))",
            },
            description="Records written per audit commit; larger batches under load keep "
            "auditing every read cheap.",
        ),
        Panel(
            "Resources prepared by the preparation workers",
            {
                "{{kind}}": "sum by (kind) "
                f"(rate(medmesh_phi_resources_prepared_by_workers_total[{RATE}]))",
                "import lines written by the workers": "sum(rate("
                f"medmesh_phi_import_resources_written_by_workers_total[{RATE}]))",
                "transaction creates written by the workers": "sum(rate("
                f"medmesh_phi_transaction_resources_written_by_workers_total[{RATE}]))",
                "workers lost (1h)": "sum(increase(medmesh_phi_preparation_workers_lost_total[1h]))",
            },
            description="NDJSON import lines and large transactions' creates validated, sealed "
            "and indexed in worker processes (MEDMESH_PHI_IMPORT_WORKERS); on SQLite the workers "
            "also write the import chunks and the transactions of creates they prepared. A lost "
            "worker stops the pool: the service prepares and writes the rest itself, more "
            "slowly.",
        ),
        Panel(
            "Compiled modules in use",
            {"modules": "min(medmesh_phi_compiled_modules)"},
            kind="stat",
            description="phi's validation and index modules running compiled with mypyc "
            "(decision 0049); 0 on a pod means its sources run, about a third slower to prepare "
            "a resource: its log line native_modules says why.",
            thresholds=(("orange", None), ("green", 1)),
        ),
        Panel(
            "Audit write failures",
            {
                "failed batches": f"sum(increase(medmesh_audit_write_failures_total{{{ON_PHI}}}[1h]))"
            },
            kind="stat",
            description="Any failure means requests were refused because their audit record "
            "could not be written (alert MedmeshAuditWriteFailures).",
            thresholds=(("green", None), ("red", 1)),
        ),
    ],
)

SYNTHETIC = ServiceDashboard(
    name="synthetic",
    title="synthetic-phi-service",
    domain_panels=[
        Panel(
            "Patients generated per second",
            {
                "{{mode}}": "sum by (mode) "
                f"(rate(medmesh_synthetic_patients_generated_total[{RATE}]))"
            },
            unit="ops",
            description="sync: POST /v1/generate and /v1/realism; job: background jobs "
            "(counted when a job ends).",
        ),
        Panel(
            "Patients loaded into phi per second",
            {"loaded": f"sum(rate(medmesh_synthetic_patients_loaded_total[{RATE}]))"},
            unit="ops",
        ),
        Panel(
            "Jobs running and queued",
            {
                "running": "sum(medmesh_synthetic_jobs_running)",
                "queued": "max(medmesh_synthetic_jobs_queued)",
            },
            description="Queued jobs wait for a free job worker on any replica "
            "(MEDMESH_SYNTHETIC_JOB_WORKERS per replica).",
        ),
        Panel(
            "Jobs ended by status",
            {"{{status}}": "sum by (status) (increase(medmesh_synthetic_jobs_finished_total[1h]))"},
            description="Per hour. failed includes jobs interrupted by a restart or a "
            "scale-down, and loads phi-service refused.",
        ),
        Panel(
            "Job duration",
            {
                f"p{q}": f"histogram_quantile(0.{q}, sum by (le) (rate("
                f'medmesh_synthetic_job_duration_seconds_bucket{{status="succeeded"}}'
                f"[{RATE}])))"
                for q in ("50", "95")
            },
            unit="s",
        ),
        Panel(
            "Failed jobs (1h)",
            {"failed": 'sum(increase(medmesh_synthetic_jobs_finished_total{status="failed"}[1h]))'},
            kind="stat",
            description="Look at the jobs' error field (GET /v1/jobs?status=failed).",
            thresholds=(("green", None), ("orange", 1), ("red", 3)),
        ),
    ],
)

PAYMENTS = ServiceDashboard(
    name="payments",
    title="payment-gateway",
    domain_panels=[
        Panel(
            "Writes per second by outcome",
            {"{{outcome}}": f"sum by (outcome) (rate(medmesh_payments_writes_total[{RATE}]))"},
            unit="reqps",
            description="POST and DELETE: card_error is a 402, replayed a stored answer, "
            "key_in_use a 409 (first request still runs), refused a 4xx changing nothing.",
        ),
        Panel(
            "Payment intent writes by action",
            {
                "{{action}}": "sum by (action) (rate(medmesh_payments_writes_total"
                f'{{action=~"{PAYMENT_INTENT}.*"}}[{RATE}]))'
            },
            unit="reqps",
        ),
        Panel(
            "Card errors by code",
            {"{{code}}": f"sum by (code) (rate(medmesh_payments_card_errors_total[{RATE}]))"},
            unit="reqps",
            description="Many incorrect_number or incorrect_cvc from few callers suggests "
            "card testing; generic declines across all callers, a processor problem "
            "(alert MedmeshPaymentsCardErrorsHigh).",
        ),
        Panel(
            "Card error ratio of payments",
            {
                "card errors": "sum(rate(medmesh_payments_writes_total"
                f'{{outcome="card_error"}}[{RATE}]))'
                " / sum(rate(medmesh_payments_writes_total"
                f'{{action=~"{PAYMENT_INTENT}(create|confirm)",'
                f'outcome=~"succeeded|card_error"}}[{RATE}]))',
            },
            unit="percentunit",
            thresholds=(("green", None), ("orange", 0.25), ("red", 0.5)),
        ),
        Panel(
            "Idempotent retries",
            {
                "{{outcome}}": "sum by (outcome) (rate(medmesh_payments_writes_total"
                f'{{outcome=~"replayed|key_in_use"}}[{RATE}]))'
            },
            unit="reqps",
            description="Sustained key_in_use means requests that never finish, or claims "
            "of a replica that died mid-request (alert MedmeshPaymentsIdempotencyKeysStuck).",
        ),
        Panel(
            "Idempotency keys expired (1h)",
            {"expired": "sum(increase(medmesh_payments_idempotency_keys_expired_total[1h]))"},
            kind="stat",
            description="Keys deleted after MEDMESH_PAYMENTS_IDEMPOTENCY_HOURS.",
        ),
    ],
)
