// Command demo-backend is a stand-in for one of a site's service daemons, for
// the local demo and the benchmarks: an HTTP server that answers GET /status
// with 200 "ok" (HAProxy's httpchk target) and every other path with a line
// naming itself. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4441", "address to serve HTTP on")
	name := flag.String("name", "", "name in the reply (default: the listen address)")
	delay := flag.Duration("delay", 0, "added to every reply except /status, to play a slow server")
	flag.Parse()
	if *name == "" {
		*name = *listen
	}
	if err := serve(*listen, *name, *delay); err != nil {
		fmt.Fprintf(os.Stderr, "demo-backend: %v\n", err)
		os.Exit(1)
	}
}

func serve(addr, name string, delay time.Duration) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "hello from %s\n", name)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
