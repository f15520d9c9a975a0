package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/loadgen"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/node"
	"github.com/fleetsync/fleetsync/internal/sandbox"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/lease"
)

// bench cea: change-event application, in one run so that every baseline shares the machine state
// of what it is compared with.
const (
	// ceaSyncID names the sync of every applier run; each run has its own destination server.
	ceaSyncID = "bench"
	// ceaApplierOwner holds the applier lease of every run.
	ceaApplierOwner = "bench/applier"
	// ceaCaptureOwner holds the capture lease of the capture runs.
	ceaCaptureOwner = "bench/capture"
	// ceaSeedDocs documents in ceaSeedCollections collections (seed 1) are what the backlog's
	// writes land on. They are seeded into the source and, byte for byte the same, into every fresh
	// destination, which so holds the source's state at the backlog's start without a copy.
	ceaSeedDocs        = 6000
	ceaSeedCollections = 6
	// ceaBacklogRate is the load generator's largest rate: the backlog is written as fast as the
	// source takes it.
	ceaBacklogRate = 1_000_000
	// ceaBacklogWriters write the backlog concurrently.
	ceaBacklogWriters = 16
	// ceaBacklogReportInterval is how often the backlog's writer counts what it has written; it
	// stops at most this late, a few hundred writes past --backlog.
	ceaBacklogReportInterval = 20 * time.Millisecond
	// ceaCheckpointPoll is how often the checkpoint is read to see the end of a catch-up: the end is
	// seen at most this late.
	ceaCheckpointPoll = 50 * time.Millisecond
	// ceaCatchUpDeadline is a hang guard for one catch-up on a slow machine, not a measure.
	ceaCatchUpDeadline = 30 * time.Minute
	// serialCursorBatch is the serial baseline's oplog cursor batch, the applier's own.
	serialCursorBatch = 1000

	// lagSampleInterval is how often the lag is sampled during a load step.
	lagSampleInterval = 200 * time.Millisecond
	// lagWarmUp is the start of each load step left out of its lag figures.
	lagWarmUp = 2 * time.Second
	// lagLimitSeconds: a write rate holds when every sampled lag after the warm-up is below it.
	lagLimitSeconds = 2

	// memorySampleInterval is how often the process's RSS and heap are sampled during a catch-up.
	memorySampleInterval = 200 * time.Millisecond
	// memoryCompareEvents is the smaller backlog the big one's memory is compared with.
	memoryCompareEvents = 100_000
	// memoryUnitDocs is the memory backlog's unit: that many new documents inserted in one
	// insertMany, each then $set once, a quarter of them $inc'ed and another quarter deleted.
	memoryUnitDocs = 1000
	// memoryDB.memoryColl is where the memory backlog is written, on a source of its own.
	memoryDB, memoryColl = "bench", "mem"

	// procClockTicks is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
	procClockTicks = 100
)

// ceaQuick are --quick's sizes, for the test: every part runs, in seconds.
var ceaQuick = struct {
	backlog, runs, memoryBacklog, seedDocs int
	rates                                  string
	step                                   time.Duration
}{backlog: 2000, runs: 1, memoryBacklog: 5000, seedDocs: 600, rates: "200,400", step: 3 * time.Second}

// ceaOptions are bench cea's settings.
type ceaOptions struct {
	backlog, runs, memoryBacklog, lanes, seedDocs int
	rates                                         []int
	step                                          time.Duration
}

// runBenchCEA measures change-event application in three parts, on one sandbox: the catch-up rate
// of the fleet applier on a backlog against a serial one-event-at-a-time applier and a read-only
// floor, with the capture of that backlog into the spool (issue 13) against the source's write rate
// and the fleet applier's catch-up from that spool against the one from the source; the highest
// steady write rate the live applier follows with less than 2 s of lag; and the process's memory
// while it catches up on a big backlog against a smaller one.
func runBenchCEA(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench cea", stderr)
	backlog := fs.Int("backlog", 100000, "change events in the catch-up backlog (about: the load generator stops within a few hundred of it)")
	runs := fs.Int("runs", 3, "measured rounds of the catch-up, each running every applier once; the median time is reported")
	rates := fs.String("rates", "500,1000,2000,4000", "comma-separated write rates (writes/s) of the steady-load steps")
	step := fs.Duration("step-duration", 15*time.Second, "how long each steady-load step writes")
	memoryBacklog := fs.Int("memory-backlog", 1000000, "change events in the memory part's big backlog (0: skip the memory part)")
	lanes := fs.Int("lanes", applier.DefaultLanes, "parallel write lanes of the applier")
	quick := fs.Bool("quick", false, fmt.Sprintf("tiny sizes for a test (--backlog %d --runs %d --rates %s --step-duration %s --memory-backlog %d, %d seeded documents); flags given explicitly win",
		ceaQuick.backlog, ceaQuick.runs, ceaQuick.rates, ceaQuick.step, ceaQuick.memoryBacklog, ceaQuick.seedDocs))
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	o := ceaOptions{backlog: *backlog, runs: *runs, memoryBacklog: *memoryBacklog, lanes: *lanes, seedDocs: ceaSeedDocs, step: *step}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		o.seedDocs = ceaQuick.seedDocs
		if !set["backlog"] {
			o.backlog = ceaQuick.backlog
		}
		if !set["runs"] {
			o.runs = ceaQuick.runs
		}
		if !set["rates"] {
			*rates = ceaQuick.rates
		}
		if !set["step-duration"] {
			o.step = ceaQuick.step
		}
		if !set["memory-backlog"] {
			o.memoryBacklog = ceaQuick.memoryBacklog
		}
	}
	var err error
	if o.rates, err = parseRates(*rates); err == nil {
		err = checkBenchCEAFlags(o)
	}
	if err != nil {
		return fail(stderr, "bench cea", err)
	}

	return runBenchmark("bench cea", stderr, func(ctx context.Context) error { return benchCEA(ctx, o, stdout, stderr) })
}

