// Package membership keeps the list of a fleet's nodes: each node registers itself in the registry
// collection (<metadataDB>.nodes on the destination) under a lease, reads the other live nodes of
// its sync there, and joins their memberlist gossip. No node is special and nobody passes --join:
// the registry is the meeting point.
//
// Gossip gives fast failure detection (about a second on a LAN) and the node list for the /progress
// API; nothing that must be correct depends on it. The registration lease only makes a node's name
// unique among the live nodes of its sync: a second process started with a name in use is refused,
// and a node whose previous incarnation crashed gets its name back once that lease expires.
package membership

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/memberlist"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/lease"
)

const (
	// defaultTTL is the registration lease's TTL: how long after a crash the name stays taken, and
	// how long a node may fail to reach the destination before it must consider itself out (the
	// lease Keeper gives up after TTL - TTL/5). Failure detection is gossip's job, not this one's.
	defaultTTL = 10 * time.Second

	// defaultRefreshInterval: how often the registry is re-read to join nodes gossip does not have
	// alive (nodes that started later and found no one yet, or the other side of a healed split).
	defaultRefreshInterval = 5 * time.Second

	// registryReadTimeout bounds one read of the registry, so that a hung destination delays the
	// next refresh rather than stopping them.
	registryReadTimeout = 5 * time.Second
)

// ErrLeft is Err after Leave; ErrClosed is Err after Close.
var (
	ErrLeft   = errors.New("the node left the fleet")
	ErrClosed = errors.New("the node's membership was closed without leaving")
)

// Options configure Join.
type Options struct {
	SyncID   string // nodes of one sync share it (the --id flag, "default")
	Name     string // unique node name within the sync; no "/"
	BindAddr string // address to bind gossip to and advertise, e.g. 127.0.0.1; "" binds all interfaces and advertises a private IP
	Port     int    // gossip port, UDP and TCP; 0 picks a free one (the chosen one is registered)
	APIAddr  string // this node's HTTP API address host:port, "" when it has none

	Registry *mongo.Collection // <metadataDB>.nodes on the destination
	Logger   *zap.Logger       // also gets memberlist's own log lines, at debug level; nil: none

	TTL             time.Duration // registration lease TTL; 0: defaultTTL (10 s)
	RefreshInterval time.Duration // how often to re-read the registry and join nodes not alive in gossip; 0: 5 s
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Registry == nil:
		return o, errors.New("joining the fleet: no registry collection given")
	case o.SyncID == "":
		return o, errors.New("joining the fleet: the sync id is empty")
	case o.Name == "":
		return o, errors.New("joining the fleet: the node has no name")
	case strings.Contains(o.Name, "/"):
		return o, fmt.Errorf("node name %q contains a \"/\"; pick a --name without one", o.Name)
	case o.Port < 0 || o.Port > 65535:
		return o, fmt.Errorf("gossip port %d is not a port number", o.Port)
	case o.TTL < 0 || o.RefreshInterval < 0:
		return o, errors.New("joining the fleet: negative TTL or refresh interval")
	}
	if o.BindAddr == "" {
		o.BindAddr = "0.0.0.0"
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.TTL == 0 {
		o.TTL = defaultTTL
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = defaultRefreshInterval
	}
	return o, nil
}

// Member is one node as this node sees it.
type Member struct {
	Name       string
	GossipAddr string // host:port
	APIAddr    string // host:port of its HTTP API, "" when it has none
	// Alive: memberlist has it alive (or merely suspected), not dead or left. A node is alive to
	// itself until its membership ends.
	Alive bool
	// Registered: its registration lease was live at the last read of the registry (at most
	// RefreshInterval ago, and re-read at once whenever gossip loses a node). For this node: its
	// lease is being kept.
	Registered bool
	StartedAt  time.Time // by the node's own clock
}

// Membership is this node's place in its fleet, from Join until Leave, Close, the end of Join's
// context, or the loss of its registration.
type Membership struct {
	opts       Options
	log        *zap.Logger
	gossipAddr string
	startedAt  time.Time

	store  *lease.Store
	kept   *lease.Kept
	gossip *memberlist.Memberlist
	peers  *peers

	// runCtx ends everything; its cause says why (ErrLeft, ErrClosed, Join's context's cause).
	runCtx    context.Context
	runCancel context.CancelCauseFunc

	refreshNow    chan struct{}
	refreshExited chan struct{}
	leaveCtx      chan context.Context // Leave hands its context to the teardown

	regsMu sync.Mutex
	regs   map[string]registration // the last read of the registry, by name; replaced, never changed

	deregMu      sync.Mutex
	deregistered bool

	done chan struct{} // closed when teardown is complete
	err  error         // written before done is closed
}

