// Package node wires one fleetsync node: it connects to both clusters, registers the node and its
// sync in the destination's metadata database, joins the fleet's gossip, serves the API, and runs
// the node's share of the work: copy workers always, the coordinator while it holds that lease.
// Every node runs the same code; which one coordinates is decided by the lease alone.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/membership"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/web"
	"github.com/fleetsync/fleetsync/worker"
)

// Defaults for Config's zero values, and the node's intervals.
const (
	// DefaultLeaseTTL is the TTL of the coordinator and partition leases: a dead node's work is taken
	// over at most this long after its last renewal. Renewals go out every TTL/3.
	DefaultLeaseTTL = 10 * time.Second
	// statePollInterval is how often a node reads the sync document to learn the phase (one small
	// read by _id); idle workers are woken as soon as it changes, so a phase change reaches them
	// within this interval.
	statePollInterval = 200 * time.Millisecond
	// idleWorkerWait is how long a worker with nothing to claim waits before looking again.
	idleWorkerWait = 300 * time.Millisecond
	// Connection retry backoff: a destination that is down at start is retried, doubling the wait up
	// to the maximum, so a node started before its clusters neither crashes nor spins.
	retryInitial = time.Second
	retryMax     = 30 * time.Second
	// stopTimeout bounds a graceful stop: workers hand back their partitions within it.
	stopTimeout = 30 * time.Second
)

// Config is one node's settings (the command-line flags).
type Config struct {
	Cluster0, Cluster1     string
	SyncID                 string // --id
	Name                   string // unique within the sync
	Bind                   string // address for the API and gossip
	Port                   int    // API port; 0: no API
	GossipPort             int    // 0: any free port
	Workers                int    // copy workers; 0: the number of CPUs
	MetadataDB             string
	LeaseTTL               time.Duration
	PartitionTargetBytes   int64
	BatchDocs              int
	ChangeSource           string // applier.ModeAuto (default), ModeChangeStream or ModeOplog
	ApplyLanes             int    // parallel write lanes of the applier; 0: applier.DefaultLanes
	ServerSelectionTimeout time.Duration
	// Monitor sees every command the node's clients send (wire-level tests); nil: none.
	Monitor *event.CommandMonitor
	// Sandbox accepts fleetsync's sandbox test servers, which are standalone (--sandbox; see
	// preflight.CheckTopology). Never for real clusters.
	Sandbox bool
	Log     *zap.Logger
}

// Ready describes a node that has joined its fleet, for the command to print.
type Ready struct {
	Name, API, Gossip, State string
}

// Identity returns the deployment a connection string points at, without its credentials. An invalid
// connection string is an error saying so.
func Identity(label, uri string) (metadata.Identity, error) {
	cs, err := mongoconn.Parse(label, uri)
	if err != nil {
		return metadata.Identity{}, err
	}
	hosts := append([]string(nil), cs.Hosts...)
	sort.Strings(hosts)
	return metadata.Identity{Hosts: hosts, ReplicaSet: cs.ReplicaSet}, nil
}

