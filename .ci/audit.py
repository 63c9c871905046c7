"""Known-vulnerability audit of the pinned dependencies: Python (pip-audit) and npm (npm audit).

    .venv/bin/python .ci/audit.py

Fails (exit 1) only for a known vulnerability that has a fix available (a newer version to pin);
known ones without a fix are listed. When a vulnerability service cannot be reached or does not
know the packages (an offline machine, a registry mirror without the audit endpoints), that
audit is skipped with the reason printed, and the other still counts.
"""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Installed with the virtualenv itself, not pinned by the project.
TOOLING = {"pip", "setuptools", "wheel", "webapp"}


@dataclass
class Verdict:
    name: str
    status: str  # "pass", "fail" or "skip"
    lines: list[str] = field(default_factory=list)

    def report(self) -> str:
        head = {"pass": "ok", "fail": "FAILED", "skip": "skipped"}[self.status]
        return "\n".join([f"{self.name}: {head}", *("  " + line for line in self.lines)])


def judge_pip(report: dict | None, error: str = "") -> Verdict:
    """pip-audit's JSON report (``-f json``); None when it produced none (``error`` says why)."""
    if report is None:
        reason = error.strip().splitlines()[-1] if error.strip() else "no report"
        return Verdict("pip-audit", "skip", [f"the vulnerability service did not answer: {reason}"])
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    skipped = [d for d in dependencies if "skip_reason" in d]
    if dependencies and not audited:
        return Verdict(
            "pip-audit",
            "skip",
            [
                (
                    f"the vulnerability service knew none of the {len(skipped)} packages, e.g. "
                    f"{skipped[0]['skip_reason']}"
                )
            ],
        )
    fixable, unfixable = [], []
    for dependency in audited:
        for vuln in dependency.get("vulns", []):
            line = f"{dependency['name']} {dependency['version']}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                unfixable.append(f"{line} (no fix released yet)")
    lines = [*fixable, *unfixable, f"{len(audited)} packages audited"]
    if skipped:
        lines.append(f"{len(skipped)} not audited: " + ", ".join(d["name"] for d in skipped))
    return Verdict("pip-audit", "fail" if fixable else "pass", lines)


def judge_npm(report: dict | None, error: str = "") -> Verdict:
    """``npm audit --json`` output; an error object when the registry has no audit endpoint."""
    if report is None or "vulnerabilities" not in report:
        reason = ""
        if report:
            reason = report.get("message") or json.dumps(report.get("error", report))[:200]
        reason = reason or (error.strip().splitlines()[-1] if error.strip() else "no report")
        return Verdict("npm audit", "skip", [f"the registry did not answer the audit: {reason}"])
    fixable, unfixable = [], []
    for name, vuln in sorted(report["vulnerabilities"].items()):
        fix = vuln.get("fixAvailable")
        line = f"{name} ({vuln.get('severity', '?')}, {vuln.get('range', '?')})"
        if fix:
            how = f"{fix['name']}@{fix['version']}" if isinstance(fix, dict) else "npm audit fix"
            fixable.append(f"{line}: fix available ({how})")
        else:
            unfixable.append(f"{line}: no fix available")
    total = report.get("metadata", {}).get("dependencies", {}).get("total")
    lines = [*fixable, *unfixable]
    if total is not None:
        lines.append(f"{total} packages audited")
    return Verdict("npm audit", "fail" if fixable else "pass", lines)


def _json(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def run_pip_audit() -> Verdict:
    """Audit exactly the versions installed in the virtualenv (the pins and what they pull in)."""
    freeze = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "freeze", "--local", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = [
        line
        for line in freeze.splitlines()
        if "==" in line and line.split("==")[0].lower() not in TOOLING
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write("\n".join(pins) + "\n")
        requirements.flush()
        try:
            result = subprocess.run(
                [
                    str(BIN / "pip-audit"),
                    "-r",
                    requirements.name,
                    "--no-deps",
                    "--disable-pip",
                    "-f",
                    "json",
                    "--progress-spinner",
                    "off",
                    "--timeout",
                    "20",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return judge_pip(None, "pip-audit timed out")
    return judge_pip(_json(result.stdout), result.stderr)


def run_npm_audit() -> Verdict:
    try:
        result = subprocess.run(
            ["npm", "audit", "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return judge_npm(None, str(error))
    return judge_npm(_json(result.stdout), result.stderr)


def main() -> int:
    verdicts = [run_pip_audit(), run_npm_audit()]
    for verdict in verdicts:
        print(verdict.report())
    return 1 if any(v.status == "fail" for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
