package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"
	"time"
)

// ErrCommand wraps a failure the daemon reported (Response.Error), as
// opposed to a failure to talk to it.
var ErrCommand = errors.New("daemon reported")

// Call sends req to the daemon's control socket and returns its response.
// It waits for the response until ctx is done; give a drain -wait a
// context longer than req.Wait. A response with Error set is returned along
// with an error wrapping ErrCommand.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return Response{}, fmt.Errorf("control socket %s: the daemon is not running, or its control.socket is another path (-socket): %w", socket, err)
	}
	if err != nil {
		return Response{}, fmt.Errorf("control socket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) }) //nolint:errcheck // cuts the call
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("control request: %w", err)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("control socket %s: %w", socket, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Response{}, fmt.Errorf("control socket %s: no reply: %w", socket, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("control socket %s: bad reply: %w", socket, err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("%w: %s", ErrCommand, resp.Error)
	}
	return resp, nil
}