// Run runs the node until ctx ends, then stops gracefully: workers hand back their partitions at a
// batch boundary, leases are released, the node leaves the gossip, and Run returns nil. ready is
// called once the node has joined its fleet.
func Run(ctx context.Context, cfg Config, ready func(Ready)) error {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.MetadataDB == "" {
		cfg.MetadataDB = namespace.DefaultMetadataDB
	}
	log := cfg.Log
	srcID, err := Identity("cluster0", cfg.Cluster0)
	if err != nil {
		return err
	}
	dstID, err := Identity("cluster1", cfg.Cluster1)
	if err != nil {
		return err
	}

	// The API listens from the start: while the node connects, /progress answers INITIALIZING (as
	// mongosync's does) and the other calls ask to retry, so a runbook polling a node started
	// before its clusters sees why it waits rather than a refused connection.
	var ln net.Listener
	apiAddr := ""
	api := &serviceSwitch{}
	api.set(initializing{})
	var apiWG sync.WaitGroup
	if cfg.Port > 0 {
		ln, err = net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.Port)))
		if err != nil {
			return fmt.Errorf("cannot serve the API on %s:%d (%v); pick another --port, or --port 0 for no API", cfg.Bind, cfg.Port, err)
		}
		defer ln.Close()
		apiAddr = ln.Addr().String()
		apiCtx, stopAPI := context.WithCancel(context.Background())
		apiWG.Add(1)
		go func() {
			defer apiWG.Done()
			if err := web.Serve(apiCtx, ln, web.New(api, log.Named("api"))); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Error("API server stopped", zap.Error(err))
			}
		}()
		defer apiWG.Wait()
		defer stopAPI()
	}

	// Two clients per cluster: one for everything, and one for the data writes of copy workers and
	// the applier, with the driver's operation timeout on, so that the lease deadline each such
	// write runs under reaches the server as maxTimeMS. The timeout must not touch the rest (index
	// builds, cursors, change streams), hence the separate client. The lease TTL is its ceiling;
	// every data write carries a shorter deadline of its own.
	plain := mongoconn.Options{ServerSelectionTimeout: cfg.ServerSelectionTimeout, Monitor: cfg.Monitor}
	fenced := plain
	fenced.OperationTimeout = cfg.LeaseTTL
	var source, destination, sourceWrites, destinationWrites *mongo.Client
	for _, c := range []struct {
		client     **mongo.Client
		label, uri string
		opts       mongoconn.Options
	}{
		{&source, "cluster0", cfg.Cluster0, plain},
		{&destination, "cluster1", cfg.Cluster1, plain},
		{&sourceWrites, "cluster0", cfg.Cluster0, fenced},
		{&destinationWrites, "cluster1", cfg.Cluster1, fenced},
	} {
		client, err := connectWithRetry(ctx, c.label, c.uri, c.opts, log)
		if err != nil {
			return err
		}
		defer disconnect(client)
		*c.client = client
	}

	meta := metadata.Open(destination, cfg.MetadataDB, cfg.SyncID)
	sync0, err := meta.Register(ctx, srcID, dstID)
	if err != nil {
		return err
	}

	// The membership lives until the node has handed back its work, not until the signal: it is
	// joined under presenceCtx, which Run cancels last.
	presenceCtx, endPresence := context.WithCancel(context.Background())
	defer endPresence()
	joinOpts := membership.Options{
		SyncID: cfg.SyncID, Name: cfg.Name, BindAddr: cfg.Bind, Port: cfg.GossipPort, APIAddr: apiAddr,
		Registry: meta.Collection(metadata.CollNodes), Logger: log.Named("gossip"), TTL: cfg.LeaseTTL,
	}
	members, err := membership.Join(presenceCtx, joinOpts)
	if err != nil {
		return err
	}
	n := &node{
		cfg: cfg, log: log, source: source, destination: destination, meta: meta,
		sourceWrites: sourceWrites, destinationWrites: destinationWrites,
		partitions: partition.NewStore(meta.Collection(metadata.CollPartitions), cfg.SyncID),
		// A fresh incarnation per process: a restarted node with the same name is a new lease holder,
		// so taking over its own old partitions bumps their epochs like any other takeover.
		owner: cfg.Name + "/" + uuid.NewString()[:8],
		srcID: srcID,
		dstID: dstID,
	}
	n.sync.Store(&sync0)
	n.stateChanged = make(chan struct{})
	if err := n.partitions.EnsureIndexes(ctx); err != nil {
		return err
	}
	n.members.Store(members)

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	var wg sync.WaitGroup
	api.set(n)
	wg.Add(1)
	go func() { defer wg.Done(); n.watchState(runCtx) }()

	// stopRoles asks the coordinator and the applier to stop at a step boundary and hand their
	// leases back; runCtx is cancelled only after that, or after stopTimeout.
	stopRoles := make(chan struct{})
	coordDone := make(chan struct{})
	go func() { defer close(coordDone); n.coordinate(runCtx, stopRoles) }()
	applyDone := make(chan struct{})
	go func() { defer close(applyDone); n.apply(runCtx, stopRoles) }()
	captureDone := make(chan struct{})
	go func() { defer close(captureDone); n.capture(runCtx, stopRoles) }()

	stopWorkers := make(chan struct{})
	var workers sync.WaitGroup
	for i := range cfg.Workers {
		workers.Add(1)
		go func() { defer workers.Done(); n.work(runCtx, i, stopWorkers) }()
	}

	if ready != nil {
		ready(Ready{Name: cfg.Name, API: apiAddr, Gossip: n.self().GossipAddr, State: sync0.State})
	}
	log.Info("node joined its fleet", zap.String("sync", cfg.SyncID), zap.String("state", sync0.State),
		zap.String("api", apiAddr), zap.Int("workers", cfg.Workers))

	presenceErr := make(chan error, 1)
	go func() { presenceErr <- n.stayRegistered(ctx, presenceCtx, joinOpts) }()
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: handing back partitions and leases")
	case runErr = <-presenceErr:
	}

	// Graceful stop, in dependency order: coordinator and applier first (the applier at a batch
	// boundary), then workers at a batch boundary, then the node's presence. Each role releases its
	// lease only once its last write has returned; one that does not stop in time is cancelled and
	// keeps its lease, which then expires after any write it had in flight was bounded by its
	// deadline (maxTimeMS).
	close(stopRoles)
	close(stopWorkers)
	stopped := make(chan struct{})
	go func() { workers.Wait(); <-coordDone; <-applyDone; <-captureDone; close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
		log.Warn("workers did not stop in time; their partitions will be taken over when their leases expire")
	}
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := n.members.Load().Leave(lctx); err != nil && !errors.Is(err, membership.ErrLeft) {
		log.Warn("leaving the fleet", zap.Error(err))
	}
	cancel()
	endPresence()
	cancelRun()
	wg.Wait()
	return runErr
}

