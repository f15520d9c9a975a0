package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/internal/verify"
)

// runDemo is the README's first command: everything fleetsync can do so far, on the embedded sandbox,
// in one process that cleans up after itself. It starts the sandbox, seeds the source, gives the
// destination the same data, and proves with the verifier that the two clusters are equal. The copy
// and change-event application replace the second seeding as they land.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	docs := fs.Int("docs", 20000, "documents to seed")
	collections := fs.Int("collections", 6, "collections to spread them over")
	seedValue := fs.Int64("seed", 1, "seed of the generated data")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if err := checkSeedFlags(*docs, *collections); err != nil {
		return fail(stderr, "demo", err)
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

	opts := seed.Options{Docs: *docs, Collections: *collections, Seed: *seedValue}
	for _, target := range []struct{ role, uri string }{{"source", sb.source.URI()}, {"destination", sb.destination.URI()}} {
		t := time.Now()
		stats, err := seedCluster(ctx, target.uri, opts)
		if err != nil {
			return fail(stderr, "demo", fmt.Errorf("seeding the %s: %w", target.role, err))
		}
		fmt.Fprintf(stdout, "seeded the %s: %d documents, %.1f MB, %d collections in %.1fs\n",
			target.role, stats.Docs, float64(stats.Bytes)/1e6, stats.Collections, time.Since(t).Seconds())
	}

	source, destination, disconnect, err := connectClusters(ctx, [2]string{"source", "destination"},
		[2]string{sb.source.URI(), sb.destination.URI()}, seedConnectTimeout)
	if err != nil {
		return fail(stderr, "demo", err)
	}
	defer disconnect()
	fmt.Fprintln(stdout, "verifying destination against source:")
	report, err := verify.Run(ctx, source, destination, verify.Options{})
	if err != nil {
		return fail(stderr, "demo", err)
	}
	if err := report.WriteText(stdout); err != nil {
		return fail(stderr, "demo", err)
	}
	fmt.Fprintf(stdout, "demo finished in %.1fs\n", time.Since(started).Seconds())
	if !report.Equal() {
		return exitDifferent
	}
	return exitOK
}
