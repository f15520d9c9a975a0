package applier

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/lease"
)

// testTTL is the applier lease's TTL in these tests: short, so a takeover after a "death" happens
// within a couple of seconds.
const testTTL = 2 * time.Second

type rig struct {
	src, dst *mongo.Client
	meta     *metadata.DB
	store    *lease.Store
}

// newRig gives a source (with an oplog) and a destination, and a sync in its apply phase whose
// start time is now: everything written to the source from here on must reach the destination
// through change events alone.
func newRig(t *testing.T) *rig {
	t.Helper()
	c := sandboxtest.Pair(t)
	r := &rig{src: sandboxtest.Connect(t, c.Source), dst: sandboxtest.Connect(t, c.Destination)}
	r.meta = inApplyPhase(t, r.src, r.dst)
	r.store = lease.NewStore(r.meta.Collection(metadata.CollCheckpoints))
	return r
}

// inApplyPhase registers sync "t" in dst's metadata and puts it in its apply phase, with the source's
// time now as its start time.
func inApplyPhase(t *testing.T, src, dst *mongo.Client) *metadata.DB {
	t.Helper()
	ctx := context.Background()
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "t")
	if _, err := meta.Register(ctx, metadata.Identity{Hosts: []string{"src"}}, metadata.Identity{Hosts: []string{"dst"}}); err != nil {
		t.Fatal(err)
	}
	if err := meta.Start(ctx, metadata.Options{}); err != nil {
		t.Fatal(err)
	}
	startAt, err := clusterclock.Now(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "t"}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "phase", Value: metadata.PhaseApply}, {Key: "startAtOperationTime", Value: startAt}}}})
	if err != nil {
		t.Fatal(err)
	}
	return meta
}

// applierRun is one applier holding the lease, running in the background.
type applierRun struct {
	kept *lease.Kept
	done chan error
	stop context.CancelFunc
}

func (r *rig) startApplier(t *testing.T, owner string) *applierRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := acquire(t, r.store, owner)
	kept := lease.Keep(ctx, r.store, l)
	run := &applierRun{kept: kept, done: make(chan error, 1), stop: cancel}
	go func() {
		run.done <- Run(kept.Context(), Config{
			Source: r.src, Destination: r.dst, Meta: r.meta, Mode: ModeAuto, Lanes: 4, BatchEvents: 300,
			Log: zaptest.NewLogger(t).Named(owner),
		}, kept)
	}()
	t.Cleanup(func() { cancel(); kept.Stop(); <-run.done })
	return run
}

// acquire takes sync "t"'s lease in store for owner, waiting (30 s at most) while another holds it.
func acquire(t *testing.T, store *lease.Store, owner string) lease.Lease {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := store.Acquire(context.Background(), "t", owner, testTTL)
		if err == nil {
			return l
		}
		var held *lease.HeldError
		if !errors.As(err, &held) || time.Now().After(deadline) {
			t.Fatalf("acquiring the lease for %s: %v", owner, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// die stops an applier the way a killed process stops: no release, no last checkpoint.
func (a *applierRun) die() {
	a.stop()
	a.kept.Stop()
	<-a.done
	a.done <- nil // for the cleanup
}

// writeLoad writes inserts, $set, $unset, $inc, $push, replaces and deletes over a few collections
// until stop is closed, from several goroutines.
func writeLoad(t *testing.T, src *mongo.Client, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			ctx := context.Background()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				coll := src.Database("app").Collection(fmt.Sprintf("c%d", rng.Intn(3)))
				id := rng.Intn(200)
				var err error
				switch rng.Intn(7) {
				case 0:
					_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: 0}, {Key: "tags", Value: bson.A{"a"}}, {Key: "sub", Value: bson.D{{Key: "x", Value: 1}}}})
				case 1:
					_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "sub.x", Value: i}, {Key: "w", Value: w}}}})
				case 2:
					_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "w", Value: ""}}}})
				case 3:
					_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
				case 4:
					_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: i}}}})
				case 5:
					_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "_id", Value: id}, {Key: "replaced", Value: i}})
				case 6:
					_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
				}
				if err != nil && !mongo.IsDuplicateKeyError(err) {
					t.Errorf("load: %v", err)
					return
				}
			}
		}()
	}
	return &wg
}