// disconnectTimeout bounds each client's disconnect on the way out: it ends the client's sessions on
// the server, which waits out server selection when a cluster is away, and four of them in a row
// would otherwise hold a stopping node well past stopTimeout.
const disconnectTimeout = 2 * time.Second

func disconnect(client *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	_ = client.Disconnect(ctx)
}

// stayRegistered re-registers the node whenever its registration is lost (the destination was
// unreachable for longer than the registration could be renewed, say): losing the registry entry
// must not stop a node whose work is fenced by its own leases anyway. It returns an error only when
// another live process has taken this node's name, and nil when ctx ends. Memberships are joined
// under presenceCtx, which outlives ctx until the node has handed back its work.
func (n *node) stayRegistered(ctx, presenceCtx context.Context, opts membership.Options) error {
	for {
		m := n.members.Load()
		select {
		case <-ctx.Done():
			return nil
		case <-m.Done():
		}
		n.log.Warn("lost this node's registration; registering again", zap.Error(m.Err()))
		wait := retryInitial
		for {
			again, err := membership.Join(presenceCtx, opts)
			if err == nil {
				n.members.Store(again)
				n.log.Info("registered again")
				break
			}
			var inUse *membership.NameInUseError
			if errors.As(err, &inUse) && !n.isSelf(inUse) {
				return fmt.Errorf("another process took over this node's name: %w", err)
			}
			if ctx.Err() != nil {
				return nil
			}
			// Our own expired-but-not-yet-free registration, or the destination is still away.
			n.log.Debug("registering again failed; retrying", zap.Error(err), zap.Duration("in", wait))
			sleep(ctx, wait)
			wait = min(2*wait, retryMax)
		}
	}
}

// isSelf reports whether a name-in-use refusal is about this very process's earlier registration.
func (n *node) isSelf(e *membership.NameInUseError) bool {
	host, _ := os.Hostname()
	return e.PID == os.Getpid() && e.Host == host
}

