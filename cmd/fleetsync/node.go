package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/node"
	"github.com/fleetsync/fleetsync/web"
	"github.com/fleetsync/fleetsync/worker"
)

// runNode starts one node, mongosync-style: fleetsync --cluster0 URI --cluster1 URI [...].
func runNode(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("node", stderr)
	cluster0 := fs.String("cluster0", "", "source cluster connection string (required)")
	cluster1 := fs.String("cluster1", "", "destination cluster connection string (required); it also holds the fleet's metadata")
	id := fs.String("id", "default", "sync id: nodes with the same clusters and id form one fleet")
	name := fs.String("name", defaultNodeName(), "this node's name, unique in the fleet")
	port := fs.Int("port", web.DefaultPort, "API port (0: no API on this node)")
	bind := fs.String("bind", "127.0.0.1", "address the API and gossip listen on (0.0.0.0 in containers)")
	gossipPort := fs.Int("gossip-port", 0, "gossip port (0: any free port; the fleet finds it through the metadata database)")
	workers := fs.Int("workers", runtime.NumCPU(), "copy workers on this node")
	metadataDB := fs.String("metadata-db", namespace.DefaultMetadataDB, "metadata database on the destination")
	leaseTTL := fs.Duration("lease-ttl", node.DefaultLeaseTTL, "lease TTL: a dead node's work is taken over this long after its last renewal")
	partitionSize := fs.String("partition-size", "64MB", "target size of a copy partition (e.g. 64MB, 512KB)")
	batchDocs := fs.Int("batch-docs", worker.DefaultBatchDocs, "documents per insert batch and checkpoint")
	changeSource := fs.String("change-source", applier.ModeAuto, "where change events come from: auto (a change stream where the source has one, else its oplog), changeStream, or oplog")
	applyLanes := fs.Int("apply-lanes", applier.DefaultLanes, "parallel write lanes of the change-event applier")
	sandbox := fs.Bool("sandbox", false, "the clusters are fleetsync's sandbox test servers (standalone; see docs/test-servers.md): never for real clusters")
	timeout := fs.Duration("server-selection-timeout", mongoconn.DefaultServerSelectionTimeout, "how long one connection attempt waits for a cluster")
	logPath := fs.String("logPath", "", "write the log to this file instead of stderr")
	verbosity := fs.String("verbosity", "info", "log level: debug, info, warn or error")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if *cluster0 == "" || *cluster1 == "" {
		return fail(stderr, "node", errors.New("--cluster0 and --cluster1 are required (the source and destination connection strings)"))
	}
	targetBytes, err := parseSize(*partitionSize)
	if err != nil {
		return fail(stderr, "node", fmt.Errorf("--partition-size: %w", err))
	}
	if err := checkNodeFlags(*name, *id, *workers, *port, *gossipPort, *batchDocs, *leaseTTL); err != nil {
		return fail(stderr, "node", err)
	}
	switch *changeSource {
	case applier.ModeAuto, applier.ModeChangeStream, applier.ModeOplog:
	default:
		return fail(stderr, "node", fmt.Errorf("--change-source %q: use auto, changeStream or oplog", *changeSource))
	}
	if *applyLanes < 1 || *applyLanes > 256 {
		return fail(stderr, "node", fmt.Errorf("--apply-lanes %d: use 1 to 256", *applyLanes))
	}
	log, closeLog, err := newLogger(*logPath, *verbosity, stderr)
	if err != nil {
		return fail(stderr, "node", err)
	}
	defer closeLog()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = node.Run(ctx, node.Config{
		Cluster0: *cluster0, Cluster1: *cluster1, SyncID: *id, Name: *name, Bind: *bind, Port: *port,
		GossipPort: *gossipPort, Workers: *workers, MetadataDB: *metadataDB, LeaseTTL: *leaseTTL,
		PartitionTargetBytes: targetBytes, BatchDocs: *batchDocs, ServerSelectionTimeout: *timeout, Log: log,
		ChangeSource: *changeSource, ApplyLanes: *applyLanes, Sandbox: *sandbox,
	}, func(r node.Ready) {
		api := "no API"
		if r.API != "" {
			api = "API http://" + r.API
		}
		fmt.Fprintf(stdout, "fleetsync node %s ready: %s, gossip %s, sync %q is %s\n", r.Name, api, r.Gossip, *id, r.State)
	})
	if err != nil {
		_ = log.Sync()
		return fail(stderr, "node", err)
	}
	return exitOK
}

func defaultNodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

func checkNodeFlags(name, id string, workers, port, gossipPort, batchDocs int, ttl time.Duration) error {
	for _, f := range []struct{ flag, v string }{{"--name", name}, {"--id", id}} {
		if f.v == "" || strings.ContainsAny(f.v, "/ \t\n") {
			return fmt.Errorf("%s %q must be non-empty, without '/' or spaces", f.flag, f.v)
		}
	}
	switch {
	case workers < 1:
		return fmt.Errorf("--workers %d: a node needs at least one copy worker", workers)
	case port < 0 || port > 65535:
		return fmt.Errorf("--port %d is not a TCP port (0 to 65535; 0 means no API)", port)
	case gossipPort < 0 || gossipPort > 65535:
		return fmt.Errorf("--gossip-port %d is not a TCP port (0 to 65535; 0 picks a free one)", gossipPort)
	case batchDocs < 1:
		return fmt.Errorf("--batch-docs %d must be at least 1", batchDocs)
	case ttl < time.Second:
		return fmt.Errorf("--lease-ttl %s is too short; use at least 1s (the default is %s)", ttl, node.DefaultLeaseTTL)
	}
	return nil
}

// parseSize reads "64MB", "512KB", "1GiB" or a plain number of bytes (KB = 1024 bytes, as MongoDB counts).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}}
	u := strings.ToUpper(strings.TrimSpace(s))
	factor := int64(1)
	for _, unit := range units {
		if strings.HasSuffix(u, unit.suffix) {
			u, factor = strings.TrimSpace(strings.TrimSuffix(u, unit.suffix)), unit.factor
			break
		}
	}
	n, err := strconv.ParseFloat(u, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size; write it like 64MB, 512KB or 1GB", s)
	}
	return int64(n * float64(factor)), nil
}

// newLogger logs human-readable lines to stderr, or to path when given.
func newLogger(path, verbosity string, stderr io.Writer) (*zap.Logger, func(), error) {
	level, err := zapcore.ParseLevel(verbosity)
	if err != nil {
		return nil, nil, fmt.Errorf("--verbosity %q: use debug, info, warn or error", verbosity)
	}
	out := zapcore.AddSync(stderr)
	closer := func() {}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--logPath: %v", err)
		}
		out, closer = zapcore.AddSync(f), func() { _ = f.Close() }
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeCaller = nil
	enc.StacktraceKey = "" // one line per event, even for errors
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(out), level)
	return zap.New(core), closer, nil
}
