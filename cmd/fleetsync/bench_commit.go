package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fleetsync/fleetsync/internal/loadgen"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/web"
)

// bench commit: the commit pause at steady state, against the catch-up that any cut-over needs.
const (
	// commitPollInterval is how often /progress is read while a pause is measured: its end is seen
	// at most one poll (this, or the call's own time if longer) late.
	commitPollInterval = 10 * time.Millisecond
	// commitSteadyPoll is how often /progress is read during the steady load, for errors and the lag.
	commitSteadyPoll = 500 * time.Millisecond
	// commitBenchCollections spread the seeded documents (seed 1, the data of the other benchmarks).
	commitBenchCollections = 6
	// commitBenchWorkers are each node's copy workers (the demo's).
	commitBenchWorkers = 2
	// commitBenchDeadline is a hang guard for one measured pause, not a measure.
	commitBenchDeadline = 10 * time.Minute
	// commitTargetSeconds: the target holds when every commit pause with verification off is below it.
	commitTargetSeconds = 2.0
)

// commitQuick are --quick's sizes, for the test: every configuration runs, in seconds.
var commitQuick = struct {
	docs, runs int
	steady     time.Duration
}{docs: 2000, runs: 1, steady: 2 * time.Second}

// commitOptions are bench commit's settings.
type commitOptions struct {
	docs, nodes, runs int
	rate              float64
	steady            time.Duration
}

// commitConfig is one configuration: the baseline (no commit) or a commit with the embedded
// verifier on or off.
type commitConfig struct {
	name                 string
	commit, verification bool
}

var commitConfigs = []commitConfig{
	{name: "baseline: catch-up only (no commit)"},
	{name: "commit, verification off", commit: true},
	{name: "commit, verification on", commit: true, verification: true},
}

// commitSteps are the commit's steps in order, as /progress names them, each with what it does; a
// step's time runs from the first poll that shows it to the first poll that shows a later one.
var commitSteps = []struct{ step, what string }{
	{metadata.CommitStepBlock, "→ commit point taken"},
	{metadata.CommitStepCatchUp, "catch-up to the commit point"},
	{metadata.CommitStepRestore, "index settings restored"},
	{metadata.CommitStepVerify, "verification"},
	{metadata.CommitStepUnblock, "unblock → COMMITTED"},
}

// commitRun is what one run measured.
type commitRun struct {
	pause float64 // seconds from the load's stop (and POST /commit) until /progress showed the end
	// recorded is the commit's own pauseSeconds (requestedAt to committedAt, the destination's clock).
	recorded float64
	// eventsAfterStop are the events applied from the last /progress before the load stopped to the
	// end; eventsTotal the sync's in all.
	eventsAfterStop, eventsTotal int64
	steps                        map[string]float64 // seconds per commit step (commit runs)
	restored                     int                // index settings the commit restored
	verified                     int64              // documents per side the commit's verifier compared
	polls                        int                // /progress reads during the pause
	maxSteadyLag                 int64              // seconds, the largest lag seen during the steady load
	load                         loadgen.Stats
}

// runBenchCommit measures the commit pause: from POST /commit until /progress says COMMITTED, on a
// fleet that was applying a steady load until that instant, with the embedded verifier off and on,
// against a baseline that does not commit and only waits for the applier to apply what was written
// before the load stopped. Every run has a sandbox of its own, since a committed sync cannot be
// reused.
func runBenchCommit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench commit", stderr)
	docs := fs.Int("docs", 20000, fmt.Sprintf("documents seeded into the source (%d collections, seed 1)", commitBenchCollections))
	rate := fs.Float64("rate", 500, "writes per second of the load generator until the measured instant (0: an idle source)")
	nodes := fs.Int("nodes", 2, "fleet nodes, each a separate process")
	steady := fs.Duration("steady", 10*time.Second, "how long the load goes on after canCommit, before the measured instant")
	runs := fs.Int("runs", 3, "runs of each configuration, each on a fresh sandbox; the median and max are reported")
	quick := fs.Bool("quick", false, fmt.Sprintf("small sizes for a test (--docs %d --steady %s --runs %d); flags given explicitly win",
		commitQuick.docs, commitQuick.steady, commitQuick.runs))
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	o := commitOptions{docs: *docs, nodes: *nodes, runs: *runs, rate: *rate, steady: *steady}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["docs"] {
			o.docs = commitQuick.docs
		}
		if !set["steady"] {
			o.steady = commitQuick.steady
		}
		if !set["runs"] {
			o.runs = commitQuick.runs
		}
	}
	if err := checkBenchCommitFlags(o); err != nil {
		return fail(stderr, "bench commit", err)
	}

	return runBenchmark("bench commit", stderr, func(ctx context.Context) error { return benchCommit(ctx, o, stdout, stderr) })
}