// Join registers this node and joins the gossip of the live registered nodes of its sync. It fails
// with a *NameInUseError when a live node of the sync has the name. Failing to reach any other node
// is not an error: the first node has no one to join, and later nodes join it from the registry.
//
// The membership lasts until Leave, Close or the end of ctx (then it leaves gossip, and its
// registration expires after TTL), or until its registration is lost (Done).
func Join(ctx context.Context, opts Options) (*Membership, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With(zap.String("sync", opts.SyncID), zap.String("node", opts.Name))
	startedAt := time.UnixMilli(time.Now().UnixMilli()).UTC() // milliseconds, as BSON and the gossip metadata keep it
	meta, err := nodeMeta{APIAddr: opts.APIAddr, StartedAt: startedAt.UnixMilli()}.encode()
	if err != nil {
		return nil, fmt.Errorf("joining the fleet as %q: %w", opts.Name, err)
	}

	// The name first: a second process with a name in use must not appear in gossip at all.
	store := lease.NewStore(opts.Registry)
	l, err := store.Acquire(ctx, registryID(opts.SyncID, opts.Name), uuid.NewString(), opts.TTL)
	if held := (*lease.HeldError)(nil); errors.As(err, &held) {
		return nil, nameInUse(ctx, opts, held)
	}
	if err != nil {
		return nil, fmt.Errorf("registering node %q of sync %q: %w", opts.Name, opts.SyncID, err)
	}

	refreshNow := make(chan struct{}, 1)
	pr := &peers{self: opts.Name, log: log, changed: refreshNow, nodes: map[string]peer{}}
	ml, err := startGossip(opts, meta, pr)
	if err != nil {
		release(ctx, store, l)
		return nil, err
	}
	// Nobody knows this node's address yet, so nothing changes its local node while it is read.
	gossipAddr := ml.LocalNode().Address()

	host, _ := os.Hostname()
	err = register(ctx, opts.Registry, l, registration{
		Sync: opts.SyncID, Name: opts.Name, GossipAddr: gossipAddr, APIAddr: opts.APIAddr,
		Host: host, PID: os.Getpid(), StartedAt: startedAt,
	})
	if err != nil {
		_ = ml.Shutdown()
		release(ctx, store, l)
		return nil, err
	}

	m := &Membership{
		opts: opts, log: log, gossipAddr: gossipAddr, startedAt: startedAt,
		store: store, gossip: ml, peers: pr,
		refreshNow: refreshNow, refreshExited: make(chan struct{}), leaveCtx: make(chan context.Context, 1),
		done: make(chan struct{}),
	}
	m.runCtx, m.runCancel = context.WithCancelCause(ctx)
	m.kept = lease.Keep(m.runCtx, store, l)
	log.Info("registered", zap.String("gossipAddr", gossipAddr), zap.String("apiAddr", opts.APIAddr), zap.Int64("epoch", l.Epoch))

	m.refresh(m.runCtx)
	go m.refreshLoop()
	go m.watch()
	return m, nil
}

// release frees the registration of a Join that failed halfway, even when ctx has ended, so that a
// retry need not wait for it to expire. Best effort: it expires anyway.
func release(ctx context.Context, store *lease.Store, l lease.Lease) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryReadTimeout)
	defer cancel()
	_ = store.Release(rctx, l)
}

