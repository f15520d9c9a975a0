package partverify_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/partverify"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/partition"
)

// Codes of the replies the tests inject (MongoDB's error_codes.yml).
const (
	codePrimarySteppedDown = 189
	codeBadValue           = 2
)

// The verifier reads both clusters as the copy reads the source, which the sandbox accepts without
// acting on: majority read concern (a write a failover rolls back is neither compared on the source
// nor taken for the destination's), the _id sort with the simple collation (the order the merge
// compares in, whatever the collection's default collation), the range's filter, and one cursor per
// side streamed in batches of BatchDocs; its checkpoints are majority writes.
func TestVerifierReadsMajorityInTheCopysOrder(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.seed(t, "shop.items", docsFor(mixedIDs(300)), partition.Range{Whole: true})
	r.copyAll(t)
	// Only the verifier's commands count: the copy's come before.
	before := map[*sandboxtest.Commands][2]int{}
	for _, c := range []*sandboxtest.Commands{r.read, r.sent} {
		before[c] = [2]int{len(c.Sent("find", "shop", "items")), len(c.Sent("getMore", "shop", ""))}
	}
	if res, err := r.verifier("n1/v0", 200, ttl).VerifyOne(context.Background(), nil); res != partverify.Verified || err != nil {
		t.Fatalf("VerifyOne: %v, %v", res, err)
	}
	wantFilter, _ := bson.Marshal(bson.D{{Key: "filter", Value: partition.Range{Whole: true}.Filter(bson.RawValue{})}})
	for _, side := range []struct {
		name string
		sent *sandboxtest.Commands
	}{{"source", r.read}, {"destination", r.sent}} {
		finds := side.sent.Sent("find", "shop", "items")[before[side.sent][0]:]
		if len(finds) != 1 {
			t.Fatalf("%d finds of the %s's shop.items, want one cursor", len(finds), side.name)
		}
		f := finds[0].Body
		if level, _ := f.Lookup("readConcern", "level").StringValueOK(); level != "majority" {
			t.Errorf("the %s's find sent readConcern %s, want majority", side.name, f.Lookup("readConcern"))
		}
		if sort := f.Lookup("sort").String(); sort != `{"_id": {"$numberInt":"1"}}` {
			t.Errorf("the %s's find sorts by %s, want _id ascending", side.name, sort)
		}
		if locale, _ := f.Lookup("collation", "locale").StringValueOK(); locale != "simple" {
			t.Errorf("the %s's find has collation %s, want the simple collation", side.name, f.Lookup("collation"))
		}
		if !f.Lookup("filter").Equal(bson.Raw(wantFilter).Lookup("filter")) {
			t.Errorf("the %s's find filter is %s, want the range's %s", side.name, f.Lookup("filter"), bson.Raw(wantFilter).Lookup("filter"))
		}
		if batch, _ := f.Lookup("batchSize").AsInt64OK(); batch != 200 {
			t.Errorf("the %s's find asks for batches of %v, want 200", side.name, f.Lookup("batchSize"))
		}
		if n := len(side.sent.Sent("getMore", "shop", "")) - before[side.sent][1]; n < 4 {
			t.Errorf("%d getMores on the %s for 900 documents in batches of 200: the cursor was not streamed", n, side.name)
		}
	}
	updates := r.sent.Sent("update", namespace.DefaultMetadataDB, metadata.CollVerification)
	if len(updates) < 5 {
		t.Fatalf("%d verification updates, want a checkpoint per batch of 200 of 900 documents and the completion", len(updates))
	}
	for _, u := range updates {
		if w, _ := u.Body.Lookup("writeConcern", "w").StringValueOK(); w != "majority" {
			t.Errorf("verification update with writeConcern %s, want w: majority", u.Body.Lookup("writeConcern"))
		}
	}
}

// Read errors are retried as the copy's are: a transient one (a primary stepping down) is recorded
// and costs no attempt, one that is the partition's own counts an attempt, and the next claim
// resumes from the checkpoint.
func TestReadErrorsAreRetriedLikeTheCopys(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	r.seed(t, "shop.items", docsFor(mixedIDs(100)), partition.Range{Whole: true})
	r.copyAll(t)
	v := r.verifier("n1/v0", 50, ttl)
	doc := func() partverify.Doc { return r.docs(t)["default/shop.items/000000"] }

	// The source's second batch: its getMore (named by cursor id, not namespace: the verifier is
	// the only reader of the source here).
	sandboxtest.FailCommand(t, r.src, sandboxtest.FailPoint{Commands: []string{"getMore"},
		Code: codePrimarySteppedDown, Labels: []string{"RetryableReadError"}, Times: 1})
	if res, err := v.VerifyOne(ctx, nil); res != partverify.Failed || err == nil {
		t.Fatalf("VerifyOne with a step-down: %v, %v", res, err)
	}
	if d := doc(); d.Attempts != 0 || d.LastError == "" || d.Compared != 50 || d.Owner != "" {
		t.Fatalf("after a step-down: attempts %d, last error %q, %+v, owner %q; want no attempt counted, the error, the first batch's checkpoint, released",
			d.Attempts, d.LastError, d.Counts, d.Owner)
	}
	sandboxtest.FailCommand(t, r.dst, sandboxtest.FailPoint{Commands: []string{"find"}, Namespace: "shop.items", Code: codeBadValue, Times: 1})
	if res, err := v.VerifyOne(ctx, nil); res != partverify.Failed || err == nil {
		t.Fatalf("VerifyOne with a bad value: %v, %v", res, err)
	}
	if d := doc(); d.Attempts != 1 {
		t.Fatalf("after a failure of its own: attempts %d, want 1", d.Attempts)
	}
	if res, err := v.VerifyOne(ctx, nil); res != partverify.Verified || err != nil {
		t.Fatalf("VerifyOne after the failures: %v, %v", res, err)
	}
	if d := doc(); d.Attempts != 0 || d.Compared != 300 || d.Equal != 300 || d.Claims[2].ComparedBefore != 50 {
		t.Fatalf("after the retry: attempts %d, %+v, claims %+v; want every document compared once, resumed after 50", d.Attempts, d.Counts, d.Claims)
	}
}
