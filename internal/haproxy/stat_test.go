package haproxy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// up is a healthy active server as HAProxy 2.6 shows it in the fixtures,
// changed by mods.
func up(name string, mods ...func(*Server)) Server {
	s := Server{Name: name, Status: "UP", Weight: 100, CheckStatus: "L7OK", AgentStatus: "CHECKED", Usable: true, Stot: 2}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func status(st string, usable bool) func(*Server) {
	return func(s *Server) { s.Status, s.Usable = st, usable }
}

func weight(w int, usable bool) func(*Server) {
	return func(s *Server) { s.Weight, s.Usable = w, usable }
}

func checks(check, agent string) func(*Server) {
	return func(s *Server) { s.CheckStatus, s.AgentStatus = check, agent }
}

// fiveXX: in every fixture s4 answered two of ten requests with 500.
func fiveXX(s *Server) { s.Hrsp5xx = 2 }

// backupUp is the backup server b1 (no agent check).
var backupUp = Server{Name: "b1", Status: "UP", Weight: 100, Backup: true, CheckStatus: "L7OK", Usable: true}

func backend(act int, servers ...Server) BackendStats {
	st := BackendStats{Backend: "api", Status: "UP", Active: act, Backup: 1, Algo: "roundrobin", Servers: servers, Total: 5}
	for _, s := range servers {
		if !s.Backup && s.Usable {
			st.Usable++
		}
	}
	return st
}

func TestParseStatFixtures(t *testing.T) {
	down := status("DOWN", false)
	l7sts := checks("L7STS", "CHECKED")
	tests := []struct {
		file string
		want BackendStats
	}{
		{"all_up.csv", backend(5, up("s1"), up("s2"), up("s3"), up("s4", fiveXX), up("s5"), backupUp)},
		// HAProxy 2.6 shows "DRAIN (agent)" for a server with an agent
		// check even when an operator drained it; the weight column keeps
		// 100.
		{"drain.csv", backend(4, up("s1"), up("s2", status("DRAIN (agent)", false)), up("s3"), up("s4", fiveXX), up("s5"), backupUp)},
		// MAINT stops the health check: check_status is empty.
		{"maint.csv", backend(4, up("s1"), up("s2", status("MAINT", false), checks("", "CHECKED")), up("s3"), up("s4", fiveXX), up("s5"), backupUp)},
		{"weight0.csv", backend(4, up("s1"), up("s2", weight(0, false)), up("s3"), up("s4", fiveXX), up("s5"), backupUp)},
		// s5 has fall 3: after 2 failed checks it is still usable.
		{"up_going_down.csv", backend(5, up("s1"), up("s2"), up("s3"), up("s4", fiveXX), up("s5", status("UP 1/3", true), l7sts), backupUp)},
		{"down.csv", backend(4, up("s1"), up("s2"), up("s3"), up("s4", fiveXX), up("s5", down, l7sts), backupUp)},
		{"down_agent.csv", backend(4, up("s1"), up("s2"), up("s3", status("DOWN (agent)", false), checks("L7OK", "L7STS")), up("s4", fiveXX), up("s5"), backupUp)},
		// "http-check disable-on-404"; s2's check was running: "* L7OK"
		// in the file. s3's agent said "up" earlier: agent_status L7OK.
		{"nolb.csv", backend(4, up("s1", status("NOLB", false), checks("L7OKC", "CHECKED")), up("s2"), up("s3", checks("L7OK", "L7OK")), up("s4", fiveXX), up("s5"), backupUp)},
		{"agent_weights.csv", backend(4, up("s1"), up("s2", weight(50, true)), up("s3", weight(0, false)), up("s4", fiveXX), up("s5"), backupUp)},
		{"backup_only.csv", backend(0, up("s1", down, l7sts), up("s2", down, l7sts), up("s3", down, l7sts), up("s4", down, l7sts, fiveXX), up("s5", down, l7sts), backupUp)},
		// check_desc of s1 holds a quoted newline, comma and quotes.
		{"quoted_newline.csv", backend(5, up("s1"), up("s2"), up("s3"), up("s4", fiveXX), up("s5"), backupUp)},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseStat(readFixture(t, tt.file), "api")
			if err != nil {
				t.Fatalf("ParseStat: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseStat mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// editField returns the CSV data with column col of the row whose svname is
// sv set to value.
func editField(t *testing.T, data []byte, sv, col, value string) []byte {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("# "))))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	ci := -1
	for i, name := range recs[0] {
		if name == col {
			ci = i
		}
	}
	if ci < 0 {
		t.Fatalf("no column %s", col)
	}
	found := false
	for _, rec := range recs[1:] {
		if rec[1] == sv {
			rec[ci] = value
			found = true
		}
	}
	if !found {
		t.Fatalf("no row %s", sv)
	}
	var out bytes.Buffer
	out.WriteString("# ")
	w := csv.NewWriter(&out)
	if err := w.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// row returns the line of data that starts with prefix, with its newline.
func row(t *testing.T, data []byte, prefix string) []byte {
	t.Helper()
	i := bytes.Index(data, []byte("\n"+prefix))
	if i < 0 {
		t.Fatalf("no row %q", prefix)
	}
	line, _, _ := bytes.Cut(data[i+1:], []byte("\n"))
	return append(line, '\n')
}

func TestParseStatErrors(t *testing.T) {
	allUp := readFixture(t, "all_up.csv")
	withRow := func(extra []byte) []byte {
		return append(bytes.TrimRight(bytes.Clone(allUp), "\n"), append([]byte("\n"), extra...)...)
	}
	tests := []struct {
		name    string
		data    []byte
		backend string
		wantErr string
		wantIs  error
	}{
		{name: "empty input", data: nil, backend: "api", wantErr: "parse show stat api: empty input"},
		{name: "only newlines", data: []byte("\n\n"), backend: "api", wantErr: "empty input"},
		{name: "empty backend name", data: allUp, backend: "", wantErr: "empty backend name"},
		{name: "unknown backend reply", data: readFixture(t, "unknown_backend.txt"), backend: "api", wantErr: `haproxy replied "No such proxy."`},
		{name: "unknown backend reply with severity", data: readFixture(t, "unknown_backend_severity.txt"), backend: "api", wantErr: `haproxy replied "[3]: No such proxy."`},
		{name: "other text", data: []byte("Permission denied\n"), backend: "api", wantErr: `haproxy replied "Permission denied"`},
		{name: "missing columns", data: bytes.Replace(bytes.Replace(allUp, []byte(",weight,"), []byte(",wieght,"), 1), []byte(",agent_status,"), []byte(",agentstatus,"), 1), backend: "api", wantErr: "header lacks columns weight,agent_status"},
		{name: "truncated mid-row", data: readFixture(t, "truncated_midrow.csv"), backend: "api", wantErr: "wrong number of fields"},
		{name: "truncated at row boundary", data: readFixture(t, "truncated_rowboundary.csv"), backend: "api", wantErr: "no BACKEND row (unknown backend or truncated output)"},
		{name: "header only", data: allUp[:bytes.IndexByte(allUp, '\n')+1], backend: "api", wantErr: "no BACKEND row"},
		{name: "rows of another backend", data: allUp, backend: "web", wantErr: "parse show stat web: no BACKEND row"},
		{name: "server row after BACKEND row", data: withRow(row(t, allUp, "api,s1,")), backend: "api", wantErr: "line 9: server row after BACKEND row"},
		{name: "second BACKEND row", data: withRow(row(t, allUp, "api,BACKEND,")), backend: "api", wantErr: "second BACKEND row"},
		{name: "bad weight", data: editField(t, allUp, "s2", "weight", "1x"), backend: "api", wantErr: `line 3: column weight: bad number "1x"`},
		{name: "empty weight", data: editField(t, allUp, "s2", "weight", ""), backend: "api", wantErr: `column weight: bad number ""`},
		{name: "bad counter", data: editField(t, allUp, "s3", "econ", "-"), backend: "api", wantErr: `column econ: bad number "-"`},
		{name: "bad backend act", data: editField(t, allUp, "BACKEND", "act", "five"), backend: "api", wantErr: `column act: bad number "five"`},
		{name: "act disagrees", data: editField(t, allUp, "BACKEND", "act", "4"), backend: "api", wantErr: "5 usable active and 1 usable backup servers, backend row act=4 bck=1", wantIs: ErrInconsistent},
		{name: "bck disagrees", data: editField(t, allUp, "BACKEND", "bck", "0"), backend: "api", wantIs: ErrInconsistent},
		{name: "bad quoting", data: bytes.Replace(allUp, []byte(",Layer7 check passed,"), []byte(`,Layer7 "check" passed,`), 1), backend: "api", wantErr: "bare \" in non-quoted-field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(tt.data, tt.backend)
			if err == nil {
				t.Fatalf("ParseStat succeeded with %+v, want error", got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			if diff := cmp.Diff(BackendStats{}, got); diff != "" {
				t.Errorf("ParseStat returned data with its error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseStatEdited covers server states the fixtures lack, on edited
// copies of all_up.csv.
func TestParseStatEdited(t *testing.T) {
	allUp := readFixture(t, "all_up.csv")
	t.Run("no check and tracked maint", func(t *testing.T) {
		data := editField(t, allUp, "s1", "status", "no check")
		data = editField(t, data, "s1", "check_status", "")
		data = editField(t, data, "s2", "status", "MAINT (via api/s1)")
		data = editField(t, data, "BACKEND", "act", "4")
		got, err := ParseStat(data, "api")
		if err != nil {
			t.Fatal(err)
		}
		want := backend(4, up("s1", status("no check", true), checks("", "CHECKED")), up("s2", status("MAINT (via api/s1)", false)), up("s3"), up("s4", fiveXX), up("s5"), backupUp)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ParseStat mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("counters", func(t *testing.T) {
		data := allUp
		for col, v := range map[string]string{"scur": "7", "qcur": "3", "rtime": "12", "ttime": "40", "hrsp_5xx": "9000000000", "eresp": "5", "econ": "6"} {
			data = editField(t, data, "s1", col, v)
		}
		got, err := ParseStat(data, "api")
		if err != nil {
			t.Fatal(err)
		}
		want := up("s1", func(s *Server) {
			s.Scur, s.Qcur, s.Rtime, s.Ttime, s.Hrsp5xx, s.Eresp, s.Econ = 7, 3, 12, 40, 9000000000, 5, 6
		})
		if diff := cmp.Diff(want, got.Servers[0]); diff != "" {
			t.Errorf("s1 mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("empty counters read as zero", func(t *testing.T) {
		data := editField(t, allUp, "s1", "hrsp_5xx", "")
		got, err := ParseStat(data, "api")
		if err != nil {
			t.Fatal(err)
		}
		if got.Servers[0].Hrsp5xx != 0 {
			t.Errorf("Hrsp5xx = %d, want 0", got.Servers[0].Hrsp5xx)
		}
	})
	t.Run("leading newline and no trailing newline", func(t *testing.T) {
		// What client-native hands over after "set severity-output
		// number;" (it trims the end; HAProxy starts with "\n").
		data := append([]byte("\n"), bytes.TrimSpace(allUp)...)
		got, err := ParseStat(data, "api")
		if err != nil {
			t.Fatal(err)
		}
		if got.Usable != 5 || len(got.Servers) != 6 {
			t.Errorf("got Usable %d, %d servers; want 5, 6", got.Usable, len(got.Servers))
		}
	})
}

func TestServerUsable(t *testing.T) {
	tests := []struct {
		status string
		weight int
		want   bool
	}{
		{"UP", 100, true},
		{"UP", 1, true},
		{"UP", 0, false},
		{"UP 1/3", 100, true},
		{"UP 2/3", 100, true},
		{"no check", 100, true},
		{"no check", 0, false},
		{"DOWN", 100, false},
		{"DOWN 1/2", 100, false},
		{"DOWN (agent)", 100, false},
		{"NOLB", 100, false},
		{"NOLB 1/3", 100, false},
		{"DRAIN", 100, false},
		{"DRAIN (agent)", 100, false},
		{"DRAIN 1/3", 100, false},
		{"MAINT", 100, false},
		{"MAINT (via api/s1)", 100, false},
		{"MAINT (resolution)", 100, false},
		{"UPX", 100, false},
		{"", 100, false},
	}
	for _, tt := range tests {
		if got := serverUsable(tt.status, tt.weight); got != tt.want {
			t.Errorf("serverUsable(%q, %d) = %v, want %v", tt.status, tt.weight, got, tt.want)
		}
	}
}
