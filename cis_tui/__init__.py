"""cis-tui: scan a kubeadm control-plane node against the CIS benchmark and fix it safely."""

__version__ = "0.1.0"
