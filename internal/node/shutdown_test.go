package node

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/event"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/web"
)

// A node told to stop (SIGTERM) while its applier has a write in flight lets that batch finish and
// checkpoint before it releases the applier lease. Cancelling the batch and releasing at once
// would let the next applier start while the old writes may still be queued on the destination,
// where a late one can overwrite a newer version of its document.
//
// The write is held in flight by the command monitor (in the sending goroutine, before it goes
// out) while the stop arrives.
func TestGracefulStopFinishesTheApplierBatchBeforeReleasingItsLease(t *testing.T) {
	c := sandboxtest.Pair(t)
	ctx := context.Background()
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	docs := src.Database("app").Collection("c")
	if _, err := docs.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}}); err != nil {
		t.Fatal(err)
	}

	sent := sandboxtest.NewCommands()
	var armed atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	sent.OnStart(func(e *event.CommandStartedEvent) {
		if e.DatabaseName == "app" && (e.CommandName == "update" || e.CommandName == "delete") && armed.CompareAndSwap(true, false) {
			close(held)
			<-release
		}
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ready := make(chan Ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Config{Cluster0: c.Source, Cluster1: c.Destination, SyncID: "default", Name: "solo",
			Bind: "127.0.0.1", Port: port, Workers: 1, Sandbox: true, ChangeSource: applier.ModeOplog,
			Monitor: sent.Monitor(), Log: zaptest.NewLogger(t)}, func(r Ready) { ready <- r })
	}()
	var api string
	select {
	case r := <-ready:
		api = "http://" + r.API
	case err := <-done:
		t.Fatalf("the node stopped before joining: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not join its fleet")
	}
	if err := (web.Client{Base: api}).Start(ctx); err != nil {
		t.Fatal(err)
	}
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	waitUntil(t, "the applier to run", func() bool {
		ck, ok, err := applier.ReadCheckpoint(ctx, meta)
		return err == nil && ok && ck.Owner != "" && ck.Position != nil
	})

	before := len(sent.Sent("", "app", "c")) // the copy, and events replayed from the start time
	armed.Store(true)
	if _, err := docs.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the applier never wrote the update")
	}
	stop() // SIGTERM
	time.Sleep(500 * time.Millisecond)
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the node's graceful stop: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the node did not stop")
	}

	var writes []string
	for _, cmd := range sent.Sent("", "app", "c")[before:] {
		if cmd.Name == "update" || cmd.Name == "delete" {
			writes = append(writes, cmd.Outcome)
		}
	}
	if len(writes) != 1 || writes[0] != "ok" {
		t.Fatalf("the applier's writes ended %q; want the one in flight at the stop to have finished", writes)
	}
	var got struct{ V int }
	if err := dst.Database("app").Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil || got.V != 1 {
		t.Fatalf("the destination's document: %+v, %v; want v 1", got, err)
	}
	var entry struct {
		TS primitive.Timestamp `bson:"ts"`
	}
	if err := src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{{Key: "op", Value: "u"}}).Decode(&entry); err != nil {
		t.Fatal(err)
	}
	ck, _, err := applier.ReadCheckpoint(ctx, meta)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Owner != "" || ck.Position == nil || ck.Position.TS.Before(entry.TS) {
		t.Fatalf("after the stop the applier lease is held by %q and the checkpoint is at %v; want it released after checkpointing the update at %v",
			ck.Owner, ck.Position, entry.TS)
	}
}

// waitUntil polls cond until it holds, or fails the test after a generous time.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
