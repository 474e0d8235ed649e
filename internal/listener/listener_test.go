package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// echoName serves ln by writing name to every connection and closing it.
func echoName(name string) ServeFunc {
	return func(ctx context.Context, ln net.Listener) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				return err
			}
			io.WriteString(c, name) //nolint:errcheck // the test reads it
			c.Close()
		}
	}
}

// read dials addr and returns what the server wrote, or "" when refused or
// not served (bound but nobody accepting: nothing within 200 ms).
func read(addr string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond)) //nolint:errcheck // read fails otherwise
	b, _ := io.ReadAll(c)
	return string(b)
}

func run(t *testing.T, s *Slot) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, echoName("x")) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	}
}

// TestSlotMoves: a move binds the new address before the old one closes,
// a refused move changes nothing, "" turns the listener off and back on,
// and Run closes what is in force.
func TestSlotMoves(t *testing.T) {
	a := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	s := New("test.listen", zerolog.Nop(), TCP)
	if err := s.Bind(a); err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	if read(a) != "x" {
		t.Fatal("not served after Bind and Run")
	}

	b := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	m, err := s.Prepare(b)
	if err != nil {
		t.Fatal(err)
	}
	if read(a) != "x" || read(b) != "" {
		t.Fatal("Prepare changed what is served")
	}
	s.Apply(m)
	if read(b) != "x" || read(a) != "" {
		t.Errorf("after Apply: %q on new, %q on old; want x and refused", read(b), read(a))
	}

	// A taken address is refused and nothing changes.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := s.Prepare(taken.Addr().String()); err == nil {
		t.Error("Prepare of a taken address succeeded")
	}
	if read(b) != "x" {
		t.Error("a refused move stopped the listener")
	}
	// A discarded move releases its socket.
	c := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	m, err = s.Prepare(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Discard(); err != nil {
		t.Fatal(err)
	}
	if l, err := net.Listen("tcp", c); err != nil {
		t.Errorf("a discarded move still holds %s: %v", c, err)
	} else {
		l.Close()
	}
	// Off and on again.
	m, _ = s.Prepare("")
	s.Apply(m)
	if read(b) != "" || s.Addr() != nil {
		t.Error("turned off, still serving")
	}
	m, err = s.Prepare(a)
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(m)
	if read(a) != "x" {
		t.Error("turned on again, not serving")
	}
	stop()
	if read(a) != "" {
		t.Error("Run returned with the listener open")
	}
}

// TestSlotSamePort: narrowing 0.0.0.0:P to 127.0.0.1:P cannot bind first;
// Prepare closes the old listener early, Apply serves the new one, and
// Discard brings the old one back.
func TestSlotSamePort(t *testing.T) {
	port := testenv.FreePort(t)
	wide, narrow := fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("127.0.0.1:%d", port)
	s := New("test.listen", zerolog.Nop(), TCP)
	if err := s.Bind(wide); err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	defer stop()
	if read(narrow) != "x" {
		t.Fatal("not served after Bind and Run")
	}
	m, err := s.Prepare(narrow)
	if err != nil {
		t.Fatalf("same-port move: %v", err)
	}
	if err := m.Discard(); err != nil {
		t.Fatal(err)
	}
	if read(narrow) != "x" || s.Addr().String() != "[::]:"+strconv.Itoa(port) && s.Addr().String() != wide {
		t.Errorf("after Discard: %q served, address %v; want the wide listener back", read(narrow), s.Addr())
	}
	m, err = s.Prepare(narrow)
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(m)
	if read(narrow) != "x" || s.Addr().String() != narrow {
		t.Errorf("after Apply: address %v, want %s", s.Addr(), narrow)
	}
}

// flakyListener fails Accept with errs first, then returns conn, then
// net.ErrClosed: a pure unit for Accept's back-off (running out of file
// descriptors for real would starve the whole test process).
type flakyListener struct {
	net.Listener
	errs []error
	conn net.Conn
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	if c := l.conn; c != nil {
		l.conn = nil
		return c, nil
	}
	return nil, net.ErrClosed
}

// TestAcceptRetries: an error such as EMFILE does not end the serve loop
// (it is retried after a back-off); closing does; stop ends a back-off.
func TestAcceptRetries(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	ln := &flakyListener{errs: []error{emfile, emfile, emfile}, conn: a}
	c, err := Accept(ln, nil, zerolog.Nop(), "accept")
	if err != nil || c != a {
		t.Fatalf("Accept after three EMFILE = %v, %v; want the connection", c, err)
	}
	if _, err := Accept(ln, nil, zerolog.Nop(), "accept"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener = %v, want net.ErrClosed", err)
	}
	stop := make(chan struct{})
	close(stop)
	ln = &flakyListener{errs: []error{emfile, emfile, emfile, emfile}, conn: a}
	if _, err := Accept(ln, stop, zerolog.Nop(), "accept"); !errors.Is(err, net.ErrClosed) || len(ln.errs) != 3 {
		t.Fatalf("Accept with stop closed = %v after %d errors, want net.ErrClosed after the first", err, 4-len(ln.errs))
	}
}
