"""Make fixes survive `kubeadm upgrade`: mirror them into the cluster's kubeadm configuration."""
