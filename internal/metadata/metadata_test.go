package metadata_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

func TestIdentitySameDeployment(t *testing.T) {
	a := metadata.Identity{Hosts: []string{"db1:27017", "db2:27017"}, ReplicaSet: "rs0"}
	for _, tc := range []struct {
		name string
		b    metadata.Identity
		same bool
	}{
		{"same hosts", metadata.Identity{Hosts: []string{"db1:27017", "db2:27017"}, ReplicaSet: "rs0"}, true},
		{"another seed host of the same set", metadata.Identity{Hosts: []string{"db3:27017"}, ReplicaSet: "rs0"}, true},
		{"one host in common, no set named", metadata.Identity{Hosts: []string{"db2:27017", "db9:27017"}}, true},
		{"nothing in common", metadata.Identity{Hosts: []string{"other:27017"}, ReplicaSet: "rs1"}, false},
		{"no hosts in common, no set", metadata.Identity{Hosts: []string{"other:27017"}}, false},
	} {
		if got := a.Same(tc.b); got != tc.same {
			t.Errorf("%s: Same = %v, want %v", tc.name, got, tc.same)
		}
	}
}

// Index specs as MongoDB 7.0's listIndexes returns them.
func TestDestinationIndexSpecDefersUniqueAndTTL(t *testing.T) {
	raw := func(d bson.D) bson.Raw { b, _ := bson.Marshal(d); return b }
	unique := raw(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "email", Value: int32(1)}}}, {Key: "name", Value: "email_1"}, {Key: "unique", Value: true}})
	ttl := raw(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "expiresAt", Value: int32(1)}}}, {Key: "name", Value: "expiresAt_1"}, {Key: "expireAfterSeconds", Value: int32(3600)}})
	plain := raw(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: int32(-1)}}}, {Key: "name", Value: "a_1_b_-1"}, {Key: "sparse", Value: true}})

	spec, change, err := metadata.DestinationIndexSpec(unique)
	if err != nil || change == nil || !change.Unique || change.Index != "email_1" || change.ExpireAfterSeconds != nil {
		t.Fatalf("unique index: change %+v, %v", change, err)
	}
	if hasKey(spec, "unique") || hasKey(spec, "v") {
		t.Errorf("unique index built as %v: want no unique and no v", spec)
	}
	spec, change, err = metadata.DestinationIndexSpec(ttl)
	if err != nil || change == nil || change.Unique || change.ExpireAfterSeconds == nil || *change.ExpireAfterSeconds != 3600 {
		t.Fatalf("TTL index: change %+v, %v", change, err)
	}
	for _, e := range spec {
		if e.Key == "expireAfterSeconds" && e.Value != int64(2147483647) {
			t.Errorf("TTL index built with expireAfterSeconds %v, want the largest MongoDB accepts", e.Value)
		}
	}
	spec, change, err = metadata.DestinationIndexSpec(plain)
	if err != nil || change != nil || !hasKey(spec, "sparse") {
		t.Fatalf("plain index: spec %v change %+v, %v", spec, change, err)
	}

	// Restoring gives back the source's settings.
	built, _ := bson.Marshal(mustSpec(t, ttl))
	restored, err := metadata.RestoreIndexSpec(built, metadata.DeferredIndexChange{Index: "expiresAt_1", ExpireAfterSeconds: ptr(int64(3600))})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := restored.Lookup("expireAfterSeconds").AsInt64OK(); !ok || v != 3600 {
		t.Errorf("restored TTL spec %s", restored)
	}
	built, _ = bson.Marshal(mustSpec(t, unique))
	restored, _ = metadata.RestoreIndexSpec(built, metadata.DeferredIndexChange{Index: "email_1", Unique: true})
	if u, ok := restored.Lookup("unique").BooleanOK(); !ok || !u {
		t.Errorf("restored unique spec %s", restored)
	}
}

