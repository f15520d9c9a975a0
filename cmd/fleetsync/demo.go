package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetsync/fleetsync/internal/loadgen"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/web"
)

// Demo timings.
const (
	demoPollInterval = 500 * time.Millisecond
	// demoNodeReadyTimeout bounds a node's start (connect, register, join).
	demoNodeReadyTimeout = time.Minute
	// demoCopyTimeout is a hang guard for the copy, far above what the demo's sizes need.
	demoCopyTimeout = 30 * time.Minute
	// demoPartitionSize is small so that even the demo's data is split among the nodes.
	demoPartitionSize = "1MB"
	// demoCatchupTimeout is a hang guard for change event application to catch up once the load stops.
	demoCatchupTimeout = 10 * time.Minute
)

// runDemo is the README's first command: a whole migration on the embedded sandbox, in one command
// that cleans up after itself. It starts the sandbox, seeds the source, starts writing to it at a
// steady rate (the load generator), starts a fleet of nodes as separate processes, starts the sync
// through the API, shows its progress through the copy and live change event application, waits for
// canCommit, stops the load, commits, proves with the verifier that the clusters are equal, and
// prints a summary.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	docs := fs.Int("docs", 20000, "documents to seed")
	collections := fs.Int("collections", 6, "collections to spread them over")
	seedValue := fs.Int64("seed", 1, "seed of the generated data")
	nodes := fs.Int("nodes", 3, "fleet nodes to run, each a separate process")
	workers := fs.Int("workers", 2, "copy workers per node")
	rate := fs.Float64("rate", 500, "writes per second to the source during the sync (0: none)")
	applySeconds := fs.Duration("apply-for", 5*time.Second, "how long the load goes on once the copy is done, applied live")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if err := checkSeedFlags(*docs, *collections); err != nil {
		return fail(stderr, "demo", err)
	}
	if *nodes < 1 || *workers < 1 {
		return fail(stderr, "demo", fmt.Errorf("--nodes and --workers must be at least 1 (got %d and %d)", *nodes, *workers))
	}
	if *rate < 0 || *applySeconds < 0 {
		return fail(stderr, "demo", fmt.Errorf("--rate and --apply-for cannot be negative (got %g and %s)", *rate, *applySeconds))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	started := time.Now()
	sb, err := startSandbox(ctx, 0, 0, stderr)
	if err != nil {
		return fail(stderr, "demo", err)
	}
	defer sb.launcher.Close()
	fmt.Fprintf(stdout, "sandbox up in %.1fs: source %s, destination %s\n", time.Since(started).Seconds(), sb.source.URI(), sb.destination.URI())

	t := time.Now()
	stats, err := seedCluster(ctx, sb.source.URI(), seed.Options{Docs: *docs, Collections: *collections, Seed: *seedValue})
	if err != nil {
		return fail(stderr, "demo", fmt.Errorf("seeding the source: %w", err))
	}
	fmt.Fprintf(stdout, "seeded the source: %d documents, %.1f MB, %d collections in %.1fs\n",
		stats.Docs, float64(stats.Bytes)/1e6, stats.Collections, time.Since(t).Seconds())

	load := startDemoLoad(ctx, sb.source.URI(), *rate, *seedValue)
	defer load.stop()
	if *rate > 0 {
		fmt.Fprintf(stdout, "writing to the source at %g ops/s (inserts, $set, $unset, $inc, $push, replaces, deletes) from now until the copy is done and %s more\n", *rate, *applySeconds)
	}

	logDir, err := os.MkdirTemp("", "fleetsync-demo-")
	if err != nil {
		return fail(stderr, "demo", err)
	}
	fleet, err := startDemoFleet(ctx, *nodes, *workers, sb.source.URI(), sb.destination.URI(), logDir)
	defer fleet.stop()
	if err != nil {
		return fail(stderr, "demo", err)
	}
	for _, n := range fleet {
		fmt.Fprintf(stdout, "node %s: API %s, log %s\n", n.name, n.api, n.log)
	}

	copyStarted := time.Now()
	if err := (web.Client{Base: fleet[0].api}).Start(ctx); err != nil {
		return fail(stderr, "demo", fmt.Errorf("starting the sync: %w", err))
	}
	fmt.Fprintf(stdout, "POST %s/api/v1/start: the fleet copies the source\n", fleet[0].api)
	final, err := followCopy(ctx, fleet, stdout)
	if err != nil {
		return fail(stderr, "demo", err)
	}
	copySeconds := time.Since(copyStarted).Seconds()

	// Live change event application while the load goes on; then, as a user cuts over: wait for
	// canCommit, stop the writes, commit.
	applyStarted := time.Now()
	if err := followApply(ctx, fleet, stdout, time.Now().Add(*applySeconds)); err != nil {
		return fail(stderr, "demo", err)
	}
	if _, err := waitCanCommit(ctx, fleet); err != nil {
		return fail(stderr, "demo", err)
	}
	applySecondsLive := time.Since(applyStarted).Seconds()
	loadStats, err := load.stop()
	if err != nil {
		return fail(stderr, "demo", fmt.Errorf("the load generator: %w", err))
	}
	if *rate > 0 {
		fmt.Fprintf(stdout, "load stopped: %s\n", loadStats)
	}
	committed, pause, err := followCommit(ctx, fleet, stdout)
	if err != nil {
		return fail(stderr, "demo", err)
	}
	fleet.stop()

	source, destination, disconnect, err := connectClusters(ctx, [2]string{"source", "destination"},
		[2]string{sb.source.URI(), sb.destination.URI()}, seedConnectTimeout)
	if err != nil {
		return fail(stderr, "demo", err)
	}
	defer disconnect()
	verifyStarted := time.Now()
	fmt.Fprintln(stdout, "verifying destination against source (again, independently of the commit's verifier):")
	report, err := verify.Run(ctx, source, destination, verify.Options{})
	if err != nil {
		return fail(stderr, "demo", err)
	}
	if err := report.WriteText(stdout); err != nil {
		return fail(stderr, "demo", err)
	}
	verifySeconds := time.Since(verifyStarted).Seconds()

	fmt.Fprintln(stdout, "summary:")
	fmt.Fprintf(stdout, "  copied      %d documents (%.1f MB) in %d partitions by %d nodes in %.1fs (%.0f docs/s)\n",
		final.Fleet.DocumentsCopied, float64(final.CollectionCopy.EstimatedCopiedBytes)/1e6, final.Fleet.Partitions.Total,
		len(fleet), copySeconds, float64(final.Fleet.DocumentsCopied)/max(copySeconds, 1e-9))
	if a := committed.Fleet.Applier; a != nil {
		fmt.Fprintf(stdout, "  applied     %d change events (%d by re-reading the document) from the %s, live for %.1fs\n",
			a.EventsApplied, a.Refreshed, a.Source, applySecondsLive)
	}
	if sp := committed.Fleet.Spool; sp != nil {
		// The writes made during the copy, captured as they happened and applied after it (the capture
		// runs on until it sees the applier switched: it counts a moment more than the spool gave).
		fmt.Fprintf(stdout, "  spooled     %d change events (%.1f MB) from the start; %d applied from the spool before the switch to the live source\n",
			sp.Captured, float64(sp.Bytes)/1e6, sp.Applied)
	}
	fmt.Fprintf(stdout, "  commit      pause %.2fs from POST /commit to COMMITTED; %d index setting(s) restored\n",
		pause.Seconds(), len(committed.Fleet.Commit.Restored))
	fmt.Fprintf(stdout, "  verify      %s in %.1fs\n", verdict(report.Equal()), verifySeconds)
	fmt.Fprintf(stdout, "demo finished in %.1fs\n", time.Since(started).Seconds())
	if !report.Equal() {
		return exitDifferent
	}
	_ = os.RemoveAll(logDir)
	return exitOK
}

