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

func TestReply(t *testing.T) {
	for _, tc := range []struct {
		in   AgentInput
		want string
	}{
		{AgentInput{Known: false, Weight: 50, Drain: true, Ready: true}, ""},
		{AgentInput{Known: true, Weight: 100}, "100%"},
		{AgentInput{Known: true, Weight: 35}, "35%"},
		{AgentInput{Known: true, Weight: 0}, "1%"}, // never 0%: HAProxy would count it unusable
		{AgentInput{Known: true, Weight: 250}, "100%"},
		{AgentInput{Known: true, Weight: 40, Drain: true}, "drain"},
		{AgentInput{Known: true, Weight: 40, Ready: true}, "ready"},
	} {
		if got := Reply(tc.in); got != tc.want {
			t.Errorf("Reply(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