func parseRates(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--rates %q: write rates of 1 or more writes/s separated by commas, like 500,1000,2000", s)
		}
		if seen[n] {
			return nil, fmt.Errorf("--rates %q lists %d twice", s, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func checkBenchCEAFlags(o ceaOptions) error {
	switch {
	case o.backlog < 1:
		return fmt.Errorf("--backlog must be 1 or more events, not %d", o.backlog)
	case o.runs < 1:
		return fmt.Errorf("--runs must be 1 or more, not %d", o.runs)
	case o.step <= lagWarmUp:
		return fmt.Errorf("--step-duration must be longer than the %s warm-up left out of the lag, not %s", lagWarmUp, o.step)
	case o.memoryBacklog < 0:
		return fmt.Errorf("--memory-backlog must be 0 (skip the memory part) or more events, not %d", o.memoryBacklog)
	case o.lanes < 1:
		return fmt.Errorf("--lanes must be 1 or more, not %d", o.lanes)
	}
	return nil
}

func benchCEA(ctx context.Context, o ceaOptions, stdout, stderr io.Writer) error {
	sb, err := startSandbox(ctx, 0, 0, stderr)
	if err != nil {
		return err
	}
	// Closing the launcher stops every server it still runs, whatever happened.
	defer sb.launcher.Close()
	if err := sb.destination.Stop(); err != nil { // every run gets a fresh destination instead
		return err
	}
	b := &ceaBench{o: o, l: sb.launcher, stdout: stdout, stderr: stderr,
		seedOpts: seed.Options{Docs: o.seedDocs, Collections: ceaSeedCollections, Seed: 1}}
	src, err := connectSandbox(ctx, sb.source)
	if err != nil {
		return err
	}
	defer src.Disconnect(context.Background())
	b.src = src

	if err := b.prepareBacklog(ctx); err != nil {
		return err
	}
	if err := b.catchUpPart(ctx); err != nil {
		return err
	}
	// The other parts use sources of their own: this one's data would only crowd the JVM.
	src.Disconnect(context.Background())
	if err := sb.source.Stop(); err != nil {
		return err
	}
	if err := b.lagPart(ctx); err != nil {
		return err
	}
	if o.memoryBacklog > 0 {
		return b.memoryPart(ctx)
	}
	return nil
}

// ceaBench is one run of bench cea.
type ceaBench struct {
	o              ceaOptions
	l              *sandbox.Launcher
	stdout, stderr io.Writer
	seedOpts       seed.Options

	src *mongo.Client
	// from and through bound the backlog in the source's oplog: from is the source's clock before
	// the backlog (a sync's startAtOperationTime, applied inclusively), through its last entry.
	from, through primitive.Timestamp
	written       loadgen.Stats
}

func connectSandbox(ctx context.Context, s *sandbox.Server) (*mongo.Client, error) {
	return mongoconn.Connect(ctx, "sandbox", s.URI(), seedConnectTimeout)
}

// prepareBacklog seeds the source and writes the backlog with the load generator, as fast as the
// source takes it.
func (b *ceaBench) prepareBacklog(ctx context.Context) error {
	fmt.Fprintf(b.stderr, "seeding %d documents into %d collections of the source (seed 1)...\n", b.seedOpts.Docs, b.seedOpts.Collections)
	if _, err := seed.Seed(ctx, b.src, b.seedOpts); err != nil {
		return err
	}
	var err error
	if b.from, err = clusterclock.Now(ctx, b.src); err != nil {
		return err
	}
	fmt.Fprintf(b.stderr, "writing a backlog of about %d change events with the load generator...\n", b.o.backlog)
	start := time.Now()
	genCtx, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	b.written, err = loadgen.Run(genCtx, b.src, loadgen.Options{
		Rate: ceaBacklogRate, Seed: 1, Workers: ceaBacklogWriters, ReportInterval: ceaBacklogReportInterval,
		Report: func(s loadgen.Stats) {
			if s.Ops() >= int64(b.o.backlog) {
				stopWriting()
			}
		},
	})
	if err == nil {
		err = loadErrors("the backlog", b.written)
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.through, err = clusterclock.Now(ctx, b.src)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.stderr, "backlog written in %.1f s: %s\n", time.Since(start).Seconds(), b.written)
	return nil
}

func loadErrors(what string, s loadgen.Stats) error {
	if s.ErrorCount() == 0 {
		return nil
	}
	return fmt.Errorf("the load generator's writes of %s failed %d time(s), first: %s", what, s.ErrorCount(), strings.Join(s.FirstErrors, "; "))
}

// catchUpResult is one measured catch-up of the backlog.
type catchUpResult struct {
	seconds           float64
	events, refreshed int64
	// CPU seconds spent during the run by this process (the applier, and the driver under it) and
	// by the sandbox JVM (source and destination servers).
	benchCPU, jvmCPU float64
	// capture is the capture that filled the spool this run applied from; nil for a run that
	// applied from the source.
	capture *captureResult
}

// captureResult is one capture of the backlog into the spool.
type captureResult struct {
	seconds float64
	source  string // the event source the capture read (spool.KindOplog on the sandbox)
	// captured and bytes are the capture document's captured and capturedBytes: the spool
	// entries appended and the size of the source records they hold.
	captured, bytes  int64
	benchCPU, jvmCPU float64
}

// catchUpApplier is one way of applying the backlog.
type catchUpApplier struct {
	name   string
	writes bool // false for the read-only floor
	run    func(ctx context.Context) (catchUpResult, error)
}

// catchUpPart times the fleet applier, the serial baseline and the read-only floor on the same
// backlog, each writing to a fresh destination.
func (b *ceaBench) catchUpPart(ctx context.Context) error {
	appliers := []catchUpApplier{
		{"fleet applier, " + lanesString(b.o.lanes), true, b.fleetCatchUp},
		{"serial baseline (one write per event)", true, func(ctx context.Context) (catchUpResult, error) { return b.serialCatchUp(ctx, true) }},
		{"read-only floor (read and parse, no writes)", false, func(ctx context.Context) (catchUpResult, error) { return b.serialCatchUp(ctx, false) }},
		// Last, so that the indexes above stay those of the ratios below.
		{"fleet applier, " + lanesString(b.o.lanes) + ", from the spool", true, b.spoolCatchUp},
	}
	fmt.Fprintf(b.stdout, "catch-up: %d seeded documents in %d collections (seed 1) on the source and on a fresh destination per run; "+
		"a backlog of %d writes by the load generator as fast as the source takes them (%s; a write that changed nothing, such as an $unset of a missing field, logged no event); "+
		"the sandbox JVM's garbage collected before each run; one warm-up round, then %d round(s) of every applier, the order rotating each round\n\n",
		b.seedOpts.Docs, b.seedOpts.Collections, b.written.Ops(), mixString(b.written), b.o.runs)
	results := make([][]catchUpResult, len(appliers))
	for round := 0; round <= b.o.runs; round++ {
		label := "warm-up"
		if round > 0 {
			label = fmt.Sprintf("round %d/%d", round, b.o.runs)
		}
		for k := range appliers {
			i := (round + k) % len(appliers)
			a := appliers[i]
			if err := collectSandboxGarbage(ctx, b.l.Pid()); err != nil {
				return err
			}
			r, err := a.run(ctx)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", label, a.name, err)
			}
			if c := r.capture; c != nil {
				fmt.Fprintf(b.stderr, "%s: capture (%s): %d spool entries, %d bytes, in %.2f s (%.0f/s); CPU s: this process %.1f, sandbox JVM %.1f\n",
					label, c.source, c.captured, c.bytes, c.seconds, float64(c.captured)/c.seconds, c.benchCPU, c.jvmCPU)
			}
			fmt.Fprintf(b.stderr, "%s: %s: %d events in %.2f s (%.0f/s), %d refreshed; CPU s: this process %.1f, sandbox JVM %.1f\n",
				label, a.name, r.events, r.seconds, float64(r.events)/r.seconds, r.refreshed, r.benchCPU, r.jvmCPU)
			if round > 0 {
				results[i] = append(results[i], r)
			}
		}
	}
	// Every applier must have applied the same events.
	for i := range appliers[1:] {
		if got, want := results[i+1][0].events, results[0][0].events; got != want {
			return fmt.Errorf("%s saw %d events in the backlog, %s %d: they did not apply the same range", appliers[i+1].name, got, appliers[0].name, want)
		}
	}

	fmt.Fprintf(b.stdout, "| applier | events | refreshed | seconds, median of %d (min–max) | events/s | CPU s: this process | CPU s: sandbox JVM |\n", b.o.runs)
	fmt.Fprintln(b.stdout, "|---|---:|---:|---:|---:|---:|---:|")
	medians := make([]float64, len(appliers))
	for i, a := range appliers {
		med, lo, hi := medianRange(pick(results[i], func(r catchUpResult) float64 { return r.seconds }))
		medians[i] = med
		benchCPU, _, _ := medianRange(pick(results[i], func(r catchUpResult) float64 { return r.benchCPU }))
		jvmCPU, _, _ := medianRange(pick(results[i], func(r catchUpResult) float64 { return r.jvmCPU }))
		r := results[i][0]
		refreshed := "–"
		if a.writes {
			refreshed = fmt.Sprintf("%d (%.1f%%)", r.refreshed, 100*float64(r.refreshed)/float64(r.events))
		}
		fmt.Fprintf(b.stdout, "| %s | %d | %s | %.2f (%.2f–%.2f) | %.0f | %.1f | %.1f |\n", a.name, r.events, refreshed, med, lo, hi,
			float64(r.events)/med, benchCPU, jvmCPU)
	}
	fmt.Fprintf(b.stdout, "\nfleet applier / serial baseline, events/s (median over median): %.2f× (target: 3× or more)\n", medians[1]/medians[0])
	fmt.Fprintf(b.stdout, "fleet applier's time / read-only floor's: %.2f\n\n", medians[0]/medians[2])
	b.reportCapture(results[len(results)-1], results[0][0].events, medians[0], medians[len(medians)-1])
	return nil
}

// reportCapture reports the capture runs against the source's write rate, and the catch-up from the
// spool against the one from the source (the fleet applier's medians, in seconds, of the same rounds).
func (b *ceaBench) reportCapture(spooled []catchUpResult, events int64, fromSource, fromSpool float64) {
	captures := make([]captureResult, len(spooled))
	for i, r := range spooled {
		captures[i] = *r.capture
	}
	c := captures[0]
	fmt.Fprintf(b.stdout, "capture (issue 13): in each round of the \"from the spool\" applier, applier.Capture, holding the capture lease (node TTL) "+
		"on its fresh destination, reads the source's %s from the sync's start time and appends its records to the spool in the metadata database, "+
		"timed from its start until its checkpoint (polled every %s) reaches the backlog's last oplog ts; the capture is then stopped and the applier, "+
		"its checkpoint not live, applies the spool and switches to the live source, timed until its checkpoint reaches that ts. "+
		"The \"fleet applier\" row applies from the source itself (its checkpoint marked live before it starts)\n\n", c.source, ceaCheckpointPoll)
	fmt.Fprintf(b.stdout, "| capture | spool entries | bytes | bytes per event | seconds, median of %d (min–max) | events/s | CPU s: this process | CPU s: sandbox JVM |\n", len(captures))
	fmt.Fprintln(b.stdout, "|---|---:|---:|---:|---:|---:|---:|---:|")
	med, lo, hi := medianRange(pick(captures, func(r captureResult) float64 { return r.seconds }))
	benchCPU, _, _ := medianRange(pick(captures, func(r captureResult) float64 { return r.benchCPU }))
	jvmCPU, _, _ := medianRange(pick(captures, func(r captureResult) float64 { return r.jvmCPU }))
	perEvent := float64(c.bytes) / float64(c.captured)
	fmt.Fprintf(b.stdout, "| applier.Capture (%s) | %d | %d | %.0f | %.2f (%.2f–%.2f) | %.0f | %.1f | %.1f |\n", c.source, c.captured, c.bytes, perEvent,
		med, lo, hi, float64(c.captured)/med, benchCPU, jvmCPU)
	writeSeconds := b.written.Elapsed.Seconds()
	sourceEvents := float64(events) / writeSeconds
	fmt.Fprintf(b.stdout, "\nsource's write rate (the backlog's %d writers, as fast as the source takes them): %.0f writes/s, %.0f change events/s (%d writes, %d events in %.2f s)\n",
		ceaBacklogWriters, b.written.Rate(), sourceEvents, b.written.Ops(), events, writeSeconds)
	fmt.Fprintf(b.stdout, "capture / source's write rate, events/s (median): %.2f×\n", float64(c.captured)/med/sourceEvents)
	fmt.Fprintf(b.stdout, "fleet applier from the spool / from the source, events/s (median over median): %.2f×\n", fromSource/fromSpool)
	fmt.Fprintf(b.stdout, "spool bytes per event (capturedBytes / captured): %.0f\n\n", perEvent)
}

func lanesString(n int) string {
	if n == 1 {
		return "1 lane"
	}
	return fmt.Sprintf("%d lanes", n)
}

func pick[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// mixString words what the load generator wrote: "insert 20%, set 20%, ...".
func mixString(s loadgen.Stats) string {
	var parts []string
	for _, k := range loadgen.Kinds() {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(s.Done[k])/float64(max(s.Ops(), 1))))
	}
	if s.Missed > 0 {
		parts = append(parts, fmt.Sprintf("%d matched no document and logged nothing", s.Missed))
	}
	return strings.Join(parts, ", ")
}

