package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/worker"
)

// wireRig is a source collection of n documents in one partition, with every command of the
// clients recorded. The destination has two clients, as a node has: dst for metadata (leases,
// checkpoints) and dstWrites, with the driver's operation timeout, for the copied documents.
type wireRig struct {
	read, sent     *sandboxtest.Commands // what went to the source, and to the destination
	src, dst       *mongo.Client
	dstWrites      *mongo.Client
	meta           *metadata.DB
	store          *partition.Store
	source, target *mongo.Collection
}

func newWireRig(t *testing.T, n int) *wireRig {
	t.Helper()
	c := sandboxtest.Pair(t)
	r := &wireRig{read: sandboxtest.NewCommands(), sent: sandboxtest.NewCommands()}
	r.src = sandboxtest.ConnectWith(t, c.Source, mongoconn.Options{Monitor: r.read.Monitor()})
	r.dst = sandboxtest.ConnectWith(t, c.Destination, mongoconn.Options{Monitor: r.sent.Monitor()})
	r.dstWrites = sandboxtest.ConnectWith(t, c.Destination, mongoconn.Options{Monitor: r.sent.Monitor(), OperationTimeout: ttl})
	r.source = r.src.Database("shop").Collection("items")
	r.target = r.dst.Database("shop").Collection("items")
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: int64(i)}, {Key: "n", Value: i}}
	}
	if _, err := r.source.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	r.meta = metadata.Open(r.dst, namespace.DefaultMetadataDB, "default")
	r.store = partition.NewStore(r.meta.Collection(metadata.CollPartitions), "default")
	if err := r.store.Replace(context.Background(), "shop.items", []partition.Range{{Whole: true}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *wireRig) worker(owner string, batch int, leaseTTL time.Duration, startAt primitive.Timestamp) *worker.Worker {
	return worker.New(worker.Config{Source: r.src, Destination: r.dstWrites, Partitions: r.store, Owner: owner,
		LeaseTTL: leaseTTL, BatchDocs: batch, ReadAfter: func() primitive.Timestamp { return startAt }})
}

// The copy's reads and writes ask real MongoDB for what the sandbox cannot show: majority reads
// after the sync's start time (so no rolled-back write is copied and no write before the start is
// missed), inserts that bypass document validation and wait for a majority, each bounded on the
// server by its lease (maxTimeMS), and majority-acknowledged checkpoints.
func TestCopyAsksForMajorityAfterTheStartTimeBypassesValidationAndBoundsItsWrites(t *testing.T) {
	t.Parallel()
	r := newWireRig(t, 2500)
	startAt := primitive.Timestamp{T: uint32(time.Now().Unix()) - 60, I: 7}
	res, err := r.worker("n1/x/w0", 1000, ttl, startAt).CopyOne(context.Background(), nil)
	if res != worker.Copied || err != nil {
		t.Fatalf("CopyOne: %v, %v", res, err)
	}

	finds := r.read.Sent("find", "shop", "items")
	if len(finds) != 1 {
		t.Fatalf("%d finds of the source collection, want 1: %v", len(finds), finds)
	}
	rc := finds[0].Body.Lookup("readConcern")
	level, _ := rc.Document().Lookup("level").StringValueOK()
	t0, i0, _ := rc.Document().Lookup("afterClusterTime").TimestampOK()
	if level != "majority" || t0 != startAt.T || i0 != startAt.I {
		t.Errorf("the copy's find sent readConcern %s, want {level: majority, afterClusterTime: %v}", rc, startAt)
	}

	inserts := r.sent.Sent("insert", "shop", "items")
	if len(inserts) != 3 {
		t.Fatalf("%d inserts for 2500 documents in batches of 1000, want 3", len(inserts))
	}
	for _, ins := range inserts {
		if bypass, ok := ins.Body.Lookup("bypassDocumentValidation").BooleanOK(); !ok || !bypass {
			t.Errorf("insert without bypassDocumentValidation: true: %s", short(ins.Body))
		}
		if w, _ := ins.Body.Lookup("writeConcern", "w").StringValueOK(); w != "majority" {
			t.Errorf("insert with writeConcern %s, want w: majority", ins.Body.Lookup("writeConcern"))
		}
		// The lease keeps TTL - TTL/5 of validity after each renewal; the bound is what is left.
		maxTime, ok := ins.Body.Lookup("maxTimeMS").AsInt64OK()
		if !ok || maxTime <= 0 || maxTime > (ttl-ttl/5).Milliseconds() {
			t.Errorf("insert with maxTimeMS %v, want the lease's remaining validity (at most %d ms)", ins.Body.Lookup("maxTimeMS"), (ttl - ttl/5).Milliseconds())
		}
	}

	checkpoints := r.sent.Sent("update", namespace.DefaultMetadataDB, metadata.CollPartitions)
	if len(checkpoints) < 3 {
		t.Fatalf("%d partition updates, want a checkpoint per batch", len(checkpoints))
	}
	for _, u := range checkpoints {
		if w, _ := u.Body.Lookup("writeConcern", "w").StringValueOK(); w != "majority" {
			t.Errorf("checkpoint with writeConcern %s, want w: majority", u.Body.Lookup("writeConcern"))
		}
	}
}

// A worker frozen with a batch in hand (SIGSTOP, a long GC pause) wakes up with its lease long
// expired and taken over, the partition copied by its successor, the apply phase begun and a
// delete of one of its documents applied. Its keeper has not run yet: the hook freezes it by
// holding its renewal, as a frozen process would. The batch must not be written, or the deleted
// document comes back and no event ever removes it.
func TestFrozenWorkerWritesNothingAfterItsLease(t *testing.T) {
	t.Parallel()
	const shortTTL = 1500 * time.Millisecond
	r := newWireRig(t, 300)
	ctx := context.Background()

	frozen := make(chan struct{}) // closed when the frozen worker may wake
	var wake sync.Once
	defer time.AfterFunc(20*time.Second, func() { wake.Do(func() { close(frozen) }) }).Stop() // never hang
	r.sent.OnStart(func(e *event.CommandStartedEvent) {
		// The frozen worker's keeper renewing its partition lease: held until the wake-up
		// (a renewal's filter is fenced by the epoch; the claim's is not).
		q, ok := e.Command.Lookup("query").DocumentOK()
		if owner, _ := q.Lookup("owner").StringValueOK(); ok && e.CommandName == "findAndModify" && owner == "frozen/x/w0" &&
			q.Lookup("epoch").Type != 0 {
			<-frozen
		}
	})
	a := r.worker("frozen/x/w0", 100, shortTTL, primitive.Timestamp{})
	first := true
	worker.SetBeforeWrite(a, func() {
		if !first {
			return
		}
		first = false
		// Frozen past the lease (the server's clock decides): another worker takes over and
		// copies the whole partition.
		time.Sleep(shortTTL + 500*time.Millisecond)
		res, err := r.worker("successor/x/w0", 100, ttl, primitive.Timestamp{}).CopyOne(ctx, nil)
		if res != worker.Copied || err != nil {
			t.Errorf("the successor's copy: %v, %v", res, err)
		}
		// The apply phase: document 5 (in the frozen worker's batch) is deleted on the source,
		// and the applier deletes it on the destination.
		for _, c := range []*mongo.Collection{r.source, r.target} {
			if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: int64(5)}}); err != nil {
				t.Error(err)
			}
		}
		// The process runs again: the keeper's held renewal goes on a moment after the worker,
		// which a frozen process's wake-up does not order either way.
		time.AfterFunc(300*time.Millisecond, func() { wake.Do(func() { close(frozen) }) })
	})
	res, err := a.CopyOne(ctx, nil)
	if res != worker.Lost || !errors.Is(err, lease.ErrLost) {
		t.Errorf("the frozen worker's CopyOne: %v, %v; want Lost", res, err)
	}
	if n, err := r.target.CountDocuments(ctx, bson.D{{Key: "_id", Value: int64(5)}}); err != nil || n != 0 {
		t.Fatalf("the deleted document is back on the destination (%d, %v): the frozen worker wrote its batch after losing its lease", n, err)
	}
	if n, _ := r.target.CountDocuments(ctx, bson.D{}); n != 299 {
		t.Fatalf("%d documents on the destination, want 299", n)
	}
	// The successor's 3 batches, and nothing from the frozen worker.
	if inserts := r.sent.Sent("insert", "shop", "items"); len(inserts) != 3 {
		t.Fatalf("%d inserts sent, want the successor's 3", len(inserts))
	}
}

