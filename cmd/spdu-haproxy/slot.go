package main

import "context"

// slot runs the current instance of one listening component (the agent,
// metrics or control server) in a group, and replaces it when a reload
// moves its listener: the new instance is bound before the old one is told
// to stop. It is used from run's goroutine only.
type slot struct {
	g      *group
	parent context.Context
	name   string
	stop   context.CancelFunc // of the running instance; nil when none
	done   chan struct{}      // closed when the running instance's Run returns
}

// replace starts run (nil: none, the component is turned off) in the group
// and then stops the instance it replaces, returning once that one's Run
// has returned and released its listener. A Run that returns nil after its
// context is cancelled ends quietly; an error fails the group as usual.
func (s *slot) replace(run func(context.Context) error) {
	oldStop, oldDone := s.stop, s.done
	s.stop, s.done = nil, nil
	if run != nil {
		ctx, stop := context.WithCancel(s.parent)
		done := make(chan struct{})
		s.g.start(ctx, s.name, func(ctx context.Context) error {
			defer close(done)
			return run(ctx)
		})
		s.stop, s.done = stop, done
	}
	if oldStop != nil {
		oldStop()
		<-oldDone
	}
}
