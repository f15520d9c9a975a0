// Package e2e runs fleetsync against real MongoDB clusters: the behaviour only real servers have
// (collection options, views, collMod, change streams, write blocking) is proven here.
//
// It runs when FLEETSYNC_E2E_SOURCE and FLEETSYNC_E2E_DESTINATION hold connection strings of two
// clusters that may be written to; `docker compose up -d source destination` at the repository root
// starts such a pair. Every test works in databases named fleetsync_e2e_<random> and drops them.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/mongoconn"
)

const (
	envSource      = "FLEETSYNC_E2E_SOURCE"
	envDestination = "FLEETSYNC_E2E_DESTINATION"
	connectTimeout = 20 * time.Second
)

var skipReason = fmt.Sprintf("end-to-end suite SKIPPED: set %s and %s to two real MongoDB clusters (for example `docker compose up -d source destination`, then %s=mongodb://127.0.0.1:27017/?directConnection=true %s=mongodb://127.0.0.1:27018/?directConnection=true)",
	envSource, envDestination, envSource, envDestination)

func TestMain(m *testing.M) {
	if os.Getenv(envSource) == "" || os.Getenv(envDestination) == "" {
		// Said loudly, on stderr, so nobody mistakes a green run without clusters for a proof.
		fmt.Fprintln(os.Stderr, "!!! "+skipReason)
	}
	os.Exit(m.Run())
}

// clusters connects to the end-to-end clusters, or skips the test saying why.
func clusters(t *testing.T) (source, destination *mongo.Client) {
	t.Helper()
	src, dst := os.Getenv(envSource), os.Getenv(envDestination)
	if src == "" || dst == "" {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	var err error
	if source, err = mongoconn.Connect(ctx, "source", src, connectTimeout); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { source.Disconnect(ctx) })
	if destination, err = mongoconn.Connect(ctx, "destination", dst, connectTimeout); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destination.Disconnect(ctx) })
	return source, destination
}

// scratchDB returns a fresh database name, dropped on both clusters when the test ends.
func scratchDB(t *testing.T, clients ...*mongo.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "fleetsync_e2e_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		for _, c := range clients {
			_ = c.Database(name).Drop(context.Background())
		}
	})
	return name
}

// scratchSync is what a sync test works in: the clusters, a fresh database to sync and a metadata
// database of the test's own, all dropped when the test ends.
type scratchSync struct {
	source, destination *mongo.Client
	db, metaDB          string
	src                 *mongo.Database // db on the source
}

func newScratchSync(t *testing.T) scratchSync {
	t.Helper()
	source, destination := clusters(t)
	db := scratchDB(t, source, destination)
	s := scratchSync{source: source, destination: destination, db: db, metaDB: db + "_meta", src: source.Database(db)}
	t.Cleanup(func() { _ = destination.Database(s.metaDB).Drop(context.Background()) })
	return s
}

// startBody is the /start body of a test's sync: only its scratch database, so that tests running at
// once on the same clusters never copy each other's data, and no write blocking, which would block
// every other test's writes to the destination too (the lifecycle test turns it on deliberately).
func startBody(db string) string {
	return fmt.Sprintf(`{"source": "cluster0", "destination": "cluster1", "includeNamespaces": [{"database": %q}], "enableUserWriteBlocking": "none"}`, db)
}
