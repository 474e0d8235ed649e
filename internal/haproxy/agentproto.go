package haproxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Agent reply words (configuration manual §5.2 "agent-check"). HAProxy 2.6
// reads one line (up to the first CR or LF) made of words separated by
// spaces, tabs or commas; a '#' starts a description that is only used when
// a health word is present. Words may come in any order; within a category
// the last one wins. What each word does on HAProxy 2.6 was verified on a
// real HAProxy (see AGENT_NOTES.md and the tests):
//
//   - AgentNoChange (an empty line), a line holding only a "# comment", or an
//     unknown word change nothing: agent_status becomes "CHECKED" ("No status
//     change"); an unknown word is only echoed in last_agt as
//     "agent reports an error : <word>".
//   - A weight "NN%" (AgentWeight) sets the server's weight to NN% of its
//     configured weight, overriding any `set server ... weight` by an
//     operator, and sticks until the next weight.
//   - AgentDrain and AgentMaint set the admin state, which sticks until
//     AgentReady or an operator's `set server ... state ready`.
//   - AgentReady clears drain AND maint, including an operator's
//     `set server ... state drain|maint`: never send it unless you mean to
//     override the operator.
//   - AgentDown marks the server "DOWN (agent)" until AgentUp.
const (
	// AgentNoChange is the reply that leaves the server exactly as it is.
	AgentNoChange = ""
	// AgentUnknown is the reply to a server the agent does not know: a
	// comment alone, which changes nothing (as AgentNoChange) but tells a
	// person reading a capture why.
	AgentUnknown = "# unknown server"
	// AgentUp clears a previous AgentDown.
	AgentUp = "up"
	// AgentDown marks the server "DOWN (agent)" until AgentUp.
	AgentDown = "down"
	// AgentReady clears drain and maint, also when set by an operator.
	AgentReady = "ready"
	// AgentDrain puts the server in DRAIN until AgentReady.
	AgentDrain = "drain"
	// AgentMaint puts the server in MAINT until AgentReady.
	AgentMaint = "maint"
)

// MaxAgentRequest is the longest agent-send line ParseAgentRequest accepts,
// in bytes, excluding the line end.
const MaxAgentRequest = 1024

// AgentWeight returns the agent reply word "NN%" that sets a server's
// weight to percent % of its configured weight (configuration manual §5.2
// "agent-check"). percent is clamped to 0-100 (HAProxy itself accepts more,
// up to a resulting weight of 256); "0%" takes the server out of rotation
// without draining it (status stays "UP", weight 0).
func AgentWeight(percent int) string {
	percent = max(0, min(percent, 100))
	return strconv.Itoa(percent) + "%"
}

// NoOp reports whether an agent reply line changes nothing in HAProxy: an
// empty line or a comment alone (AgentNoChange, AgentUnknown).
func NoOp(reply string) bool {
	return strings.HasPrefix(strings.TrimLeft(reply, " \t,"), "#") || strings.Trim(reply, " \t,") == ""
}

// ReplyWeight returns the weight in percent that an agent reply line sets
// (the "NN%" word; configuration manual §5.2 "agent-check"), or 0 when the
// line sets no weight (a drain, ready, comment or empty reply).
func ReplyWeight(reply string) int {
	for _, w := range strings.FieldsFunc(reply, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
		if strings.HasPrefix(w, "#") {
			break
		}
		if n, ok := strings.CutSuffix(w, "%"); ok {
			if v, err := strconv.Atoi(n); err == nil {
				return v
			}
		}
	}
	return 0
}

// ParseAgentRequest parses one agent-send line (configuration manual §5.2
// "agent-send"), such as "api/s1\n", into its backend and server names;
// "s1" gives backend "". Surrounding spaces, tabs, CR and LF are trimmed.
// Names may hold only the characters HAProxy allows in proxy and server
// names (letters, digits, '-', '_', '.', ':'). Empty, over-long
// (MaxAgentRequest bytes) or malformed requests are errors.
func ParseAgentRequest(line string) (backend, server string, err error) {
	line = strings.Trim(line, " \t\r\n")
	if line == "" {
		return "", "", errors.New("empty agent request")
	}
	if len(line) > MaxAgentRequest {
		return "", "", fmt.Errorf("agent request longer than %d bytes", MaxAgentRequest)
	}
	backend, server, found := strings.Cut(line, "/")
	if !found {
		backend, server = "", line
	} else if !validName(backend) {
		return "", "", fmt.Errorf("agent request %q: bad backend name", line)
	}
	if !validName(server) {
		return "", "", fmt.Errorf("agent request %q: bad server name", line)
	}
	return backend, server, nil
}

// validName reports whether s is a non-empty HAProxy proxy or server name:
// letters, digits, '-', '_', '.', ':' (HAProxy's invalid_char()).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}