// connectWithRetry connects to uri, retrying with backoff while the cluster cannot be reached, one log
// line per failure.
func connectWithRetry(ctx context.Context, label, uri string, opts mongoconn.Options, log *zap.Logger) (*mongo.Client, error) {
	wait := retryInitial
	for {
		client, err := mongoconn.ConnectWith(ctx, label, uri, opts)
		if err == nil {
			return client, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stopped while connecting: %w", err)
		}
		log.Warn(fmt.Sprintf("%v; retrying in %s", err, wait))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped while connecting: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

type node struct {
	cfg                 Config
	log                 *zap.Logger
	source, destination *mongo.Client
	// sourceWrites and destinationWrites bound every operation on the server (maxTimeMS): for the
	// data writes of copy workers and the applier only.
	sourceWrites, destinationWrites *mongo.Client
	meta                            *metadata.DB
	partitions                      *partition.Store
	members                         atomic.Pointer[membership.Membership]
	owner                           string
	srcID, dstID                    metadata.Identity
	// probeCache holds what /progress asks the clusters at most once a minute (see window.go).
	probeCache probes

	sync atomic.Pointer[metadata.Sync] // the sync document, as last read

	stateMu      sync.Mutex
	stateChanged chan struct{} // closed (and replaced) when the sync's state, phase or direction changes
}

// watchState keeps n.sync current.
func (n *node) watchState(ctx context.Context) {
	t := time.NewTicker(statePollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := n.meta.Sync(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("cannot read the sync's state", zap.Error(err))
			}
			continue
		}
		old := n.sync.Swap(&s)
		if old.State != s.State || old.Phase != s.Phase || old.Reversed != s.Reversed {
			n.stateMu.Lock()
			close(n.stateChanged)
			n.stateChanged = make(chan struct{})
			n.stateMu.Unlock()
		}
	}
}

// coordinate competes for the coordinator lease and coordinates while it holds it, until ctx ends
// or stop is closed.
func (n *node) coordinate(ctx context.Context, stop <-chan struct{}) {
	n.serveLease(ctx, stop, n.meta.Syncs(), "coordinator", func(ctx context.Context, kept *lease.Kept) error {
		// A stop ends the coordinator between two steps: one cut short could leave a command (an
		// index build, a write block) running on a cluster while its successor starts the same
		// step. Only the node's stop timeout cancels ctx, and the lease is then left to expire.
		return coordinator.Run(ctx, coordinator.Config{Stop: stop,
			Source: n.source, Destination: n.destination, Meta: n.meta, Partitions: n.partitions, Lease: kept.Lease(), Kept: kept,
			Filter: namespace.Filter{MetadataDB: n.cfg.MetadataDB}, PartitionTargetBytes: n.cfg.PartitionTargetBytes,
			Log: n.log.Named("coordinator"),
		})
	})
}

// applying reports whether the sync applies change events: in its apply phase while RUNNING, and
// while COMMITTING (up to the commit point and after, so that late writes are seen).
func applying(s *metadata.Sync) bool {
	return s.Phase == metadata.PhaseApply && (s.State == metadata.StateRunning || s.State == metadata.StateCommitting)
}

// copying reports whether workers copy partitions.
func copying(s *metadata.Sync) bool {
	return s.State == metadata.StateRunning && s.Phase == metadata.PhaseCopy
}

// apply competes for the applier lease once the sync reaches its apply phase, and applies change
// events while it holds it and the sync is applying. A pause, and stop (the node stopping), end it
// at a batch boundary; only cancelling ctx cuts a batch short.
func (n *node) apply(ctx context.Context, stop <-chan struct{}) {
	n.serveLease(ctx, stop, n.meta.Collection(metadata.CollCheckpoints), "applier", func(ctx context.Context, kept *lease.Kept) error {
		for {
			// Holding the lease before the phase needs it costs nothing and lets the phase start
			// at once; but the applier only runs in its phase.
			s, _, ok := n.waitUntil(ctx, stop, applying)
			if !ok {
				return nil
			}
			done := make(chan struct{})
			c := n.clusters(s)
			// The applier's clients are for s's direction: it stops once the sync has another (a
			// reverse this node saw only as RUNNING before and after, between two polls).
			sameDirection := func(now *metadata.Sync) bool { return applying(now) && now.Reversed == s.Reversed }
			err := applier.Run(ctx, applier.Config{
				Source: c.source, Destination: c.destination, Writes: c.destinationWrites, Meta: n.meta,
				Filter: s.Options.Filter(n.cfg.MetadataDB), Mode: n.cfg.ChangeSource, Reversed: s.Reversed,
				Lanes: n.cfg.ApplyLanes, Stop: n.whileSync(sameDirection, stop, done), Log: n.log.Named("applier"),
			}, kept)
			close(done)
			if errors.Is(err, applier.ErrDirectionChanged) {
				// This node's view of the sync is older than the applier's: read it again.
				sleepOrStop(ctx, stop, statePollInterval)
				continue
			}
			if err != nil {
				return err
			}
		}
	})
}

// waitUntil returns the sync once cond holds for it, with the channel closed at its next change; ok
// is false when ctx ends or stop is closed first.
func (n *node) waitUntil(ctx context.Context, stop <-chan struct{}, cond func(*metadata.Sync) bool) (s *metadata.Sync, changed <-chan struct{}, ok bool) {
	for ctx.Err() == nil && !closed(stop) {
		s, changed = n.state()
		if cond(s) {
			return s, changed, true
		}
		select {
		case <-ctx.Done():
		case <-stop:
		case <-changed:
		}
	}
	return nil, nil, false
}

// capturing reports whether the sync may need its change events captured into the spool: from the
// moment its start time is taken until the applier reads the live source (the capture itself finds
// that out, and is then done), paused or not: a long pause must not let the oplog roll over either.
// A reversed sync has no copy, so nothing to capture.
func capturing(s *metadata.Sync) bool {
	switch s.State {
	case metadata.StateRunning, metadata.StatePaused, metadata.StateCommitting:
		return !s.StartAtOperationTime.IsZero() && !s.Reversed
	}
	return false
}

// capture competes for the capture lease and, while it holds it and the sync is capturing, appends
// the source's change events to the spool (applier.Capture).
func (n *node) capture(ctx context.Context, stop <-chan struct{}) {
	n.serveLease(ctx, stop, n.meta.Collection(metadata.CollCapture), "capturer", func(ctx context.Context, kept *lease.Kept) error {
		for {
			s, changed, ok := n.waitUntil(ctx, stop, capturing)
			if !ok {
				return nil
			}
			done := make(chan struct{})
			err := applier.Capture(ctx, applier.CaptureConfig{
				Source: n.clusters(s).source, Meta: n.meta, Filter: s.Options.Filter(n.cfg.MetadataDB),
				Mode: n.cfg.ChangeSource, StartAt: s.StartAtOperationTime,
				Stop: n.whileSync(capturing, stop, done), Log: n.log.Named("capture"),
			}, kept)
			close(done)
			switch {
			case errors.Is(err, applier.ErrDirectionChanged):
				sleepOrStop(ctx, stop, statePollInterval)
			case err != nil:
				return err
			default:
				// Done (the applier reads the live source) or stopped: nothing to do until the
				// sync changes.
				select {
				case <-ctx.Done():
				case <-stop:
				case <-changed:
				}
			}
		}
	})
}

// closed reports whether ch is closed (a nil ch never is).
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// whileSync returns a channel closed once the sync no longer satisfies cond (a pause, say), or when
// stop or done is closed (a nil stop never is).
func (n *node) whileSync(cond func(*metadata.Sync) bool, stop, done <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		for {
			s, changed := n.state()
			if !cond(s) {
				return
			}
			select {
			case <-stop:
				return
			case <-done:
				return
			case <-changed:
			}
		}
	}()
	return out
}

