package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/worker"
)

const ttl = 10 * time.Second

// rig is a source collection of n documents split into one partition, a destination, and a store.
type rig struct {
	src, dst *mongo.Client
	store    *partition.Store
	parts    *mongo.Collection
}

func newRig(t *testing.T, n int) rig {
	t.Helper()
	c := sandboxtest.Pair(t)
	r := rig{src: sandboxtest.Connect(t, c.Source), dst: sandboxtest.Connect(t, c.Destination)}
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: int64(i)}, {Key: "sku", Value: "item-" + string(rune('a'+i%26))}, {Key: "n", Value: i}}
	}
	if _, err := r.src.Database("shop").Collection("items").InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	r.parts = r.dst.Database("fleetsync_internal").Collection("partitions")
	r.store = partition.NewStore(r.parts, "default")
	if err := r.store.Replace(context.Background(), "shop.items", []partition.Range{{Whole: true}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r rig) worker(owner string, batch int) *worker.Worker {
	return r.workerWithTTL(owner, batch, ttl)
}

func (r rig) workerWithTTL(owner string, batch int, leaseTTL time.Duration) *worker.Worker {
	return worker.New(worker.Config{Source: r.src, Destination: r.dst, Partitions: r.store, Owner: owner, LeaseTTL: leaseTTL, BatchDocs: batch})
}

func (r rig) partition(t *testing.T) partition.Partition {
	t.Helper()
	all, err := r.store.All(context.Background())
	if err != nil || len(all) != 1 {
		t.Fatalf("partitions: %v, %v", all, err)
	}
	return all[0]
}

func (r rig) destinationCount(t *testing.T) int64 {
	t.Helper()
	n, err := r.dst.Database("shop").Collection("items").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A retry after a holder died between writing a batch and checkpointing it finds that batch on the
// destination already: it counts it as copied and goes on.
func TestDocumentsAlreadyCopiedCountAsCopied(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1000)
	ctx := context.Background()
	// The dead holder's unconfirmed batch: 150 documents, with no checkpoint.
	var pre []any
	for i := range 150 {
		pre = append(pre, bson.D{{Key: "_id", Value: int64(i)}, {Key: "sku", Value: "item-" + string(rune('a'+i%26))}, {Key: "n", Value: i}})
	}
	if _, err := r.dst.Database("shop").Collection("items").InsertMany(ctx, pre); err != nil {
		t.Fatal(err)
	}
	res, err := r.worker("n1/x/w0", 100).CopyOne(ctx, nil)
	if res != worker.Copied || err != nil {
		t.Fatalf("CopyOne: %v, %v", res, err)
	}
	p := r.partition(t)
	if !p.Done || p.DocsCopied != 1000 || p.Owner != "" || r.destinationCount(t) != 1000 {
		t.Fatalf("after the copy: done %v, %d docs checkpointed, owner %q, %d on the destination", p.Done, p.DocsCopied, p.Owner, r.destinationCount(t))
	}
	if res, _ := r.worker("n2/x/w0", 100).CopyOne(ctx, nil); res != worker.NothingToClaim {
		t.Fatalf("a finished partition was claimed again: %v", res)
	}
}

// A duplicate on a unique index of the destination's own is not "already copied": the document is
// not there, so the partition fails with a sentence saying why, and records it.
func TestDuplicateOnAnotherUniqueIndexFailsThePartition(t *testing.T) {
	t.Parallel()
	r := newRig(t, 100)
	ctx := context.Background()
	_, err := r.dst.Database("shop").Collection("items").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "sku", Value: 1}}, Options: options.Index().SetUnique(true)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.worker("n1/x/w0", 50).CopyOne(ctx, nil)
	if res != worker.Failed || err == nil || !strings.Contains(err.Error(), "unique index of the destination") {
		t.Fatalf("CopyOne: %v, %v; want Failed naming the destination's unique index", res, err)
	}
	p := r.partition(t)
	if p.Done || p.Attempts != 1 || !strings.Contains(p.LastError, "unique index") || p.Owner != "" || p.DocsCopied != 0 {
		t.Fatalf("partition after the failure: %+v", p)
	}
}

// A worker whose partition lease was taken over cannot checkpoint: its write is rejected and the
// new holder's checkpoint stands.
func TestDeposedWorkerCannotMoveTheCheckpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t, 10)
	ctx := context.Background()
	old, err := r.store.Claim(ctx, "old/x/w0", time.Second)
	if err != nil || old == nil {
		t.Fatalf("claim: %v, %v", old, err)
	}
	time.Sleep(1500 * time.Millisecond) // old stalls past its TTL
	cur, err := r.store.Claim(ctx, "new/x/w0", ttl)
	if err != nil || cur == nil || cur.Lease.Epoch != old.Lease.Epoch+1 {
		t.Fatalf("takeover: %+v, %v", cur, err)
	}
	mark := func(v int64) bson.RawValue {
		_, b, _ := bson.MarshalValue(v)
		return bson.RawValue{Type: bson.TypeInt64, Value: b}
	}
	if err := r.store.Checkpoint(ctx, cur, mark(7), 8, 800); err != nil {
		t.Fatal(err)
	}
	err = r.store.Checkpoint(ctx, old, mark(3), 4, 400)
	var lost *lease.LostError
	if !errors.As(err, &lost) || !strings.Contains(lost.Reason, "new/x/w0 took it over") {
		t.Fatalf("deposed checkpoint: %v; want a LostError naming the new holder", err)
	}
	if err := r.store.Complete(ctx, old); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("deposed completion: %v", err)
	}
	p := r.partition(t)
	if p.LastID.Int64() != 7 || p.DocsCopied != 8 || p.Done {
		t.Fatalf("partition after the deposed writes: lastId %v, docs %d, done %v", p.LastID, p.DocsCopied, p.Done)
	}
	if len(p.Claims) != 2 || p.Claims[1].Owner != "new/x/w0" || p.Claims[1].Epoch != cur.Lease.Epoch {
		t.Fatalf("claims: %+v", p.Claims)
	}
}

// A stopping worker finishes the batch in hand, checkpoints it, and hands the partition back; the
// next worker resumes after that checkpoint.
func TestStopHandsBackAndTheNextWorkerResumes(t *testing.T) {
	t.Parallel()
	r := newRig(t, 3000)
	ctx := context.Background()
	stop := make(chan struct{})
	close(stop) // stop at the first opportunity
	res, err := r.worker("a/x/w0", 100).CopyOne(ctx, stop)
	if res != worker.HandedBack || err != nil {
		t.Fatalf("CopyOne with stop: %v, %v", res, err)
	}
	p := r.partition(t)
	if p.Done || p.Owner != "" || p.DocsCopied != r.destinationCount(t) || p.DocsCopied >= 3000 {
		t.Fatalf("after hand-back: %+v with %d on the destination", p, r.destinationCount(t))
	}
	handedBackAt := p.DocsCopied
	if res, err := r.worker("b/x/w0", 100).CopyOne(ctx, nil); res != worker.Copied || err != nil {
		t.Fatalf("second worker: %v, %v", res, err)
	}
	p = r.partition(t)
	if !p.Done || p.DocsCopied != 3000 || r.destinationCount(t) != 3000 {
		t.Fatalf("after resuming: %+v", p)
	}
	last := p.Claims[len(p.Claims)-1]
	if last.DocsCopiedBefore != handedBackAt || (handedBackAt > 0 && last.ResumedAfter.Int64() != handedBackAt-1) {
		t.Fatalf("second claim started at %d after %v; the hand-back left %d", last.DocsCopiedBefore, last.ResumedAfter, handedBackAt)
	}
}
