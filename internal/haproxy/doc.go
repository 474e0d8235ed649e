// Package haproxy speaks HAProxy's two machine protocols for spdu-haproxy.
//
// It owns:
//   - reading the runtime API (the "stats socket", HAProxy management guide
//     §9.3 "Unix Socket commands") and parsing `show stat` CSV (§9.1 "CSV
//     format") into an immutable BackendStats snapshot (ParseStat, Runtime);
//   - answering HAProxy's agent checks (configuration manual §5.2
//     "agent-check", "agent-send", "agent-inter") with one line per
//     connection (AgentServer, ParseAgentRequest, the Agent* reply words).
//
// It does not decide anything: which site is healthy, which weight or state
// to announce, or when to poll belong to the policy and daemon packages. The
// parsers and the reply grammar are pure functions; the socket code around
// them stays short. AGENT_NOTES.md records what HAProxy 2.6 really does with
// each agent reply.
package haproxy