// Members returns this node and every other node that gossip has alive or the registry had
// registered at its last read, sorted by name. A node that crashed stays listed, not alive, until
// its registration expires; one that left gracefully disappears at once.
func (m *Membership) Members() []Member {
	gossip := m.peers.snapshot()
	m.regsMu.Lock()
	regs := m.regs
	m.regsMu.Unlock()

	byName := make(map[string]Member, len(gossip)+len(regs))
	for name, p := range gossip {
		if p.alive {
			mem := Member{Name: name, GossipAddr: p.addr, APIAddr: p.meta.APIAddr, Alive: true}
			if p.meta.StartedAt != 0 {
				mem.StartedAt = time.UnixMilli(p.meta.StartedAt).UTC()
			}
			byName[name] = mem
		}
	}
	for name, r := range regs {
		mem, ok := byName[name]
		if !ok {
			mem = Member{Name: name, GossipAddr: r.GossipAddr, APIAddr: r.APIAddr, StartedAt: r.StartedAt.UTC()}
		}
		mem.Registered = true
		byName[name] = mem
	}
	running := m.Err() == nil
	byName[m.opts.Name] = Member{Name: m.opts.Name, GossipAddr: m.gossipAddr, APIAddr: m.opts.APIAddr,
		Alive: running, Registered: running && m.kept.Err() == nil, StartedAt: m.startedAt}

	out := make([]Member, 0, len(byName))
	for _, mem := range byName {
		out = append(out, mem)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Done is closed when the membership has ended: the registration was lost (it could not be renewed
// in time, or another process took the name after this one stalled), or Leave, Close or the end of
// Join's context stopped it. Err then says which. A node whose registration is lost has already
// left gossip, since its name may now be another process's.
func (m *Membership) Done() <-chan struct{} { return m.done }

// Err is nil while the membership lasts; afterwards it is a *lease.LostError (errors.Is
// lease.ErrLost) when the registration was lost, ErrLeft after Leave, ErrClosed after Close, or the
// cause of the end of Join's context.
func (m *Membership) Err() error {
	select {
	case <-m.done:
		return m.err
	default:
		return nil
	}
}

// Leave leaves the fleet gracefully: it stops renewing, marks its registry document left and
// releases the registration (so the name is free at once), then tells gossip it leaves and shuts
// gossip down. The registry goes first so that peers, which re-read it as soon as gossip loses a
// node, find it gone. Calling Leave after the membership ended otherwise (Close, the end of Join's
// context) still releases the registration; after the registration was lost, it leaves the
// registry document alone, as it belongs to the name's new holder.
func (m *Membership) Leave(ctx context.Context) error {
	select {
	case m.leaveCtx <- ctx:
	default: // another Leave already handed its context over
	}
	m.runCancel(ErrLeft)
	<-m.done
	return m.deregister(ctx) // done already by the teardown, unless it failed
}

// Close stops at once without leaving: gossip shuts down without a leave message (peers find this
// node dead by probing) and the registration is neither released nor marked left (it expires after
// TTL). For tests that simulate a crash, and for a process that must exit now.
func (m *Membership) Close() {
	m.runCancel(ErrClosed)
	<-m.done
}

// watch tears the membership down when it ends, whatever the reason.
func (m *Membership) watch() {
	// The Keeper's context derives from runCtx: this wakes on a lost registration and on any stop.
	<-m.kept.Done()
	cause := m.kept.Err()
	m.runCancel(cause)
	<-m.refreshExited
	m.kept.Stop()

	switch {
	case errors.Is(cause, ErrLeft):
		select {
		case ctx := <-m.leaveCtx:
			if err := m.deregister(ctx); err != nil {
				m.log.Warn("could not release the registration; it expires by itself", zap.Duration("ttl", m.opts.TTL), zap.Error(err))
			}
		default:
		}
	case errors.Is(cause, lease.ErrLost):
		m.log.Warn("registration lost; leaving gossip", zap.Error(cause))
	}
	if !errors.Is(cause, ErrClosed) {
		if err := m.gossip.Leave(gossipLeaveTimeout); err != nil {
			m.log.Debug("leaving gossip", zap.Error(err))
		}
	}
	if err := m.gossip.Shutdown(); err != nil {
		m.log.Debug("shutting gossip down", zap.Error(err))
	}
	m.log.Info("membership ended", zap.NamedError("reason", cause))
	m.err = cause
	close(m.done)
}

// deregister marks the registration left and releases it, once.
func (m *Membership) deregister(ctx context.Context) error {
	m.deregMu.Lock()
	defer m.deregMu.Unlock()
	if m.deregistered {
		return nil
	}
	if err := deregister(ctx, m.opts.Registry, m.store, m.kept.Lease()); err != nil {
		return err
	}
	m.deregistered = true
	return nil
}

func (m *Membership) refreshLoop() {
	defer close(m.refreshExited)
	t := time.NewTicker(m.opts.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-m.runCtx.Done():
			return
		case <-t.C:
		case <-m.refreshNow:
		}
		m.refresh(m.runCtx)
	}
}

// refresh re-reads the registry and joins the registered nodes that gossip does not have alive at
// their registered address. One address at a time, so that a stop waits for one join at most.
func (m *Membership) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, registryReadTimeout)
	regs, err := registered(rctx, m.opts.Registry, m.opts.SyncID)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot read the node registry; gossip goes on with the nodes it knows", zap.Error(err))
		}
		return
	}
	byName := make(map[string]registration, len(regs))
	for _, r := range regs {
		if r.Name != m.opts.Name {
			byName[r.Name] = r
		}
	}
	m.regsMu.Lock()
	m.regs = byName
	m.regsMu.Unlock()

	for _, r := range regs {
		if r.Name == m.opts.Name || r.GossipAddr == "" || m.peers.aliveAt(r.Name, r.GossipAddr) {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if _, err := m.gossip.Join([]string{r.GossipAddr}); err != nil {
			// memberlist's error is a multi-line list; one line reads better in a log.
			m.log.Debug("cannot reach a registered node", zap.String("peer", r.Name), zap.String("gossipAddr", r.GossipAddr),
				zap.String("error", strings.Join(strings.Fields(err.Error()), " ")))
			continue
		}
		m.log.Debug("joined a registered node", zap.String("peer", r.Name), zap.String("gossipAddr", r.GossipAddr))
	}
}