// Documents already on the destination under the same _id (preExistingDestinationData, or a batch
// an earlier holder wrote after its last checkpoint) are read back in one query per batch, and
// replaced only where they differ from the source's.
func TestDocumentsThatDifferOnTheDestinationAreReplacedAndTheRestKept(t *testing.T) {
	t.Parallel()
	r := newWireRig(t, 200)
	ctx := context.Background()
	var pre []any
	for i := int64(0); i < 50; i++ {
		d := bson.D{{Key: "_id", Value: i}, {Key: "n", Value: int32(i)}} // as the source has it
		if i%10 == 0 {
			d = bson.D{{Key: "_id", Value: i}, {Key: "n", Value: "stale"}, {Key: "extra", Value: true}}
		}
		pre = append(pre, d)
	}
	if _, err := r.target.InsertMany(ctx, pre); err != nil {
		t.Fatal(err)
	}
	res, err := r.worker("n1/x/w0", 100, ttl, primitive.Timestamp{}).CopyOne(ctx, nil)
	if res != worker.Copied || err != nil {
		t.Fatalf("CopyOne: %v, %v", res, err)
	}
	if reads := r.sent.Sent("find", "shop", "items"); len(reads) != 1 {
		t.Errorf("%d finds of the destination's shop.items, want one read-back of the first batch's duplicates: %v", len(reads), reads)
	}
	for i := int64(0); i < 50; i += 10 {
		got, err := r.target.FindOne(ctx, bson.D{{Key: "_id", Value: i}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := r.source.FindOne(ctx, bson.D{{Key: "_id", Value: i}}).Raw()
		if string(got) != string(want) {
			t.Errorf("document %d on the destination is %s, want the source's %s", i, got, want)
		}
	}
	if n, _ := r.target.CountDocuments(ctx, bson.D{}); n != 200 {
		t.Fatalf("%d documents on the destination, want 200", n)
	}
	replaces := r.sent.Sent("update", "shop", "items")
	if updates, _ := replaces[0].Body.Lookup("updates").Array().Values(); len(replaces) != 1 || len(updates) != 5 {
		t.Fatalf("replaces: %v; want one bulk replace of the 5 documents that differ", replaces)
	}
	if bypass, _ := replaces[0].Body.Lookup("bypassDocumentValidation").BooleanOK(); !bypass {
		t.Errorf("the replace does not bypass document validation: %s", short(replaces[0].Body))
	}
}

// short is a command without its documents, for messages.
func short(cmd bson.Raw) string {
	s := cmd.String()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
