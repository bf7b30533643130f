#!/usr/bin/env bash
# Provisions one VM of the Vagrant cluster, as root, from the source synced
# to /srv/nodemesh:
#   provision.sh NODE_NAME NODE_ADDRESS ETCD_ENDPOINTS etcd|no-etcd
# Installs the dependencies, builds, installs the binaries, runs etcd when
# asked (node1), and (re)starts the nodemesh-agent unit. Running it again
# (`vagrant provision`) rebuilds and restarts the agent: the old one drains
# and the new one adopts the pinned datapath.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 NODE_NAME NODE_ADDRESS ETCD_ENDPOINTS etcd|no-etcd" >&2; exit 2; }
node=$1 address=$2 etcd_endpoints=$3 etcd=$4
src=/srv/nodemesh
secrets=$src/vagrant/secrets

"$src/scripts/install-deps"
# install-deps leaves Debian's etcd unit enabled but stopped; only node1
# runs it, listening where the other nodes can reach it.
if [ "$etcd" = etcd ]; then
  conf="# Written by vagrant/provision.sh: clients on the private network too.
ETCD_LISTEN_CLIENT_URLS=http://$address:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$address:2379"
  systemctl enable etcd
  # Restarted only when its settings change: every agent depends on it.
  if [ "$(cat /etc/default/etcd)" != "$conf" ]; then
    printf '%s\n' "$conf" >/etc/default/etcd
    systemctl restart etcd
  else
    systemctl start etcd
  fi
else
  systemctl disable --now etcd
fi

"$src/scripts/build" release
install -m 0755 "$src/build/agent/nodemesh-agent" "$src/build/ctl/nodemeshctl" \
  /usr/local/bin/

# Identities: the mesh's root and this node's own intermediate CA.
install -d -m 0700 /etc/nodemesh-certs /etc/nodemesh-api
install -m 0644 "$secrets/root.pem" /etc/nodemesh-certs/ca.pem
install -m 0644 "$secrets/$node/intermediate.pem" /etc/nodemesh-certs/signing.pem
install -m 0600 "$secrets/$node/intermediate.key" /etc/nodemesh-certs/signing.key
install -m 0600 "$secrets/credentials" /etc/nodemesh-api/credentials
# The same key for the AWS CLI of the vagrant user (aws appmesh ...).
install -d -o vagrant -g vagrant -m 0700 /home/vagrant/.aws
install -o vagrant -g vagrant -m 0600 "$secrets/credentials" \
  /home/vagrant/.aws/credentials
printf '[default]\nregion = us-west-2\n' >/home/vagrant/.aws/config
chown vagrant:vagrant /home/vagrant/.aws/config

cat >/etc/default/nodemesh-agent <<EOF
# Written by vagrant/provision.sh; read by nodemesh-agent.service.
NODE_NAME=$node
NODE_ADDRESS=$address
ETCD_ENDPOINTS=$etcd_endpoints
EOF
install -m 0644 "$src/vagrant/nodemesh-agent.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable nodemesh-agent
systemctl restart nodemesh-agent
echo "provision: $node ($address) runs nodemesh-agent; etcd at $etcd_endpoints"
