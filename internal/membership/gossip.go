package membership

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// memberlist's timing, tuned for a small fleet on one LAN. With memberlist's DefaultLANConfig the
// other nodes noticed an abruptly killed node after about 6 s; with the four values below, after 0.75
// to 1 s (DESIGN.md, "Nodes and roles"). Detection time is roughly one probe interval to reach the
// dead node, a probe timeout plus indirect probes, then the suspicion timeout.
const (
	// gossipProbeInterval: each node pings one peer this often (default 1 s). A fleet is a handful
	// of nodes, so five probes a second per node is cheap.
	gossipProbeInterval = 200 * time.Millisecond

	// gossipProbeTimeout: a direct ping unanswered after this is followed by indirect pings through
	// other nodes (default 500 ms). A LAN round trip is well under a millisecond; 100 ms leaves room
	// for a busy node before it is suspected.
	gossipProbeTimeout = 100 * time.Millisecond

	// gossipSuspicionMult: a suspected node that does not refute is declared dead after
	// gossipSuspicionMult * max(1, log10(nodes)) * gossipProbeInterval, 400 ms for up to ten nodes
	// (default multiplier 4). A node that is merely slow refutes within that.
	gossipSuspicionMult = 2

	// gossipInterval: how often a node sends queued news (suspicions, deaths, joins) to a few peers
	// (default 200 ms), so news reaches every node in a few rounds.
	gossipInterval = 50 * time.Millisecond

	// gossipTCPTimeout bounds one TCP exchange with one address: a join, a push/pull, a fallback ping
	// (default 10 s). A node whose host is gone stays registered until its lease expires, and each
	// join attempt to it waits this long; on a LAN 2 s is ample for a live node.
	gossipTCPTimeout = 2 * time.Second

	// gossipDeadNodeReclaim: after how long a dead node's name may come back from another address.
	// memberlist's default (0) refuses that until the dead node is forgotten (GossipToTheDeadTime,
	// 30 s), but a node restarted with Port 0 gets a new port. The registration lease already makes
	// a name belong to at most one live process, so a name at a new address is its next incarnation
	// and is accepted at once.
	gossipDeadNodeReclaim = time.Nanosecond

	// gossipLeaveTimeout bounds how long a graceful exit waits for its leave message to go out: a
	// few gossip intervals when peers are alive, no wait at all when none are.
	gossipLeaveTimeout = time.Second
)

// gossipLabelPrefix starts memberlist's packet label, "fleetsync/" + SyncID. memberlist drops packets
// and streams with another label, so nodes of different syncs (or other memberlist users on a
// reused port) never merge, even when one dials the other's stale address.
const gossipLabelPrefix = "fleetsync/"

// nodeMeta is what a node tells the others about itself in memberlist's node metadata (at most
// memberlist.MetaMaxSize bytes of JSON), so members learned by gossip carry it too.
type nodeMeta struct {
	APIAddr   string `json:"api,omitempty"`
	StartedAt int64  `json:"started,omitempty"` // Unix milliseconds, this node's clock
}

func (m nodeMeta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("the node's gossip metadata is %d bytes, more than memberlist's limit of %d; is the API address %q right?",
			len(b), memberlist.MetaMaxSize, m.APIAddr)
	}
	return b, nil
}

func decodeMeta(b []byte) nodeMeta {
	var m nodeMeta
	_ = json.Unmarshal(b, &m) // a node without (valid) metadata simply has no API address
	return m
}

// metaDelegate serves this node's metadata to memberlist; nothing else goes through gossip.
type metaDelegate struct{ meta []byte }

func (d metaDelegate) NodeMeta(limit int) []byte                { return d.meta }
func (metaDelegate) NotifyMsg([]byte)                           {}
func (metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (metaDelegate) LocalState(join bool) []byte                { return nil }
func (metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// peer is what gossip says about one node.
type peer struct {
	addr      string // gossip host:port
	meta      nodeMeta
	alive     bool // alive or suspected; false once memberlist declared it dead or it left
	changedAt time.Time
}

// peers follows memberlist's events into a map of its own. memberlist's Members() hands out
// pointers into state it keeps changing under its own lock, so reading them later races; and the
// *Node given to event callbacks always has State zero (alive), since memberlist keeps the real state
// in a shadowing field, so dead and left cannot be told apart here.
type peers struct {
	self string // this node's name
	log  *zap.Logger
	// changed gets a value (without blocking) when a node stops being alive, so that the registry
	// is re-read at once: a node that left gracefully released its registration first.
	changed chan<- struct{}

	mu    sync.Mutex
	nodes map[string]peer
}

func (p *peers) NotifyJoin(n *memberlist.Node) {
	p.set(n, true)
	if n.Name == p.self {
		return
	}
	p.log.Debug("node is alive in gossip", zap.String("node", n.Name), zap.String("gossipAddr", n.Address()))
}

func (p *peers) NotifyUpdate(n *memberlist.Node) { p.set(n, true) }

func (p *peers) NotifyLeave(n *memberlist.Node) {
	p.set(n, false)
	if n.Name == p.self {
		return // leaving itself
	}
	p.log.Info("node is gone from gossip (left or failed)", zap.String("node", n.Name), zap.String("gossipAddr", n.Address()))
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// set records n; memberlist calls it under its own lock, so n is copied here and never kept.
func (p *peers) set(n *memberlist.Node, alive bool) {
	pr := peer{addr: n.Address(), meta: decodeMeta(n.Meta), alive: alive, changedAt: time.Now()}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodes[n.Name] = pr
}

// aliveAt says whether gossip has name alive at addr.
func (p *peers) aliveAt(name, addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.nodes[name]
	return ok && pr.alive && pr.addr == addr
}

func (p *peers) snapshot() map[string]peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]peer, len(p.nodes))
	for name, pr := range p.nodes {
		out[name] = pr
	}
	return out
}

// startGossip creates this node's memberlist, bound and listening but not yet joined to anyone.
func startGossip(opts Options, meta []byte, events *peers) (*memberlist.Memberlist, error) {
	label := gossipLabelPrefix + opts.SyncID
	if len(label) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("sync id %q is too long for gossip: at most %d bytes", opts.SyncID, memberlist.LabelMaxSize-len(gossipLabelPrefix))
	}
	conf := memberlist.DefaultLANConfig()
	conf.Name = opts.Name
	conf.BindAddr = opts.BindAddr
	conf.BindPort = opts.Port
	conf.AdvertisePort = opts.Port // the LAN default is 7946; with Port 0 memberlist sets both to the port it got
	conf.Label = label
	conf.ProbeInterval = gossipProbeInterval
	conf.ProbeTimeout = gossipProbeTimeout
	conf.SuspicionMult = gossipSuspicionMult
	conf.GossipInterval = gossipInterval
	conf.TCPTimeout = gossipTCPTimeout
	conf.DeadNodeReclaimTime = gossipDeadNodeReclaim
	conf.Delegate = metaDelegate{meta: meta}
	conf.Events = events
	stdLog, err := zap.NewStdLogAt(opts.Logger.Named("memberlist"), zap.DebugLevel)
	if err != nil {
		return nil, err
	}
	conf.Logger = stdLog // memberlist writes to stderr unless given a logger

	ml, err := memberlist.Create(conf)
	if err != nil {
		return nil, fmt.Errorf("starting gossip on %s: %w", net.JoinHostPort(opts.BindAddr, strconv.Itoa(opts.Port)), err)
	}
	return ml, nil
}
