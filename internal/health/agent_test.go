package health

import "testing"

func TestReply(t *testing.T) {
	for _, tc := range []struct {
		in   AgentInput
		want string
	}{
		{AgentInput{Known: false, Weight: 50, Drain: true, Ready: true}, "# unknown server"},
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
