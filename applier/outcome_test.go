package applier

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

// A batch write that gets no answer (the connection dropped) may still run on the destination until
// its deadline: the applier applies the batch again only after that deadline, so that the late
// write cannot land after a newer version of its document.
func TestApplierWaitsOutAWriteWithNoAnswer(t *testing.T) {
	const leaseTTL = 6 * time.Second
	ctx := context.Background()
	c := sandboxtest.Pair(t)
	sent := sandboxtest.NewCommands()
	var (
		mu    sync.Mutex
		times []time.Time
	)
	sent.OnStart(func(e *event.CommandStartedEvent) {
		if e.DatabaseName == "app" && e.CommandName == "update" {
			mu.Lock()
			times = append(times, time.Now()) // one lane: the updates are sent one after another
			mu.Unlock()
		}
	})
	src := sandboxtest.Connect(t, c.Source)
	dst := sandboxtest.ConnectWith(t, c.Destination, mongoconn.Options{Monitor: sent.Monitor()})
	meta := inApplyPhase(t, src, dst)
	sandboxtest.FailCommand(t, dst, sandboxtest.FailPoint{Commands: []string{"update"}, Namespace: "app.c", CloseConnection: true, Times: 1})
	if _, err := src.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	store := lease.NewStore(meta.Collection(metadata.CollCheckpoints))
	l, err := store.Acquire(ctx, "t", "a", leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, store, l)
	defer kept.Stop()
	cfg := Config{Source: src, Destination: dst, Meta: meta, Mode: ModeOplog, Lanes: 1, Log: zaptest.NewLogger(t)}
	// The first run fails on the dropped connection; the node runs the applier again, as here.
	for attempt := 0; attempt < 3; attempt++ {
		if n, _ := dst.Database("app").Collection("c").CountDocuments(ctx, bson.D{}); n == 1 {
			break
		}
		runCtx, stop := context.WithTimeout(kept.Context(), 15*time.Second)
		done := make(chan error, 1)
		go func() { done <- Run(runCtx, cfg, kept) }()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if n, _ := dst.Database("app").Collection("c").CountDocuments(ctx, bson.D{}); n == 1 {
				break
			}
			select {
			case <-done:
				deadline = time.Now()
			case <-time.After(50 * time.Millisecond):
			}
		}
		stop()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) < 2 {
		t.Fatalf("%d updates sent; want the one without an answer and the one applying the batch again", len(times))
	}
	// The batch's deadline is its lease's validity when it started, which renewals every TTL/3 keep
	// at about 0.47 TTL or more; the retry comes after it (an error alone waits 1 s).
	if gap := times[1].Sub(times[0]); gap < leaseTTL/3 {
		t.Fatalf("the batch was applied again %s after its write got no answer; want after the write's deadline (at least %s)",
			gap.Round(time.Millisecond), leaseTTL/3)
	}
}
