package lease_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

// A Keeper holds a short lease across six TTLs: no one else gets it, and its epoch stays. The TTL is
// long enough that a shared, noisy CI machine stalling for a few hundred milliseconds does not lose it.
func TestKeeperHoldsAcrossManyTTLs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	uri := sandboxtest.Server(t, false)
	storeA, storeB := leases(sandboxtest.Connect(t, uri)), leases(sandboxtest.Connect(t, uri))

	const ttl = time.Second
	a, err := storeA.Acquire(ctx, "coordinator", "node-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, storeA, a)
	defer kept.Stop()

	for end := time.Now().Add(6 * ttl); time.Now().Before(end); time.Sleep(ttl / 6) {
		b, err := storeB.Acquire(ctx, "coordinator", "node-b", ttl)
		var held *lease.HeldError
		if !errors.As(err, &held) || held.Owner != "node-a" || held.Epoch != a.Epoch {
			t.Fatalf("node-b acquiring a kept lease: got %+v, %v; want a HeldError naming node-a at epoch %d", b, err, a.Epoch)
		}
		if err := kept.Err(); err != nil {
			t.Fatalf("the Keeper gave up: %v", err)
		}
	}
	if _, err := storeA.Renew(ctx, a); err != nil {
		t.Fatalf("node-a's lease after six TTLs, as first acquired, is not live at epoch %d: %v", a.Epoch, err)
	}
}

// When another node steals the lease (here: an operator rewrites the lease document), the Keeper's
// next renewal notices and cancels the holder before its old TTL would have run out.
func TestKeeperSignalsTheft(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	store := leases(client)

	const ttl = 3 * time.Second // renewals every second leave two seconds of slack for a slow machine
	a, err := store.Acquire(ctx, "applier", "node-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, store, a)
	defer kept.Stop()

	stolenAt := time.Now()
	_, err = client.Database(metaDB).Collection("leases").UpdateOne(ctx,
		bson.D{{Key: "_id", Value: "applier"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: lease.FieldOwner, Value: "thief"}}}, {Key: "$inc", Value: bson.D{{Key: lease.FieldEpoch, Value: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-kept.Done():
	case <-time.After(ttl - time.Since(stolenAt)):
		t.Fatalf("the Keeper did not notice within the %s TTL that its lease was stolen", ttl)
	}
	// The Keeper must have heard of the theft from the server, not merely given up on renewing.
	var lost *lease.LostError
	if err := kept.Err(); !errors.As(err, &lost) || !strings.HasPrefix(lost.Reason, "thief took it over at epoch 2") {
		t.Fatalf("Keeper ended with %v, want a LostError saying the thief took it over at epoch 2", err)
	}
	if kept.Context().Err() == nil {
		t.Fatal("Done fired but the holder's context is not cancelled")
	}
}

// A Keeper that cannot reach the server gives up while the lease is still live, so the holder stops
// before anyone else can take over.
func TestKeeperStopsBeforeExpiryWhenRenewalsFail(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	uri := sandboxtest.Server(t, false)
	store := leases(sandboxtest.Connect(t, uri))
	cut := sandboxtest.Connect(t, uri)

	const ttl = 5 * time.Second // the Keeper gives up after 4 s, leaving 1 s of slack for the check below
	a, err := store.Acquire(ctx, "coordinator", "node-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	// The Keeper renews through a client that is disconnected: every renewal fails.
	if err := cut.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, leases(cut), a)
	defer kept.Stop()

	select {
	case <-kept.Done():
	case <-time.After(2 * ttl):
		t.Fatalf("the Keeper kept going for %s without a successful renewal", 2*ttl)
	}
	if err := kept.Err(); !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "no renewal succeeded") {
		t.Fatalf("Keeper ended with %v, want a LostError saying renewals failed", err)
	}
	// The server still counts node-a as the live holder: the Keeper stopped it first.
	b, err := store.Acquire(ctx, "coordinator", "node-b", ttl)
	var held *lease.HeldError
	if !errors.As(err, &held) {
		t.Fatalf("node-b could acquire (%+v, %v) when node-a's Keeper gave up: the holder stopped too late", b, err)
	}
}

// ValidUntil moves forward with each renewal, stays within TTL - TTL/5 of now, and is the zero time
// once the Keeper has stopped: a holder that checks it before unfenced work never acts on a lease it
// may no longer have.
func TestKeeperValidUntilFollowsRenewals(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	store := leases(sandboxtest.Connect(t, sandboxtest.Server(t, false)))

	const ttl = 900 * time.Millisecond
	before := time.Now()
	l, err := store.Acquire(ctx, "applier", "node-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, store, l)
	first := kept.ValidUntil()
	if first.Before(before.Add(ttl-ttl/5)) || first.After(time.Now().Add(ttl-ttl/5)) {
		t.Fatalf("ValidUntil right after acquiring is %s from now, want about %s", time.Until(first), ttl-ttl/5)
	}
	time.Sleep(ttl) // three renewal intervals
	later := kept.ValidUntil()
	if !later.After(first) || time.Until(later) > ttl-ttl/5 {
		t.Fatalf("after renewals ValidUntil is %s from now (first %s), want later and within %s", time.Until(later), time.Until(first), ttl-ttl/5)
	}
	kept.Stop()
	if !kept.ValidUntil().IsZero() {
		t.Fatalf("ValidUntil after Stop is %v, want the zero time", kept.ValidUntil())
	}
}
