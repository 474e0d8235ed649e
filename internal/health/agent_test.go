package health

import "testing"

func TestAgentReply(t *testing.T) {
	if got := AgentReply(true); got != "100%" {
		t.Errorf("AgentReply(known) = %q, want \"100%%\"", got)
	}
	if got := AgentReply(false); got != "" {
		t.Errorf("AgentReply(unknown) = %q, want the empty no-change reply", got)
	}
}
