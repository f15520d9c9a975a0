package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/internal/verify"
)

func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, "bench", errors.New("name a benchmark: 'fleetsync bench verify', 'fleetsync bench copy', 'fleetsync bench cea' or 'fleetsync bench commit'"))
	}
	switch args[0] {
	case "verify":
		return runBenchVerify(args[1:], stdout, stderr)
	case "read-baseline":
		return runReadBaseline(args[1:], stdout, stderr)
	case "copy":
		return runBenchCopy(args[1:], stdout, stderr)
	case "naive-copy":
		return runNaiveCopy(args[1:], stdout, stderr)
	case "cea":
		return runBenchCEA(args[1:], stdout, stderr)
	case "commit":
		return runBenchCommit(args[1:], stdout, stderr)
	}
	return fail(stderr, "bench", fmt.Errorf("unknown benchmark %q; available: verify, copy, cea, commit", args[0]))
}

// runBenchVerify measures `fleetsync verify` on two identical seeded sandbox clusters against a
// baseline that only reads both clusters (the floor any verifier has to pay), each as a child process
// so its peak RSS is its own.
func runBenchVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench verify", stderr)
	docs := fs.Int("docs", 200000, "documents seeded into each cluster")
	collections := fs.Int("collections", 6, "collections to spread them over")
	runs := fs.Int("runs", 3, "runs of each command; the median time is reported")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if err := checkSeedFlags(*docs, *collections); err != nil {
		return fail(stderr, "bench verify", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sb, err := startSandbox(ctx, 0, 0, stderr)
	if err != nil {
		return fail(stderr, "bench verify", err)
	}
	defer sb.launcher.Close()

	fmt.Fprintf(stderr, "seeding %d documents into each cluster...\n", *docs)
	opts := seed.Options{Docs: *docs, Collections: *collections, Seed: 1}
	var wg sync.WaitGroup
	var stats [2]seed.Stats
	var errs [2]error
	for i, uri := range []string{sb.source.URI(), sb.destination.URI()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i], errs[i] = seedCluster(ctx, uri, opts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return fail(stderr, "bench verify", err)
	}

	self, err := os.Executable()
	if err != nil {
		return fail(stderr, "bench verify", err)
	}
	clusters := []string{"--cluster0", sb.source.URI(), "--cluster1", sb.destination.URI()}
	cases := []struct {
		name, note string
		args       []string
	}{
		{"baseline: read both clusters", "one cursor per namespace and side, nothing compared", append([]string{"bench", "read-baseline"}, clusters...)},
		{"fleetsync verify", "merge-join by _id, byte-exact document comparison, indexes, options", append([]string{"verify", "--json"}, clusters...)},
	}
	fmt.Fprintf(stdout, "dataset: %d documents per cluster, %.1f MB BSON, %d collections (seed 1); one warm-up round, then %d alternating runs each\n\n",
		stats[0].Docs, float64(stats[0].Bytes)/1e6, stats[0].Collections, *runs)
	fmt.Fprintln(stdout, "| command | documents read | seconds, median (min–max) | docs/s | MB/s | peak RSS MB |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|")
	// One discarded round warms the servers' JIT; then the commands alternate, so neither gets a
	// warmer or colder server than the other.
	times := make([][]float64, len(cases))
	peakKB := make([]int64, len(cases))
	for r := -1; r < *runs; r++ {
		for i, c := range cases {
			m, err := measureChild(ctx, self, c.args)
			if err != nil {
				return fail(stderr, "bench verify", fmt.Errorf("%s: %w", c.name, err))
			}
			if r >= 0 {
				times[i] = append(times[i], m.seconds)
				peakKB[i] = max(peakKB[i], m.maxRSSKB)
			}
		}
	}
	read := int64(2 * stats[0].Docs)
	for i, c := range cases {
		sort.Float64s(times[i])
		median := times[i][len(times[i])/2]
		fmt.Fprintf(stdout, "| %s (%s) | %d | %.2f (%.2f–%.2f) | %.0f | %.1f | %.0f |\n", c.name, c.note, read, median,
			times[i][0], times[i][len(times[i])-1], float64(read)/median, float64(2*stats[0].Bytes)/1e6/median, float64(peakKB[i])/1024)
	}
	return exitOK
}

type childMeasure struct {
	seconds  float64
	maxRSSKB int64
}

func measureChild(ctx context.Context, self string, args []string) (childMeasure, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	dieWithParent(cmd)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start).Seconds()
	if err != nil {
		return childMeasure{}, fmt.Errorf("%v: %s%s", err, errOut.String(), lastLine(out.String()))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return childMeasure{}, errors.New("no resource usage for the child process on this platform")
	}
	return childMeasure{seconds: elapsed, maxRSSKB: ru.Maxrss}, nil
}

func lastLine(s string) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	return string(lines[len(lines)-1])
}

// runReadBaseline reads every user namespace of both clusters to the end and discards the documents:
// the cost of reading alone, at the verifier's concurrency (namespaces at once, both sides at once) and
// with its cursor batch size.
func runReadBaseline(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench read-baseline", stderr)
	cluster0 := fs.String("cluster0", "", "source")
	cluster1 := fs.String("cluster1", "", "destination")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	ctx := context.Background()
	type job struct {
		client *mongo.Client
		ns     namespace.Namespace
	}
	var jobs []job
	for _, uri := range []string{*cluster0, *cluster1} {
		client, err := mongoconn.Connect(ctx, "cluster", uri, mongoconn.DefaultServerSelectionTimeout)
		if err != nil {
			return fail(stderr, "bench read-baseline", err)
		}
		defer client.Disconnect(ctx)
		colls, err := catalog.ListCollections(ctx, client, namespace.Filter{})
		if err != nil {
			return fail(stderr, "bench read-baseline", err)
		}
		for _, c := range colls {
			jobs = append(jobs, job{client, c.NS})
		}
	}
	var total atomic.Int64
	errs := make(chan error, len(jobs))
	sem := make(chan struct{}, 2*verify.DefaultConcurrency) // both sides of each namespace at once
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cur, err := j.client.Database(j.ns.DB).Collection(j.ns.Coll).Find(ctx, bson.D{},
				options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(verify.CursorBatchDocs))
			if err != nil {
				errs <- err
				return
			}
			defer cur.Close(ctx)
			var n int64
			for cur.Next(ctx) {
				n++
			}
			total.Add(n)
			errs <- cur.Err()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return fail(stderr, "bench read-baseline", err)
		}
	}
	fmt.Fprintf(stdout, "read %d documents\n", total.Load())
	return exitOK
}

// runBenchmark runs a benchmark until it ends or the user interrupts it (SIGINT, SIGTERM), and turns
// its outcome into an exit code: an interruption is said as such, not as the error it caused.
func runBenchmark(name string, stderr io.Writer, bench func(context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "fleetsync %s: interrupted; its nodes and servers are stopped\n", name)
			return exitError
		}
		return fail(stderr, name, err)
	}
	return exitOK
}
