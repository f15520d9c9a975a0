package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandbox"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/web"
	"github.com/fleetsync/fleetsync/worker"
)

const (
	// naiveBatchDocs is the naive copy's cursor batch and insertMany size: a worker's default batch,
	// so that both sides make the same number of round trips.
	naiveBatchDocs = worker.DefaultBatchDocs
	// progressPollInterval is how often the benchmark asks a node for its phase: the end of the copy
	// is seen at most this late.
	progressPollInterval = 50 * time.Millisecond
	// benchNodeReadyTimeout bounds a node's start (connect, register, join the gossip).
	benchNodeReadyTimeout = time.Minute
	// benchCopyDeadline is a hang guard for one copy on a slow machine, not a measure.
	benchCopyDeadline = 30 * time.Minute
	// benchNodeStopTimeout is how long a node gets to stop after SIGTERM: longer than the node's own
	// graceful stop bound (30 s), after which it is killed and the run fails.
	benchNodeStopTimeout = 45 * time.Second
	// benchNodeName names the single node of every fleet run.
	benchNodeName = "bench"
)

// copyConfig is one configuration measured by bench copy: the naive copy (workers 0) or one node.
type copyConfig struct {
	name    string
	workers int
}

// copyRun is what one measured copy took.
type copyRun struct {
	seconds  float64
	maxRSSKB int64
	phases   *fleetPhases // fleet runs only
}

// fleetPhases splits a fleet run's time, from the timestamps in its metadata database: where the
// time goes that the naive copy does not spend.
type fleetPhases struct {
	partitions int
	catalog    float64 // /start → copy phase opened: start time, catalog, split, create (plus the coordinator's poll)
	toClaim    float64 // copy phase opened → first partition claimed (the workers' poll of the phase)
	copying    float64 // first claim → every partition done (as the benchmark's poll sees it)
	closing    float64 // every partition done → copy phase closed (the coordinator's poll)
	seen       float64 // copy phase closed → the benchmark sees it (its own poll)
}

