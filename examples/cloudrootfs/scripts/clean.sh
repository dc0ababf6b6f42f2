#!/bin/bash
# sealer runs this on every node when the cluster is deleted: undo what init.sh did.
set -uo pipefail

systemctl stop kubelet 2>/dev/null || true
systemctl disable kubelet 2>/dev/null || true
rm -f /etc/systemd/system/kubelet.service
rm -rf /etc/systemd/system/kubelet.service.d
for bin in kubeadm kubectl kubelet crictl conntrack seautil kubelet-pre-start.sh; do
  rm -f "/usr/bin/$bin"
done

systemctl stop docker 2>/dev/null || true
systemctl disable docker 2>/dev/null || true
rm -f /etc/systemd/system/docker.service
rm -rf /etc/docker
for bin in containerd containerd-shim containerd-shim-runc-v2 ctr docker dockerd docker-init docker-proxy runc; do
  rm -f "/usr/bin/$bin"
done
systemctl daemon-reload 2>/dev/null || true