// ceaDestination is a fresh destination server with a sync in its apply phase.
type ceaDestination struct {
	server *sandbox.Server
	client *mongo.Client
	meta   *metadata.DB
}

// freshDestination starts a destination server, seeds it with seedOpts unless it is nil (the
// source's state at startAt), and records a sync in phase apply from startAt, as the coordinator
// leaves it once the copy and the indexes are done.
func (b *ceaBench) freshDestination(ctx context.Context, seedOpts *seed.Options, startAt primitive.Timestamp) (*ceaDestination, error) {
	srv, err := b.l.StartServer(0, false)
	if err != nil {
		return nil, err
	}
	d := &ceaDestination{server: srv}
	if d.client, err = connectSandbox(ctx, srv); err != nil {
		d.close()
		return nil, err
	}
	if seedOpts != nil {
		if _, err := seed.Seed(ctx, d.client, *seedOpts); err != nil {
			d.close()
			return nil, err
		}
	}
	d.meta = metadata.Open(d.client, namespace.DefaultMetadataDB, ceaSyncID)
	if _, err := d.meta.Register(ctx, metadata.Identity{Hosts: []string{"source"}}, metadata.Identity{Hosts: []string{srv.URI()}}); err == nil {
		err = d.meta.Start(ctx, metadata.Options{})
	}
	if err == nil {
		_, err = d.meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: ceaSyncID}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "phase", Value: metadata.PhaseApply}, {Key: "startAtOperationTime", Value: startAt}}}})
	}
	if err != nil {
		d.close()
		return nil, fmt.Errorf("recording the sync on a fresh destination: %w", err)
	}
	return d, nil
}