// caughtUp waits until the checkpoint has reached the source's latest optime.
func (r *rig) caughtUp(t *testing.T) Checkpoint {
	t.Helper()
	ctx := context.Background()
	latest, err := clusterclock.Now(ctx, r.src)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ck, ok, err := ReadCheckpoint(ctx, r.meta)
		if err != nil {
			t.Fatal(err)
		}
		if ok && ck.Position != nil && !ck.Position.TS.Before(latest) {
			return ck
		}
		if time.Now().After(deadline) {
			t.Fatalf("the applier did not reach the source's latest optime %v: checkpoint %+v", latest, ck)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertEqual runs the verifier. Field order is ignored because of the sandbox's replace, which
// keeps the stored field order (workaround mongoJavaServerKeepsFieldOrderOnReplace, test code only).
func (r *rig) assertEqual(t *testing.T) *verify.Report {
	t.Helper()
	rep, err := verify.Run(context.Background(), r.src, r.dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal() {
		t.Fatalf("destination differs from source: %+v", rep.Namespaces)
	}
	return rep
}

func TestApplierKeepsTheDestinationCurrentAcrossATakeover(t *testing.T) {
	r := newRig(t)
	stop := make(chan struct{})
	load := writeLoad(t, r.src, stop)

	first := r.startApplier(t, "a")
	time.Sleep(1500 * time.Millisecond)
	ck1, ok, err := ReadCheckpoint(context.Background(), r.meta)
	if err != nil || !ok || ck1.Position == nil {
		t.Fatalf("no checkpoint after 1.5 s of applying: %+v %v %v", ck1, ok, err)
	}
	first.die()

	second := r.startApplier(t, "b") // waits for a's lease to expire
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	load.Wait()

	ck := r.caughtUp(t)
	if ck.Epoch != ck1.Epoch+1 || ck.Owner != "b" {
		t.Errorf("after the takeover the checkpoint is held by %q at epoch %d, want b at %d", ck.Owner, ck.Epoch, ck1.Epoch+1)
	}
	if !ck.Position.TS.After(ck1.Position.TS) {
		t.Errorf("checkpoint did not move forward across the takeover: %v then %v", ck1.Position.TS, ck.Position.TS)
	}
	if ck.Source != SourceOplog || ck.CRUDApplied == 0 || ck.Refreshed == 0 {
		t.Errorf("checkpoint %+v: want the oplog source, CRUD events applied, and refreshed updates (the sandbox logs $inc and $push as they were sent)", ck)
	}
	rep := r.assertEqual(t)
	if rep.DocumentsCompared() == 0 {
		t.Fatal("the load wrote nothing that reached the verifier")
	}
	_ = second
}

func TestDeposedApplierCannotMoveTheCheckpoint(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	coll := r.meta.Collection(metadata.CollCheckpoints)
	old, err := r.store.Acquire(ctx, "t", "old", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	oldCk := &checkpointer{coll: coll, syncID: "t", lease: old}
	if err := oldCk.save(ctx, SourceOplog, Position{TS: primitive.Timestamp{T: 100}}, batchCounts{crud: 5}, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // old's lease expires
	newer, err := r.store.Acquire(ctx, "t", "new", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	newCk := &checkpointer{coll: coll, syncID: "t", lease: newer}
	if err := newCk.save(ctx, SourceOplog, Position{TS: primitive.Timestamp{T: 200}}, batchCounts{crud: 1}, 0); err != nil {
		t.Fatal(err)
	}
	// The deposed holder wakes up with a later batch, and with an earlier one: both refused.
	for _, ts := range []uint32{300, 150} {
		if err := oldCk.save(ctx, SourceOplog, Position{TS: primitive.Timestamp{T: ts}}, batchCounts{crud: 7}, 0); !errors.Is(err, ErrDeposed) {
			t.Errorf("deposed save at %d: %v, want ErrDeposed", ts, err)
		}
	}
	// Nor can the live holder move it backwards.
	if err := newCk.save(ctx, SourceOplog, Position{TS: primitive.Timestamp{T: 199}}, batchCounts{}, 0); !errors.Is(err, ErrDeposed) {
		t.Errorf("backward save: %v, want ErrDeposed", err)
	}
	ck, _, err := ReadCheckpoint(ctx, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Position.TS.T != 200 || ck.CRUDApplied != 6 || ck.Owner != "new" {
		t.Fatalf("checkpoint %+v: want position 200, 6 CRUD events, owner new", ck)
	}
}

// An applier that has read a batch and then lost its lease (here: its Keeper stops, as when a
// renewal finds the lease taken) writes nothing of that batch.
func TestApplierWithoutLeaseTimeWritesNothing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.src.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	l, err := r.store.Acquire(ctx, "t", "loser", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, r.store, l)
	a := &applier{cfg: Config{Source: r.src, Destination: r.dst, Meta: r.meta, Lanes: 2, BatchEvents: 100, Log: zaptest.NewLogger(t)},
		kept: kept, ckpt: &checkpointer{coll: r.meta.Collection(metadata.CollCheckpoints), syncID: "t", lease: l}}
	a.beforeBatch = kept.Stop
	if err := a.run(ctx); !errors.Is(err, ErrDeposed) {
		t.Fatalf("run after losing the lease: %v, want ErrDeposed", err)
	}
	n, err := r.dst.Database("app").Collection("c").CountDocuments(ctx, bson.D{})
	if err != nil || n != 0 {
		t.Fatalf("the destination got %d document(s) (%v) from an applier without its lease", n, err)
	}
	if ck, ok, _ := ReadCheckpoint(ctx, r.meta); ok && ck.Position != nil {
		t.Fatalf("a checkpoint was written: %+v", ck)
	}
}

func TestWriterAppliesEveryKindIdempotently(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	srcColl := r.src.Database("app").Collection("w")
	dstColl := r.dst.Database("app").Collection("w")
	// The destination holds an older version of documents 1..4; the source the newest.
	for _, d := range []bson.D{
		{{Key: "_id", Value: 1}, {Key: "a", Value: 5}, {Key: "arr", Value: bson.A{1, 2, 3}}, {Key: "gone", Value: true}},
		{{Key: "_id", Value: 2}, {Key: "a", Value: 5}},
		{{Key: "_id", Value: 3}, {Key: "a", Value: 5}},
		{{Key: "_id", Value: 4}, {Key: "a", Value: 5}},
	} {
		if _, err := dstColl.InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srcColl.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}, {Key: "z", Value: 9}},
		bson.D{{Key: "_id", Value: 3}, {Key: "refreshed", Value: true}},
	}); err != nil {
		t.Fatal(err)
	}
	key := func(id int) bson.Raw { b, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}}); return b }
	doc := func(d bson.D) bson.Raw { b, _ := bson.Marshal(d); return b }
	ns := namespace.Namespace{DB: "app", Coll: "w"}
	events := []changeevent.Event{
		// 1: an idempotent description: truncate, set a nested path, unset.
		{Op: changeevent.Update, NS: ns, DocumentKey: key(1), Update: &changeevent.UpdateDescription{
			Truncate: []changeevent.ArrayTruncation{{Path: "arr", NewSize: 1}},
			Set:      bson.D{{Key: "a", Value: 6}, {Key: "s.t", Value: "x"}},
			Unset:    []string{"gone"},
		}},
		// 2: a description that does not fit the destination's version (a.b through the number 5):
		// refreshed from the source instead.
		{Op: changeevent.Update, NS: ns, DocumentKey: key(2), Update: &changeevent.UpdateDescription{Set: bson.D{{Key: "a.b", Value: 1}}}},
		// 3: no description: refreshed.
		{Op: changeevent.Update, NS: ns, DocumentKey: key(3)},
		// 4: no description, and gone from the source: deleted.
		{Op: changeevent.Update, NS: ns, DocumentKey: key(4)},
		// 5: insert, then replace, of a document the destination has never seen.
		{Op: changeevent.Insert, NS: ns, DocumentKey: key(5), FullDocument: doc(bson.D{{Key: "_id", Value: 5}, {Key: "v", Value: 1}})},
		{Op: changeevent.Replace, NS: ns, DocumentKey: key(5), FullDocument: doc(bson.D{{Key: "_id", Value: 5}, {Key: "v", Value: 2}})},
		// 6: insert then delete.
		{Op: changeevent.Insert, NS: ns, DocumentKey: key(6), FullDocument: doc(bson.D{{Key: "_id", Value: 6}})},
		{Op: changeevent.Delete, NS: ns, DocumentKey: key(6)},
	}
	want := map[int]bson.M{
		1: {"_id": int32(1), "a": int32(6), "arr": bson.A{int32(1)}, "s": bson.M{"t": "x"}},
		2: {"_id": int32(2), "a": bson.M{"b": int32(1)}, "z": int32(9)},
		3: {"_id": int32(3), "refreshed": true},
		5: {"_id": int32(5), "v": int32(2)},
	}
	w := nsWriter{source: r.src, destination: r.dst, ns: ns}
	for round := 1; round <= 2; round++ { // the second round is a re-application after a takeover
		refreshed, err := w.apply(ctx, events)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// Round 1 refreshes documents 2, 3 and 4; in round 2 document 2's description fits the
		// refreshed version, so only the two updates without a description are refreshed.
		if want := map[int]int64{1: 3, 2: 2}[round]; refreshed != want {
			t.Errorf("round %d: %d refreshes, want %d", round, refreshed, want)
		}
		cur, err := dstColl.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		var got []bson.M
		if err := cur.All(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: destination has %v, want %v", round, got, want)
		}
		for _, g := range got {
			id := int(g["_id"].(int32))
			if fmt.Sprint(normalise(g)) != fmt.Sprint(normalise(bson.M(want[id]))) {
				t.Errorf("round %d: document %d is %v, want %v", round, id, g, want[id])
			}
		}
	}
}

