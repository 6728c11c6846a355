package testutil

import (
	"context"
	"sync"
	"testing"
)

// RunInBackground runs run in a goroutine until the returned stop is called
// or the test ends (stop is registered with t.Cleanup): stop cancels run's
// context, waits for run to return and reports a non-nil error as
// t.Errorf("<what>: <err>"). stop may be called more than once; only the
// first call waits.
func RunInBackground(t testing.TB, what string, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