func (d *ceaDestination) close() {
	if d.client != nil {
		d.client.Disconnect(context.Background())
	}
	_ = d.server.Stop()
}

// fleetCatchUp runs applier.Run on a fresh destination until its checkpoint reaches the end of the
// backlog, then checks the destination against the source.
func (b *ceaBench) fleetCatchUp(ctx context.Context) (catchUpResult, error) {
	d, err := b.freshDestination(ctx, &b.seedOpts, b.from)
	if err != nil {
		return catchUpResult{}, err
	}
	defer d.close()
	cpu, err := b.startCPU()
	if err != nil {
		return catchUpResult{}, err
	}
	start := time.Now()
	a, err := startApplier(ctx, b.src, d, b.o.lanes, true)
	if err != nil {
		return catchUpResult{}, err
	}
	ck, err := a.waitApplied(ctx, d.meta, b.through)
	elapsed := time.Since(start)
	r := catchUpResult{seconds: elapsed.Seconds(), events: ck.EventsApplied, refreshed: ck.Refreshed}
	r.benchCPU, r.jvmCPU = cpu()
	if serr := a.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return catchUpResult{}, err
	}
	return r, checkEqual(ctx, b.src, d.client)
}

// spoolCatchUp is the path of a sync whose copy outlived the backlog (issue 13): applier.Capture
// appends the backlog to the spool of a fresh destination, timed until it has spooled it all, and is
// stopped; then applier.Run, its checkpoint not live, applies the spool and switches to the source,
// timed like fleetCatchUp. The capture is stopped before the applier starts so that each is timed
// alone: in a sync the spool is applied after the copy, when the capture has long caught up.
func (b *ceaBench) spoolCatchUp(ctx context.Context) (catchUpResult, error) {
	d, err := b.freshDestination(ctx, &b.seedOpts, b.from)
	if err != nil {
		return catchUpResult{}, err
	}
	defer d.close()
	capture, err := b.captureBacklog(ctx, d)
	if err != nil {
		return catchUpResult{}, err
	}
	// The capture's garbage (every spool entry went through the JVM) is no part of the applier's time.
	if err := collectSandboxGarbage(ctx, b.l.Pid()); err != nil {
		return catchUpResult{}, err
	}
	cpu, err := b.startCPU()
	if err != nil {
		return catchUpResult{}, err
	}
	start := time.Now()
	a, err := startApplier(ctx, b.src, d, b.o.lanes, false)
	if err != nil {
		return catchUpResult{}, err
	}
	ck, err := a.waitApplied(ctx, d.meta, b.through)
	elapsed := time.Since(start)
	r := catchUpResult{seconds: elapsed.Seconds(), events: ck.EventsApplied, refreshed: ck.Refreshed, capture: &capture}
	r.benchCPU, r.jvmCPU = cpu()
	if serr := a.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return catchUpResult{}, err
	}
	// Every spooled record must have been applied from the spool, once: else this run timed the
	// source, or a part of the spool.
	if ck.FromSpool != capture.captured {
		return catchUpResult{}, fmt.Errorf("the applier applied %d spool entries, the capture appended %d", ck.FromSpool, capture.captured)
	}
	return r, checkEqual(ctx, b.src, d.client)
}

// captureBacklog runs applier.Capture on d until its checkpoint reaches the end of the backlog, then
// stops it.
func (b *ceaBench) captureBacklog(ctx context.Context, d *ceaDestination) (captureResult, error) {
	cpu, err := b.startCPU()
	if err != nil {
		return captureResult{}, err
	}
	start := time.Now()
	c, err := startCapture(ctx, b.src, d, b.from)
	if err != nil {
		return captureResult{}, err
	}
	doc, err := c.waitCaptured(ctx, d.meta, b.through)
	r := captureResult{seconds: time.Since(start).Seconds(), source: doc.Source, captured: doc.Captured, bytes: doc.CapturedBytes}
	r.benchCPU, r.jvmCPU = cpu()
	if serr := c.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return captureResult{}, fmt.Errorf("capturing the backlog: %w", err)
	}
	if r.captured == 0 {
		return captureResult{}, errors.New("the capture reached the end of the backlog with nothing in the spool")
	}
	return r, nil
}

// liveCapture is applier.Capture holding the capture lease in this process.
type liveCapture struct {
	cancel context.CancelFunc
	kept   *lease.Kept
	done   chan struct{}
	err    error // Capture's, once done is closed
}

// startCapture acquires d's capture lease and runs the capture under it from startAt, as a node
// does, with the node's lease TTL.
func startCapture(ctx context.Context, src *mongo.Client, d *ceaDestination, startAt primitive.Timestamp) (*liveCapture, error) {
	store := lease.NewStore(d.meta.Collection(metadata.CollCapture))
	l, err := store.Acquire(ctx, ceaSyncID, ceaCaptureOwner, node.DefaultLeaseTTL)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &liveCapture{cancel: cancel, kept: lease.Keep(cctx, store, l), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = applier.Capture(c.kept.Context(), applier.CaptureConfig{
			Source: src, Meta: d.meta, Mode: applier.ModeAuto, StartAt: startAt,
		}, c.kept)
	}()
	return c, nil
}

// stop ends the capture; like liveApplier.stop, it returns only an error the capture stopped with
// on its own.
func (c *liveCapture) stop() error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	c.cancel()
	c.kept.Stop()
	<-c.done
	return nil
}

