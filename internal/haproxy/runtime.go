package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/haproxytech/client-native/v5/runtime"
	"github.com/haproxytech/client-native/v5/runtime/options"
)

// ErrBusy is returned at once by a Runtime call while another call on the
// same Runtime is still talking to HAProxy: typically an earlier call that
// outlived its context on a hung socket. At most one call is in flight per
// Runtime, so a hung socket costs one goroutine, not one per poll;
// client-native gives up on its own after 30 s.
var ErrBusy = errors.New("previous runtime api call still in flight")

// Runtime reads HAProxy's runtime API (management guide §9.3 "Unix Socket
// commands") over a unix socket. Connections and commands go through
// client-native's runtime.SingleRuntime (one connection per command); Runtime
// adds context deadlines and the one-call-in-flight guard. It is safe for
// concurrent use, but calls do not queue: a call made while another is in
// flight fails with ErrBusy. Give each independent user its own Runtime.
type Runtime struct {
	socket string
	rt     *runtime.SingleRuntime
	// busy is true while a call's goroutine is talking to HAProxy.
	busy atomic.Bool
}

// NewRuntime returns a Runtime for the stats socket at path socket (which
// needs "level operator" or higher for `set` commands). It does not connect:
// a missing socket shows up as an error from the first call.
func NewRuntime(socket string) *Runtime {
	rt := &runtime.SingleRuntime{}
	// With DoNotCheckRuntimeOnInit, Init only stores its arguments and
	// cannot fail.
	_ = rt.Init(socket, 0, 0, options.RuntimeOptions{DoNotCheckRuntimeOnInit: true})
	return &Runtime{socket: socket, rt: rt}
}

// showStatAttempts is how many dumps ShowStat and ShowSite read before they
// give up on a dump that disagrees with itself (ErrInconsistent).
const showStatAttempts = 3

// ShowStat runs `show stat <backend> 6 -1` (management guide §9.3 "show
// stat"; 6 = backends and servers) and parses it with ParseStat. It returns
// when ctx is done at the latest; a missing socket, an error reply, an
// unknown backend or a truncated dump is an error, never zero servers.
//
// HAProxy 2.6 writes a dump while its check threads keep running, so a dump
// taken during a server state change can show the server's new status
// with the backend's old "act" (or the reverse): about 1 in 200 agent
// up/down transitions in our tests, always consistent again on the next
// dump. ShowStat therefore reads up to 3 dumps before returning
// ErrInconsistent.
func (r *Runtime) ShowStat(ctx context.Context, backend string) (BackendStats, error) {
	return r.showStat(ctx, backend, "")
}

// ShowSite is ShowStat that also reads the FRONTEND row of frontend (""
// for none) in the same request to HAProxy ("show stat <frontend> 1
// -1;show stat <backend> 6 -1", management guide §9.3: commands separated
// by ';' run in order), so the load signal of load shedding costs no extra
// round trip. The frontend's row is BackendStats.Frontend. Errors are
// ShowStat's and ParseFrontend's.
func (r *Runtime) ShowSite(ctx context.Context, backend, frontend string) (BackendStats, error) {
	return r.showStat(ctx, backend, frontend)
}

// showStat is ShowStat when frontend is "" and ShowSite otherwise: it
// prefixes the frontend's `show stat <frontend> 1 -1` to the request and
// splits the reply in two only when frontend != "". Either way it reads up
// to showStatAttempts dumps while ParseStat reports ErrInconsistent.
func (r *Runtime) showStat(ctx context.Context, backend, frontend string) (BackendStats, error) {
	cmd := "show stat " + backend + " 6 -1"
	if frontend == "" {
		if !validName(backend) {
			return BackendStats{}, fmt.Errorf("show stat: bad backend name %q", backend)
		}
	} else {
		if !validName(backend) || !validName(frontend) {
			return BackendStats{}, fmt.Errorf("show stat: bad backend or frontend name %q, %q", backend, frontend)
		}
		cmd = "show stat " + frontend + " 1 -1;" + cmd
	}
	var err error
	for range showStatAttempts {
		var out string
		// execute, not Execute: cmd holds a ';' when frontend != "", and
		// validName already rules out '\r', '\n' and ';' in the names.
		out, err = r.execute(ctx, cmd)
		if err != nil {
			return BackendStats{}, err
		}
		data := []byte(out)
		var fe *FrontendStats
		if frontend != "" {
			i := bytes.Index(data, []byte("\n# "))
			if i < 0 {
				return BackendStats{}, fmt.Errorf("show stat %s and %s: one dump instead of two: %q", frontend, backend, firstLine(data))
			}
			f, ferr := ParseFrontend(data[:i], frontend)
			if ferr != nil {
				return BackendStats{}, ferr
			}
			fe, data = &f, data[i+1:]
		}
		var st BackendStats
		st, err = ParseStat(data, backend)
		if !errors.Is(err, ErrInconsistent) {
			st.Frontend = fe // nil without a frontend, as ParseStat leaves it
			return st, err
		}
	}
	return BackendStats{}, err
}

// Execute runs one runtime API command (management guide §9.3), such as
// "set server api/s1 weight 50", and returns HAProxy's reply with surrounding
// whitespace trimmed. Replies HAProxy marks as errors ("[N]: ..." with
// severity-output number) become errors. cmd must be a single command: no
// newline and no ';'. Execute returns when ctx is done at the latest, and
// fails at once with ErrBusy while an earlier call is still stuck.
func (r *Runtime) Execute(ctx context.Context, cmd string) (string, error) {
	if cmd == "" || strings.ContainsAny(cmd, "\r\n;") {
		return "", fmt.Errorf("runtime api: bad command %q", cmd)
	}
	return r.execute(ctx, cmd)
}

// execute is Execute without the check that cmd is a single command.
func (r *Runtime) execute(ctx context.Context, cmd string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("runtime api %s: %s: %w", r.socket, cmd, err)
	}
	if !r.busy.CompareAndSwap(false, true) {
		return "", fmt.Errorf("runtime api %s: %s: %w", r.socket, cmd, ErrBusy)
	}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := r.rt.ExecuteWithResponse(cmd)
		// Clear busy before handing over the result, so that a caller may
		// start its next call as soon as this one returns.
		r.busy.Store(false)
		done <- result{out, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			// client-native's error already names the command.
			return "", fmt.Errorf("runtime api %s: %w", r.socket, res.err)
		}
		return res.out, nil
	case <-ctx.Done():
		return "", fmt.Errorf("runtime api %s: %s: %w", r.socket, cmd, ctx.Err())
	}
}
