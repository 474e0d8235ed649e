package haproxy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "capture testdata/ from a real HAProxy (go test -run TestCaptureFixtures -update)")

// TestCaptureFixtures rewrites testdata/ with real `show stat api 6 -1`
// output of HAProxy in known states, plus hand-edit-like variants derived
// from it. It runs only with -update; the parser tests read the files.
func TestCaptureFixtures(t *testing.T) {
	if !*update {
		t.Skip("run with -update to capture fixtures from a real HAProxy")
	}
	agent := startTestAgent(t)
	h := startHAProxy(t, haproxyOpts{agentPort: agent.port(), slowFall: "s5"})
	save := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	capture := func(name string) []byte {
		t.Helper()
		data := h.raw(t, "show stat api 6 -1")
		save(name, data)
		return data
	}
	server := func(name, what string, cond func(Server) bool) {
		t.Helper()
		h.waitServer(t, name, what, cond)
	}
	status := func(name, want string) {
		t.Helper()
		server(name, "status "+want, func(s Server) bool { return s.Status == want })
	}
	allUp := func() {
		t.Helper()
		h.waitStat(t, "all servers up, weight 100, checked", func(st BackendStats) bool {
			for _, s := range st.Servers {
				if s.Status != "UP" || s.Weight != 100 || s.CheckStatus != "L7OK" {
					return false
				}
				if !s.Backup && s.AgentStatus != "CHECKED" && s.AgentStatus != "L7OK" {
					return false
				}
			}
			return true
		})
	}
	// Right after start-up the s5 (fall 3) shows "UP 1/3" and checks show
	// "INI" until the first checks complete.
	allUp()

	// s4 answers 500 to traffic (not to checks): 10 requests over 5
	// servers in round robin give s4 two 5xx responses.
	h.backends["s4"].code.Store(500)
	h.get(t, 10)
	allUpCSV := capture("all_up.csv")

	h.exec(t, "set server api/s2 state drain")
	status("s2", "DRAIN (agent)")
	capture("drain.csv")
	h.exec(t, "set server api/s2 state ready")
	allUp()

	h.exec(t, "set server api/s2 state maint")
	status("s2", "MAINT")
	capture("maint.csv")
	h.exec(t, "set server api/s2 state ready")
	allUp()

	h.exec(t, "set server api/s2 weight 0")
	server("s2", "weight 0", func(s Server) bool { return s.Weight == 0 })
	capture("weight0.csv")
	h.exec(t, "set server api/s2 weight 100")
	allUp()

	h.backends["s5"].checkCode.Store(503)
	status("s5", "UP 1/3")
	capture("up_going_down.csv")
	status("s5", "DOWN")
	capture("down.csv")
	h.backends["s5"].checkCode.Store(200)
	allUp()

	agent.set("api/s3", AgentDown)
	status("s3", "DOWN (agent)")
	capture("down_agent.csv")
	agent.set("api/s3", AgentUp)
	allUp()
	agent.set("api/s3", AgentNoChange)

	h.backends["s1"].checkCode.Store(404)
	status("s1", "NOLB")
	capture("nolb.csv")
	h.backends["s1"].checkCode.Store(200)
	allUp()

	agent.set("api/s2", AgentWeight(50))
	agent.set("api/s3", AgentWeight(0))
	server("s2", "weight 50", func(s Server) bool { return s.Weight == 50 })
	server("s3", "weight 0", func(s Server) bool { return s.Weight == 0 })
	capture("agent_weights.csv")
	agent.set("api/s2", AgentWeight(100))
	agent.set("api/s3", AgentWeight(100))
	allUp()

	for _, name := range activeServers {
		h.backends[name].checkCode.Store(503)
	}
	h.waitUsable(t, 0)
	status("s5", "DOWN")
	capture("backup_only.csv")

	save("unknown_backend.txt", h.raw(t, "show stat nosuch 6 -1"))
	save("unknown_backend_severity.txt", h.raw(t, "set severity-output number;show stat nosuch 6 -1"))

	// Hand-edit-like variants of all_up.csv.
	s1 := bytes.Index(allUpCSV, []byte("\napi,s1,")) + 1
	s3 := bytes.Index(allUpCSV, []byte("\napi,s3,")) + 1
	be := bytes.Index(allUpCSV, []byte("\napi,BACKEND,")) + 1
	if s1 == 0 || s3 == 0 || be == 0 {
		t.Fatalf("all_up.csv lacks expected rows:\n%s", allUpCSV)
	}
	row1 := allUpCSV[s1 : bytes.IndexByte(allUpCSV[s1:], '\n')+s1]
	edited := bytes.Replace(row1, []byte(",Layer7 check passed,"), []byte(",\"Layer7 check\npassed, \"\"really\"\"\","), 1)
	if bytes.Equal(edited, row1) {
		t.Fatalf("s1 row lacks check_desc: %s", row1)
	}
	save("quoted_newline.csv", bytes.Join([][]byte{allUpCSV[:s1], edited, allUpCSV[s1+len(row1):]}, nil))
	save("truncated_midrow.csv", allUpCSV[:s3+40])
	save("truncated_rowboundary.csv", allUpCSV[:be])
}
