package applier

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

// What the applier asks of real MongoDB, checked on the wire: the oplog read only where a majority
// has it, refreshes read from a majority snapshot that includes the refreshed update, writes that
// bypass validation, wait for a majority and are bounded on the server by the lease
// (maxTimeMS), and majority-acknowledged checkpoints.
func TestApplierReadsMajorityAndWritesFencedInTime(t *testing.T) {
	ctx := context.Background()
	c := sandboxtest.Pair(t)
	read, sent := sandboxtest.NewCommands(), sandboxtest.NewCommands()
	src := sandboxtest.ConnectWith(t, c.Source, mongoconn.Options{Monitor: read.Monitor()})
	dst := sandboxtest.ConnectWith(t, c.Destination, mongoconn.Options{Monitor: sent.Monitor()})
	writes := sandboxtest.ConnectWith(t, c.Destination, mongoconn.Options{Monitor: sent.Monitor(), OperationTimeout: testTTL})
	meta := inApplyPhase(t, src, dst)

	coll := src.Database("app").Collection("c")
	for _, op := range []func() error{
		func() error {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}})
			return err
		},
		func() error { _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}}); return err },
		// $inc is logged as sent by the sandbox: not idempotent, so the applier refreshes it.
		func() error {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
			return err
		},
		func() error { _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}}); return err },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	var update struct {
		TS primitive.Timestamp `bson:"ts"`
	}
	if err := src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: "app.c"}}).Decode(&update); err != nil {
		t.Fatal(err)
	}

	store := lease.NewStore(meta.Collection(metadata.CollCheckpoints))
	l, err := store.Acquire(ctx, "t", "a", testTTL)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	kept := lease.Keep(runCtx, store, l)
	done := make(chan error, 1)
	go func() {
		done <- Run(kept.Context(), Config{Source: src, Destination: dst, Writes: writes, Meta: meta, Mode: ModeOplog,
			Lanes: 2, Log: zaptest.NewLogger(t)}, kept)
	}()
	defer func() { cancel(); kept.Stop(); <-done }()
	target := dst.Database("app").Collection("c")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var d struct{ N int }
		err := target.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&d)
		gone, _ := target.CountDocuments(ctx, bson.D{{Key: "_id", Value: 2}})
		if err == nil && d.N == 1 && gone == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the destination never caught up: document 1 %+v (%v), %d of document 2", d, err, gone)
		}
		time.Sleep(50 * time.Millisecond)
	}

	tails := read.Sent("find", "local", "oplog.rs")
	if len(tails) == 0 {
		t.Fatal("no oplog read was sent")
	}
	for _, f := range tails {
		if tailable, _ := f.Body.Lookup("tailable").BooleanOK(); !tailable {
			continue // the window check's reads of the oldest and newest entry
		}
		if level, _ := f.Body.Lookup("readConcern", "level").StringValueOK(); level != "majority" {
			t.Errorf("the oplog tail sent readConcern %s, want majority", f.Body.Lookup("readConcern"))
		}
	}
	refreshes := read.Sent("find", "app", "c")
	if len(refreshes) == 0 {
		t.Fatal("the $inc was not refreshed from the source")
	}
	for _, f := range refreshes {
		level, _ := f.Body.Lookup("readConcern", "level").StringValueOK()
		at, i, _ := f.Body.Lookup("readConcern", "afterClusterTime").TimestampOK()
		if level != "majority" || (primitive.Timestamp{T: at, I: i}).Before(update.TS) {
			t.Errorf("the refresh sent readConcern %s, want majority after the update's time %v", f.Body.Lookup("readConcern"), update.TS)
		}
	}

	ceiling := (testTTL - testTTL/5).Milliseconds()
	var upserts, deletes int
	for _, cmd := range sent.Sent("", "app", "c") {
		switch cmd.Name {
		case "update":
			upserts++
			if bypass, _ := cmd.Body.Lookup("bypassDocumentValidation").BooleanOK(); !bypass {
				t.Errorf("an applied write without bypassDocumentValidation: true: %s", cmd.Body)
			}
		case "delete":
			deletes++
		default:
			continue
		}
		if w, _ := cmd.Body.Lookup("writeConcern", "w").StringValueOK(); w != "majority" {
			t.Errorf("an applied %s with writeConcern %s, want w: majority", cmd.Name, cmd.Body.Lookup("writeConcern"))
		}
		if ms, ok := cmd.Body.Lookup("maxTimeMS").AsInt64OK(); !ok || ms <= 0 || ms > ceiling {
			t.Errorf("an applied %s with maxTimeMS %v, want the lease's remaining validity (at most %d ms)", cmd.Name, cmd.Body.Lookup("maxTimeMS"), ceiling)
		}
	}
	if upserts == 0 || deletes == 0 {
		t.Fatalf("%d updates and %d deletes applied, want both kinds", upserts, deletes)
	}
	checkpoints := sent.Sent("update", namespace.DefaultMetadataDB, metadata.CollCheckpoints)
	if len(checkpoints) == 0 {
		t.Fatal("no checkpoint was written")
	}
	for _, cmd := range checkpoints {
		if w, _ := cmd.Body.Lookup("writeConcern", "w").StringValueOK(); w != "majority" {
			t.Errorf("a checkpoint with writeConcern %s, want w: majority", cmd.Body.Lookup("writeConcern"))
		}
	}
}
