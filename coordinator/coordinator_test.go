package coordinator_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/worker"
)

// A coordinator that takes over from one that died while partitioning redoes the unfinished
// collections from scratch, then drives the sync through copy and index build; the destination ends
// equal to the source, with unique and TTL settings left out and recorded for commit.
func TestCoordinatorRecoversAHalfWrittenCatalogAndCompletesTheCopy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := sandboxtest.Pair(t)
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	if _, err := seed.Seed(ctx, src, seed.Options{Docs: 6000, Collections: 6, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	if err := meta.Start(ctx, metadata.Options{}); err != nil {
		t.Fatal(err)
	}
	parts := partition.NewStore(meta.Collection(metadata.CollPartitions), "default")

	// What a coordinator that died mid-catalog leaves: shop.orders cataloged but not marked
	// partitioned, with a partial, wrong set of partitions.
	stale := partition.Range{Rank: 10, Min: rawInt(1), Max: rawInt(2)}
	if err := parts.Replace(ctx, "shop.orders", []partition.Range{stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale, stale}); err != nil {
		t.Fatal(err)
	}
	if err := meta.PutCatalogEntry(ctx, metadata.CatalogEntry{ID: metadata.CatalogID("default", "shop.orders"), Sync: "default", DB: "shop", Coll: "orders"}); err != nil {
		t.Fatal(err)
	}

	store := lease.NewStore(meta.Syncs())
	l, err := store.Acquire(ctx, "default", "coord", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopCoordinator := context.WithCancel(ctx)
	defer stopCoordinator()
	go func() {
		_ = coordinator.Run(cctx, coordinator.Config{Source: src, Destination: dst, Meta: meta, Partitions: parts, Lease: l,
			PartitionTargetBytes: 512 << 10, PollInterval: 50 * time.Millisecond, Log: zap.NewNop()})
	}()

	w := worker.New(worker.Config{Source: src, Destination: dst, Partitions: parts, Owner: "w/x/0", LeaseTTL: time.Minute})
	for {
		s, err := meta.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Phase == metadata.PhaseApply {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the copy did not complete; sync %+v", s)
		}
		if s.Phase == metadata.PhaseCopy {
			if res, err := w.CopyOne(ctx, nil); res == worker.Failed {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	all, err := parts.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	orders := 0
	for _, p := range all {
		if p.NS == "shop.orders" {
			orders++
			if p.Range.Rank == stale.Rank && p.Range.Min.Equal(stale.Min) {
				t.Errorf("stale partition %s survived the new coordinator", p.ID)
			}
		}
	}
	if orders < 2 || orders == 20 {
		t.Errorf("shop.orders has %d partitions; want it re-split (at 512 KB, several, not the 20 stale ones)", orders)
	}

	// Indexes: built without unique and with TTL expiry off, and recorded for commit.
	idx, err := catalog.ListIndexes(ctx, dst, namespace.Namespace{DB: "shop", Coll: "customers"})
	if err != nil {
		t.Fatal(err)
	}
	foundEmail := false
	for _, spec := range idx {
		if spec.Lookup("name").StringValue() == "email_1" {
			foundEmail = true
			if u, ok := spec.Lookup("unique").BooleanOK(); ok && u {
				t.Errorf("email_1 is unique on the destination during the sync: %s", spec)
			}
		}
	}
	if !foundEmail {
		t.Errorf("email_1 was not built on the destination: %v", idx)
	}
	entries, err := meta.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deferred := 0
	for _, e := range entries {
		deferred += len(e.Deferred)
	}
	if deferred == 0 {
		t.Error("no deferred index change recorded in the catalog")
	}

	report, err := verify.Run(ctx, src, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, n := range report.Namespaces {
		pending += len(n.PendingCommit)
		if !n.Equal() {
			t.Errorf("%s differs: %+v", n.NS, n)
		}
	}
	if pending != deferred {
		t.Errorf("verify noted %d index settings pending commit, the catalog records %d", pending, deferred)
	}
}

func rawInt(v int64) bson.RawValue {
	_, b, _ := bson.MarshalValue(v)
	return bson.RawValue{Type: bson.TypeInt64, Value: b}
}
