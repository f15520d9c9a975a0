package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/failpoint"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/web"
)

// TestCoordinatorKilledBetweenIndexDropAndRebuild commits with a coordinator that is SIGKILLed right
// after dropping an index to rebuild it with its unique or TTL setting (the sandbox has no collMod,
// so every restore is a rebuild). Another node, started afterwards, finishes the commit, and every
// index of the synced namespaces is on the destination exactly as on the source: the same raw
// listIndexes document, field order and number types included (the seed's TTL index has an int32
// expireAfterSeconds).
func TestCoordinatorKilledBetweenIndexDropAndRebuild(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	seedSource(t, c, 3000)
	doomed := startNodeEnv(t, c, "doomed", []string{failpoint.EnvVar + "=" + failpoint.RestoreAfterDrop})
	startSync(t, doomed)
	waitNodeCanCommit(t, doomed)
	lifecycleCall(t, doomed, "commit")
	select {
	case <-doomed.done:
	case <-time.After(fleetDeadline):
		t.Fatalf("the node did not reach the failpoint; stderr: %s", doomed.stderr.String())
	}
	if !strings.Contains(doomed.stderr.String(), "failpoint restoreAfterDrop reached") {
		t.Fatalf("the node ended without reaching the failpoint; stderr: %s", doomed.stderr.String())
	}

	// The index the dead coordinator dropped is missing on the destination, and the catalog says
	// what to build.
	ctx := context.Background()
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	entries, err := metadata.Open(dst, namespace.DefaultMetadataDB, "default").Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dropped string
	var ns namespace.Namespace
	for _, e := range entries {
		n := namespace.Namespace{DB: e.DB, Coll: e.Coll}
		have := rawIndexes(t, dst, n)
		for name := range rawIndexes(t, src, n) {
			if have[name] == nil {
				dropped, ns = name, n
			}
		}
	}
	if dropped == "" {
		t.Fatal("no index is missing on the destination after the kill; the failpoint is meant to be between a drop and its build")
	}
	recorded := false
	for _, e := range entries {
		for _, rb := range e.Rebuilding {
			recorded = recorded || (rb.Index == dropped && e.DB+"."+e.Coll == ns.String())
		}
	}
	if !recorded {
		t.Errorf("the catalog has no rebuild record of index %s of %s", dropped, ns)
	}
	t.Logf("killed after dropping index %s of %s", dropped, ns)

	survivor := startNode(t, c, "survivor")
	var p web.Progress
	waitFor(t, "COMMITTED", func() bool {
		p = progress(t, survivor)
		if p.Fleet.Commit != nil && p.Fleet.Commit.Failure != "" {
			t.Fatalf("the commit failed: %s", p.Fleet.Commit.Failure)
		}
		return p.State == metadata.StateCommitted
	})
	assertCommitted(t, p)

	checked := 0
	for _, e := range entries {
		if len(e.Deferred) == 0 && len(e.Rebuilding) == 0 {
			continue
		}
		ns := namespace.Namespace{DB: e.DB, Coll: e.Coll}
		want, got := rawIndexes(t, src, ns), rawIndexes(t, dst, ns)
		for name, w := range want {
			switch g := got[name]; {
			case g == nil:
				t.Errorf("index %s of %s is missing on the destination after commit", name, ns)
			case !bytes.Equal(g, w):
				t.Errorf("index %s of %s differs after commit:\n source      %s\n destination %s", name, ns, w, g)
			}
			checked++
		}
		if len(got) != len(want) {
			t.Errorf("%s has %d indexes on the destination, %d on the source", ns, len(got), len(want))
		}
	}
	if got := rawIndexes(t, dst, ns)[dropped]; got == nil || !bytes.Equal(got, rawIndexes(t, src, ns)[dropped]) {
		t.Errorf("the dropped index %s of %s after commit: %s", dropped, ns, got)
	}
	t.Logf("%d indexes identical byte for byte; restored %v", checked, p.Fleet.Commit.Restored)
	assertVerified(t, c)
}

// rawIndexes lists ns's indexes on client by name, as the server returns them.
func rawIndexes(t *testing.T, client *mongo.Client, ns namespace.Namespace) map[string]bson.Raw {
	t.Helper()
	specs, err := catalog.ListIndexes(context.Background(), client, ns)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.Raw{}
	for _, s := range specs {
		out[s.Lookup("name").StringValue()] = s
	}
	return out
}
