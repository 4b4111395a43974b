from jupiter.copilot import CopilotEngine, Query

copilot = CopilotEngine()

# Step 1: Create rollback point
rollback_query = Query(
    message="Create rollback point for database server",
    user_id="analyst_01",
    session_id="session_123"
)
rollback_response = copilot.process_query(rollback_query)
print(f"‚úÖ Snapshot created: {rollback_response.data['snapshot']['snapshot_id']}")

# Step 2: Generate remediation script
script_query = Query(
    message="Generate script to fix SQL injection in user login",
    user_id="analyst_01",
    session_id="session_123",
    metadata={
        "vulnerability_type": "sql_injection",
        "affected_component": "auth/login.py"
    }
)
script_response = copilot.process_query(script_query)
print(f"‚úÖ Script generated: {script_response.data['script']['filename']}")

# Step 3: Test in staging
test_query = Query(
    message="Test the remediation in staging",
    user_id="analyst_01",
    session_id="session_123",
    metadata={
        "script_id": script_response.data['script']['id'],
        "environment": "staging"
    }
)
test_response = copilot.process_query(test_query)
print(f"‚úÖ Tests passed: {test_response.data['tests_passed']}/{test_response.data['tests_run']}")

# Step 4: Deploy (after approval)
if test_response.data['ready_for_production']:
    deploy_query = Query(
        message="Deploy remediation to production",
        user_id="analyst_01",
        session_id="session_123",
        metadata={
            "script_id": script_response.data['script']['id'],
            "deployment_strategy": "rolling"
        }
    )
    deploy_response = copilot.process_query(deploy_query)
    print(f"‚úÖ Deployment started: {deploy_response.data['deployment_id']}")

# Step 5: Validate
validate_query = Query(
    message="Validate that the vulnerability is fixed",
    user_id="analyst_01",
    session_id="session_123"
)
validate_response = copilot.process_query(validate_query)
print(f"‚úÖ Validation: {validate_response.data['status']} ({validate_response.data['confidence']}% confidence)")

# Step 6: Send to SIEM and create ticket
siem_query = Query(
    message="Send remediation success to Splunk",
    user_id="analyst_01",
    session_id="session_123"
)
copilot.process_query(siem_query)

ticket_query = Query(
    message="Update Jira ticket to resolved",
    user_id="analyst_01",
    session_id="session_123"
)
copilot.process_query(ticket_query)

print("üéâ Remediation workflow complete!")
