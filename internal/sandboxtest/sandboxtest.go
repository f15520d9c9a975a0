// Package sandboxtest gives a test real MongoDB wire-protocol servers in one call.
//
// The first call in a test binary starts one sandbox JVM (about half a second, plus a one-time Maven
// fetch on a new machine); every test then gets its own fresh in-memory servers, stopped when the test
// ends, so tests never see each other's data and may run in parallel. The JVM exits with the test
// binary, even when the binary is killed.
package sandboxtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/sandbox"
)

// connectTimeout is generous because the shared machines running tests are noisy; a server that
// really is down still fails the test well within go test's own timeout.
const connectTimeout = 20 * time.Second

var (
	once     sync.Once
	launcher *sandbox.Launcher
	startErr error
)

// Launcher returns the test binary's shared sandbox JVM, starting it on first use.
func Launcher(t testing.TB) *sandbox.Launcher {
	t.Helper()
	once.Do(func() {
		launcher, startErr = sandbox.Start(context.Background(), sandbox.Options{
			Progress: func(msg string) { t.Logf("sandbox: %s", msg) },
		})
	})
	if startErr != nil {
		// Not a skip: CI installs Java and Maven, so a missing tool is a broken machine, and a skipped
		// integration suite would pass while proving nothing.
		t.Fatalf("cannot start the sandbox servers: %v", startErr)
	}
	return launcher
}

// Server starts a fresh server for this test (with local.oplog.rs when oplog is set) and returns its
// URI; it is stopped when the test ends.
func Server(t testing.TB, oplog bool) string {
	t.Helper()
	srv, err := Launcher(t).StartServer(0, oplog)
	if err != nil {
		t.Fatalf("starting a sandbox server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping sandbox server %s: %v", srv.URI(), err)
		}
	})
	return srv.URI()
}

// Clusters is a source (oplog on, like a replica set) and a destination, as fleetsync syncs them.
type Clusters struct {
	Source, Destination string
}

// Pair starts a fresh source and destination for this test.
func Pair(t testing.TB) Clusters {
	t.Helper()
	return Clusters{Source: Server(t, true), Destination: Server(t, false)}
}

// Connect returns a client for uri, disconnected when the test ends.
func Connect(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	client, err := mongoconn.Connect(ctx, "test", uri, connectTimeout)
	if err != nil {
		t.Fatalf("connecting to %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}