// runBenchCopy measures the fleet's initial copy, one node with N workers, against a naive copy of
// the same data (one cursor per collection feeding insertMany, one collection after another), each
// as a child process so that its peak RSS is its own, each onto a fresh destination server.
func runBenchCopy(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench copy", stderr)
	docs := fs.Int("docs", 200000, "documents seeded into the source")
	collections := fs.Int("collections", 6, "collections to spread them over")
	runs := fs.Int("runs", 3, "measured rounds, each running every configuration once; the median time is reported")
	workersList := fs.String("workers", "1,2,4", "comma-separated copy workers of the fleet configurations (one node each)")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	workerCounts, err := parseWorkerCounts(*workersList)
	if err == nil {
		err = checkBenchCopyFlags(*docs, *collections, *runs)
	}
	if err != nil {
		return fail(stderr, "bench copy", err)
	}
	configs := []copyConfig{{name: "naive"}}
	for _, n := range workerCounts {
		configs = append(configs, copyConfig{name: fleetConfigName(n), workers: n})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := benchCopy(ctx, configs, *docs, *collections, *runs, stdout, stderr)
	if code != exitOK && ctx.Err() != nil {
		fmt.Fprintln(stderr, "fleetsync bench copy: interrupted; its nodes and servers are stopped")
	}
	return code
}

func benchCopy(ctx context.Context, configs []copyConfig, docs, collections, runs int, stdout, stderr io.Writer) int {
	failed := func(err error) int {
		if ctx.Err() != nil {
			return exitError // runBenchCopy says so, instead of a child's "signal: killed"
		}
		return fail(stderr, "bench copy", err)
	}
	self, err := os.Executable()
	if err != nil {
		return failed(err)
	}
	sb, err := startSandbox(ctx, 0, 0, stderr)
	if err != nil {
		return failed(err)
	}
	// Closing the launcher stops every server it still runs, whatever happened.
	defer sb.launcher.Close()
	if err := sb.destination.Stop(); err != nil { // every run gets a fresh destination instead
		return failed(err)
	}

	fmt.Fprintf(stderr, "seeding %d documents into %d collections of the source (seed 1)...\n", docs, collections)
	stats, err := seedCluster(ctx, sb.source.URI(), seed.Options{Docs: docs, Collections: collections, Seed: 1})
	if err != nil {
		return failed(err)
	}
	want, err := countCollections(ctx, sb.source.URI())
	if err != nil {
		return failed(err)
	}

	fmt.Fprintf(stdout, "dataset: %d documents, %.1f MB BSON, %d collections (seed 1); a fresh destination server per run; "+
		"the sandbox JVM's garbage collected before each run; one warm-up round, then %d rounds of every configuration, the order rotating each round\n\n",
		stats.Docs, float64(stats.Bytes)/1e6, stats.Collections, runs)
	times := make([][]float64, len(configs))
	phases := make([][]fleetPhases, len(configs))
	peakKB := make([]int64, len(configs))
	// Round 0 is the discarded warm-up (it warms the server JVM's JIT). Each round starts one
	// configuration later than the previous one, so that none always runs first.
	for round := 0; round <= runs; round++ {
		label := "warm-up"
		if round > 0 {
			label = fmt.Sprintf("round %d/%d", round, runs)
		}
		for k := range configs {
			i := (round + k) % len(configs)
			c := configs[i]
			if err := collectSandboxGarbage(ctx, sb.launcher.Pid()); err != nil {
				return failed(err)
			}
			r, err := runCopyOnce(ctx, sb.launcher, self, sb.source.URI(), c, want)
			if err != nil {
				return failed(fmt.Errorf("%s, %s: %w", label, c.name, err))
			}
			fmt.Fprintf(stderr, "%s: %s: %.2f s, peak RSS %.0f MB%s\n", label, c.name, r.seconds, float64(r.maxRSSKB)/1024, r.phases)
			if round > 0 {
				times[i] = append(times[i], r.seconds)
				peakKB[i] = max(peakKB[i], r.maxRSSKB)
				if r.phases != nil {
					phases[i] = append(phases[i], *r.phases)
				}
			}
		}
	}

	fmt.Fprintf(stdout, "| configuration | seconds, median of %d (min–max) | docs/s | MB/s | peak RSS MB |\n", runs)
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|")
	medians := make([]float64, len(configs))
	for i, c := range configs {
		med, lo, hi := medianRange(times[i])
		medians[i] = med
		fmt.Fprintf(stdout, "| %s | %.2f (%.2f–%.2f) | %.0f | %.1f | %.0f |\n", c.name, med, lo, hi,
			float64(stats.Docs)/med, float64(stats.Bytes)/1e6/med, float64(peakKB[i])/1024)
	}
	var ratios []string
	for i, c := range configs[1:] {
		ratios = append(ratios, fmt.Sprintf("%s %.2f", c.name, medians[i+1]/medians[0]))
	}
	fmt.Fprintf(stdout, "\ntime relative to naive (median over median; below 1 is faster): %s\n", strings.Join(ratios, "; "))

	fmt.Fprintln(stdout, "\nwhere a fleet run's time goes (medians, seconds, from the metadata database's timestamps):")
	fmt.Fprintln(stdout, "| configuration | partitions | start → copy phase (catalog) | → first claim | → all partitions done | → copy phase closed | → seen |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---:|")
	for i, c := range configs {
		if c.workers == 0 {
			continue
		}
		pick := func(f func(fleetPhases) float64) float64 {
			var xs []float64
			for _, p := range phases[i] {
				xs = append(xs, f(p))
			}
			med, _, _ := medianRange(xs)
			return med
		}
		fmt.Fprintf(stdout, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c.name, phases[i][0].partitions,
			pick(func(p fleetPhases) float64 { return p.catalog }), pick(func(p fleetPhases) float64 { return p.toClaim }),
			pick(func(p fleetPhases) float64 { return p.copying }), pick(func(p fleetPhases) float64 { return p.closing }),
			pick(func(p fleetPhases) float64 { return p.seen }))
	}
	return exitOK
}

// collectSandboxGarbage has the sandbox JVM run a full garbage collection, outside any measured
// time. The servers are in memory: every copy leaves a destination's worth of garbage in the JVM's
// old generation once its server stops, and without this, whichever run happened to fill the old
// generation paid for a full collection of everything (3 s of a 10 s run at 200k documents), which
// made the times bimodal. jcmd comes with the JDK the sandbox needs anyway.
func collectSandboxGarbage(ctx context.Context, pid int) error {
	out, err := exec.CommandContext(ctx, "jcmd", strconv.Itoa(pid), "GC.run").CombinedOutput()
	if err != nil {
		return fmt.Errorf("collecting the sandbox JVM's garbage between runs with jcmd (part of the JDK): %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func fleetConfigName(workers int) string {
	if workers == 1 {
		return "fleet, 1 worker"
	}
	return fmt.Sprintf("fleet, %d workers", workers)
}

func (p *fleetPhases) String() string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(" (%d partitions; catalog %.2f s, first claim +%.2f s, all done +%.2f s, phase closed +%.2f s, seen +%.2f s)",
		p.partitions, p.catalog, p.toClaim, p.copying, p.closing, p.seen)
}

func parseWorkerCounts(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--workers %q: write worker counts of 1 or more separated by commas, like 1,2,4", s)
		}
		if seen[n] {
			return nil, fmt.Errorf("--workers %q lists %d twice", s, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func checkBenchCopyFlags(docs, collections, runs int) error {
	switch {
	case docs < 1:
		return fmt.Errorf("--docs must be 1 or more, not %d", docs)
	case collections < 1:
		return fmt.Errorf("--collections must be 1 or more, not %d", collections)
	case runs < 1:
		return fmt.Errorf("--runs must be 1 or more, not %d", runs)
	}
	return nil
}

// medianRange returns the median, minimum and maximum of xs (zeros when empty); it sorts xs.
func medianRange(xs []float64) (median, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(xs)
	median = xs[len(xs)/2]
	if len(xs)%2 == 0 {
		median = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return median, xs[0], xs[len(xs)-1]
}

// runCopyOnce copies the source to a fresh destination server with c, then checks that the
// destination holds every document: a benchmark of a broken copy is worthless.
func runCopyOnce(ctx context.Context, l *sandbox.Launcher, self, source string, c copyConfig, want map[string]int64) (copyRun, error) {
	dst, err := l.StartServer(0, false)
	if err != nil {
		return copyRun{}, err
	}
	defer dst.Stop()
	var r copyRun
	if c.workers == 0 {
		var m childMeasure
		m, err = measureChild(ctx, self, []string{"bench", "naive-copy", "--cluster0", source, "--cluster1", dst.URI()})
		r = copyRun{seconds: m.seconds, maxRSSKB: m.maxRSSKB}
	} else {
		r, err = runFleetCopy(ctx, self, source, dst.URI(), c.workers, want)
	}
	if err != nil {
		return copyRun{}, err
	}
	if err := checkCopied(ctx, dst.URI(), want); err != nil {
		return copyRun{}, err
	}
	return r, nil
}

// countCollections returns the document count of every user collection of the cluster at uri.
func countCollections(ctx context.Context, uri string) (map[string]int64, error) {
	client, err := mongoconn.Connect(ctx, "sandbox", uri, seedConnectTimeout)
	if err != nil {
		return nil, err
	}
	defer client.Disconnect(context.Background())
	colls, err := catalog.ListCollections(ctx, client, namespace.Filter{})
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, c := range colls {
		if !c.HasDocuments() {
			continue
		}
		n, err := client.Database(c.NS.DB).Collection(c.NS.Coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("counting %s: %w", c.NS, err)
		}
		counts[c.NS.String()] = n
	}
	return counts, nil
}

// checkCopied fails unless the destination's user collections hold exactly the source's counts.
func checkCopied(ctx context.Context, uri string, want map[string]int64) error {
	got, err := countCollections(ctx, uri)
	if err != nil {
		return fmt.Errorf("counting the copy: %w", err)
	}
	var wrong []string
	for ns, n := range want {
		if got[ns] != n {
			wrong = append(wrong, fmt.Sprintf("%s has %d documents, the source %d", ns, got[ns], n))
		}
	}
	for ns, n := range got {
		if _, ok := want[ns]; !ok && n > 0 {
			wrong = append(wrong, fmt.Sprintf("%s has %d documents and is not on the source", ns, n))
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return fmt.Errorf("the copy is wrong, so its time means nothing: %s", strings.Join(wrong, "; "))
	}
	return nil
}

// runFleetCopy starts one node with the given workers, times its copy from POST /start until its
// data is copied (phase "indexes": index builds are left out, as the naive copy builds none), stops
// it with SIGTERM and reads its peak RSS.
func runFleetCopy(ctx context.Context, self, source, destination string, workers int, want map[string]int64) (copyRun, error) {
	n, err := startBenchNode(ctx, self, source, destination, workers)
	if err != nil {
		return copyRun{}, err
	}
	defer n.kill() // a no-op once it has stopped
	start := time.Now()
	if err := n.startSync(ctx); err != nil {
		return copyRun{}, n.explain(err)
	}
	p, allDone, err := n.waitDataCopied(ctx)
	seen := time.Now()
	if err != nil {
		return copyRun{}, n.explain(err)
	}
	var total int64
	for _, c := range want {
		total += c
	}
	if p.Fleet.DocumentsCopied != total {
		return copyRun{}, fmt.Errorf("the node's partitions checkpointed %d documents, the source has %d", p.Fleet.DocumentsCopied, total)
	}
	maxRSSKB, err := n.stop()
	if err != nil {
		return copyRun{}, err
	}
	phases, err := readFleetPhases(ctx, destination, allDone, seen)
	if err != nil {
		return copyRun{}, err
	}
	return copyRun{seconds: seen.Sub(start).Seconds(), maxRSSKB: maxRSSKB, phases: phases}, nil
}

// readFleetPhases reads the sync's and partitions' timestamps from the metadata database.
func readFleetPhases(ctx context.Context, uri string, allDone, seen time.Time) (*fleetPhases, error) {
	client, err := mongoconn.Connect(ctx, "destination", uri, seedConnectTimeout)
	if err != nil {
		return nil, err
	}
	defer client.Disconnect(context.Background())
	meta := metadata.Open(client, namespace.DefaultMetadataDB, "default")
	s, err := meta.Sync(ctx)
	if err != nil {
		return nil, err
	}
	parts, err := partition.NewStore(meta.Collection(metadata.CollPartitions), "default").All(ctx)
	if err != nil {
		return nil, err
	}
	var firstClaim time.Time
	for _, p := range parts {
		if len(p.Claims) > 0 && (firstClaim.IsZero() || p.Claims[0].At.Before(firstClaim)) {
			firstClaim = p.Claims[0].At
		}
	}
	if s.StartedAt.IsZero() || s.CopyStartedAt.IsZero() || s.CopyDoneAt.IsZero() || firstClaim.IsZero() {
		return nil, fmt.Errorf("the metadata database lacks the copy's timestamps: %+v", s)
	}
	if allDone.IsZero() || allDone.After(s.CopyDoneAt) {
		allDone = s.CopyDoneAt // the coordinator closed the phase before a poll saw every partition done
	}
	return &fleetPhases{
		partitions: len(parts),
		catalog:    s.CopyStartedAt.Sub(s.StartedAt).Seconds(),
		toClaim:    firstClaim.Sub(s.CopyStartedAt).Seconds(),
		copying:    allDone.Sub(firstClaim).Seconds(),
		closing:    s.CopyDoneAt.Sub(allDone).Seconds(),
		seen:       seen.Sub(s.CopyDoneAt).Seconds(),
	}, nil
}

// benchNode is one fleetsync node run by the benchmark as a child process.
type benchNode struct {
	cmd    *exec.Cmd
	api    string // http://127.0.0.1:port
	stderr *syncBuffer
	exited chan struct{} // closed once the process has exited and been waited for
	err    error         // cmd.Wait's, readable once exited is closed
}

// startBenchNode starts a node with default partition and batch sizes on a free port, and waits for
// its ready line.
func startBenchNode(ctx context.Context, self, source, destination string, workers int) (*benchNode, error) {
	port, err := freeLocalPort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "--cluster0", source, "--cluster1", destination, "--name", benchNodeName,
		"--port", strconv.Itoa(port), "--workers", strconv.Itoa(workers), "--sandbox")
	dieWithParent(cmd)
	ready := &firstLine{line: make(chan string, 1)}
	n := &benchNode{cmd: cmd, api: "http://127.0.0.1:" + strconv.Itoa(port), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = ready, n.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a node: %w", err)
	}
	go func() {
		n.err = cmd.Wait()
		close(n.exited)
	}()
	want := "fleetsync node " + benchNodeName + " ready: API " + n.api
	select {
	case line := <-ready.line:
		if strings.HasPrefix(line, want) {
			return n, nil
		}
		n.kill()
		return nil, n.explain(fmt.Errorf("the node printed %q instead of its ready line", line))
	case <-n.exited:
		return nil, n.explain(errors.New("the node exited before it was ready"))
	case <-time.After(benchNodeReadyTimeout):
		n.kill()
		return nil, n.explain(fmt.Errorf("the node was not ready within %s", benchNodeReadyTimeout))
	case <-ctx.Done():
		n.kill()
		return nil, ctx.Err()
	}
}

func freeLocalPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (n *benchNode) startSync(ctx context.Context) error {
	return web.Client{Base: n.api}.Start(ctx)
}

// waitDataCopied polls /progress until the data is copied: phase "indexes" (the coordinator builds
// the indexes) or "copied" (it has built them). allDone is when a poll first saw every partition
// done, zero if none did before the phase changed.
func (n *benchNode) waitDataCopied(ctx context.Context) (p web.Progress, allDone time.Time, err error) {
	deadline := time.After(benchCopyDeadline)
	tick := time.NewTicker(progressPollInterval)
	defer tick.Stop()
	for {
		if p, err = (web.Client{Base: n.api}).Progress(ctx); err != nil {
			return web.Progress{}, allDone, err
		}
		if allDone.IsZero() && p.Fleet.Partitions.Total > 0 && p.Fleet.Partitions.Done == p.Fleet.Partitions.Total {
			allDone = time.Now()
		}
		switch {
		case p.Fleet.Phase == metadata.PhaseIndexes || p.Fleet.Phase == metadata.PhaseApply:
			return p, allDone, nil
		case p.Fleet.Error != "":
			return p, allDone, fmt.Errorf("the sync reports an error: %s", p.Fleet.Error)
		case p.Fleet.Partitions.Failed > 0:
			return p, allDone, fmt.Errorf("%d partition(s) failed for good", p.Fleet.Partitions.Failed)
		}
		select {
		case <-tick.C:
		case <-n.exited:
			return p, allDone, errors.New("the node exited during the copy")
		case <-deadline:
			return p, allDone, fmt.Errorf("the copy did not finish within %s (phase %q, %d of %d partitions done)",
				benchCopyDeadline, p.Fleet.Phase, p.Fleet.Partitions.Done, p.Fleet.Partitions.Total)
		case <-ctx.Done():
			return p, allDone, ctx.Err()
		}
	}
}

// stop sends SIGTERM, waits for a clean exit and returns the node's peak RSS in KB.
func (n *benchNode) stop() (int64, error) {
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, n.explain(fmt.Errorf("stopping the node: %w", err))
	}
	select {
	case <-n.exited:
	case <-time.After(benchNodeStopTimeout):
		n.kill()
		return 0, n.explain(fmt.Errorf("the node did not stop within %s of SIGTERM", benchNodeStopTimeout))
	}
	if n.err != nil {
		return 0, n.explain(fmt.Errorf("the node stopped with %v", n.err))
	}
	ru, ok := n.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, errors.New("no resource usage for the child process on this platform")
	}
	return ru.Maxrss, nil
}

// kill ends the node at once, if it still runs, and waits for it.
func (n *benchNode) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// explain adds the end of the node's log to err.
func (n *benchNode) explain(err error) error {
	if tail := lastLines(n.stderr.String(), 3); tail != "" {
		return fmt.Errorf("%w; the node's log ends: %s", err, tail)
	}
	return err
}

func lastLines(s string, k int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-k):], " | ")
}