func checkBenchCommitFlags(o commitOptions) error {
	switch {
	case o.docs < 1:
		return fmt.Errorf("--docs must be 1 or more, not %d", o.docs)
	case o.rate < 0:
		return fmt.Errorf("--rate must be 0 (no writes) or more writes/s, not %g", o.rate)
	case o.nodes < 1:
		return fmt.Errorf("--nodes must be 1 or more, not %d", o.nodes)
	case o.steady < 0:
		return fmt.Errorf("--steady cannot be negative, not %s", o.steady)
	case o.runs < 1:
		return fmt.Errorf("--runs must be 1 or more, not %d", o.runs)
	}
	return nil
}

func benchCommit(ctx context.Context, o commitOptions, stdout, stderr io.Writer) error {
	results := make([][]commitRun, len(commitConfigs))
	var seeded seed.Stats
	// Each round runs every configuration once, starting one configuration later than the round
	// before, so that none always runs first.
	for round := 1; round <= o.runs; round++ {
		for k := range commitConfigs {
			i := (round - 1 + k) % len(commitConfigs)
			c := commitConfigs[i]
			r, stats, err := runCommitOnce(ctx, o, c, stderr)
			if err != nil {
				return fmt.Errorf("round %d/%d, %s: %w", round, o.runs, c.name, err)
			}
			seeded = stats
			results[i] = append(results[i], r)
			fmt.Fprintf(stderr, "round %d/%d: %s: pause %.3f s%s; %d events applied after the load stopped (%d in all); %d polls; max lag during the steady load %d s; load %s; EQUAL\n",
				round, o.runs, c.name, r.pause, r.describeCommit(), r.eventsAfterStop, r.eventsTotal, r.polls, r.maxSteadyLag, r.load)
		}
	}
	writeCommitReport(stdout, o, seeded, results)
	return nil
}

// describeCommit is a commit run's recorded pause and steps, for the progress line.
func (r commitRun) describeCommit() string {
	if r.steps == nil {
		return ""
	}
	var parts []string
	for _, s := range commitSteps {
		if d, ok := r.steps[s.step]; ok {
			parts = append(parts, fmt.Sprintf("%s %.3f", s.step, d))
		}
	}
	return fmt.Sprintf(" (pauseSeconds %.3f; steps: %s; %d index settings restored)", r.recorded, strings.Join(parts, ", "), r.restored)
}

