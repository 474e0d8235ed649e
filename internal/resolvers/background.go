package resolvers

import (
	"sync"
	"time"
)

// background is goroutines that run until Stop.
type background struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newBackground() background { return background{stop: make(chan struct{})} }

// Stop ends the goroutines and waits for them. Stopping twice does
// nothing more.
func (b *background) Stop() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}

// recorded is a list of values, safe for concurrent use.
type recorded[T any] struct {
	mu    sync.Mutex
	items []T
}

func (r *recorded[T]) add(v T) {
	r.mu.Lock()
	r.items = append(r.items, v)
	r.mu.Unlock()
}

// filter returns the values keep accepts, in the order recorded.
func (r *recorded[T]) filter(keep func(T) bool) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, v := range r.items {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// within reports whether at is in [from, to).
func within(at, from, to time.Time) bool { return !at.Before(from) && at.Before(to) }
