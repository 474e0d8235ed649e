package testenv

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// HAProxyPreamble is the start of every test HAProxy configuration: the
// stats socket ({{SOCKET}}, see StartHAProxy) at level admin and HTTP
// defaults with the given connect timeout (short ones make the backup
// server take over quickly).
func HAProxyPreamble(connect time.Duration) string {
	return fmt.Sprintf(`global
    stats socket {{SOCKET}} mode 600 level admin
defaults
    mode http
    timeout connect %s
    timeout client 10s
    timeout server 10s
    timeout check 500ms
`, connect)
}

// ServerLines returns one `server` line per backend as examples/haproxy.cfg
// writes them: weight 100, a health check every 100 ms that marks a server
// down or up at once, and an agent check to agentPort every agentInter with
// agent-send "api/NAME\n".
func ServerLines(backends []*Backend, agentPort int, agentInter time.Duration) string {
	var b strings.Builder
	for _, be := range backends {
		fmt.Fprintf(&b, "    server %s %s check inter 100ms fall 1 rise 1 weight 100 agent-check agent-port %d agent-send \"api/%s\\n\" agent-inter %s\n",
			be.Name, be.Addr, agentPort, be.Name, agentInter)
	}
	return b.String()
}

// ShowStat returns `show stat BACKEND 6 -1` as server (or BACKEND) name ->
// column -> value, read with the test's own runtime API client (a plain
// split: test values hold no commas).
func (h *HAProxy) ShowStat(t testing.TB, backend string) map[string]map[string]string {
	t.Helper()
	out, err := h.Command("show stat " + backend + " 6 -1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	rows := map[string]map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		row := map[string]string{}
		for i, name := range header {
			if i < len(f) {
				row[name] = f[i]
			}
		}
		rows[row["svname"]] = row
	}
	return rows
}