func writeCommitReport(stdout io.Writer, o commitOptions, seeded seed.Stats, results [][]commitRun) {
	var polls int
	var pollSeconds float64
	for _, rs := range results {
		for _, r := range rs {
			polls += r.polls
			pollSeconds += r.pause
		}
	}
	fmt.Fprintf(stdout, "dataset: %d documents, %.1f MB BSON, %d collections (seed 1); load generator at %g writes/s; %d nodes (%d copy workers each); "+
		"after canCommit the load goes on for %s, then stops, and at that instant one configuration: wait for the catch-up only (baseline), "+
		"or POST /commit and wait for COMMITTED; a fresh sandbox (JVM, source, destination) and fleet per run, the order rotating each round; "+
		"/progress polled every %s (%.0f ms per poll on average, the resolution); every run verified EQUAL afterwards\n\n",
		seeded.Docs, float64(seeded.Bytes)/1e6, seeded.Collections, o.rate, o.nodes, commitBenchWorkers, o.steady,
		commitPollInterval, 1000*pollSeconds/float64(max(polls, 1)))
	fmt.Fprintf(stdout, "| configuration | runs | pause s, median | pause s, max | commit's pauseSeconds, median (max) | events applied since the last /progress before the stop, median | events applied in all, median | index settings restored | documents verified by the commit |\n")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	var offMax float64
	var offMedian float64
	for i, c := range commitConfigs {
		rs := results[i]
		pause := func(r commitRun) float64 { return r.pause }
		med, _, hi := medianRange(pick(rs, pause))
		recorded, restored, verified := "–", "–", "–"
		if c.commit {
			rmed, _, rhi := medianRange(pick(rs, func(r commitRun) float64 { return r.recorded }))
			recorded = fmt.Sprintf("%.2f (%.2f)", rmed, rhi)
			restored = fmt.Sprintf("%d", rs[0].restored)
		}
		if c.verification {
			verified = fmt.Sprintf("%d", rs[0].verified)
		}
		after, _, _ := medianRange(pick(rs, func(r commitRun) float64 { return float64(r.eventsAfterStop) }))
		total, _, _ := medianRange(pick(rs, func(r commitRun) float64 { return float64(r.eventsTotal) }))
		fmt.Fprintf(stdout, "| %s | %d | %.2f | %.2f | %s | %.0f | %.0f | %s | %s |\n", c.name, len(rs), med, hi, recorded, after, total, restored, verified)
		if c.commit && !c.verification {
			offMedian, offMax = med, hi
		}
	}

	fmt.Fprintln(stdout, "\nwhere the pause goes (medians, seconds; a step runs from the first poll that shows it to the first that shows a later one, so a step shorter than a poll may count to the one before):")
	header, rule := "| configuration |", "|---|"
	for _, s := range commitSteps {
		header += " " + s.step + ": " + s.what + " |"
		rule += "---:|"
	}
	fmt.Fprintln(stdout, header)
	fmt.Fprintln(stdout, rule)
	for i, c := range commitConfigs {
		row := "| " + c.name + " |"
		for _, s := range commitSteps {
			cell := "–"
			switch {
			case s.step == metadata.CommitStepVerify && !c.verification:
			case c.commit:
				d, _, _ := medianRange(pick(results[i], func(r commitRun) float64 { return r.steps[s.step] }))
				cell = fmt.Sprintf("%.2f", d)
			case s.step == metadata.CommitStepCatchUp:
				d, _, _ := medianRange(pick(results[i], func(r commitRun) float64 { return r.pause }))
				cell = fmt.Sprintf("%.2f", d)
			}
			row += " " + cell + " |"
		}
		fmt.Fprintln(stdout, row)
	}

	var maxLag int64
	var rates []float64
	for _, rs := range results {
		for _, r := range rs {
			maxLag = max(maxLag, r.maxSteadyLag)
			rates = append(rates, r.load.Rate())
		}
	}
	rateMed, rateLo, _ := medianRange(rates)
	fmt.Fprintf(stdout, "\nsteady state before the measured instant: lag at most %d s in every /progress read of the steady load (1 s resolution); "+
		"load achieved %.0f writes/s (median; lowest %.0f)\n", maxLag, rateMed, rateLo)

	verdict := "NOT held"
	if offMax < commitTargetSeconds {
		verdict = "held"
	}
	runs := "runs"
	if o.runs == 1 {
		runs = "run"
	}
	fmt.Fprintf(stdout, "target: commit pause under %.0f s at steady state (verification off): %s (median %.2f s, max %.2f s over %d %s); "+
		"verification on adds the embedded verifier's full comparison, which grows with the data\n",
		commitTargetSeconds, verdict, offMedian, offMax, o.runs, runs)
}

