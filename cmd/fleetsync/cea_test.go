package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/web"
)

// Change-event tests: a load generator writes to the source from before /start until the test
// stops it, so events are applied both from the backlog the copy left and live.
const (
	ceaLoadRate = "500" // ops/s the load generator is asked for
	ceaDocs     = 10000 // seeded documents
	ceaDeadline = 3 * time.Minute
)

// loadProcess runs `fleetsync load` against the source until stopped.
type loadProcess struct{ *background }

func startLoad(t *testing.T, c sandboxtest.Clusters) *loadProcess {
	t.Helper()
	return &loadProcess{startBackground(t, "load", "--uri", c.Source, "--rate", ceaLoadRate, "--duration", "30m", "--seed", "3")}
}

// stop ends the load with SIGTERM and returns its summary line.
func (l *loadProcess) stop(t *testing.T) string {
	t.Helper()
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var last string
	for {
		line, err := l.stdout.ReadString('\n')
		if line != "" {
			last = strings.TrimSpace(line)
		}
		if err != nil {
			break
		}
	}
	<-l.done
	if !strings.Contains(last, "done") || !strings.Contains(last, "errors 0") {
		t.Fatalf("load generator's last line %q, want a summary with no errors; stderr: %s", last, l.stderr.String())
	}
	return last
}

