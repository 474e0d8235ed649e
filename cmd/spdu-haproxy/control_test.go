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
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := ctlRun(dir+"/missing.sock", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