func verdict(equal bool) string {
	if equal {
		return "EQUAL"
	}
	return "DIFFERENT"
}

type demoNode struct {
	name, api, log string
	cmd            *exec.Cmd
	exited         chan struct{}
}

type demoFleet []*demoNode

// startDemoFleet starts n nodes of this same binary and waits until each has joined.
func startDemoFleet(ctx context.Context, n, workers int, source, destination, logDir string) (demoFleet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start the nodes: %w", err)
	}
	var fleet demoFleet
	for i := 1; i <= n; i++ {
		port, err := freeLocalPort()
		if err != nil {
			return fleet, err
		}
		node := &demoNode{name: "node-" + strconv.Itoa(i), api: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{})}
		node.log = filepath.Join(logDir, node.name+".log")
		node.cmd = exec.Command(self, "--cluster0", source, "--cluster1", destination, "--name", node.name,
			"--port", strconv.Itoa(port), "--workers", strconv.Itoa(workers), "--partition-size", demoPartitionSize,
			"--logPath", node.log, "--sandbox")
		node.cmd.Env = append(os.Environ(), "FLEETSYNC_TEST_BE_MAIN=1") // lets a test binary act as fleetsync
		dieWithParent(node.cmd)
		out, err := node.cmd.StdoutPipe()
		if err != nil {
			return fleet, err
		}
		var errOut strings.Builder
		node.cmd.Stderr = &errOut
		if err := node.cmd.Start(); err != nil {
			return fleet, fmt.Errorf("starting %s: %w", node.name, err)
		}
		fleet = append(fleet, node)
		go func() { _ = node.cmd.Wait(); close(node.exited) }()
		ready := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			ready <- line
			_, _ = io.Copy(io.Discard, out)
		}()
		select {
		case line := <-ready:
			if !strings.Contains(line, " ready: ") {
				<-node.exited
				return fleet, fmt.Errorf("%s did not start: %s", node.name, strings.TrimSpace(errOut.String()))
			}
		case <-time.After(demoNodeReadyTimeout):
			return fleet, fmt.Errorf("%s did not join its fleet within %s; see %s", node.name, demoNodeReadyTimeout, node.log)
		case <-ctx.Done():
			return fleet, ctx.Err()
		}
	}
	return fleet, nil
}

