package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/spdu/spdu-haproxy/internal/site"
)

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(filepath.Join(dir, "state.json"), nil)
	d, _, err := s.Load()
	if err != nil || !cmp.Equal(d, site.Drain{}) {
		t.Fatalf("Load of a missing file = %+v, %v; want the zero state", d, err)
	}
	since := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, want := range []site.Drain{
		{Active: true, Reason: "kernel upgrade", Since: since, Servers: []string{"s1", "s2"}},
		{Since: since.Add(time.Hour), Servers: []string{"s2"}},
		{},
	} {
		if err := s.Save(want); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file (no temporary left)", len(entries))
	}
}

func TestStoreErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{"torn", `{"version":1,"dra`, "unexpected end of JSON input"},
		{"version", `{"version":2,"drained":true}`, "version 2, want 1"},
		{"type", `{"version":1,"drained":"yes"}`, "cannot unmarshal string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := NewStore(path, nil).Load()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load error %v, want one naming %s and containing %q", err, path, tc.wantErr)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		err := NewStore(filepath.Join(dir, "nope", "state.json"), nil).Save(site.Drain{Active: true})
		if err == nil || !strings.Contains(err.Error(), "save state") {
			t.Errorf("Save into a missing directory: %v", err)
		}
	})
	t.Run("read-only directory keeps the old state", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only directories")
		}
		ro := t.TempDir()
		s := NewStore(filepath.Join(ro, "state.json"), nil)
		if err := s.Save(site.Drain{Active: true, Reason: "old"}); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(ro, 0o700)
		if err := s.Save(site.Drain{}); err == nil {
			t.Error("Save into a read-only directory succeeded")
		}
		if d, _, err := s.Load(); err != nil || d.Reason != "old" {
			t.Errorf("after a failed save: %+v, %v", d, err)
		}
	})
}

func TestQuietWatch(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name   string
		period time.Duration
		steps  []bool // one reading every 500 ms: quiet or not
		doneAt int    // index of the first reading that ends the wait; -1 never
	}{
		{"quiet from the start", 2 * time.Second, []bool{true, true, true, true, true, true}, 4},
		{"traffic resets", 2 * time.Second, []bool{true, true, true, false, true, true, true, true, true}, 8},
		{"never quiet", time.Second, []bool{false, false, false, false}, -1},
		{"zero period returns at the first quiet reading", 0, []bool{false, true}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := quietWatch{period: tc.period}
			got := -1
			for i, quiet := range tc.steps {
				if q.observe(at(500*i), quiet) {
					got = i
					break
				}
			}
			if got != tc.doneAt {
				t.Errorf("done at reading %d, want %d", got, tc.doneAt)
			}
		})
	}
}

// TestStoreShed checks that the manual shed and the drain share the state
// file without overwriting each other, and that a bad fraction is refused.
func TestStoreShed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := NewStore(path, nil)
	since := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	drain := site.Drain{Active: true, Reason: "rack move", Since: since}
	shed := site.Shed{Fraction: 0.5, Reason: "risky deploy", Since: since, Until: since.Add(time.Hour)}
	if err := s.Save(drain); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveShed(shed); err != nil {
		t.Fatal(err)
	}
	d, sh, err := NewStore(path, nil).Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(drain, d); diff != "" {
		t.Errorf("drain after SaveShed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(shed, sh); diff != "" {
		t.Errorf("shed (-want +got):\n%s", diff)
	}
	if err := s.Save(site.Drain{}); err != nil {
		t.Fatal(err)
	}
	if _, sh, err := NewStore(path, nil).Load(); err != nil || !cmp.Equal(sh, shed) {
		t.Errorf("shed after an undrain = %+v, %v; want it kept", sh, err)
	}
	if err := s.SaveShed(site.Shed{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "shed") {
		t.Errorf("state file after shed off still names a shed:\n%s", b)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"shed":{"fraction":1.5}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewStore(path, nil).Load(); err == nil || !strings.Contains(err.Error(), "shed fraction 1.5") {
		t.Errorf("Load of shed fraction 1.5: %v; want an error naming it", err)
	}
}
