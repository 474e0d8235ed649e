package haproxy

import (
	"strings"
	"testing"
)

func TestParseAgentRequest(t *testing.T) {
	long := strings.Repeat("a", MaxAgentRequest)
	tests := []struct {
		line        string
		wantBackend string
		wantServer  string
		wantErr     string
	}{
		{line: "api/s1\n", wantBackend: "api", wantServer: "s1"},
		{line: "api/s1", wantBackend: "api", wantServer: "s1"},
		{line: "api/s1\r\n", wantBackend: "api", wantServer: "s1"},
		{line: "  api/s1 \t\n", wantBackend: "api", wantServer: "s1"},
		{line: "s1\n", wantBackend: "", wantServer: "s1"},
		{line: "be-1.prod:x/srv_2.a-b:c\n", wantBackend: "be-1.prod:x", wantServer: "srv_2.a-b:c"},
		{line: long, wantServer: long},
		{line: long + "a", wantErr: "longer than 1024 bytes"},
		{line: "", wantErr: "empty agent request"},
		{line: "\r\n", wantErr: "empty agent request"},
		{line: " \n", wantErr: "empty agent request"},
		{line: "/s1", wantErr: "bad backend name"},
		{line: "api/", wantErr: "bad server name"},
		{line: "api/s1/x", wantErr: "bad server name"},
		{line: "api s1", wantErr: "bad server name"},
		{line: "api/s1 up", wantErr: "bad server name"},
		{line: "api/s1\nx", wantErr: "bad server name"},
		{line: "api;x/s1", wantErr: "bad backend name"},
		{line: "api/s\x00", wantErr: "bad server name"},
		{line: "api/sé", wantErr: "bad server name"},
		{line: "%/s1", wantErr: "bad backend name"},
	}
	for _, tt := range tests {
		backend, server, err := ParseAgentRequest(tt.line)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAgentRequest(%q) = %q, %q, %v; want error containing %q", tt.line, backend, server, err, tt.wantErr)
			}
			continue
		}
		if err != nil || backend != tt.wantBackend || server != tt.wantServer {
			t.Errorf("ParseAgentRequest(%q) = %q, %q, %v; want %q, %q", tt.line, backend, server, err, tt.wantBackend, tt.wantServer)
		}
	}
}

func TestAgentWeight(t *testing.T) {
	tests := []struct {
		percent int
		want    string
	}{
		{100, "100%"},
		{50, "50%"},
		{1, "1%"},
		{0, "0%"},
		{-5, "0%"},
		{101, "100%"},
	}
	for _, tt := range tests {
		if got := AgentWeight(tt.percent); got != tt.want {
			t.Errorf("AgentWeight(%d) = %q, want %q", tt.percent, got, tt.want)
		}
	}
}

func TestNoOp(t *testing.T) {
	for reply, want := range map[string]bool{
		"": true, " ": true, AgentUnknown: true, "#x": true, " # y": true,
		"100%": false, "drain": false, "ready": false, "50% # note": false,
	} {
		if got := NoOp(reply); got != want {
			t.Errorf("NoOp(%q) = %v, want %v", reply, got, want)
		}
	}
}
