package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/verify"
)

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("verify", stderr)
	cluster0 := fs.String("cluster0", "", "source cluster connection string (required)")
	cluster1 := fs.String("cluster1", "", "destination cluster connection string (required)")
	include := fs.String("include", "", "compare only these namespaces: db.coll[,db.coll...]")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	ignoreOrder := fs.Bool("ignore-field-order", false, "treat documents whose fields differ only in order as equal")
	metadataDB := fs.String("metadata-db", namespace.DefaultMetadataDB, "fleetsync's metadata database, never compared")
	timeout := fs.Duration("server-selection-timeout", mongoconn.DefaultServerSelectionTimeout, "how long to wait for an unreachable cluster")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if *cluster0 == "" || *cluster1 == "" {
		return fail(stderr, "verify", errors.New("--cluster0 and --cluster1 are required (the source and destination connection strings)"))
	}
	includes, err := namespace.ParseList(*include)
	if err != nil {
		return fail(stderr, "verify", fmt.Errorf("--include: %w", err))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	source, err := mongoconn.Connect(ctx, "cluster0", *cluster0, *timeout)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	defer source.Disconnect(context.Background())
	destination, err := mongoconn.Connect(ctx, "cluster1", *cluster1, *timeout)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	defer destination.Disconnect(context.Background())

	report, err := verify.Run(ctx, source, destination, verify.Options{
		Include: includes, IgnoreFieldOrder: *ignoreOrder, MetadataDB: *metadataDB,
	})
	if err != nil {
		return fail(stderr, "verify", err)
	}
	if *asJSON {
		b, err := json.Marshal(report)
		if err != nil {
			return fail(stderr, "verify", err)
		}
		fmt.Fprintln(stdout, string(b))
	} else if err := report.WriteText(stdout); err != nil {
		return fail(stderr, "verify", err)
	}
	if !report.Equal() {
		return exitDifferent
	}
	return exitOK
}
