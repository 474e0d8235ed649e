package testenv

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Traffic sends GET requests to a URL at a steady rate until Stop, without
// measuring them: it keeps a frontend busy.
type Traffic struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	client *http.Client
	once   sync.Once
}

// StartTraffic sends GET url about rate times per second (open loop, a
// slow reply never delays the next request) until Stop.
func StartTraffic(url string, rate int) *Traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &Traffic{cancel: cancel, client: &http.Client{Timeout: 2 * time.Second}}
	tr.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				tr.wg.Go(func() {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					if resp, err := tr.client.Do(req); err == nil {
						resp.Body.Close()
					}
				})
			}
		}
	})
	return tr
}

// Stop ends the traffic and waits for requests in flight; calling it
// again does nothing.
func (tr *Traffic) Stop() {
	tr.once.Do(func() {
		tr.cancel()
		tr.wg.Wait()
		tr.client.CloseIdleConnections()
	})
}
