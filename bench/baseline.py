"""The baseline cis-tui's scan is measured against: one shell pipeline per check.

This is how kube-bench and per-check audit scripts work: every check runs its own
`ps -ef | grep <binary> | grep -v grep`, `stat -c ...` or `cat <config>` through /bin/sh and
parses the text. The verdicts use kube-bench's string rules; only the timing matters here.
"""

from __future__ import annotations

import re
import shlex
import subprocess

from cis_tui.benchmarks.catalog import Catalog, Check
from cis_tui.layout import Settings

_TARGET_FILES = {
    "apiserver-manifest": "{manifests}/kube-apiserver.yaml",
    "controller-manager-manifest": "{manifests}/kube-controller-manager.yaml",
    "scheduler-manifest": "{manifests}/kube-scheduler.yaml",
    "etcd-manifest": "{manifests}/etcd.yaml",
    "admin-kubeconfigs": "{admin} {super_admin}",
    "scheduler-kubeconfig": "{scheduler_conf}",
    "controller-manager-kubeconfig": "{cm_conf}",
    "kubelet-kubeconfig": "{kubelet_kubeconfig}",
    "proxy-kubeconfig": "{proxy}",
    "kubelet-service": "{kubelet_service}",
    "kubelet-config": "{kubelet_config}",
    "kubelet-client-ca": "{pki}/ca.crt",
    "etcd-data-dir": "{etcd_data}",
}
_TREES = {
    "pki-tree": "find {pki}",
    "pki-certs": "find {pki} -name '*.crt'",
    "pki-keys": "find {pki} -name '*.key'",
    "cni-files": "find {cni} -type f",
}


def _sh(script: str) -> str:
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    return done.stdout


def _values(settings: Settings) -> dict[str, str]:
    lay = settings.layout
    return {
        "manifests": shlex.quote(str(lay.manifests_dir)),
        "admin": shlex.quote(str(lay.admin_conf)),
        "super_admin": shlex.quote(str(lay.super_admin_conf)),
        "scheduler_conf": shlex.quote(str(lay.scheduler_conf)),
        "cm_conf": shlex.quote(str(lay.controller_manager_conf)),
        "kubelet_kubeconfig": shlex.quote(str(lay.kubelet_kubeconfig)),
        "proxy": shlex.quote(str(lay.proxy_kubeconfig)),
        "kubelet_service": shlex.quote(str(lay.kubelet_service)),
        "kubelet_config": shlex.quote(str(lay.kubelet_config)),
        "pki": shlex.quote(str(lay.pki_dir)),
        "etcd_data": shlex.quote(str(lay.etcd_data_dir)),
        "cni": shlex.quote(str(lay.cni_conf_dir)),
    }


def _audit_files(check: Check, values: dict[str, str]) -> str:
    fmt = "permissions=%a" if check.audit.type == "file-mode" else "%U:%G"
    target = check.audit.target or ""
    if target in _TREES:
        return _sh(f"{_TREES[target].format(**values)} | xargs -r stat -c {fmt}")
    files = _TARGET_FILES[target].format(**values)
    return _sh(f"for f in {files}; do if test -e $f; then stat -c {fmt} $f; fi; done")


def _audit_flags(check: Check, values: dict[str, str]) -> str:
    binary = check.component
    out = _sh(f"/bin/ps -ef | grep {binary} | grep -v grep")
    if check.component == "kubelet":
        out += _sh(f"/bin/cat {values['kubelet_config']}")
    if check.component == "etcd":
        out += _sh(
            "for p in $(pgrep -f etcd); do cat /proc/$p/environ 2>/dev/null | tr '\\0' '\\n'; done"
        )
    return out


def _kube_bench_verdict(check: Check, output: str) -> bool:
    """kube-bench's substring and regex rules (with its known mistakes)."""
    if check.audit.type in {"file-mode", "file-owner"}:
        if not output.strip():
            return False
        if check.audit.type == "file-owner":
            return all(check.audit.owner == line for line in output.split())
        allowed = check.audit.max_mode or 0
        return all(
            (allowed & int(m, 8)) == int(m, 8) for m in re.findall(r"permissions=(\d+)", output)
        )
    results = []
    for test in check.audit.tests:
        found = test.flag in output
        match = re.search(rf"({re.escape(test.flag)})(=|: *)*([^\s]*) *", output)
        value = match.group(3) if match and match.group(3) else ("true" if found else "")
        if not found:
            results.append(test.absent == "pass" or test.op == "unset")
        elif test.op in {"eq", "noteq"}:
            results.append((value.lower() == str(test.value).lower()) == (test.op == "eq"))
        elif test.op in {"has", "lacks"}:
            results.append((str(test.value) in value) == (test.op == "has"))
        else:
            results.append(test.op != "unset")
    return all(results) if check.audit.combine == "all" else any(results)


def per_check_subprocess_scan(catalog: Catalog, settings: Settings) -> dict[str, bool]:
    """Every check through its own shell pipeline(s)."""
    values = _values(settings)
    verdicts = {}
    for check in catalog.checks:
        if check.audit.type in {"file-mode", "file-owner"}:
            output = _audit_files(check, values)
        elif check.audit.type in {"flags", "encryption-providers"}:
            output = _audit_flags(check, values)
        else:
            output = ""
        verdicts[check.id] = _kube_bench_verdict(check, output)
    return verdicts
