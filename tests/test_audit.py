"""The CI audit's judgement (.ci/audit.py) on canned reports of pip-audit and npm audit: fail only
for a known vulnerability with a fix, skip with a reason when the service did not answer."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "ci_audit", Path(__file__).resolve().parent.parent / ".ci" / "audit.py"
)
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def pip_report(*dependencies):
    return {"dependencies": list(dependencies), "fixes": []}


CLEAN = {"name": "flask", "version": "3.1.3", "vulns": []}


def test_pip_clean_passes():
    verdict = audit.judge_pip(
        pip_report(CLEAN, {"name": "gevent", "version": "26.9.0", "vulns": []})
    )
    assert verdict.status == "pass" and "2 packages audited" in verdict.lines


def test_pip_fails_on_a_vulnerability_with_a_fix():
    vulnerable = {
        "name": "werkzeug",
        "version": "3.0.0",
        "vulns": [
            {
                "id": "GHSA-xxxx",
                "fix_versions": ["3.0.6"],
                "aliases": ["CVE-2024-1"],
                "description": "...",
            }
        ],
    }
    verdict = audit.judge_pip(pip_report(CLEAN, vulnerable))
    assert verdict.status == "fail"
    assert "werkzeug 3.0.0: GHSA-xxxx (fixed in 3.0.6)" in verdict.lines
    assert "FAILED" in verdict.report()


def test_pip_lists_but_passes_a_vulnerability_without_a_fix():
    unfixed = {
        "name": "somepkg",
        "version": "1.0",
        "vulns": [{"id": "PYSEC-1", "fix_versions": [], "aliases": [], "description": "..."}],
    }
    verdict = audit.judge_pip(pip_report(CLEAN, unfixed))
    assert verdict.status == "pass"
    assert "somepkg 1.0: PYSEC-1 (no fix released yet)" in verdict.lines


def test_pip_skips_when_the_service_knows_no_package_or_does_not_answer():
    unknown = {
        "name": "alembic",
        "skip_reason": "Dependency not found on PyPI and could not be audited: alembic (1.20.1)",
    }
    verdict = audit.judge_pip(pip_report(unknown, {**unknown, "name": "amqp"}))
    assert verdict.status == "skip" and "knew none of the 2 packages" in verdict.lines[0]
    offline = audit.judge_pip(
        None, "Traceback...\nrequests.exceptions.ConnectionError: Failed to resolve 'pypi.org'"
    )
    assert offline.status == "skip" and "Failed to resolve" in offline.lines[0]
    # Some packages unknown (a private one), the rest audited: still judged.
    mixed = audit.judge_pip(pip_report(CLEAN, unknown))
    assert mixed.status == "pass" and any("alembic" in line for line in mixed.lines)


NPM_ADVISORY = {
    "name": "htmx.org",
    "severity": "moderate",
    "isDirect": True,
    "range": "<2.0.4",
    "via": [{"source": 1, "title": "XSS", "url": "https://github.com/advisories/GHSA-x"}],
    "effects": [],
    "nodes": ["node_modules/htmx.org"],
}


def npm_report(vulnerabilities):
    return {
        "auditReportVersion": 2,
        "vulnerabilities": vulnerabilities,
        "metadata": {"dependencies": {"total": 12}},
    }


def test_npm_clean_passes():
    verdict = audit.judge_npm(npm_report({}))
    assert verdict.status == "pass" and "12 packages audited" in verdict.lines


def test_npm_fails_only_when_a_fix_is_available():
    fixable = audit.judge_npm(npm_report({"htmx.org": {**NPM_ADVISORY, "fixAvailable": True}}))
    assert fixable.status == "fail" and "fix available" in fixable.lines[0]
    major = audit.judge_npm(
        npm_report(
            {
                "htmx.org": {
                    **NPM_ADVISORY,
                    "fixAvailable": {
                        "name": "htmx.org",
                        "version": "2.0.4",
                        "isSemVerMajor": False,
                    },
                }
            }
        )
    )
    assert major.status == "fail" and "htmx.org@2.0.4" in major.lines[0]
    unfixed = audit.judge_npm(npm_report({"htmx.org": {**NPM_ADVISORY, "fixAvailable": False}}))
    assert unfixed.status == "pass" and "no fix available" in unfixed.lines[0]


def test_npm_skips_when_the_registry_has_no_audit_endpoint():
    refused = {
        "message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/"
        "security/advisories/bulk",
        "statusCode": 405,
        "error": {},
    }
    verdict = audit.judge_npm(refused)
    assert verdict.status == "skip" and "405 Method Not Allowed" in verdict.lines[0]
    offline = audit.judge_npm({"error": {"code": "ENOTFOUND", "summary": "getaddrinfo"}})
    assert offline.status == "skip" and "ENOTFOUND" in offline.lines[0]
    assert audit.judge_npm(None, "npm: not found").status == "skip"