// stop stops every node gracefully (SIGTERM), and kills any that does not exit in time.
func (f demoFleet) stop() {
	for _, n := range f {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range f {
		select {
		case <-n.exited:
		case <-time.After(40 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
}

// followCopy prints the fleet's progress, asking the nodes in turn (any node answers for the whole
// fleet), until the collections and their indexes are copied.
func followCopy(ctx context.Context, fleet demoFleet, stdout io.Writer) (web.Progress, error) {
	deadline := time.Now().Add(demoCopyTimeout)
	last := ""
	for i := 0; ; i++ {
		p, err := web.Client{Base: fleet[i%len(fleet)].api}.Progress(ctx)
		if err != nil {
			return p, err
		}
		if p.Fleet.Error != "" {
			return p, fmt.Errorf("the sync reports an error: %s", p.Fleet.Error)
		}
		line := fmt.Sprintf("  %-8s %d/%d partitions, %d/%d documents, %d nodes alive, coordinator %s",
			p.Fleet.Phase, p.Fleet.Partitions.Done, p.Fleet.Partitions.Total, p.Fleet.DocumentsCopied,
			p.Fleet.EstimatedTotalDocs, p.Fleet.NodesAlive, p.CoordinatorID)
		if line != last {
			fmt.Fprintln(stdout, line)
			last = line
		}
		if p.Fleet.Phase == metadata.PhaseApply {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("the copy did not finish within %s", demoCopyTimeout)
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(demoPollInterval):
		}
	}
}

// demoLoad is the load generator running in the demo's own process.
type demoLoad struct {
	cancel context.CancelFunc
	done   chan struct{}
	stats  loadgen.Stats
	err    error
	once   sync.Once
}

func startDemoLoad(ctx context.Context, uri string, rate float64, seedValue int64) *demoLoad {
	lctx, cancel := context.WithCancel(ctx)
	l := &demoLoad{cancel: cancel, done: make(chan struct{})}
	if rate == 0 {
		close(l.done)
		return l
	}
	go func() {
		defer close(l.done)
		client, err := mongoconn.Connect(lctx, "source", uri, seedConnectTimeout)
		if err != nil {
			l.err = err
			return
		}
		defer client.Disconnect(context.Background())
		l.stats, l.err = loadgen.Run(lctx, client, loadgen.Options{Rate: rate, Seed: seedValue})
	}()
	return l
}

// stop ends the load and returns what it did.
func (l *demoLoad) stop() (loadgen.Stats, error) {
	l.once.Do(l.cancel)
	<-l.done
	return l.stats, l.err
}

// followApply prints change event application's progress until until.
func followApply(ctx context.Context, fleet demoFleet, stdout io.Writer, until time.Time) error {
	for i := 0; time.Now().Before(until); i++ {
		p, err := web.Client{Base: fleet[i%len(fleet)].api}.Progress(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, applyLine(p))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil
}

// waitCanCommit waits until the fleet reports canCommit.
func waitCanCommit(ctx context.Context, fleet demoFleet) (web.Progress, error) {
	deadline := time.Now().Add(demoCatchupTimeout)
	for i := 0; ; i++ {
		p, err := web.Client{Base: fleet[i%len(fleet)].api}.Progress(ctx)
		if err != nil {
			return p, err
		}
		if a := p.Fleet.Applier; a != nil && a.Error != "" {
			return p, fmt.Errorf("change event application reports an error: %s", a.Error)
		}
		if p.CanCommit {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("the sync did not reach canCommit within %s", demoCatchupTimeout)
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(demoPollInterval / 2):
		}
	}
}

// followCommit calls /commit and prints the commit's steps until COMMITTED; it returns the final
// progress and the commit pause seen by the caller (from the call to COMMITTED).
func followCommit(ctx context.Context, fleet demoFleet, stdout io.Writer) (web.Progress, time.Duration, error) {
	start := time.Now()
	if err := (web.Client{Base: fleet[0].api}).Commit(ctx); err != nil {
		return web.Progress{}, 0, fmt.Errorf("commit: %w", err)
	}
	fmt.Fprintf(stdout, "POST %s/api/v1/commit: the fleet cuts over\n", fleet[0].api)
	deadline := start.Add(demoCatchupTimeout)
	last := ""
	for i := 0; ; i++ {
		p, err := web.Client{Base: fleet[i%len(fleet)].api}.Progress(ctx)
		if err != nil {
			return p, 0, err
		}
		if c := p.Fleet.Commit; c != nil {
			if c.Failure != "" {
				return p, 0, errors.New(c.Failure)
			}
			if line := fmt.Sprintf("  commit   %s: %s", p.State, c.Step); line != last {
				fmt.Fprintln(stdout, line)
				last = line
			}
		}
		if p.State == metadata.StateCommitted {
			pause := time.Since(start)
			for _, r := range p.Fleet.Commit.Restored {
				fmt.Fprintf(stdout, "  restored %s\n", r)
			}
			if v := p.Verification; v != nil {
				fmt.Fprintf(stdout, "  verified by the commit: %s, %d documents on each side\n", v.Result, v.Source.HashedDocumentCount)
			}
			fmt.Fprintf(stdout, "COMMITTED: canWrite %v\n", p.CanWrite)
			return p, pause, nil
		}
		if time.Now().After(deadline) {
			return p, 0, fmt.Errorf("the commit did not complete within %s", demoCatchupTimeout)
		}
		select {
		case <-ctx.Done():
			return p, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func applyLine(p web.Progress) string {
	a := p.Fleet.Applier
	if a == nil || a.AppliedThrough == nil || p.Lag == nil {
		return "  apply    waiting for the applier's first checkpoint"
	}
	return fmt.Sprintf("  apply    %d events applied, lag %ds, canCommit %v, applier %s (%s)",
		a.EventsApplied, p.Lag.OverallLagSeconds, p.CanCommit, a.Node, a.Source)
}
