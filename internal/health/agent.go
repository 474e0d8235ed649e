package health

// AgentIgnore is the agent-check reply that changes nothing in HAProxy: a
// line holding only a "#" comment. HAProxy 2.6 finds no weight, state or
// maxconn word in it and leaves the server's weight and admin state alone
// (HAProxy configuration manual §5.2 "agent-check"; see
// internal/haproxy/AGENT_NOTES.md for what each reply was seen to do).
const AgentIgnore = "#spdu: unknown server"

// AgentFull is the reply for a known server in static mode: 100% of the
// weight configured in haproxy.cfg. It never sends "ready", "up", "drain",
// "maint" or "down": "ready" would cancel a drain or maintenance an operator
// set through the runtime API.
const AgentFull = "100%"

// AgentReply chooses the agent-check reply line (without the final "\n") for
// one server. known reports whether the server named in HAProxy's agent-send
// string belongs to the service backend as of the last successful poll; an
// unknown name gets AgentIgnore so that a misconfigured agent-send can never
// change a server.
func AgentReply(known bool) string {
	if !known {
		return AgentIgnore
	}
	return AgentFull
}
