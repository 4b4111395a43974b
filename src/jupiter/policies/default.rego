# Jupiter's built-in policy. Copy it to JUPITER_HOME/policies/ and edit it
# there: a policies folder with any .rego file replaces this one whole.
# Every decision is a rule of package jupiter; `jupiter policy eval` shows
# what they give for an input, `jupiter policy test` runs the *_test.rego
# files beside them.
package jupiter

import rego.v1

# -- priority (0-100): overrides the default score --------------------------
severity_base := {"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 3.0, "info": 0.5}

env_weight := {"prod": 1.0, "staging": 0.8, "dev": 0.6}

base := input.finding.cvss if is_number(input.finding.cvss)

else := severity_base[input.finding.severity]

# Known exploited (CISA KEV) and internet-facing findings jump the queue.
kev_factor := 1.5 if input.finding.kev == true

else := 1.0

exposure_factor := 1.3 if input.asset.internet_facing == true

else := 1.0

asset := object.get(input, "asset", {})

criticality := object.get(asset, "criticality", 3)

environment := object.get(asset, "environment", "dev")

raw_priority := round(((((((base * 10) * (0.6 + (0.1 * criticality))) * env_weight[environment]) * kev_factor) * exposure_factor) / 1.1) * 10) / 10

# (rego-cpp's min() misorders mixed numbers: cap by hand.)
priority := 100 if raw_priority > 100

else := raw_priority

# -- remediation: scope, approvals, strategy, blast radius, windows ----------
low_risk if input.change.bump in {"patch", "none"}

low_risk if input.change.kind in {"config", "hardening", "permissions"}

# Code rewrites always get a human look.
automatic if input.change.kind != "code"

auto_approve if {
	environment in {"dev", "staging"}
	low_risk
	automatic
	not input.change.disruption == "restart"
}

required_approvals := 0 if auto_approve

else := 2 if environment == "prod"

else := 1

approver_roles := ["approver", "admin"]

strategies := ["canary", "rolling", "blue-green"] if environment == "prod"

else := ["all-at-once", "rolling", "canary", "blue-green"]

max_batch_targets := 5 if environment == "prod"

else := 50

max_batch_percent := 20 if environment == "prod"

else := 100

windows := [{"days": ["sat", "sun"], "start": "02:00", "end": "05:00", "tz": "UTC"}] if environment == "prod"

else := []

reasons contains "auto-approved: low-risk change outside prod" if auto_approve

reasons contains "prod needs two approvers" if {
	not auto_approve
	environment == "prod"
}

reasons contains "code changes are never automatic" if not automatic

remediation := {
	"automatic": automatic,
	"auto_approve": auto_approve,
	"required_approvals": required_approvals,
	"approver_roles": approver_roles,
	"strategies": strategies,
	"max_batch_targets": max_batch_targets,
	"max_batch_percent": max_batch_percent,
	"windows": windows,
	"reasons": sort(reasons),
}

default automatic := false

default auto_approve := false

# -- exceptions (waivers): how long one may last ------------------------------
max_exception_days := 30 if input.finding.severity in {"critical", "high"}

else := 90

exception := {
	"allowed": input.exception.days <= max_exception_days,
	"max_days": max_exception_days,
}