// normalise turns nested bson.M and bson.A into sorted, printable values.
func normalise(v any) any {
	switch x := v.(type) {
	case bson.M:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalise(e)
		}
		return out
	case bson.D:
		return normalise(x.Map())
	case bson.A:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	}
	return v
}

func TestWindowWarning(t *testing.T) {
	ts := func(s uint32) primitive.Timestamp { return primitive.Timestamp{T: s} }
	for _, c := range []struct {
		oldest, newest, at uint32
		warn               bool
	}{
		{1000, 2000, 1500, false}, // half the window left
		{1000, 2000, 1101, false}, // just over a tenth
		{1000, 2000, 1099, true},  // in the oldest tenth
		{1000, 2000, 900, true},   // already fallen off (the reader fails on it too)
		{1000, 1000, 1000, false}, // no window to judge
		{0, 0, 1000, false},       // empty oplog
	} {
		got := windowWarning(ts(c.oldest), ts(c.newest), ts(c.at))
		if (got != "") != c.warn {
			t.Errorf("oldest %d newest %d at %d: warning %q, want warn=%v", c.oldest, c.newest, c.at, got, c.warn)
		}
	}
}

func TestChooseSource(t *testing.T) {
	rs := topology{replicaSet: true, maxWire: 17, hasOplog: true}
	sharded := topology{mongos: true, maxWire: 21}
	sandbox := topology{maxWire: 8, hasOplog: true} // a standalone with an oplog
	old := topology{replicaSet: true, maxWire: 6, hasOplog: true}
	for _, c := range []struct {
		t      topology
		mode   string
		want   string
		errHas string
	}{
		{rs, ModeAuto, SourceChangeStream, ""},
		{rs, ModeOplog, SourceOplog, ""},
		{sharded, ModeAuto, SourceChangeStream, ""},
		{sharded, ModeOplog, "", "no readable local.oplog.rs"},
		{sandbox, ModeAuto, SourceOplog, ""},
		{sandbox, ModeChangeStream, "", "cannot give a cluster-wide change stream"},
		{old, ModeAuto, SourceOplog, ""},
		{topology{maxWire: 17}, ModeAuto, "", "gives no change events"},
		{rs, "tail", "", "is not one of"},
	} {
		got, err := chooseSource(c.t, c.mode)
		if got != c.want || (c.errHas == "") != (err == nil) || (err != nil && !contains(err.Error(), c.errHas)) {
			t.Errorf("%+v %s: %q, %v; want %q, error containing %q", c.t, c.mode, got, err, c.want, c.errHas)
		}
	}
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }

