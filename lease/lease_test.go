package lease_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

const metaDB = "fleetsync_internal"

// leases returns a Store on fleetsync_internal.leases of client.
func leases(client *mongo.Client) *lease.Store {
	return lease.NewStore(client.Database(metaDB).Collection("leases"))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fencedCheckpoint records checkpoint in partition p1 under l, the way a copy worker would, and
// reports whether the server let the write through.
func fencedCheckpoint(t *testing.T, ctx context.Context, parts *mongo.Collection, l lease.Lease, checkpoint int) bool {
	t.Helper()
	filter := append(bson.D{{Key: "_id", Value: l.Name}}, l.Fence()...)
	res, err := parts.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "checkpoint", Value: checkpoint}}}})
	if err != nil {
		t.Fatalf("fenced checkpoint by %s: %v", l.Owner, err)
	}
	return res.MatchedCount == 1
}

// Sixteen nodes race for the coordinator lease, twenty times over: every round has exactly one
// winner, at the next epoch, and every loser is told who holds it.
func TestRaceHasOneHolderPerEpoch(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	uri := sandboxtest.Server(t, false)
	const nodes, rounds = 16, 20
	stores := make([]*lease.Store, nodes)
	for i := range stores {
		stores[i] = leases(sandboxtest.Connect(t, uri))
	}

	var lastEpoch int64
	for round := 1; round <= rounds; round++ {
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			won     = make([]lease.Lease, nodes)
			errs    = make([]error, nodes)
			winners []lease.Lease
		)
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				won[i], errs[i] = stores[i].Acquire(ctx, "coordinator", fmt.Sprintf("node-%02d", i), time.Minute)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			var held *lease.HeldError
			switch {
			case err == nil:
				winners = append(winners, won[i])
			case errors.As(err, &held):
			default:
				t.Fatalf("round %d, node-%02d: %v", round, i, err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d nodes acquired the lease, want exactly 1: %+v", round, len(winners), winners)
		}
		w := winners[0]
		if w.Epoch != lastEpoch+1 {
			t.Fatalf("round %d: %s won at epoch %d, want %d", round, w.Owner, w.Epoch, lastEpoch+1)
		}
		for i, err := range errs {
			var held *lease.HeldError
			if errors.As(err, &held) && held.Owner != w.Owner {
				t.Errorf("round %d, node-%02d was told %q; the holder is %s", round, i, err, w.Owner)
			}
		}
		lastEpoch = w.Epoch
		if err := stores[0].Release(ctx, w); err != nil {
			t.Fatalf("round %d: releasing %s's lease: %v", round, w.Owner, err)
		}
	}
}

// A holder that slept past its lease's expiry can neither renew it nor checkpoint under it; once
// another node takes the partition over, only the new holder's checkpoints land.
func TestExpiredHolderIsFencedOut(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	parts := client.Database(metaDB).Collection("partitions")
	if _, err := parts.InsertOne(ctx, bson.D{{Key: "_id", Value: "p1"}, {Key: "checkpoint", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	store := lease.NewStore(parts) // the partition document carries its own lease

	const ttl = 2 * time.Second // long enough that the first write lands while live, even on a slow machine
	a, err := store.Acquire(ctx, "p1", "node-a", ttl)
	if err != nil {
		t.Fatalf("node-a acquiring a partition no one holds: %v", err)
	}
	if a.Epoch != 1 {
		t.Fatalf("first holder's epoch is %d, want 1", a.Epoch)
	}
	if !fencedCheckpoint(t, ctx, parts, a, 1) {
		t.Fatal("node-a's checkpoint under its live lease was rejected")
	}

	time.Sleep(ttl + 500*time.Millisecond) // node-a is paused past its TTL

	_, err = store.Renew(ctx, a)
	var lost *lease.LostError
	if !errors.As(err, &lost) || !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("renewing an expired lease: got %v, want a LostError saying it expired", err)
	}
	if fencedCheckpoint(t, ctx, parts, a, 2) {
		t.Fatal("node-a's checkpoint under its expired lease was accepted")
	}

	b, err := store.Acquire(ctx, "p1", "node-b", time.Minute)
	if err != nil {
		t.Fatalf("node-b taking over an expired lease: %v", err)
	}
	if b.Epoch != a.Epoch+1 {
		t.Fatalf("takeover epoch is %d, want %d", b.Epoch, a.Epoch+1)
	}
	if fencedCheckpoint(t, ctx, parts, a, 3) {
		t.Fatal("node-a's checkpoint was accepted after node-b took the partition over")
	}
	if !fencedCheckpoint(t, ctx, parts, b, 4) {
		t.Fatal("node-b's checkpoint under its new lease was rejected")
	}
	if err := store.Release(ctx, a); !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "node-b took it over") {
		t.Fatalf("node-a releasing a lease node-b took over: got %v, want a LostError naming node-b", err)
	}

	var got struct {
		Checkpoint int    `bson:"checkpoint"`
		Owner      string `bson:"owner"`
	}
	if err := parts.FindOne(ctx, bson.D{{Key: "_id", Value: "p1"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Checkpoint != 4 || got.Owner != "node-b" {
		t.Fatalf("partition ends with checkpoint %d owned by %q, want 4 owned by node-b", got.Checkpoint, got.Owner)
	}
}

// Releasing hands the lease over at once, at the next epoch; the releaser's old lease is dead.
func TestReleaseHandsOverAtOnce(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	store := leases(sandboxtest.Connect(t, sandboxtest.Server(t, false)))

	a, err := store.Acquire(ctx, "applier", "node-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Acquire(ctx, "applier", "node-b", time.Hour)
	var held *lease.HeldError
	if !errors.As(err, &held) || held.Owner != "node-a" || !strings.Contains(err.Error(), "lease applier is held by node-a") {
		t.Fatalf("node-b acquiring node-a's live lease: got %v, want a HeldError naming node-a", err)
	}

	if err := store.Release(ctx, a); err != nil {
		t.Fatalf("releasing: %v", err)
	}
	b, err := store.Acquire(ctx, "applier", "node-b", time.Hour)
	if err != nil {
		t.Fatalf("node-b acquiring right after node-a released (an hour before its TTL): %v", err)
	}
	if b.Epoch != a.Epoch+1 {
		t.Fatalf("epoch after hand-over is %d, want %d", b.Epoch, a.Epoch+1)
	}
	if _, err := store.Renew(ctx, a); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("node-a renewing the lease it released: got %v, want ErrLost", err)
	}
}

// Re-acquiring one's own live lease renews it without a new epoch, so one's own fenced writes stay
// valid; after a release, acquiring again is a new holding with a new epoch.
func TestReacquireOwnLeaseKeepsEpoch(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	store := leases(sandboxtest.Connect(t, sandboxtest.Server(t, false)))

	first, err := store.Acquire(ctx, "coordinator", "node-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	again, err := store.Acquire(ctx, "coordinator", "node-a", time.Hour)
	if err != nil {
		t.Fatalf("re-acquiring my own live lease: %v", err)
	}
	if again.Epoch != first.Epoch {
		t.Fatalf("re-acquiring my own live lease moved the epoch from %d to %d", first.Epoch, again.Epoch)
	}
	if err := store.Release(ctx, again); err != nil {
		t.Fatal(err)
	}
	third, err := store.Acquire(ctx, "coordinator", "node-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if third.Epoch != first.Epoch+1 {
		t.Fatalf("acquiring after my own release: epoch %d, want %d", third.Epoch, first.Epoch+1)
	}
}