// syncClusters are a sync's clusters in its current direction.
type syncClusters struct {
	source, destination *mongo.Client
	destinationWrites   *mongo.Client // the destination's client for data writes (see node)
}

// clusters returns the sync's source and destination: cluster0 and cluster1, swapped once the sync
// was reversed.
func (n *node) clusters(s *metadata.Sync) syncClusters {
	if s.Reversed {
		return syncClusters{source: n.destination, destination: n.source, destinationWrites: n.sourceWrites}
	}
	return syncClusters{source: n.source, destination: n.destination, destinationWrites: n.destinationWrites}
}

// releaseTimeout bounds the release of a lease on the way out; a release that does not land in
// time only means the next holder waits for the TTL.
const releaseTimeout = 5 * time.Second

// serveLease competes for the fleet-wide lease named after the sync in coll, and runs work under it
// (kept alive by a Keeper) while it holds it, until ctx ends or stop is closed. role names the lease
// in the log.
//
// work must return soon after stop is closed, having finished (or abandoned before sending) its
// writes: the lease is then released at once, so another node takes over without waiting for the
// TTL. When ctx ends instead, work was cut short and may have writes still running on a server,
// so the lease is left to expire: by then the deadline those writes carry has passed.
func (n *node) serveLease(ctx context.Context, stop <-chan struct{}, coll *mongo.Collection, role string, work func(context.Context, *lease.Kept) error) {
	store := lease.NewStore(coll)
	owner := n.owner + "/" + role
	for ctx.Err() == nil && !closed(stop) {
		l, err := store.Acquire(ctx, n.cfg.SyncID, owner, n.cfg.LeaseTTL)
		var held *lease.HeldError
		switch {
		case errors.As(err, &held):
			sleepOrStop(ctx, stop, n.cfg.LeaseTTL/3)
			continue
		case err != nil:
			if ctx.Err() == nil {
				n.log.Warn("cannot acquire the "+role+" lease", zap.Error(err))
			}
			sleepOrStop(ctx, stop, n.cfg.LeaseTTL/3)
			continue
		}
		n.log.Info("this node is the "+role, zap.Int64("epoch", l.Epoch))
		kept := lease.Keep(ctx, store, l)
		err = work(kept.Context(), kept)
		lost := kept.Err()
		kept.Stop()
		switch {
		case ctx.Err() != nil:
			n.log.Warn("stopped while the "+role+" may have had writes in flight; its lease is left to expire", zap.Error(err))
			return
		case closed(stop) && lost == nil:
			rctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			if err := store.Release(rctx, l); err != nil {
				n.log.Warn("releasing the "+role+" lease", zap.Error(err))
			} else {
				n.log.Info("released the "+role+" lease", zap.Int64("epoch", l.Epoch))
			}
			cancel()
			return
		}
		n.log.Warn("no longer the "+role, zap.NamedError("lease", lost), zap.Error(err))
	}
}

