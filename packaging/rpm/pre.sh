# %pre of spdu-haproxy ($1: 1 on install, 2 on upgrade): create the service
# user before rpm unpacks the files it owns. HAProxy's package accepts a
# haproxy group that already exists, so creating it here is safe when
# HAProxy comes later.
getent group haproxy >/dev/null || groupadd --system haproxy
getent group spdu-haproxy >/dev/null || groupadd --system spdu-haproxy
if ! getent passwd spdu-haproxy >/dev/null; then
	useradd --system --gid spdu-haproxy --home-dir /var/lib/spdu-haproxy \
		--no-create-home --shell /sbin/nologin \
		--comment "spdu-haproxy daemon" spdu-haproxy
fi
# Read HAProxy's stats socket (mode 660, group haproxy).
usermod --append --groups haproxy spdu-haproxy
exit 0
