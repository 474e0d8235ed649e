# %preun of spdu-haproxy ($1: 0 on erase, 1 on upgrade): stop and disable
# the service on erase. rpm has no purge: a changed configuration is kept
# as spdu-haproxy.toml.rpmsave and /var/lib/spdu-haproxy stays while it
# holds a drain state.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable --now spdu-haproxy.service >/dev/null 2>&1 || :
fi
exit 0
