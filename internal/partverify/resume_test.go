package partverify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"

	"github.com/fleetsync/fleetsync/internal/partverify"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// A verifier killed mid-partition (its context cancelled without a release, as SIGKILL leaves it)
// leaves its checkpoint and its lease; once the lease expires another verifier resumes after the
// checkpoint, not from the start: the claim history says where it began, its find asks for the
// _ids after the checkpoint, and over both holders every document is compared once and each
// difference recorded once.
func TestKilledVerifierIsResumedAfterItsCheckpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	const n = 1000
	r.seed(t, "shop.items", docsFor(mixedIDs(n)), partition.Range{Whole: true})
	r.copyAll(t)
	target := r.destination("shop.items")
	mustDelete(t, target, bson.D{{Key: "_id", Value: int64(4)}})  // before the checkpoint
	mustDelete(t, target, bson.D{{Key: "_id", Value: "s-0900"}})  // after it
	mustInsert(t, target, bson.D{{Key: "_id", Value: oid(5000)}}) // after it

	const shortTTL = time.Second
	killed := r.verifier("killed/v0", 250, shortTTL)
	kctx, kill := context.WithCancel(ctx)
	defer kill()
	var checkpoint partverify.Progress
	checkpoints := 0
	partverify.SetAfterCheckpoint(killed, func(p partverify.Progress) {
		if checkpoints++; checkpoints == 2 {
			checkpoint = p
			kill() // mid-partition: the third batch is being compared
		}
	})
	if res, err := killed.VerifyOne(kctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("the killed verifier: %v, %v", res, err)
	}
	d := r.docs(t)["default/shop.items/000000"]
	if d.Owner != "killed/v0" || d.Compared != 500 || !sameID(d.LastID, checkpoint.LastID) || d.VerifiedGeneration == 0 {
		t.Fatalf("after the kill: owner %q, %+v, checkpoint %s (the hook saw %s); want the killer's lease and 500 compared",
			d.Owner, d.Counts, show(d.LastID), show(checkpoint.LastID))
	}

	successor := r.verifier("successor/v0", 250, ttl)
	deadline := time.Now().Add(10 * shortTTL)
	res, err := successor.VerifyOne(ctx, nil)
	for res == partverify.NothingToClaim && time.Now().Before(deadline) {
		time.Sleep(shortTTL / 5) // the killed verifier's lease has not expired yet
		res, err = successor.VerifyOne(ctx, nil)
	}
	if res != partverify.Verified || err != nil {
		t.Fatalf("the successor: %v, %v", res, err)
	}

	d = r.docs(t)["default/shop.items/000000"]
	if len(d.Claims) != 2 || d.Claims[1].Owner != "successor/v0" || d.Claims[1].ComparedBefore != 500 ||
		!sameID(d.Claims[1].ResumedAfter, checkpoint.LastID) || d.Claims[1].Epoch != d.Claims[0].Epoch+1 {
		t.Fatalf("claims %+v; want the successor's, after the checkpoint %s with 500 compared", d.Claims, show(checkpoint.LastID))
	}
	if d.Compared != 3*n+1 || d.Equal != 3*n-2 || d.Missing != 2 || d.Extra != 1 || d.VerifiedGeneration != 0 {
		t.Fatalf("counts %+v; want each of %d _ids compared once: %d equal, 2 missing, 1 extra", d.Counts, 3*n+1, 3*n-2)
	}
	checkDifferences(t, "shop.items", d.Differences, []partverify.Difference{
		{ID: raw(int64(4)), Kind: partverify.KindMissing},
		{ID: raw("s-0900"), Kind: partverify.KindMissing},
		{ID: raw(oid(5000)), Kind: partverify.KindExtra},
	})
	// On the wire: the successor's reads start after the checkpoint (the range's filter resumed
	// there), on both sides.
	want, _ := bson.Marshal(bson.D{{Key: "f", Value: d.Range.Filter(checkpoint.LastID)}})
	for _, side := range [][]string{{"source", lastFilter(r.read, "shop", "items")}, {"destination", lastFilter(r.sent, "shop", "items")}} {
		if side[1] != bson.Raw(want).Lookup("f").String() {
			t.Errorf("the successor's %s find filter is %s, want %s", side[0], side[1], bson.Raw(want).Lookup("f"))
		}
	}
}