// waitCaptured waits until the capture's checkpoint has reached through, every record up to it
// being in the spool then, and returns the capture document.
func (c *liveCapture) waitCaptured(ctx context.Context, meta *metadata.DB, through primitive.Timestamp) (spool.Capture, error) {
	deadline := time.After(ceaCatchUpDeadline)
	tick := time.NewTicker(ceaCheckpointPoll)
	defer tick.Stop()
	for {
		doc, _, err := spool.ReadCapture(ctx, meta)
		if err != nil {
			return doc, err
		}
		if doc.Position != nil && !doc.Position.TS.Before(through) {
			return doc, nil
		}
		select {
		case <-tick.C:
		case <-c.done:
			// Capture returns nil when it finds the applier live, which no applier here is yet.
			return doc, fmt.Errorf("the capture stopped before it reached the backlog's end (capture error %v, recorded %q)", c.err, doc.Error)
		case <-deadline:
			return doc, fmt.Errorf("the capture did not reach the backlog's end within %s (capture %+v)", ceaCatchUpDeadline, doc)
		case <-ctx.Done():
			return doc, ctx.Err()
		}
	}
}

// serialCatchUp is the baseline: the simplest correct applier, one event at a time. It reads the
// backlog's range of the oplog in ts order, parses each entry with changeevent.FromOplog, and
// applies each event with its own write (applyOneEvent), with no batching, no lanes and no
// checkpoints. With write false it only reads and parses: the floor any applier pays.
func (b *ceaBench) serialCatchUp(ctx context.Context, write bool) (catchUpResult, error) {
	var d *ceaDestination
	if write {
		var err error
		if d, err = b.freshDestination(ctx, &b.seedOpts, b.from); err != nil {
			return catchUpResult{}, err
		}
		defer d.close()
	}
	cpu, err := b.startCPU()
	if err != nil {
		return catchUpResult{}, err
	}
	start := time.Now()
	// The sandbox's natural order is ts order (see its launcher's mongoJavaServerOplogHoles).
	cur, err := b.src.Database("local").Collection("oplog.rs").Find(ctx,
		bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: b.from}, {Key: "$lte", Value: b.through}}}},
		options.Find().SetSort(bson.D{{Key: "$natural", Value: 1}}).SetBatchSize(serialCursorBatch))
	if err != nil {
		return catchUpResult{}, fmt.Errorf("reading the source's oplog: %w", err)
	}
	defer cur.Close(ctx)
	var r catchUpResult
	filter := namespace.Filter{}
	for cur.Next(ctx) {
		events, err := changeevent.FromOplog(cur.Current)
		if err != nil {
			return catchUpResult{}, err
		}
		for _, ev := range events {
			if !filter.User(ev.NS) {
				continue
			}
			if ev.Op.IsDDL() {
				// The entry at the backlog's start (from, inclusive, as the fleet applier reads a
				// sync's start time) is the seed's last step, an index build, which the fresh
				// destination, seeded alike, already holds: counted as the fleet applier counts
				// it, not applied.
				if ev.ClusterTime != b.from {
					return catchUpResult{}, fmt.Errorf("the serial baseline applies CRUD events only, and the backlog holds a %s of %s", ev.Op, ev.NS)
				}
				r.events++
				continue
			}
			r.events++
			if !write {
				continue
			}
			refreshed, err := applyOneEvent(ctx, b.src, d.client, ev)
			if err != nil {
				return catchUpResult{}, err
			}
			if refreshed {
				r.refreshed++
			}
		}
	}
	if err := cur.Err(); err != nil {
		return catchUpResult{}, fmt.Errorf("reading the source's oplog: %w", err)
	}
	r.seconds = time.Since(start).Seconds()
	r.benchCPU, r.jvmCPU = cpu()
	if !write {
		return r, nil
	}
	return r, checkEqual(ctx, b.src, d.client)
}

// applyOneEvent applies one CRUD event with single writes, idempotently like the applier: insert
// and replace replace-upsert by key, delete deletes by key, an update with a description sets and
// unsets its paths (after its truncations, a write of their own), and an update without one, or
// whose description does not fit the destination's document, is a refresh: the source's current
// version of the document replaces it, or deletes it when the source no longer has it.
func applyOneEvent(ctx context.Context, src, dst *mongo.Client, ev changeevent.Event) (refreshed bool, err error) {
	out := dst.Database(ev.NS.DB).Collection(ev.NS.Coll)
	key := ev.DocumentKey
	switch ev.Op {
	case changeevent.Insert, changeevent.Replace:
		_, err = out.ReplaceOne(ctx, key, ev.FullDocument, options.Replace().SetUpsert(true))
		return false, wrapApplyError(ev, err)
	case changeevent.Delete:
		_, err = out.DeleteOne(ctx, key)
		return false, wrapApplyError(ev, err)
	case changeevent.Update:
		if ev.Update != nil {
			err = applyDescription(ctx, out, key, ev.Update)
			var we mongo.WriteException
			if !errors.As(err, &we) {
				return false, wrapApplyError(ev, err)
			}
			// A path through a value that is no longer a document: refresh instead.
		}
		var doc bson.Raw
		doc, err = src.Database(ev.NS.DB).Collection(ev.NS.Coll).FindOne(ctx, bson.D{{Key: "_id", Value: key.Lookup("_id")}},
			options.FindOne().SetCollation(bsonorder.SimpleCollation)).Raw()
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			_, err = out.DeleteOne(ctx, key)
		case err == nil:
			_, err = out.ReplaceOne(ctx, key, doc, options.Replace().SetUpsert(true))
		}
		return true, wrapApplyError(ev, err)
	}
	return false, fmt.Errorf("the serial baseline cannot apply a %s event", ev.Op)
}

func applyDescription(ctx context.Context, out *mongo.Collection, key bson.Raw, u *changeevent.UpdateDescription) error {
	for _, update := range u.Updates() {
		if _, err := out.UpdateOne(ctx, key, update); err != nil {
			return err
		}
	}
	return nil
}

func wrapApplyError(ev changeevent.Event, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("applying a %s of %s (key %s) at %v: %w", ev.Op, ev.NS, ev.DocumentKey, ev.ClusterTime, err)
}

// checkEqual fails unless the destination equals the source: a benchmark of a wrong result is
// worthless. Field order is ignored because of the sandbox's replace, which keeps the stored field
// order where MongoDB takes the replacement's (workaround mongoJavaServerKeepsFieldOrderOnReplace).
func checkEqual(ctx context.Context, src, dst *mongo.Client) error {
	rep, err := verify.Run(ctx, src, dst, verify.Options{})
	if err != nil {
		return fmt.Errorf("verifying the destination: %w", err)
	}
	if rep.Equal() {
		return nil
	}
	var diffs []string
	for _, ns := range rep.Namespaces {
		if !ns.Equal() {
			diffs = append(diffs, fmt.Sprintf("%+v", ns))
		}
	}
	return fmt.Errorf("the destination differs from the source, so the time means nothing: %s", strings.Join(diffs, "; "))
}

