// Package failpoint lets process tests stop a node at an exact point of its work, as MongoDB's
// failpoints do: a node started with FLEETSYNC_FAILPOINT=<name> kills itself with SIGKILL when it
// reaches the point of that name. Test-only: production never sets the variable, and an unset or
// unknown name does nothing. docs/test-servers.md lists the points.
package failpoint

import (
	"fmt"
	"os"
)

// EnvVar names the failpoint a process enables, read once when the process starts.
const EnvVar = "FLEETSYNC_FAILPOINT"

// Failpoints.
const (
	// RestoreAfterDrop is the commit's restore step between dropping an index and building it again.
	RestoreAfterDrop = "restoreAfterDrop"
)

// enabled is read once, at process start: a test enables a point for one node process.
var enabled = os.Getenv(EnvVar)

// Kill ends the process with SIGKILL, as an abrupt crash would, when name is the enabled failpoint.
func Kill(name string) {
	if enabled == "" || enabled != name {
		return
	}
	fmt.Fprintf(os.Stderr, "fleetsync: failpoint %s reached; killing this process (%s is set)\n", name, EnvVar)
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		_ = p.Kill() // SIGKILL: no deferred function, no lease release runs
	}
	select {} // Kill returns before the signal lands; nothing after the point may run
}
