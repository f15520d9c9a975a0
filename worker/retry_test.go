package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/worker"
)

// Error codes the destination answers with (MongoDB's error_codes.yml).
const (
	codePrimarySteppedDown = 189
	codeBadValue           = 2
)

// copyUntilSettled runs CopyOne until the partition is copied or nothing is left to claim, at most
// rounds times, and returns the results.
func copyUntilSettled(t *testing.T, w *worker.Worker, rounds int) []worker.Result {
	t.Helper()
	var out []worker.Result
	for range rounds {
		res, _ := w.CopyOne(context.Background(), nil)
		out = append(out, res)
		if res == worker.Copied || res == worker.NothingToClaim {
			break
		}
	}
	return out
}

// A multi-day copy meets primary step-downs and shutdowns: those errors are not the partition's
// fault and must not use up its attempts, or a few failovers stall the copy for good. The
// destination's inserts fail on the wire, with MongoDB's replies, more often than MaxAttempts.
func TestTransientErrorsDoNotUseUpAPartitionsAttempts(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1000)
	transient := partition.MaxAttempts + 2
	sandboxtest.FailCommand(t, r.dst, sandboxtest.FailPoint{
		Commands: []string{"insert"}, Namespace: "shop.items", Code: codePrimarySteppedDown,
		Labels: []string{"RetryableWriteError"}, Times: transient - 1,
	})
	results := copyUntilSettled(t, r.worker("n1/x/w0", 100), 3*partition.MaxAttempts)
	p := r.partition(t)
	if !p.Done || p.Attempts != 0 || r.destinationCount(t) != 1000 {
		t.Fatalf("after %d step-downs: results %v, partition done %v, attempts %d, last error %q, %d documents on the destination; "+
			"want it copied with no attempt counted", transient-1, results, p.Done, p.Attempts, p.LastError, r.destinationCount(t))
	}
	if !strings.Contains(p.LastError, "Failing command via 'failCommand' failpoint") {
		t.Errorf("the last transient error is not recorded: %q", p.LastError)
	}
	// A dropped connection is transient too.
	r2 := newRig(t, 300)
	sandboxtest.FailCommand(t, r2.dst, sandboxtest.FailPoint{
		Commands: []string{"insert"}, Namespace: "shop.items", CloseConnection: true, Times: partition.MaxAttempts + 1,
	})
	// A short lease: after a dropped connection the worker waits out the write's deadline (see
	// TestWorkerWaitsOutAWriteWithNoAnswer), a fraction of the TTL, each time.
	results = copyUntilSettled(t, r2.workerWithTTL("n1/x/w0", 100, time.Second), 3*partition.MaxAttempts)
	if p := r2.partition(t); !p.Done || p.Attempts != 0 {
		t.Fatalf("after dropped connections: results %v, done %v, attempts %d, last error %q", results, p.Done, p.Attempts, p.LastError)
	}
}

// Errors that are the partition's own (here a reply MongoDB gives for a value it refuses) count; a
// checkpoint (progress) starts the count again; and once MaxAttempts are used up, a user's retry
// makes the partition claimable again.
func TestFailuresCountUntilProgressAndAUserRetries(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1000)
	ctx := context.Background()
	w := r.worker("n1/x/w0", 100)
	fail := func(times int) {
		sandboxtest.FailCommand(t, r.dst, sandboxtest.FailPoint{Commands: []string{"insert"}, Namespace: "shop.items", Code: codeBadValue, Times: times})
	}

	fail(partition.MaxAttempts - 1)
	copyUntilSettled(t, w, partition.MaxAttempts-1)
	if p := r.partition(t); p.Attempts != partition.MaxAttempts-1 || p.Done {
		t.Fatalf("after %d refusals: attempts %d, done %v", partition.MaxAttempts-1, p.Attempts, p.Done)
	}
	// One batch gets through and is checkpointed, then the holder stops.
	stop := make(chan struct{})
	worker.SetBeforeWrite(w, func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	})
	if res, err := w.CopyOne(ctx, stop); res != worker.HandedBack && res != worker.Copied {
		t.Fatalf("CopyOne with a stop after the first batch: %v, %v", res, err)
	}
	worker.SetBeforeWrite(w, nil)
	if p := r.partition(t); p.Attempts != 0 || p.DocsCopied == 0 {
		t.Fatalf("after a checkpoint: attempts %d, %d documents copied; want the count reset by the progress", p.Attempts, p.DocsCopied)
	}

	fail(partition.MaxAttempts)
	results := copyUntilSettled(t, w, 3*partition.MaxAttempts)
	p := r.partition(t)
	if p.Done || p.Attempts != partition.MaxAttempts || results[len(results)-1] != worker.NothingToClaim || p.LastError == "" {
		t.Fatalf("after %d refusals: results %v, attempts %d, done %v, last error %q; want it given up on, with its reason",
			partition.MaxAttempts, results, p.Attempts, p.Done, p.LastError)
	}
	n, err := r.store.RetryFailed(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RetryFailed: %d, %v; want 1 partition made claimable again", n, err)
	}
	if res, err := w.CopyOne(ctx, nil); res != worker.Copied {
		t.Fatalf("CopyOne after the user's retry: %v, %v", res, err)
	}
	if p := r.partition(t); !p.Done || r.destinationCount(t) != 1000 {
		t.Fatalf("after the retry: done %v, %d documents on the destination", p.Done, r.destinationCount(t))
	}
}

// A copy write that got no answer (the connection dropped) may still run on the server until its
// deadline: the worker gives the partition back only after that, so that no successor can finish
// the partition, and the applier delete one of its documents, before the late write lands.
func TestWorkerWaitsOutAWriteWithNoAnswer(t *testing.T) {
	t.Parallel()
	r := newRig(t, 300)
	sandboxtest.FailCommand(t, r.dst, sandboxtest.FailPoint{
		Commands: []string{"insert"}, Namespace: "shop.items", CloseConnection: true, Times: 1,
	})
	const leaseTTL = 2 * time.Second
	started := time.Now()
	res, err := r.workerWithTTL("n1/x/w0", 100, leaseTTL).CopyOne(context.Background(), nil)
	took := time.Since(started)
	if res != worker.Failed || err == nil {
		t.Fatalf("CopyOne with a dropped connection: %v, %v; want Failed", res, err)
	}
	// The first batch's deadline is the lease's validity as claimed: TTL - TTL/5 after the claim.
	if want := leaseTTL - leaseTTL/5 - leaseTTL/5; took < want {
		t.Fatalf("the partition was given back %s after it was claimed, its write without an answer; want it held until the write's deadline (about %s)",
			took.Round(time.Millisecond), leaseTTL-leaseTTL/5)
	}
	if p := r.partition(t); p.Owner != "" {
		t.Fatalf("the partition is still held by %q after the worker gave it back", p.Owner)
	}
}
