// Package loadgen writes to a cluster at a steady rate, so that tests, the demo and benchmarks have a
// stream of change events to apply: inserts, updates with $set, $unset, $inc and $push, replacements and
// deletes, spread over the cluster's collections.
//
// The writes are planned by a seeded generator from the collections' state at the start (the first
// _ids of each collection, its unique indexes, a sample document), so the same seed on the same data
// gives the same writes, and a test can replay the plan to know what every document should look like.
// New documents never collide with existing ones: their _ids come from ranges reserved for the
// generator, continuing where an earlier run stopped, and every unique-indexed field gets a value
// derived from the _id.
//
// Writes are paced by one schedule, not sent in bursts: write i is due i/Rate seconds after the start.
// They run on several workers; every write to one document goes to the same worker, so each document
// sees its writes in plan order. When the server cannot keep up, the schedule skips the writes it
// missed rather than catching up in a burst, and the Stats show the rate actually achieved.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/x/mongo/driver/topology"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

const (
	// DefaultWorkers is the number of concurrent writers when Options.Workers is 0.
	DefaultWorkers = 8
	// DefaultReportInterval is how often Options.Report is called when ReportInterval is 0.
	DefaultReportInterval = time.Second

	// workerQueue is how many planned writes may wait for one worker. Small, so that a stalled worker
	// soon holds up the schedule (and the achieved rate shows it) instead of building a backlog.
	workerQueue = 16
	// stopGrace is how long writes in flight may take to finish once ctx has ended; then they are
	// abandoned (and not counted), so that Ctrl-C is prompt even when the server hangs.
	stopGrace = 2 * time.Second
	// writeTimeout bounds one write. A write that takes this long is counted as failed.
	writeTimeout = 30 * time.Second
	// connectionLostAfter ends the run with an error when every write for this long has failed
	// because the server could not be reached: the connection is gone for good, not blipping.
	connectionLostAfter = 15 * time.Second
	// maxRate bounds Options.Rate; beyond it the schedule's timer resolution makes no sense anyway.
	maxRate = 1_000_000
)

// Options configure a run. Rate is required; the rest have defaults.
type Options struct {
	Rate     float64       // writes per second
	Duration time.Duration // how long to write; 0: until ctx ends
	Seed     int64         // the same seed on the same data plans the same writes
	Workers  int           // concurrent writers (default DefaultWorkers)
	// Namespaces to write to; each must be an existing collection. Default: every user collection
	// (not admin, local, config, system.* or the metadata database), except views, time-series and
	// capped collections.
	Namespaces []namespace.Namespace
	Mix        Mix // weights of the kinds of writes (default DefaultMix)
	// Report, if set, is called every ReportInterval with the stats so far, from one goroutine.
	Report         func(Stats)
	ReportInterval time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if math.IsNaN(o.Rate) || o.Rate <= 0 || o.Rate > maxRate {
		return o, fmt.Errorf("the rate must be above 0 and at most %d writes per second, not %g", maxRate, o.Rate)
	}
	if o.Duration < 0 {
		return o, fmt.Errorf("the duration must be 0 (until stopped) or more, not %s", o.Duration)
	}
	if o.Workers < 0 {
		return o, fmt.Errorf("the number of workers must be 1 or more, not %d", o.Workers)
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.Mix == (Mix{}) {
		o.Mix = DefaultMix
	}
	if err := o.Mix.validate(); err != nil {
		return o, err
	}
	if o.ReportInterval <= 0 {
		o.ReportInterval = DefaultReportInterval
	}
	return o, nil
}

// Run writes to the cluster until Duration has passed or ctx ends, and returns what it did. A write
// that fails is counted and the run goes on; the run ends with an error only when it cannot start or
// the server has been unreachable for connectionLostAfter. When ctx ends, queued writes are dropped,
// writes in flight get stopGrace to finish, and Run returns the stats without an error.
func Run(ctx context.Context, client *mongo.Client, opts Options) (Stats, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Stats{}, err
	}
	nss, err := resolveNamespaces(ctx, client, opts.Namespaces)
	if err != nil {
		return Stats{}, err
	}
	targets, err := loadTargets(ctx, client, nss)
	if err != nil {
		return Stats{}, err
	}
	r := &runner{opts: opts, plan: newPlanner(opts.Seed, opts.Mix, targets), colls: map[namespace.Namespace]*mongo.Collection{}}
	for _, ns := range nss {
		r.colls[ns] = client.Database(ns.DB).Collection(ns.Coll)
	}
	return r.run(ctx)
}

// runner executes one plan.
type runner struct {
	opts  Options
	plan  *planner
	colls map[namespace.Namespace]*mongo.Collection

	tally tally
	start time.Time
	// lastReached is when the server last answered a write (UnixNano), successfully or not.
	lastReached atomic.Int64

	stopRun  context.CancelFunc // ends the schedule
	abortOps context.CancelFunc // cancels writes in flight
	fatalMu  sync.Mutex
	fatal    error
}