func mustSpec(t *testing.T, src bson.Raw) bson.D {
	spec, _, err := metadata.DestinationIndexSpec(src)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func hasKey(d bson.D, k string) bool {
	for _, e := range d {
		if e.Key == k {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

func TestRegisterRefusesAnotherSourceAndStartsOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	meta := metadata.Open(client, "fleetsync_internal", "default")
	src := metadata.Identity{Hosts: []string{"src1:27017"}, ReplicaSet: "rs0"}
	dst := metadata.Identity{Hosts: []string{"dst1:27017"}}

	s, err := meta.Register(ctx, src, dst)
	if err != nil || s.State != metadata.StateIdle {
		t.Fatalf("first registration: %+v, %v", s, err)
	}
	// A second node with a seed list of the same replica set joins the same sync.
	if _, err := meta.Register(ctx, metadata.Identity{Hosts: []string{"src2:27017"}, ReplicaSet: "rs0"}, dst); err != nil {
		t.Fatalf("same replica set, other seed host: %v", err)
	}
	var mismatch *metadata.MismatchError
	_, err = meta.Register(ctx, metadata.Identity{Hosts: []string{"elsewhere:27017"}}, dst)
	if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), "[src1:27017] (replica set rs0)") {
		t.Fatalf("another source: %v, want a MismatchError naming the recorded source", err)
	}
	// Another --id on the same destination is another sync, with its own source.
	if _, err := metadata.Open(client, "fleetsync_internal", "other").Register(ctx, metadata.Identity{Hosts: []string{"elsewhere:27017"}}, dst); err != nil {
		t.Fatalf("a second sync id: %v", err)
	}

	if err := meta.Start(ctx, metadata.Options{}); err != nil {
		t.Fatal(err)
	}
	var se *metadata.StateError
	if err := meta.Start(ctx, metadata.Options{}); !errors.As(err, &se) || se.State != metadata.StateRunning {
		t.Fatalf("second start: %v, want a StateError naming RUNNING", err)
	}
	if s, _ := meta.Sync(ctx); s.State != metadata.StateRunning || s.Phase != metadata.PhaseCatalog || s.StartedAt.IsZero() {
		t.Fatalf("after start: %+v", s)
	}
}

// A coordinator that lost its lease cannot move the sync's phase, and the new one can.
func TestPhaseChangesAreFencedByTheCoordinatorLease(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	meta := metadata.Open(client, "fleetsync_internal", "default")
	if _, err := meta.Register(ctx, metadata.Identity{Hosts: []string{"s:1"}}, metadata.Identity{Hosts: []string{"d:1"}}); err != nil {
		t.Fatal(err)
	}
	store := lease.NewStore(meta.Syncs())
	old, err := store.Acquire(ctx, "default", "old", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // old stalls past its TTL
	cur, err := store.Acquire(ctx, "default", "new", 10*time.Second)
	if err != nil || cur.Epoch != old.Epoch+1 {
		t.Fatalf("takeover: %+v, %v", cur, err)
	}
	if err := meta.SetPhase(ctx, cur, metadata.PhaseCopy); err != nil {
		t.Fatal(err)
	}
	if err := meta.SetPhase(ctx, old, metadata.PhaseCatalog); !errors.Is(err, metadata.ErrDeposed) {
		t.Fatalf("deposed coordinator's phase change: %v, want ErrDeposed", err)
	}
	if s, _ := meta.Sync(ctx); s.Phase != metadata.PhaseCopy || s.Owner != "new" || s.Epoch != cur.Epoch {
		t.Fatalf("sync after the deposed write: %+v", s)
	}
}

func TestTruthyReadsIndexOptionsLikeTheServer(t *testing.T) {
	doc, _ := bson.Marshal(bson.D{{Key: "t", Value: true}, {Key: "f", Value: false}, {Key: "one", Value: int32(1)},
		{Key: "zero", Value: int64(0)}, {Key: "half", Value: 0.5}, {Key: "s", Value: "yes"}})
	raw := bson.Raw(doc)
	for key, want := range map[string]bool{"t": true, "f": false, "one": true, "zero": false, "half": true, "s": false, "absent": false} {
		if got := metadata.Truthy(raw.Lookup(key)); got != want {
			t.Errorf("Truthy(%s) = %v", key, got)
		}
	}
	// A source spec with "unique: 1" is deferred like "unique: true".
	spec, _ := bson.Marshal(bson.D{{Key: "key", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "name", Value: "a_1"}, {Key: "unique", Value: 1}})
	_, change, err := metadata.DestinationIndexSpec(spec)
	if err != nil || change == nil || !change.Unique {
		t.Fatalf("unique: 1 gave %+v, %v", change, err)
	}
}
