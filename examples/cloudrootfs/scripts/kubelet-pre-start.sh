#!/bin/bash
# Installed as /usr/bin/kubelet-pre-start.sh; kubelet.service runs it before kubelet starts.
set -uo pipefail

# kubelet refuses to run with swap on.
swapoff -a || true
sed -i '/ swap / s/^\(.*\)$/#\1/g' /etc/fstab || true

# Bridged traffic must go through iptables, and the proxy mode needs IPVS.
modprobe br_netfilter || true
for mod in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack; do
  modprobe "$mod" || true
done

cat >/etc/sysctl.d/k8s.conf <<CONF
net.bridge.bridge-nf-call-ip6tables = 1
net.bridge.bridge-nf-call-iptables = 1
net.ipv4.ip_forward = 1
CONF
sysctl --system >/dev/null || true
