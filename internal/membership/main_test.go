package membership_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// leakDeadline bounds how long goroutines of memberlist, this package or the lease Keeper may take to
// finish after every test has left or closed its memberships (a suspicion timer may still fire).
const leakDeadline = 5 * time.Second

// TestMain fails the package when, after all tests, a goroutine of memberlist, of this package or of
// a lease Keeper is still running: every membership must stop everything it started.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(leakDeadline); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines still running after all tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitForLeaks returns the stacks of the goroutines that are still running ours after deadline, or
// "" as soon as there are none.
func waitForLeaks(deadline time.Duration) string {
	end := time.Now().Add(deadline)
	for {
		leaked := ourGoroutines()
		if leaked == "" || time.Now().After(end) {
			return leaked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ourGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/hashicorp/memberlist.") ||
			strings.Contains(g, "fleetsync/internal/membership.") ||
			strings.Contains(g, "github.com/fleetsync/fleetsync/lease.") {
			ours = append(ours, g)
		}
	}
	return strings.Join(ours, "\n\n")
}