// liveApplier is applier.Run holding the applier lease in this process.
type liveApplier struct {
	cancel context.CancelFunc
	kept   *lease.Kept
	done   chan struct{}
	err    error // Run's, once done is closed
}

// startApplier acquires d's applier lease and runs the applier under it, as a node does, with the
// node's lease TTL. With live, the applier reads the source itself from its start: its checkpoint is
// marked live first, as after a switch from the spool. Without it the applier reads the spool first
// (what a capture left there) and switches to the source once the spool has no more.
func startApplier(ctx context.Context, src *mongo.Client, d *ceaDestination, lanes int, live bool) (*liveApplier, error) {
	store := lease.NewStore(d.meta.Collection(metadata.CollCheckpoints))
	l, err := store.Acquire(ctx, ceaSyncID, ceaApplierOwner, node.DefaultLeaseTTL)
	if err != nil {
		return nil, err
	}
	if live {
		// An applier that is not live would look for a spool, find none, and switch: a few more
		// round trips that are no part of applying from the source.
		if _, err := d.meta.Collection(metadata.CollCheckpoints).UpdateOne(ctx, bson.D{{Key: "_id", Value: ceaSyncID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "live", Value: true}}}}); err != nil {
			return nil, fmt.Errorf("marking the applier checkpoint live: %w", err)
		}
	}
	actx, cancel := context.WithCancel(ctx)
	a := &liveApplier{cancel: cancel, kept: lease.Keep(actx, store, l), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = applier.Run(a.kept.Context(), applier.Config{
			Source: src, Destination: d.client, Meta: d.meta, Mode: applier.ModeAuto, Lanes: lanes,
		}, a.kept)
	}()
	return a, nil
}

// stop ends the applier. It returns the error the applier stopped with on its own, if it did: what
// Run returns once stopped is not its failure (a checkpoint write cut off by the cancel returns
// "context canceled").
func (a *liveApplier) stop() error {
	select {
	case <-a.done:
		return a.err
	default:
	}
	a.cancel()
	a.kept.Stop()
	<-a.done
	return nil
}

// waitApplied waits until the checkpoint has reached through and returns it.
func (a *liveApplier) waitApplied(ctx context.Context, meta *metadata.DB, through primitive.Timestamp) (applier.Checkpoint, error) {
	deadline := time.After(ceaCatchUpDeadline)
	tick := time.NewTicker(ceaCheckpointPoll)
	defer tick.Stop()
	for {
		ck, _, err := applier.ReadCheckpoint(ctx, meta)
		if err != nil {
			return ck, err
		}
		if ck.Position != nil && !ck.Position.TS.Before(through) {
			return ck, nil
		}
		select {
		case <-tick.C:
		case <-a.done:
			if a.err != nil {
				return ck, fmt.Errorf("the applier stopped before it caught up: %w", a.err)
			}
			return ck, errors.New("the applier stopped before it caught up")
		case <-deadline:
			return ck, fmt.Errorf("the applier did not catch up within %s (checkpoint %+v)", ceaCatchUpDeadline, ck)
		case <-ctx.Done():
			return ck, ctx.Err()
		}
	}
}

// startCPU starts measuring CPU time; the function it returns gives this process's and the
// sandbox JVM's CPU seconds since.
func (b *ceaBench) startCPU() (func() (self, jvm float64), error) {
	jvmPid := strconv.Itoa(b.l.Pid())
	self0, err := processCPUSeconds("self")
	if err != nil {
		return nil, err
	}
	jvm0, err := processCPUSeconds(jvmPid)
	if err != nil {
		return nil, err
	}
	return func() (float64, float64) {
		self1, _ := processCPUSeconds("self")
		jvm1, _ := processCPUSeconds(jvmPid)
		return self1 - self0, jvm1 - jvm0
	}, nil
}

// processCPUSeconds reads a process's user and system CPU time from /proc/<pid>/stat.
func processCPUSeconds(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading a process's CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after it are space-separated, utime
	// and stime being the 14th and 15th of the line.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat has %d fields after the command name", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
	}
	return float64(utime+stime) / procClockTicks, nil
}