// A verifier whose lease was taken over cannot checkpoint, complete or record a failure: each
// write is rejected as a lost lease naming the new holder, and the new holder's checkpoint stands.
func TestDeposedVerifierCannotCheckpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	r.seed(t, "shop.items", docsFor(mixedIDs(10)), partition.Range{Whole: true})
	r.copyAll(t)
	old, err := r.store.Claim(ctx, "old/v0", time.Second)
	if err != nil || old == nil {
		t.Fatalf("claim: %v, %v", old, err)
	}
	time.Sleep(1500 * time.Millisecond) // the old verifier stalls past its TTL
	cur, err := r.store.Claim(ctx, "new/v0", ttl)
	if err != nil || cur == nil || cur.Lease.Epoch != old.Lease.Epoch+1 {
		t.Fatalf("takeover: %+v, %v", cur, err)
	}
	if err := r.store.Checkpoint(ctx, cur, partverify.Progress{LastID: raw(int64(7)), Counts: partverify.Counts{Compared: 8, Equal: 8}}); err != nil {
		t.Fatal(err)
	}
	stale := partverify.Progress{LastID: raw(int64(3)), Counts: partverify.Counts{Compared: 4, Missing: 4},
		Differences: []partverify.Difference{{ID: raw(int64(0)), Kind: partverify.KindMissing}}}
	err = r.store.Checkpoint(ctx, old, stale)
	var lost *lease.LostError
	if !errors.As(err, &lost) || !strings.Contains(lost.Reason, "new/v0 took it over") {
		t.Fatalf("deposed checkpoint: %v; want a LostError naming the new holder", err)
	}
	if err := r.store.Complete(ctx, old, stale); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("deposed completion: %v", err)
	}
	if err := r.store.Fail(ctx, old, errors.New("stale")); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("deposed failure: %v", err)
	}
	d := r.docs(t)["default/shop.items/000000"]
	if !sameID(d.LastID, raw(int64(7))) || d.Compared != 8 || d.Equal != 8 || d.Missing != 0 || len(d.Differences) != 0 ||
		d.VerifiedGeneration == 0 || d.LastError != "" || d.Owner != "new/v0" {
		t.Fatalf("after the deposed writes: %+v", d)
	}
}

// lastFilter is the filter of the last find sent to db.coll, as text.
func lastFilter(c *sandboxtest.Commands, db, coll string) string {
	finds := c.Sent("find", db, coll)
	if len(finds) == 0 {
		return "no find"
	}
	return finds[len(finds)-1].Body.Lookup("filter").String()
}