func (r *runner) run(ctx context.Context) (Stats, error) {
	// Writes get their own context: a caller's cancel stops the schedule, but the writes in flight
	// may finish, so that the final stats describe what the server really holds.
	opCtx, abortOps := context.WithCancel(context.WithoutCancel(ctx))
	defer abortOps()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	r.stopRun, r.abortOps = stopRun, abortOps

	r.start = time.Now()
	r.lastReached.Store(r.start.UnixNano())
	var end time.Time
	if r.opts.Duration > 0 {
		end = r.start.Add(r.opts.Duration)
	}

	queues := make([]chan op, r.opts.Workers)
	var workers sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan op, workerQueue)
		workers.Add(1)
		go func() {
			defer workers.Done()
			for o := range queues[i] {
				if runCtx.Err() != nil {
					continue // stopped early (ctx ended or the run failed): drop what is queued
				}
				r.execute(opCtx, o)
			}
		}()
	}

	reportDone := make(chan struct{})
	stopReports := make(chan struct{})
	go func() {
		defer close(reportDone)
		r.report(stopReports)
	}()

	// Once stopped early, writes in flight have stopGrace left.
	stopGraceAfterFunc := context.AfterFunc(runCtx, func() { time.AfterFunc(stopGrace, abortOps) })
	defer stopGraceAfterFunc()

	r.dispatch(runCtx, end, queues)
	for _, q := range queues {
		close(q)
	}
	workers.Wait()
	close(stopReports)
	<-reportDone

	stats := r.tally.snapshot(time.Since(r.start))
	r.fatalMu.Lock()
	defer r.fatalMu.Unlock()
	return stats, r.fatal
}

// dispatch plans writes as they fall due and hands each to the worker that owns its document.
func (r *runner) dispatch(ctx context.Context, end time.Time, queues []chan op) {
	s := newSchedule(r.start, r.opts.Rate)
	defer s.stop()
	for s.wait(ctx, end) {
		o := r.plan.next()
		select {
		case queues[worker(o, len(queues))] <- o:
		case <-ctx.Done():
			return
		}
	}
}

// worker picks the worker for a write from its namespace and _id, so one document's writes are
// applied one after another, in plan order.
func worker(o op, n int) int {
	h := fnv.New64a()
	h.Write([]byte(o.ns.String()))
	h.Write([]byte{0})
	h.Write([]byte(bsonorder.Key(o.id)))
	return int(h.Sum64() % uint64(n))
}

func (r *runner) report(stop <-chan struct{}) {
	if r.opts.Report == nil {
		return
	}
	t := time.NewTicker(r.opts.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.opts.Report(r.tally.snapshot(time.Since(r.start)))
		}
	}
}

// execute applies one write and counts it.
func (r *runner) execute(opCtx context.Context, o op) {
	ctx, cancel := context.WithTimeout(opCtx, writeTimeout)
	defer cancel()
	coll := r.colls[o.ns]
	byID := bson.D{{Key: "_id", Value: o.id}}
	var matched int64 = 1
	var err error
	switch o.kind {
	case Insert:
		_, err = coll.InsertOne(ctx, o.doc)
	case Replace:
		var res *mongo.UpdateResult
		if res, err = coll.ReplaceOne(ctx, byID, o.doc); err == nil {
			matched = res.MatchedCount
		}
	case Delete:
		var res *mongo.DeleteResult
		if res, err = coll.DeleteOne(ctx, byID); err == nil {
			matched = res.DeletedCount
		}
	default:
		var res *mongo.UpdateResult
		if res, err = coll.UpdateOne(ctx, byID, o.update); err == nil {
			matched = res.MatchedCount
		}
	}
	if err == nil {
		r.lastReached.Store(time.Now().UnixNano())
		r.tally.done[o.kind].Add(1)
		if matched == 0 {
			r.tally.missed.Add(1)
		}
		return
	}
	if opCtx.Err() != nil {
		return // abandoned (the run failed, or ran out of stopGrace): not a failure of this write
	}
	r.tally.failed(o.kind, fmt.Sprintf("%s on %s (_id %s): %s", o.kind, o.ns, idText(o.id), shortError(err)))
	if !unreachable(err) {
		r.lastReached.Store(time.Now().UnixNano())
		return
	}
	if since := time.Since(time.Unix(0, r.lastReached.Load())); since > connectionLostAfter {
		r.fail(fmt.Errorf("lost the connection to the server: no write has reached it for %s: %s", since.Round(time.Second), shortError(err)))
	}
}

// fail ends the run with err (the first such error wins).
func (r *runner) fail(err error) {
	r.fatalMu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.fatalMu.Unlock()
	r.stopRun()
	r.abortOps()
}

// unreachable reports errors that mean the write never reached the server.
func unreachable(err error) bool {
	var sse topology.ServerSelectionError
	return mongo.IsNetworkError(err) || errors.As(err, &sse) || errors.Is(err, topology.ErrServerSelectionTimeout) ||
		errors.Is(err, mongo.ErrClientDisconnected)
}

// shortError drops the topology description the driver appends to server-selection errors.
func shortError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ", current topology:"); i > 0 {
		msg = msg[:i]
	}
	return msg
}