// work runs one copy worker: it copies partitions while the sync is in its copy phase.
func (n *node) work(ctx context.Context, i int, stop <-chan struct{}) {
	w := worker.New(worker.Config{
		Source: n.source, Destination: n.destinationWrites, Partitions: n.partitions,
		Owner: n.owner + "/w" + strconv.Itoa(i), LeaseTTL: n.cfg.LeaseTTL, BatchDocs: n.cfg.BatchDocs,
		ReadAfter: func() primitive.Timestamp { return n.sync.Load().StartAtOperationTime },
		Log:       n.log.Named("worker").With(zap.Int("worker", i)),
	})
	for {
		select {
		case <-stop:
			return
		default:
		}
		s, changed := n.state()
		if !copying(s) {
			select {
			case <-stop:
			case <-changed:
			}
			continue
		}
		// A pause hands the partition back at a batch boundary, like a stop, but the worker stays.
		done := make(chan struct{})
		res, err := w.CopyOne(ctx, n.whileSync(copying, stop, done))
		close(done)
		if res == worker.HandedBack {
			select {
			case <-stop:
			default:
				continue // paused: wait for the state to change
			}
		}
		switch res {
		case worker.NothingToClaim:
			if err != nil {
				n.log.Warn("cannot claim a partition", zap.Error(err))
			}
			sleepOrStop(ctx, stop, idleWorkerWait)
		case worker.HandedBack:
			return
		case worker.Failed, worker.Lost:
			// Logged by the worker; the partition is retried (here or elsewhere) from its checkpoint.
			sleepOrStop(ctx, stop, idleWorkerWait)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// sleepOrStop waits d, or less when ctx ends or stop is closed.
func sleepOrStop(ctx context.Context, stop <-chan struct{}, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-stop:
	case <-time.After(d):
	}
}

// displayName is the node name inside a lease owner "<name>/<incarnation>/...".
func displayName(owner string) string {
	name, _, _ := strings.Cut(owner, "/")
	return name
}

// state returns the sync as last read, and a channel closed when its state or phase changes.
func (n *node) state() (*metadata.Sync, <-chan struct{}) {
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	return n.sync.Load(), n.stateChanged
}

// self is this node's own entry in the member list.
func (n *node) self() membership.Member {
	for _, m := range n.members.Load().Members() {
		if m.Name == n.cfg.Name {
			return m
		}
	}
	return membership.Member{Name: n.cfg.Name}
}