// lagPart measures the live applier under steady load. Every step starts from the same state: a
// fresh source seeded like the catch-up's (without its backlog) and a fresh destination, because on
// the sandbox every re-open of the applier's oplog cursor scans the whole oplog while holding the
// lock that every write needs to log itself (see docs/benchmarks.md): a step on a bigger oplog would
// slow the source's writers more, whatever the applier does. Each rate's load-alone control writes
// to a fresh seeded source of its own with no applier: what the source takes by itself.
func (b *ceaBench) lagPart(ctx context.Context) error {
	fmt.Fprintf(b.stdout, "steady load: for each rate, a fresh source seeded like the catch-up's (without its backlog) and a fresh destination, "+
		"the applier (%s) live and caught up, and the load generator writing for %s; every %s the lag is sampled as the "+
		"source's latest oplog ts − the checkpoint's ts, in seconds (1 s resolution), and the staleness as how long ago the source was last seen at "+
		"or before the checkpoint (%s resolution); the first %s of each step left out; a rate holds when every sampled lag is below %d s. "+
		"\"load alone\": the same writes to another fresh seeded source with no applier\n\n",
		lanesString(b.o.lanes), b.o.step, lagSampleInterval, lagSampleInterval, lagWarmUp, lagLimitSeconds)
	fmt.Fprintln(b.stdout, "| writes/s asked | achieved, load alone | achieved, applier live | oplog entries at the end | samples | max lag s | p50 lag s | max staleness s | p50 staleness s | holds |")
	fmt.Fprintln(b.stdout, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	best, bestAchieved := 0, 0.0
	for i, rate := range b.o.rates {
		s, entries, err := b.lagStepLive(ctx, rate, int64(100+i))
		if err != nil {
			return fmt.Errorf("the step at %d writes/s with the applier: %w", rate, err)
		}
		alone, err := b.lagStepAlone(ctx, rate, int64(100+i))
		if err != nil {
			return fmt.Errorf("the step at %d writes/s without the applier: %w", rate, err)
		}
		holds := s.maxLag() < lagLimitSeconds && len(s.lags) > 0
		verdict := "no"
		if holds {
			verdict = "yes"
			if rate > best {
				best, bestAchieved = rate, s.load.Rate()
			}
		}
		lagMed, _, lagMax := medianRange(append([]float64(nil), s.lags...))
		staleMed, _, staleMax := medianRange(append([]float64(nil), s.staleness...))
		fmt.Fprintf(b.stdout, "| %d | %.0f | %.0f | %d | %d | %.0f | %.0f | %.1f | %.1f | %s |\n", rate, alone.Rate(), s.load.Rate(), entries,
			len(s.lags), lagMax, lagMed, staleMax, staleMed, verdict)
		fmt.Fprintf(b.stderr, "step %d writes/s: with the applier %s; load alone %s\n", rate, s.load, alone)
	}
	if best > 0 {
		fmt.Fprintf(b.stdout, "\nhighest rate that held (max lag < %d s): %d writes/s asked, %.0f achieved\n\n", lagLimitSeconds, best, bestAchieved)
	} else {
		fmt.Fprintf(b.stdout, "\nhighest rate that held (max lag < %d s): none of the rates\n\n", lagLimitSeconds)
	}
	return nil
}

// seededSource starts a fresh source server seeded with the catch-up's documents.
func (b *ceaBench) seededSource(ctx context.Context) (*sandbox.Server, *mongo.Client, error) {
	srv, err := b.l.StartServer(0, true)
	if err != nil {
		return nil, nil, err
	}
	src, err := connectSandbox(ctx, srv)
	if err == nil {
		_, err = seed.Seed(ctx, src, b.seedOpts)
		if err != nil {
			src.Disconnect(context.Background())
		}
	}
	if err != nil {
		_ = srv.Stop()
		return nil, nil, err
	}
	return srv, src, nil
}

// lagStepLive runs one load step with the applier live on fresh servers, then checks the
// destination once the applier has caught up. It returns the step and the oplog's size at its end.
func (b *ceaBench) lagStepLive(ctx context.Context, rate int, seedValue int64) (*lagStep, int64, error) {
	srv, src, err := b.seededSource(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer srv.Stop()
	defer src.Disconnect(context.Background())
	from, err := clusterclock.Now(ctx, src)
	if err != nil {
		return nil, 0, err
	}
	d, err := b.freshDestination(ctx, &b.seedOpts, from)
	if err != nil {
		return nil, 0, err
	}
	defer d.close()
	if err := collectSandboxGarbage(ctx, b.l.Pid()); err != nil {
		return nil, 0, err
	}
	a, err := startApplier(ctx, src, d, b.o.lanes, true)
	if err != nil {
		return nil, 0, err
	}
	defer a.stop()
	if _, err := a.waitApplied(ctx, d.meta, from); err != nil {
		return nil, 0, err
	}
	s, err := runLagStep(ctx, src, d.meta, float64(rate), b.o.step, seedValue)
	if err != nil {
		return nil, 0, err
	}
	entries, err := src.Database("local").Collection("oplog.rs").EstimatedDocumentCount(ctx)
	if err != nil {
		return nil, 0, err
	}
	latest, err := clusterclock.Now(ctx, src)
	if err == nil {
		_, err = a.waitApplied(ctx, d.meta, latest)
	}
	if err == nil {
		err = a.stop()
	}
	if err != nil {
		return nil, 0, err
	}
	return s, entries, checkEqual(ctx, src, d.client)
}

// lagStepAlone runs the same load step on a fresh seeded source with no applier.
func (b *ceaBench) lagStepAlone(ctx context.Context, rate int, seedValue int64) (loadgen.Stats, error) {
	srv, src, err := b.seededSource(ctx)
	if err != nil {
		return loadgen.Stats{}, err
	}
	defer srv.Stop()
	defer src.Disconnect(context.Background())
	if err := collectSandboxGarbage(ctx, b.l.Pid()); err != nil {
		return loadgen.Stats{}, err
	}
	s, err := loadgen.Run(ctx, src, loadgen.Options{Rate: float64(rate), Duration: b.o.step, Seed: seedValue})
	if err == nil {
		err = loadErrors("the step", s)
	}
	return s, err
}

// lagStep is what one load step measured.
type lagStep struct {
	load            loadgen.Stats
	lags, staleness []float64 // seconds, one per sample after the warm-up
	sourceSeen      []sourceSample
	sampleErr       error
}

// sourceSample is the source's latest oplog ts as seen at a moment.
type sourceSample struct {
	at     time.Time
	latest primitive.Timestamp
}

func (s *lagStep) maxLag() float64 {
	m := 0.0
	for _, l := range s.lags {
		m = max(m, l)
	}
	return m
}

// runLagStep writes at rate for step with the load generator and samples the lag from its report
// callback, which runs every lagSampleInterval on a goroutine of its own.
func runLagStep(ctx context.Context, src *mongo.Client, meta *metadata.DB, rate float64, step time.Duration, seedValue int64) (*lagStep, error) {
	s := &lagStep{}
	latest, err := clusterclock.Now(ctx, src)
	if err != nil {
		return nil, err
	}
	s.sourceSeen = append(s.sourceSeen, sourceSample{at: time.Now(), latest: latest})
	sample := func(elapsed time.Duration) {
		// The checkpoint first, then the source: the lag is never underestimated.
		ck, _, err := applier.ReadCheckpoint(ctx, meta)
		if err == nil && ck.Position == nil {
			err = errors.New("the applier has no checkpoint")
		}
		var latest primitive.Timestamp
		if err == nil {
			latest, err = clusterclock.Now(ctx, src)
		}
		if err != nil {
			if s.sampleErr == nil {
				s.sampleErr = err
			}
			return
		}
		now := time.Now()
		s.sourceSeen = append(s.sourceSeen, sourceSample{at: now, latest: latest})
		if elapsed < lagWarmUp {
			return
		}
		pos := ck.Position.TS
		s.lags = append(s.lags, float64(max(int64(latest.T)-int64(pos.T), 0)))
		s.staleness = append(s.staleness, staleness(s.sourceSeen, pos, now).Seconds())
	}
	s.load, err = loadgen.Run(ctx, src, loadgen.Options{
		Rate: rate, Duration: step, Seed: seedValue, ReportInterval: lagSampleInterval,
		Report: func(st loadgen.Stats) { sample(st.Elapsed) },
	})
	if err == nil {
		err = loadErrors("the step", s.load)
	}
	if err == nil {
		err = s.sampleErr
	}
	return s, err
}

// staleness is how old the destination's view of the source is at now: the time since the source
// was last seen with its latest entry at or before pos, the checkpoint (0 when the checkpoint is
// at the source's latest). seen is in time order and ends with a sample taken at now.
func staleness(seen []sourceSample, pos primitive.Timestamp, now time.Time) time.Duration {
	if !pos.Before(seen[len(seen)-1].latest) {
		return 0
	}
	for i := len(seen) - 1; i >= 0; i-- {
		if !pos.Before(seen[i].latest) {
			return now.Sub(seen[i].at)
		}
	}
	return now.Sub(seen[0].at) // behind even the step's start: at least this stale
}

// memoryPart catches up, on a source of its own each, a backlog of memoryCompareEvents and one of
// --memory-backlog events, sampling this process's RSS and Go heap.
func (b *ceaBench) memoryPart(ctx context.Context) error {
	small := memoryCompareEvents
	if b.o.memoryBacklog <= small {
		small = b.o.memoryBacklog / 10
	}
	sizes := []int{b.o.memoryBacklog}
	if small > 0 {
		sizes = []int{small, b.o.memoryBacklog}
	}
	fmt.Fprintf(b.stdout, "memory: each backlog written in bulk to %s.%s of an empty source of its own, in units of %d new small documents "+
		"(an insertMany of them, a $set of each, an $inc of a quarter, which the applier refreshes, and a delete of another quarter: "+
		"40%% inserts, 40%% $set, 10%% $inc, 10%% deletes), then caught up by the applier (%s) on an empty destination; "+
		"this process's VmRSS (/proc/self/status) and Go HeapInuse sampled every %s, \"before\" after a forced GC just before the applier starts\n\n",
		memoryDB, memoryColl, memoryUnitDocs, lanesString(b.o.lanes), memorySampleInterval)
	fmt.Fprintln(b.stdout, "| backlog events | written in s | catch-up s | events/s | refreshed | RSS before MB | peak RSS MB | heap before MB | peak heap MB | sandbox JVM RSS MB |")
	fmt.Fprintln(b.stdout, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var peaks []float64
	for _, n := range sizes {
		m, err := b.memoryRun(ctx, n)
		if err != nil {
			return fmt.Errorf("the memory run of %d events: %w", n, err)
		}
		peaks = append(peaks, m.peakRSS)
		fmt.Fprintf(b.stdout, "| %d | %.1f | %.2f | %.0f | %d | %.0f | %.0f | %.0f | %.0f | %.0f |\n", m.events, m.writeSeconds, m.seconds,
			float64(m.events)/m.seconds, m.refreshed, m.rssBefore, m.peakRSS, m.heapBefore, m.peakHeap, m.jvmRSS)
	}
	if len(sizes) == 2 {
		fmt.Fprintf(b.stdout, "\npeak RSS at %d events − at %d events (%.0f× the events): %+.0f MB\n\n", sizes[1], sizes[0],
			float64(sizes[1])/float64(sizes[0]), peaks[1]-peaks[0])
	}
	return nil
}

// memoryResult is one memory run.
type memoryResult struct {
	events, refreshed                                int64
	writeSeconds, seconds                            float64
	rssBefore, peakRSS, heapBefore, peakHeap, jvmRSS float64 // MB
}

func (b *ceaBench) memoryRun(ctx context.Context, events int) (memoryResult, error) {
	var m memoryResult
	srv, err := b.l.StartServer(0, true)
	if err != nil {
		return m, err
	}
	defer srv.Stop()
	src, err := connectSandbox(ctx, srv)
	if err != nil {
		return m, err
	}
	defer src.Disconnect(context.Background())
	from, err := clusterclock.Now(ctx, src)
	if err != nil {
		return m, err
	}
	fmt.Fprintf(b.stderr, "memory: writing %d change events in bulk...\n", events)
	start := time.Now()
	if err := writeMemoryBacklog(ctx, src.Database(memoryDB).Collection(memoryColl), events); err != nil {
		return m, fmt.Errorf("writing the backlog (the sandbox JVM holds it all in memory): %w", err)
	}
	m.writeSeconds = time.Since(start).Seconds()
	through, err := clusterclock.Now(ctx, src)
	if err != nil {
		return m, err
	}
	d, err := b.freshDestination(ctx, nil, from)
	if err != nil {
		return m, err
	}
	defer d.close()
	if err := collectSandboxGarbage(ctx, b.l.Pid()); err != nil {
		return m, err
	}
	if m.jvmRSS, err = rssMB(strconv.Itoa(b.l.Pid())); err != nil {
		return m, err
	}

	runtime.GC()
	debug.FreeOSMemory()
	if m.rssBefore, err = rssMB("self"); err != nil {
		return m, err
	}
	m.heapBefore = heapInuseMB()
	m.peakRSS, m.peakHeap = m.rssBefore, m.heapBefore
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(memorySampleInterval)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			if rss, err := rssMB("self"); err == nil {
				m.peakRSS = max(m.peakRSS, rss)
			}
			m.peakHeap = max(m.peakHeap, heapInuseMB())
		}
	}()
	start = time.Now()
	a, err := startApplier(ctx, src, d, b.o.lanes, true)
	var ck applier.Checkpoint
	if err == nil {
		ck, err = a.waitApplied(ctx, d.meta, through)
		m.seconds = time.Since(start).Seconds()
		if serr := a.stop(); err == nil {
			err = serr
		}
	}
	close(stopSampling)
	<-sampled
	if err != nil {
		return m, err
	}
	m.events, m.refreshed = ck.EventsApplied, ck.Refreshed
	fmt.Fprintf(b.stderr, "memory: %d events caught up in %.2f s; peak RSS %.0f MB, peak heap %.0f MB\n", m.events, m.seconds, m.peakRSS, m.peakHeap)
	return m, checkEqual(ctx, src, d.client)
}

// writeMemoryBacklog writes exactly events change events to coll in bulk writes, in units of
// memoryUnitDocs new documents; the last unit is cut short.
func writeMemoryBacklog(ctx context.Context, coll *mongo.Collection, events int) error {
	written := 0
	for unit := 0; written < events; unit++ {
		ids := make([]int64, memoryUnitDocs)
		for i := range ids {
			ids[i] = int64(unit*memoryUnitDocs + i)
		}
		quarter := memoryUnitDocs / 4
		steps := []struct {
			ids   []int64
			model func(id int64) mongo.WriteModel
		}{
			{ids, func(id int64) mongo.WriteModel {
				return mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: id}, {Key: "n", Value: 0}, {Key: "t", Value: 0}, {Key: "s", Value: "0123456789abcdefghij"}})
			}},
			{ids, func(id int64) mongo.WriteModel {
				return mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: unit + 1}}}})
			}},
			{ids[:quarter], func(id int64) mongo.WriteModel {
				return mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
			}},
			{ids[len(ids)-quarter:], func(id int64) mongo.WriteModel {
				return mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}})
			}},
		}
		for _, st := range steps {
			k := min(len(st.ids), events-written)
			if k == 0 {
				break
			}
			models := make([]mongo.WriteModel, k)
			for i, id := range st.ids[:k] {
				models[i] = st.model(id)
			}
			if _, err := coll.BulkWrite(ctx, models); err != nil {
				return err
			}
			written += k
		}
	}
	return nil
}

// rssMB reads a process's resident set size from /proc/<pid>/status, in MB.
func rssMB(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading a process's RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%s/status: VmRSS %q", pid, rest)
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%s/status has no VmRSS", pid)
}

func heapInuseMB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}