// runCommitOnce runs one configuration on a sandbox of its own: seed the source, start the load,
// start the fleet and the sync, wait for canCommit, keep the load going for o.steady, stop it and at
// once measure c; then check the destination against the source.
func runCommitOnce(ctx context.Context, o commitOptions, c commitConfig, stderr io.Writer) (commitRun, seed.Stats, error) {
	var r commitRun
	sb, err := startSandbox(ctx, 0, 0, stderr)
	if err != nil {
		return r, seed.Stats{}, err
	}
	defer sb.launcher.Close()
	stats, err := seedCluster(ctx, sb.source.URI(), seed.Options{Docs: o.docs, Collections: commitBenchCollections, Seed: 1})
	if err != nil {
		return r, stats, fmt.Errorf("seeding the source: %w", err)
	}

	load := startDemoLoad(ctx, sb.source.URI(), o.rate, 1)
	defer load.stop()
	logDir, err := os.MkdirTemp("", "fleetsync-bench-commit-")
	if err != nil {
		return r, stats, err
	}
	fleet, err := startDemoFleet(ctx, o.nodes, commitBenchWorkers, sb.source.URI(), sb.destination.URI(), logDir)
	defer fleet.stop()
	keepLogs := func(err error) error { return fmt.Errorf("%w (the nodes' logs are in %s)", err, logDir) }
	if err != nil {
		return r, stats, keepLogs(err)
	}
	api := web.Client{Base: fleet[0].api}
	if c.commit && !c.verification {
		off := false
		err = api.StartWith(ctx, web.StartRequest{Source: "cluster0", Destination: "cluster1", Verification: &struct {
			Enabled *bool `json:"enabled,omitempty"`
		}{&off}})
	} else {
		err = api.Start(ctx)
	}
	if err != nil {
		return r, stats, keepLogs(fmt.Errorf("starting the sync: %w", err))
	}
	if _, err := waitCanCommit(ctx, fleet); err != nil {
		return r, stats, keepLogs(err)
	}
	last, maxLag, err := steadyLoad(ctx, api, o.steady)
	if err != nil {
		return r, stats, keepLogs(err)
	}
	r.maxSteadyLag = maxLag

	// The measured instant: the load's writes in flight are acknowledged when stop returns.
	if r.load, err = load.stop(); err == nil {
		err = loadErrors("the load", r.load)
	}
	if err != nil {
		return r, stats, keepLogs(err)
	}
	var end web.Progress
	if c.commit {
		end, err = measureCommit(ctx, api, &r)
	} else {
		end, err = measureCatchUp(ctx, api, &r)
	}
	if err != nil {
		return r, stats, keepLogs(err)
	}
	if a := end.Fleet.Applier; a != nil {
		r.eventsTotal = a.EventsApplied
		if l := last.Fleet.Applier; l != nil {
			r.eventsAfterStop = a.EventsApplied - l.EventsApplied
		}
	}

	source, destination, disconnect, err := connectClusters(ctx, [2]string{"source", "destination"},
		[2]string{sb.source.URI(), sb.destination.URI()}, seedConnectTimeout)
	if err != nil {
		return r, stats, err
	}
	defer disconnect()
	if err := checkEqual(ctx, source, destination); err != nil {
		return r, stats, keepLogs(err)
	}
	fleet.stop()
	_ = os.RemoveAll(logDir)
	return r, stats, nil
}

// steadyLoad lets the load go on for d while the fleet applies it, reading /progress for errors and
// the lag; it returns the last progress read, just before the measured instant, and the largest lag.
func steadyLoad(ctx context.Context, api web.Client, d time.Duration) (web.Progress, int64, error) {
	until := time.Now().Add(d)
	var maxLag int64
	for {
		p, err := api.Progress(ctx)
		if err != nil {
			return p, maxLag, err
		}
		if err := progressError(p); err != nil {
			return p, maxLag, err
		}
		if p.Lag != nil {
			maxLag = max(maxLag, p.Lag.OverallLagSeconds)
		}
		left := time.Until(until)
		if left <= 0 {
			return p, maxLag, nil
		}
		select {
		case <-ctx.Done():
			return p, maxLag, ctx.Err()
		case <-time.After(min(left, commitSteadyPoll)):
		}
	}
}

