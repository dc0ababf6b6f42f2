#!/bin/bash
# sealer v0.9+ runs this (scripts/uninstall-<container runtime>.sh) when the cluster is deleted.
set -uo pipefail

systemctl stop docker 2>/dev/null || true
systemctl disable docker 2>/dev/null || true
rm -f /etc/systemd/system/docker.service
rm -rf /etc/docker
for bin in containerd containerd-shim containerd-shim-runc-v2 ctr docker dockerd docker-init docker-proxy runc rootlesskit rootlesskit-docker-proxy vpnkit; do
  rm -f "/usr/bin/$bin"
done
systemctl daemon-reload 2>/dev/null || true