// firstLine is a child's stdout that hands over its first line and discards the rest.
type firstLine struct {
	buf  []byte
	done bool
	line chan string
}

func (f *firstLine) Write(p []byte) (int, error) {
	if f.done {
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
		f.done = true
		f.line <- string(f.buf[:i])
	}
	return len(p), nil
}

// syncBuffer is a child's stderr that may be read while the child still writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runNaiveCopy is bench copy's baseline, the simplest correct copy: for each user collection of the
// source, one after another, one cursor in _id order feeding unordered insertMany batches of raw
// documents into the same namespace of the destination. No partitions, checkpoints or leases.
func runNaiveCopy(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench naive-copy", stderr)
	cluster0 := fs.String("cluster0", "", "source")
	cluster1 := fs.String("cluster1", "", "destination")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if *cluster0 == "" || *cluster1 == "" {
		return fail(stderr, "bench naive-copy", errors.New("--cluster0 and --cluster1 are required"))
	}
	ctx := context.Background()
	src, err := mongoconn.Connect(ctx, "cluster0", *cluster0, mongoconn.DefaultServerSelectionTimeout)
	if err != nil {
		return fail(stderr, "bench naive-copy", err)
	}
	defer src.Disconnect(ctx)
	dst, err := mongoconn.Connect(ctx, "cluster1", *cluster1, mongoconn.DefaultServerSelectionTimeout)
	if err != nil {
		return fail(stderr, "bench naive-copy", err)
	}
	defer dst.Disconnect(ctx)
	colls, err := catalog.ListCollections(ctx, src, namespace.Filter{})
	if err != nil {
		return fail(stderr, "bench naive-copy", err)
	}
	var docs, size int64
	for _, c := range colls {
		if !c.HasDocuments() || c.Type == catalog.TypeTimeseries { // what the fleet copies too
			continue
		}
		n, b, err := naiveCopyCollection(ctx, src, dst, c.NS)
		if err != nil {
			return fail(stderr, "bench naive-copy", err)
		}
		docs, size = docs+n, size+b
	}
	fmt.Fprintf(stdout, "copied %d documents (%.1f MB BSON)\n", docs, float64(size)/1e6)
	return exitOK
}

func naiveCopyCollection(ctx context.Context, src, dst *mongo.Client, ns namespace.Namespace) (docs, size int64, err error) {
	cur, err := src.Database(ns.DB).Collection(ns.Coll).Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(naiveBatchDocs))
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	out := dst.Database(ns.DB).Collection(ns.Coll)
	batch := make([]any, 0, naiveBatchDocs)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := out.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
			return fmt.Errorf("writing %d documents to %s: %w", len(batch), ns, err)
		}
		batch = make([]any, 0, naiveBatchDocs)
		return nil
	}
	for cur.Next(ctx) {
		// The cursor reuses its buffer: keep a copy, as a worker does.
		doc := make(bson.Raw, len(cur.Current))
		copy(doc, cur.Current)
		batch = append(batch, doc)
		docs, size = docs+1, size+int64(len(doc))
		if len(batch) == naiveBatchDocs {
			if err := flush(); err != nil {
				return docs, size, err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return docs, size, fmt.Errorf("reading %s: %w", ns, err)
	}
	return docs, size, flush()
}