// progressError is what /progress reports as gone wrong: a run with any of it measures nothing
// steady (a failed coordinator step is retried after a back-off that would be in the pause).
func progressError(p web.Progress) error {
	switch {
	case p.Fleet.Error != "":
		return fmt.Errorf("the sync reports an error: %s", p.Fleet.Error)
	case p.Fleet.Applier != nil && p.Fleet.Applier.Error != "":
		return fmt.Errorf("change event application reports an error: %s", p.Fleet.Applier.Error)
	case p.Fleet.Commit != nil && p.Fleet.Commit.Failure != "":
		return fmt.Errorf("the commit failed: %s", p.Fleet.Commit.Failure)
	}
	return nil
}

// measureCatchUp is the baseline: from now until /progress shows lag 0 and the applier through the
// source's latest optime, i.e. every write made before the load stopped is applied.
func measureCatchUp(ctx context.Context, api web.Client, r *commitRun) (web.Progress, error) {
	start := time.Now()
	return pollUntil(ctx, api, start, r, func(p web.Progress) bool {
		a := p.Fleet.Applier
		return p.Lag != nil && p.Lag.OverallLagSeconds == 0 && a != nil && a.AppliedThrough != nil && a.SourceLatest != nil &&
			!a.AppliedThrough.Less(*a.SourceLatest)
	})
}

// measureCommit calls /commit now and waits until /progress says COMMITTED, noting when each
// commit step is first seen; it checks the commit completed with no failure.
func measureCommit(ctx context.Context, api web.Client, r *commitRun) (web.Progress, error) {
	start := time.Now()
	if err := api.Commit(ctx); err != nil {
		return web.Progress{}, fmt.Errorf("commit: %w", err)
	}
	seen := map[string]time.Time{metadata.CommitStepBlock: start}
	p, err := pollUntil(ctx, api, start, r, func(p web.Progress) bool {
		if c := p.Fleet.Commit; c != nil {
			if _, ok := seen[c.Step]; !ok {
				seen[c.Step] = time.Now()
			}
		}
		return p.State == metadata.StateCommitted
	})
	if err != nil {
		return p, err
	}
	end := start.Add(time.Duration(r.pause * float64(time.Second)))
	c := p.Fleet.Commit
	switch {
	case c == nil:
		return p, errors.New("the sync is COMMITTED without a commit record in /progress")
	case c.Failure != "":
		return p, fmt.Errorf("the commit ended with a failure: %s", c.Failure)
	case !p.CanWrite:
		return p, errors.New("the sync is COMMITTED but canWrite is false")
	}
	r.recorded, r.restored = c.PauseSeconds, len(c.Restored)
	if v := p.Verification; v != nil {
		if v.Result != metadata.VerificationPassed {
			return p, fmt.Errorf("the commit's verification ended %q: %s", v.Result, strings.Join(v.Differences, "; "))
		}
		r.verified = v.Source.HashedDocumentCount
	}
	r.steps = map[string]float64{}
	for i, s := range commitSteps {
		at, ok := seen[s.step]
		if !ok {
			continue
		}
		next := end
		for _, later := range commitSteps[i+1:] {
			if t, ok := seen[later.step]; ok {
				next = t
				break
			}
		}
		r.steps[s.step] = next.Sub(at).Seconds()
	}
	return p, nil
}

// pollUntil reads /progress every commitPollInterval until done says so, and records in r the
// pause from start to the answer that said so, and the number of polls.
func pollUntil(ctx context.Context, api web.Client, start time.Time, r *commitRun, done func(web.Progress) bool) (web.Progress, error) {
	deadline := start.Add(commitBenchDeadline)
	tick := time.NewTicker(commitPollInterval)
	defer tick.Stop()
	for {
		p, err := api.Progress(ctx)
		if err != nil {
			return p, err
		}
		now := time.Now()
		r.polls++
		if err := progressError(p); err != nil {
			return p, err
		}
		if done(p) {
			r.pause = now.Sub(start).Seconds()
			return p, nil
		}
		if now.After(deadline) {
			return p, fmt.Errorf("not done within %s (state %s, commit %+v)", commitBenchDeadline, p.State, p.Fleet.Commit)
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-tick.C:
		}
	}
}
