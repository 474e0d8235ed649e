package health

import "github.com/spdu/spdu-haproxy/internal/haproxy"

// AgentInput is what Reply needs to know about one server.
type AgentInput struct {
	// Known reports whether the server named in HAProxy's agent-send string
	// belongs to the service backend as of the last successful poll.
	Known bool
	// Weight is the weight to advertise in percent of the server's
	// configured weight (100 in static mode); values outside 1 to 100 are
	// clamped into it, so Reply never sends "0%".
	Weight int
	// Drain is true while a site drain asks HAProxy to drain this server
	// (agent.drain_servers), which the daemon has recorded in its state file
	// before replying.
	Drain bool
	// Ready is true after a site drain ended for a server that our own agent
	// drained (recorded in the state file), until HAProxy shows it no
	// longer drained.
	Ready bool
}

// Reply chooses the agent-check reply line (without the final "\n") for one
// server, in HAProxy's agent grammar (configuration manual §5.2
// "agent-check"). It is pure.
//
//   - An unknown server gets haproxy.AgentUnknown, a comment alone, so that
//     a misconfigured agent-send can never change a server.
//   - Drain gets "drain": HAProxy keeps it until "ready".
//   - Ready gets "ready" alone: HAProxy keeps the weight it had, and the
//     next reply after HAProxy shows the server undrained sends the weight
//     again.
//   - Otherwise the weight alone, e.g. "100%" or "35%".
//
// It never replies "up", "maint" or "down", and replies "ready" only when
// Ready says our own agent set the drain: "ready" would also cancel a drain
// or maintenance that an operator set through the runtime API (see
// internal/haproxy/AGENT_NOTES.md for what each reply does on HAProxy 2.6).
func Reply(in AgentInput) string {
	if !in.Known {
		return haproxy.AgentUnknown
	}
	w := haproxy.AgentWeight(max(1, in.Weight))
	switch {
	case in.Drain:
		return haproxy.AgentDrain
	case in.Ready:
		return haproxy.AgentReady
	default:
		return w
	}
}
