package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetsync/fleetsync/internal/loadgen"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// loadReportInterval is how often load prints a progress line.
const loadReportInterval = time.Second

// runLoad writes to a cluster at a steady rate, for watching a sync apply change events. It prints a
// progress line every second and a summary at the end, also when stopped early with SIGINT or SIGTERM.
func runLoad(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("load", stderr)
	uri := fs.String("uri", "", "connection string of the cluster to write to (required)")
	rate := fs.Float64("rate", 500, "writes per second")
	duration := fs.Duration("duration", 0, "how long to write, e.g. 30s (0: until interrupted)")
	seedValue := fs.Int64("seed", 1, "seed of the writes: the same seed on the same data gives the same writes")
	workers := fs.Int("workers", loadgen.DefaultWorkers, "concurrent writers")
	include := fs.String("include", "", "write only to these collections: db.coll[,db.coll...] (default: every user collection)")
	timeout := fs.Duration("server-selection-timeout", mongoconn.DefaultServerSelectionTimeout, "how long to wait for an unreachable cluster")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if *uri == "" {
		return fail(stderr, "load", errors.New("--uri is required (the connection string of the cluster to write to)"))
	}
	if !(*rate > 0) { // NaN too
		return fail(stderr, "load", fmt.Errorf("--rate must be above 0 writes per second, not %g", *rate))
	}
	if *duration < 0 {
		return fail(stderr, "load", fmt.Errorf("--duration must be 0 (until interrupted) or more, not %s", *duration))
	}
	if *workers < 1 {
		return fail(stderr, "load", fmt.Errorf("--workers must be 1 or more, not %d", *workers))
	}
	includes, err := namespace.ParseList(*include)
	if err != nil {
		return fail(stderr, "load", fmt.Errorf("--include: %w", err))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client, err := mongoconn.Connect(ctx, "--uri", *uri, *timeout)
	if err != nil {
		return fail(stderr, "load", err)
	}
	defer client.Disconnect(context.Background())

	stats, err := loadgen.Run(ctx, client, loadgen.Options{
		Rate: *rate, Duration: *duration, Seed: *seedValue, Workers: *workers, Namespaces: includes,
		ReportInterval: loadReportInterval,
		Report: func(s loadgen.Stats) {
			fmt.Fprintf(stdout, "load: %.1fs %d ops (%.1f/s) errors %d\n", s.Elapsed.Seconds(), s.Ops(), s.Rate(), s.ErrorCount())
		},
	})
	if stats.Elapsed > 0 {
		fmt.Fprintf(stdout, "load: done in %.1fs: %s\n", stats.Elapsed.Seconds(), stats)
		for _, msg := range stats.FirstErrors {
			fmt.Fprintf(stderr, "load: failed write: %s\n", msg)
		}
	}
	if err != nil {
		return fail(stderr, "load", err)
	}
	return exitOK
}
