package daemon

import (
	"context"
	"fmt"
	"sync"
)

// group runs functions in goroutines and waits for them; the first error
// wins. Each function gets the context it is started with, so the daemon
// can stop its parts in order.
type group struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	firstErr error
	failed   chan struct{} // closed when any part returns an error
	once     sync.Once
}

func newGroup() *group { return &group{failed: make(chan struct{})} }

// start runs fn(ctx) in a goroutine; an error is kept with name.
func (g *group) start(ctx context.Context, name string, fn func(context.Context) error) {
	g.wg.Go(func() {
		if err := fn(ctx); err != nil {
			g.mu.Lock()
			if g.firstErr == nil {
				g.firstErr = fmt.Errorf("%s: %w", name, err)
			}
			g.mu.Unlock()
			g.once.Do(func() { close(g.failed) })
		}
	})
}

// wait returns once every function has returned, with the first error.
func (g *group) wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.firstErr
}