// checkpoint reads the applier's checkpoint from the destination's metadata.
func checkpoint(t *testing.T, c sandboxtest.Clusters) applier.Checkpoint {
	t.Helper()
	meta := metadata.Open(sandboxtest.Connect(t, c.Destination), namespace.DefaultMetadataDB, "default")
	ck, _, err := applier.ReadCheckpoint(context.Background(), meta)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// waitCaughtUp waits until n reports lag 0 with everything up to the source's latest optime
// applied, and canCommit.
func waitCaughtUp(t *testing.T, n *fleetNode) web.Progress {
	t.Helper()
	var p web.Progress
	deadline := time.Now().Add(ceaDeadline)
	for {
		p = progress(t, n)
		a := p.Fleet.Applier
		if p.LagTimeSeconds != nil && *p.LagTimeSeconds == 0 && a != nil && a.AppliedThrough != nil && a.SourceLatest != nil &&
			!a.AppliedThrough.Less(*a.SourceLatest) && p.CanCommit {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("change events did not catch up within %s: %+v, applier %+v", ceaDeadline, p, a)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// applierNode waits until some node holds the applier lease and has checkpointed, and returns it.
func applierNode(t *testing.T, n *fleetNode, not string) *web.Applier {
	t.Helper()
	var a *web.Applier
	waitFor(t, "a node other than "+not+" to apply change events", func() bool {
		a = progress(t, n).Fleet.Applier
		return a != nil && a.Node != "" && a.Node != not && a.AppliedThrough != nil
	})
	return a
}

func TestChangeEventsKeepTheDestinationCurrentUnderLoad(t *testing.T) {
	c := sandboxtest.Pair(t)
	seedSource(t, c, ceaDocs)
	load := startLoad(t, c)
	a := startNode(t, c, "a")
	startNode(t, c, "b")
	startNode(t, c, "c")
	time.Sleep(time.Second) // the load is running before the sync starts
	startSync(t, a)
	waitCopied(t, a)

	// Live application while the load goes on.
	ap := applierNode(t, a, "")
	waitFor(t, "events applied live", func() bool {
		p := progress(t, a)
		return p.TotalEventsApplied != nil && *p.TotalEventsApplied > 2000
	})
	p := progress(t, a)
	if p.Info != "change event application" || p.Lag == nil || p.Fleet.Applier.Source != applier.SourceOplog {
		t.Fatalf("progress during change event application: %+v, applier %+v", p, p.Fleet.Applier)
	}
	summary := load.stop(t)
	t.Logf("load: %s", summary)

	p = waitCaughtUp(t, a)
	t.Logf("caught up: %d events applied by %s (%d refreshed)", *p.TotalEventsApplied, ap.Node, p.Fleet.Applier.Refreshed)
	if p.Lag.OverallLagSeconds != 0 || p.EstimatedSecondsToCEACatchup == nil || *p.EstimatedSecondsToCEACatchup != 0 {
		t.Errorf("caught up, but lag %+v and catch-up estimate %v", p.Lag, p.EstimatedSecondsToCEACatchup)
	}
	assertVerified(t, c)
}

func TestChangeEventsSurviveTheApplierBeingKilledTwice(t *testing.T) {
	c := sandboxtest.Pair(t)
	seedSource(t, c, ceaDocs)
	load := startLoad(t, c)
	nodes := map[string]*fleetNode{}
	for _, name := range []string{"a", "b", "c"} {
		nodes[name] = startNode(t, c, name)
	}
	startSync(t, nodes["a"])
	waitCopied(t, nodes["a"])

	var positions []web.OpTime
	var epochs []int64
	killed := ""
	for round := 1; round <= 2; round++ {
		var observer *fleetNode
		for name, n := range nodes {
			if name != killed {
				observer = n
			}
		}
		ap := applierNode(t, observer, killed)
		// Let the new applier checkpoint past where the previous one stopped.
		if len(positions) > 0 {
			prev := positions[len(positions)-1]
			waitFor(t, "the new applier to move the checkpoint forward", func() bool {
				a := progress(t, observer).Fleet.Applier
				return a.Node == ap.Node && prev.Less(*a.AppliedThrough)
			})
		}
		time.Sleep(time.Second)
		ck := checkpoint(t, c)
		positions = append(positions, web.OpTime{T: ck.Position.TS.T, I: ck.Position.TS.I})
		epochs = append(epochs, ck.Epoch)
		victim := nodes[ap.Node]
		t.Logf("round %d: killing applier %s at epoch %d, checkpoint %v", round, ap.Node, ck.Epoch, ck.Position.TS)
		victim.kill(t)
		delete(nodes, ap.Node)
		killed = ap.Node
	}
	var last *fleetNode
	for _, n := range nodes {
		last = n
	}
	final := applierNode(t, last, killed)
	load.stop(t)
	p := waitCaughtUp(t, last)

	ck := checkpoint(t, c)
	t.Logf("checkpoints across takeovers: %v, then %v; epochs %v then %d", positions, ck.Position.TS, epochs, ck.Epoch)
	if !positions[0].Less(positions[1]) || !positions[1].Less(web.OpTime{T: ck.Position.TS.T, I: ck.Position.TS.I}) {
		t.Errorf("the checkpoint did not move forward across both takeovers: %v then %v", positions, ck.Position.TS)
	}
	if ck.Epoch <= epochs[1] || epochs[1] <= epochs[0] || displayOwner(ck.Owner) != final.Node {
		t.Errorf("applier lease epochs %v then %d (owner %s): each takeover must raise it", epochs, ck.Epoch, ck.Owner)
	}
	if *p.TotalEventsApplied == 0 {
		t.Error("no events applied")
	}
	assertVerified(t, c)
}

func TestDeposedApplierCannotApplyOrCheckpoint(t *testing.T) {
	c := sandboxtest.Pair(t)
	seedSource(t, c, ceaDocs)
	load := startLoad(t, c)
	nodes := map[string]*fleetNode{}
	for _, name := range []string{"a", "b"} {
		nodes[name] = startNode(t, c, name)
	}
	startSync(t, nodes["a"])
	waitCopied(t, nodes["a"])
	first := applierNode(t, nodes["a"], "")
	frozen, other := nodes[first.Node], nodes["a"]
	if first.Node == "a" {
		other = nodes["b"]
	}
	time.Sleep(time.Second)

	// Watch the checkpoint from here on: it must never move backwards.
	stopWatching := make(chan struct{})
	watched := make(chan []applier.Checkpoint, 1)
	go func() {
		var seen []applier.Checkpoint
		meta := metadata.Open(sandboxtest.Connect(t, c.Destination), namespace.DefaultMetadataDB, "default")
		for {
			select {
			case <-stopWatching:
				watched <- seen
				return
			case <-time.After(50 * time.Millisecond):
			}
			if ck, ok, err := applier.ReadCheckpoint(context.Background(), meta); err == nil && ok {
				seen = append(seen, ck)
			}
		}
	}()

	t.Logf("freezing applier %s with SIGSTOP", frozen.name)
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	taken := applierNode(t, other, frozen.name)
	waitFor(t, "the new applier to checkpoint", func() bool {
		a := progress(t, other).Fleet.Applier
		return a.Node == taken.Node && a.Epoch > first.Epoch && first.AppliedThrough.Less(*a.AppliedThrough)
	})
	time.Sleep(2 * time.Second)
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed %s", frozen.name)
	waitFor(t, "the resumed node to notice it lost the applier lease", func() bool {
		return strings.Contains(frozen.stderr.String(), "no longer the applier")
	})
	load.stop(t)
	waitCaughtUp(t, other)
	close(stopWatching)
	seen := <-watched

	for i := 1; i < len(seen); i++ {
		if seen[i].Position.TS.Before(seen[i-1].Position.TS) {
			t.Fatalf("the checkpoint moved backwards: %v (epoch %d, %s) after %v (epoch %d, %s)",
				seen[i].Position.TS, seen[i].Epoch, seen[i].Owner, seen[i-1].Position.TS, seen[i-1].Epoch, seen[i-1].Owner)
		}
	}
	last := seen[len(seen)-1]
	if displayOwner(last.Owner) != taken.Node || last.Epoch != taken.Epoch {
		t.Errorf("after the deposed applier woke up the lease is %s at epoch %d, want %s at %d", last.Owner, last.Epoch, taken.Node, taken.Epoch)
	}
	t.Logf("%d checkpoints observed, all monotonic; deposed node's log:\n%s", len(seen), lastLines(frozen.stderr.String(), 6))
	assertVerified(t, c)
}

func displayOwner(owner string) string { name, _, _ := strings.Cut(owner, "/"); return name }

// A source that cannot give the forced event source is refused at /start, before any copying, with
// a sentence that says what to do; the sync stays IDLE.
func TestStartRefusesAChangeSourceTheSourceLacks(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	n := startNode(t, c, "solo", "--change-source", "changeStream")
	r := call(t, "POST", n.api+"/api/v1/start", `{"source":"cluster0","destination":"cluster1"}`)
	desc, _ := r.body["errorDescription"].(string)
	if r.status != 400 || r.body["error"] != "InvalidSource" || !strings.Contains(desc, "cannot give a cluster-wide change stream") ||
		!strings.Contains(desc, "--change-source oplog") {
		t.Fatalf("start with a change stream the sandbox cannot give: %d %s", r.status, r.raw)
	}
	if p := progress(t, n); p.State != metadata.StateIdle {
		t.Fatalf("the refused start changed the state to %s", p.State)
	}
}
