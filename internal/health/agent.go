package health

import "github.com/spdu/spdu-haproxy/internal/haproxy"

// AgentReply chooses the agent-check reply line (without the final "\n") for
// one server, in HAProxy's agent grammar (configuration manual §5.2
// "agent-check"). known reports whether the server named in HAProxy's
// agent-send string belongs to the service backend as of the last successful
// poll.
//
// A known server gets its full weight, "100%" of the weight configured in
// haproxy.cfg. An unknown name gets haproxy.AgentNoChange, so that a
// misconfigured agent-send can never change a server. It never replies
// "ready", "up", "drain", "maint" or "down": "ready" would cancel a drain or
// maintenance that an operator set through the runtime API (see
// internal/haproxy/AGENT_NOTES.md for what each reply does on HAProxy 2.6).
func AgentReply(known bool) string {
	if !known {
		return haproxy.AgentNoChange
	}
	return haproxy.AgentWeight(100)
}