// Of several claimable partitions, a verifier takes the one a dead verifier left half done first,
// so that half-done work does not wait behind untouched partitions.
func TestHalfDonePartitionIsClaimedFirst(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	const n = 300
	r.seed(t, "shop.items", docsFor(mixedIDs(n)), typedRanges(n)...)
	r.copyAll(t)
	half, err := r.store.Claim(ctx, "dead/v0", time.Second)
	if err != nil || half == nil {
		t.Fatalf("claim: %v, %v", half, err)
	}
	if err := r.store.Checkpoint(ctx, half, partverify.Progress{LastID: raw(int64(1)), Counts: partverify.Counts{Compared: 2, Equal: 2}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the dead verifier's lease expires
	// Several claims, since among untouched partitions the order is random.
	for range 5 {
		c, err := r.store.Claim(ctx, "next/v0", ttl)
		if err != nil || c == nil || c.Doc.ID != half.Doc.ID {
			t.Fatalf("claimed %+v, %v; want the half-done %s", c, err, half.Doc.ID)
		}
		if err := r.store.Release(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// A later generation verifies every partition again from its start, its counts started again; the
// earlier generation's results stay until the claim.
func TestNextGenerationStartsEachPartitionAgain(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	r.seed(t, "shop.items", docsFor(mixedIDs(100)), partition.Range{Whole: true})
	r.copyAll(t)
	mustDelete(t, r.destination("shop.items"), bson.D{{Key: "_id", Value: "s-0001"}})
	verifyAll(t, r.verifier("n1/v0", 50, ttl))
	mustInsert(t, r.destination("shop.items"), bson.D{{Key: "_id", Value: "s-0001"}, {Key: "n", Value: "repaired"}})

	r.store = partverify.NewStore(r.meta, 1)
	if sum, err := r.store.Summary(ctx); err != nil || sum.Verified != 0 || sum.Compared != 0 {
		t.Fatalf("generation 1 before any claim: %+v, %v; want nothing verified", sum, err)
	}
	verifyAll(t, r.verifier("n1/v0", 50, ttl))
	d := r.docs(t)["default/shop.items/000000"]
	if d.Generation != 1 || d.VerifiedGeneration != 1 || d.Compared != 300 || d.Equal != 299 || d.Different != 1 || d.Missing != 0 ||
		len(d.Differences) != 1 || d.Claims[len(d.Claims)-1].ResumedAfter.Type != 0 {
		t.Fatalf("generation 1: %+v; want all 300 compared again from the start, only the repaired document different", d)
	}
}

// A verifier frozen mid-partition (its lease renewals held, as in a stopped process) is taken over
// once its lease expires; its successor verifies the partition to the end from the checkpoint, and
// when the frozen verifier wakes up its next checkpoint is refused: it returns Lost and adds nothing
// to the counts, so each document is still counted once.
func TestFrozenVerifierIsDeposedAndCountsNothingMore(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	const n = 300
	r.seed(t, "shop.items", docsFor(mixedIDs(n)), partition.Range{Whole: true})
	r.copyAll(t)

	const shortTTL = 1500 * time.Millisecond
	frozen := make(chan struct{}) // closed when the frozen verifier's renewals may go on
	var wake sync.Once
	defer time.AfterFunc(20*time.Second, func() { wake.Do(func() { close(frozen) }) }).Stop() // never hang
	var freezing atomic.Bool
	r.sent.OnStart(func(e *event.CommandStartedEvent) {
		// The frozen verifier's keeper renewing its lease (a renewal's filter has the epoch; a claim's does not).
		q, ok := e.Command.Lookup("query").DocumentOK()
		if owner, _ := q.Lookup("owner").StringValueOK(); ok && freezing.Load() && e.CommandName == "findAndModify" &&
			owner == "frozen/v0" && q.Lookup("epoch").Type != 0 {
			<-frozen
		}
	})
	v := r.verifier("frozen/v0", 100, shortTTL)
	first := true
	partverify.SetAfterCheckpoint(v, func(partverify.Progress) {
		if !first {
			return
		}
		first = false
		freezing.Store(true)
		time.Sleep(shortTTL + 500*time.Millisecond) // frozen past its lease, as the server judges it
		if res, err := r.verifier("successor/v0", 100, ttl).VerifyOne(ctx, nil); res != partverify.Verified || err != nil {
			t.Errorf("the successor: %v, %v", res, err)
		}
		time.AfterFunc(300*time.Millisecond, func() { wake.Do(func() { close(frozen) }) })
	})
	if res, err := v.VerifyOne(ctx, nil); res != partverify.Lost || !errors.Is(err, lease.ErrLost) {
		t.Fatalf("the frozen verifier: %v, %v; want Lost", res, err)
	}
	d := r.docs(t)["default/shop.items/000000"]
	if d.Compared != 3*n || d.Equal != 3*n || d.VerifiedGeneration != 0 || len(d.Claims) != 2 || d.Claims[1].ComparedBefore != 100 {
		t.Fatalf("after the takeover: %+v, claims %+v; want %d compared once each, the successor resuming after 100", d.Counts, d.Claims, 3*n)
	}
}
