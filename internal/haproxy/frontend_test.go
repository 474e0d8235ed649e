package haproxy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// withFrontend returns all_up.csv with a FRONTEND row for "www" made from
// its BACKEND row, with the given columns set.
func withFrontend(t *testing.T, set map[string]string) []byte {
	t.Helper()
	data := readFixture(t, "all_up.csv")
	be := strings.TrimSuffix(string(row(t, data, "api,BACKEND,")), "\n")
	fe := strings.Replace(be, "api,BACKEND,", "www,FRONTEND,", 1)
	data = append(bytes.Clone(data), []byte(fe+"\n")...)
	// Make it a frontend row: type 0, then the columns asked for.
	data = editFrontend(t, data, "type", "0")
	for col, v := range set {
		data = editFrontend(t, data, col, v)
	}
	return data
}

// editFrontend is editField for the row named FRONTEND.
func editFrontend(t *testing.T, data []byte, col, value string) []byte {
	t.Helper()
	return editField(t, data, "FRONTEND", col, value)
}

func TestParseFrontend(t *testing.T) {
	data := withFrontend(t, map[string]string{"status": "OPEN", "scur": "3", "rate": "12", "req_rate": "40", "stot": "999", "slim": "2000", "rate_lim": "50"})
	got, err := ParseFrontend(data, "www")
	if err != nil {
		t.Fatal(err)
	}
	want := FrontendStats{Frontend: "www", Status: "OPEN", Scur: 3, Rate: 12, ReqRate: 40, Stot: 999, Slim: 2000, RateLim: 50}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseFrontend mismatch (-want +got):\n%s", diff)
	}
	if got.Quiet() {
		t.Error("Quiet() with traffic")
	}
	tcp, err := ParseFrontend(withFrontend(t, map[string]string{"rate": "0", "req_rate": ""}), "www")
	if err != nil {
		t.Fatal(err)
	}
	if !tcp.Quiet() {
		t.Errorf("Quiet() false for %+v", tcp)
	}
}

func TestParseFrontendErrors(t *testing.T) {
	for _, tc := range []struct {
		name, frontend, wantErr string
		data                    []byte
	}{
		{"backend only", "api", "no FRONTEND row", readFixture(t, "all_up.csv")},
		{"unknown", "web", "no FRONTEND row", withFrontend(t, nil)},
		{"error reply", "www", `haproxy replied "No such proxy."`, readFixture(t, "unknown_backend.txt")},
		{"bad rate", "www", `column rate: bad number "x"`, withFrontend(t, map[string]string{"rate": "x"})},
		{"empty name", "", "empty frontend name", withFrontend(t, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFrontend(tc.data, tc.frontend)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
