package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/sandbox"
	"github.com/fleetsync/fleetsync/internal/seed"
)

// seedConnectTimeout bounds the connection to a sandbox server that has just reported it is listening.
const seedConnectTimeout = 10 * time.Second

func runSandbox(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sandbox", stderr)
	sourcePort := fs.Int("source-port", 0, "source server port on 127.0.0.1 (0: any free port)")
	destinationPort := fs.Int("destination-port", 0, "destination server port on 127.0.0.1 (0: any free port)")
	seedDocs := fs.Int("seed-docs", 0, "documents to seed into the source")
	seedCollections := fs.Int("seed-collections", 6, "collections to spread the seed documents over")
	seedValue := fs.Int64("seed", 1, "seed of the generated data: the same seed gives the same documents")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if err := checkSeedFlags(*seedDocs, *seedCollections); err != nil {
		return fail(stderr, "sandbox", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sb, err := startSandbox(ctx, *sourcePort, *destinationPort, stderr)
	if err != nil {
		return fail(stderr, "sandbox", err)
	}
	defer sb.launcher.Close()

	if *seedDocs > 0 {
		fmt.Fprintf(stderr, "seeding %d documents into %d collections of the source (seed %d)...\n", *seedDocs, *seedCollections, *seedValue)
		stats, err := seedCluster(ctx, sb.source.URI(), seed.Options{Docs: *seedDocs, Collections: *seedCollections, Seed: *seedValue})
		if err != nil {
			return fail(stderr, "sandbox", err)
		}
		fmt.Fprintf(stderr, "seeded %d documents (%.1f MB) into %d collections\n", stats.Docs, float64(stats.Bytes)/1e6, stats.Collections)
	}
	// These two lines come first on stdout, and only once the servers accept connections and hold the
	// seed data: scripts read them to know the sandbox is ready.
	fmt.Fprintf(stdout, "source: %s\n", sb.source.URI())
	fmt.Fprintf(stdout, "destination: %s\n", sb.destination.URI())
	fmt.Fprintln(stderr, "sandbox running; stop it with Ctrl-C (SIGINT) or SIGTERM")

	if err := sb.launcher.Wait(ctx); err != nil && ctx.Err() == nil {
		return fail(stderr, "sandbox", err)
	}
	if err := sb.launcher.Close(); err != nil {
		return fail(stderr, "sandbox", err)
	}
	return exitOK
}

// runningSandbox is a launcher with a source (oplog on) and a destination server.
type runningSandbox struct {
	launcher            *sandbox.Launcher
	source, destination *sandbox.Server
}

func startSandbox(ctx context.Context, sourcePort, destinationPort int, progress io.Writer) (*runningSandbox, error) {
	l, err := sandbox.Start(ctx, sandbox.Options{Progress: func(msg string) { fmt.Fprintln(progress, msg) }})
	if err != nil {
		return nil, err
	}
	src, err := l.StartServer(sourcePort, true)
	if err != nil {
		l.Close()
		return nil, portError("source", sourcePort, err)
	}
	dst, err := l.StartServer(destinationPort, false)
	if err != nil {
		l.Close()
		return nil, portError("destination", destinationPort, err)
	}
	return &runningSandbox{launcher: l, source: src, destination: dst}, nil
}

func portError(role string, port int, err error) error {
	if strings.Contains(strings.ToLower(err.Error()), "address already in use") {
		return fmt.Errorf("the %s port %d is already in use; choose another with --%s-port, or 0 for any free port", role, port, role)
	}
	return fmt.Errorf("starting the %s server: %w", role, err)
}

func checkSeedFlags(docs, collections int) error {
	if docs < 0 {
		return fmt.Errorf("--seed-docs must be 0 or more, not %d", docs)
	}
	if collections < 1 {
		return fmt.Errorf("--seed-collections must be 1 or more, not %d", collections)
	}
	return nil
}

func seedCluster(ctx context.Context, uri string, opts seed.Options) (seed.Stats, error) {
	client, err := mongoconn.Connect(ctx, "sandbox", uri, seedConnectTimeout)
	if err != nil {
		return seed.Stats{}, err
	}
	defer client.Disconnect(context.Background())
	return seed.Seed(ctx, client, opts)
}
