#!/usr/bin/python
"""Ansible module: `cis-tui scan --format json` on this node, with the digests of the files
the API server reads that must be the same on every control-plane node."""

from __future__ import annotations

import json
import os
import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.cis_tui_fleet import file_digest, named_files

DOCUMENTATION = r"""
module: cis_tui_scan
short_description: Scan one control-plane node with cis-tui (changes nothing)
options:
  config: {description: cis-tui's --config for this node., type: path}
  command: {description: How to run cis-tui (split like a shell)., type: str, default: cis-tui}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "path"},
            "command": {"type": "str", "default": "cis-tui"},
        },
        supports_check_mode=True,
    )
    command = shlex.split(module.params["command"])
    if module.params["config"]:
        command += ["--config", module.params["config"]]
    rc, out, err = module.run_command([*command, "scan", "--format", "json"])
    try:
        scan = json.loads(out)
    except ValueError:
        scan = None
    if rc not in (0, 1) or not isinstance(scan, dict):  # 1: some checks fail, as expected
        module.fail_json(msg=err.strip() or f"cis-tui scan exited {rc}", exit_code=rc)
    files = {}
    manifests = (scan.get("node") or {}).get("manifests_dir")
    if manifests:
        try:
            with open(os.path.join(manifests, "kube-apiserver.yaml"), encoding="utf-8") as fh:
                named = named_files(fh.read())
        except (OSError, UnicodeDecodeError):
            named = {}
        for flag, path in named.items():
            files[flag] = {"path": path, "sha256": file_digest(path)}
    module.exit_json(changed=False, scan=scan, files=files, exit_code=rc)


if __name__ == "__main__":
    main()