// A mid-batch checkpoint may only fall where a reader can resume: after any change stream event,
// but only after the last event of an oplog entry (a transaction's events share its ts).
func TestResumableAfter(t *testing.T) {
	ts := func(t, i uint32) primitive.Timestamp { return primitive.Timestamp{T: t, I: i} }
	oplog := []changeevent.Event{
		{ClusterTime: ts(10, 1)},
		{ClusterTime: ts(10, 2)}, {ClusterTime: ts(10, 2)}, {ClusterTime: ts(10, 2)}, // one applyOps
		{ClusterTime: ts(11, 1)},
	}
	var got []int
	for i := range oplog {
		if resumableAfter(oplog, i) {
			got = append(got, i)
		}
	}
	if fmt.Sprint(got) != "[0 3 4]" {
		t.Errorf("oplog: resumable after %v, want [0 3 4]", got)
	}
	token := bson.Raw{5, 0, 0, 0, 0}
	stream := []changeevent.Event{{ClusterTime: ts(10, 2), ResumeToken: token}, {ClusterTime: ts(10, 2), ResumeToken: token}}
	if !resumableAfter(stream, 0) || !resumableAfter(stream, 1) {
		t.Error("a change stream event with a resume token must be a resumable position")
	}
}

// After a reverse (the checkpoint in its next direction), an applier that cannot use its event
// source says so in the checkpoint and waits before it is run again, rather than being refused as
// deposed and retried at once, for ever, with nothing in /progress.
func TestApplierOfAReversedSyncReportsASourceItCannotUse(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	l, err := r.store.Acquire(ctx, "t", "reversed", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.meta.Collection(metadata.CollCheckpoints).UpdateOne(ctx, bson.D{{Key: "_id", Value: "t"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "direction", Value: int64(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "t"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "reversed", Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, r.store, l)
	defer kept.Stop()
	// The sandbox has no cluster-wide change stream: the source cannot give what the mode asks.
	a := &applier{cfg: Config{Source: r.src, Destination: r.dst, Meta: r.meta, Mode: ModeChangeStream, Reversed: true, Lanes: 2,
		BatchEvents: 100, Log: zaptest.NewLogger(t)}, kept: kept, ckpt: &checkpointer{coll: r.meta.Collection(metadata.CollCheckpoints), syncID: "t", lease: l}}
	started := time.Now()
	err = a.run(kept.Context())
	if err == nil || errors.Is(err, ErrDeposed) {
		t.Fatalf("run: %v; want the source's refusal, not ErrDeposed", err)
	}
	if took := time.Since(started); took < errorBackoff/2 {
		t.Errorf("run returned after %s; want it to wait about %s before the next try", took, errorBackoff)
	}
	ck, _, err := ReadCheckpoint(ctx, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Error == "" {
		t.Fatalf("the checkpoint records no error: %+v", ck)
	}
}
