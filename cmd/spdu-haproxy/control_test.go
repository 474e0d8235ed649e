package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// ctlRun runs a control command as the CLI does and returns its output and
// error.
func ctlRun(socket string, args ...string) (string, error) {
	var out strings.Builder
	fs := flag.NewFlagSet("spdu-haproxy "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := controlMain(args[0], fs, append([]string{"-socket", socket}, args[1:]...), &out, func() (string, error) {
		return "", nil
	})
	return out.String(), err
}

func TestControlCommandErrors(t *testing.T) {
	dir := testenv.TempDir(t)
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"status"}, "connect: no such file or directory"},
		{[]string{"drain", "extra"}, "usage"},
		{[]string{"drain", "-wait", "soon"}, "usage"},
		{[]string{"frob"}, "usage"},
		{[]string{"shed"}, "usage"},
		{[]string{"shed", "0.5", "0.6"}, "usage"},
		{[]string{"shed", "-1"}, "usage"},
		{[]string{"shed", "lots"}, "usage"},
		{[]string{"shed", "1.5"}, "usage"},
		{[]string{"shed", "-for", "-1s", "0.5"}, "usage"},
		// Well-formed, wherever FRACTION stands: the socket is all that is
		// missing.
		{[]string{"shed", "0.5", "-reason", "deploy"}, "connect: no such file"},
		{[]string{"shed", "-for", "1h", "50%"}, "connect: no such file"},
		{[]string{"shed", "-reason", "x", "off", "-for", "1m"}, "connect: no such file"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := ctlRun(dir+"/missing.sock", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseFraction(t *testing.T) {
	for in, want := range map[string]float64{"off": 0, "0": 0, "0.25": 0.25, "1": 1, "50%": 0.5, "100%": 1, "0%": 0} {
		if got, err := parseFraction(in); err != nil || got != want {
			t.Errorf("parseFraction(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "on", "1.01", "-0.1", "101%", "NaN", "half", "5%%"} {
		if got, err := parseFraction(in); err == nil {
			t.Errorf("parseFraction(%q) = %v; want an error", in, got)
		}
	}
}
