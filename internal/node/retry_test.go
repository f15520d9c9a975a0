package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/partition"
)

// A partition given up on is visible in /progress with why, and a user's
// POST /api/v1/fleet/partitions/retry makes it claimable again; where there is nothing to retry and
// the sync is not copying, the call is refused in one sentence and changes nothing.
func TestFailedPartitionsAreShownAndRetriedThroughTheAPI(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t, true)
	ctx := context.Background()
	const path = "/api/v1/fleet/partitions/retry"

	status, out, raw := r.call(t, http.MethodPost, path, "{ }")
	if status != http.StatusConflict || out.Success || out.Error != "NoFailedPartitions" ||
		!strings.Contains(out.ErrorDescription, "none has failed, and the sync is IDLE") || strings.Count(out.ErrorDescription, ". ") > 0 {
		t.Fatalf("retry while IDLE: %d %s; want 409 NoFailedPartitions in one sentence", status, raw)
	}
	if status, _, raw := r.call(t, http.MethodPost, path, `{"force": true}`); status != http.StatusBadRequest {
		t.Fatalf("retry with a parameter: %d %s; want 400", status, raw)
	}

	r.put(t, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseCopy}})
	status, _, raw = r.call(t, http.MethodPost, path, "")
	if status != http.StatusOK || !strings.Contains(raw, `"partitionsRetried":0`) {
		t.Fatalf("retry while copying with nothing failed: %d %s; want 200 with 0 retried", status, raw)
	}

	// One partition given up on, with its reason, as a worker leaves it; then the sync is paused.
	if err := r.n.partitions.Replace(ctx, "shop.items", []partition.Range{{Whole: true}, {Whole: true}}); err != nil {
		t.Fatal(err)
	}
	const reason = "writing 1000 documents of shop.items to the destination: Document failed validation"
	_, err := r.n.meta.Collection(metadata.CollPartitions).UpdateOne(ctx, bson.D{{Key: "_id", Value: partition.ID("default", "shop.items", 1)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "attempts", Value: partition.MaxAttempts}, {Key: "lastError", Value: reason}}}})
	if err != nil {
		t.Fatal(err)
	}
	r.put(t, bson.D{{Key: "state", Value: metadata.StatePaused}})
	_, out, raw = r.call(t, http.MethodGet, "/api/v1/progress", "")
	f := out.Progress.Fleet
	if f.Partitions.Failed != 1 || len(f.FailedPartitions) != 1 || f.FailedPartitions[0].LastError != reason ||
		f.FailedPartitions[0].Namespace != "shop.items" || f.FailedPartitions[0].Attempts != partition.MaxAttempts {
		t.Fatalf("progress with a failed partition: %s", raw)
	}
	warned := false
	for _, w := range out.Progress.Warnings {
		warned = warned || (strings.Contains(w, reason) && strings.Contains(w, path))
	}
	if !warned {
		t.Fatalf("no warning names the failure and the retry call: %q", out.Progress.Warnings)
	}

	status, _, raw = r.call(t, http.MethodPost, path, "{}")
	var answer struct {
		Success           bool  `json:"success"`
		PartitionsRetried int64 `json:"partitionsRetried"`
	}
	if err := json.Unmarshal([]byte(raw), &answer); status != http.StatusOK || err != nil || !answer.Success || answer.PartitionsRetried != 1 {
		t.Fatalf("retry while PAUSED with a failed partition: %d %s; want 200 with 1 retried", status, raw)
	}
	all, err := r.n.partitions.All(ctx)
	if err != nil || len(all) != 2 || all[1].Attempts != 0 || all[1].LastError != reason {
		t.Fatalf("partitions after the retry: %+v, %v; want a fresh count and the reason kept", all, err)
	}
	if _, out, _ := r.call(t, http.MethodGet, "/api/v1/progress", ""); out.Progress.Fleet.Partitions.Failed != 0 || len(out.Progress.Fleet.FailedPartitions) != 0 {
		t.Fatalf("progress after the retry still shows failed partitions: %+v", out.Progress.Fleet)
	}
}

// An applier that stopped for good shows in /progress as failed, with its error (which says what to
// do) in fleet.applier and in warnings; info says nothing moves; commit is refused with that error.
func TestTerminalApplierErrorIsVisible(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t, true)
	r.put(t, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseApply}})
	r.caughtUp(t)
	const stopped = "the source's oplog no longer holds the applier's resume point: it resumes at 1, but the oldest entry is 2; " +
		"the events in between are lost, so the sync must be started again with a larger oplog"
	_, err := r.n.meta.Collection(metadata.CollCheckpoints).UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "default"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "error", Value: stopped}, {Key: "terminal", Value: stopped}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, out, raw := r.call(t, http.MethodGet, "/api/v1/progress", "")
	p := out.Progress
	if p.State != metadata.StateRunning || p.CanCommit || p.Fleet.Applier == nil || !p.Fleet.Applier.Failed ||
		p.Fleet.Applier.Error != stopped || p.Info != terminalInfo {
		t.Fatalf("progress with a stopped applier: %s", raw)
	}
	warned := false
	for _, w := range p.Warnings {
		warned = warned || strings.Contains(w, stopped)
	}
	if !warned {
		t.Fatalf("warnings %q do not say the applier stopped", p.Warnings)
	}
	status, out, raw := r.call(t, http.MethodPost, "/api/v1/commit", "{}")
	if status != http.StatusConflict || out.Error != "CommitNotAllowed" || !strings.Contains(out.ErrorDescription, stopped) {
		t.Fatalf("commit with a stopped applier: %d %s", status, raw)
	}
}
