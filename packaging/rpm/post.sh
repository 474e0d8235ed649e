# %post of spdu-haproxy ($1: 1 on install, 2 or more on upgrade): enable the
# service on first install but do not start it (it needs the operator's
# /etc/spdu-haproxy/spdu-haproxy.toml); on upgrade, restart it only if it
# was running.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
	systemctl enable spdu-haproxy.service >/dev/null 2>&1 || :
elif [ -d /run/systemd/system ]; then
	systemctl try-restart spdu-haproxy.service >/dev/null 2>&1 || :
fi
exit 0
