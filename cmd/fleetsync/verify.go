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
	"time"

	"go.mongodb.org/mongo-driver/mongo"

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
	source, destination, disconnect, err := connectClusters(ctx, [2]string{"cluster0", "cluster1"}, [2]string{*cluster0, *cluster1}, *timeout)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	defer disconnect()

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

// connectClusters connects to a source and a destination (labels name them in errors) and returns a
// function that disconnects both.
func connectClusters(ctx context.Context, labels, uris [2]string, timeout time.Duration) (source, destination *mongo.Client, disconnect func(), err error) {
	source, err = mongoconn.Connect(ctx, labels[0], uris[0], timeout)
	if err != nil {
		return nil, nil, nil, err
	}
	destination, err = mongoconn.Connect(ctx, labels[1], uris[1], timeout)
	if err != nil {
		_ = source.Disconnect(context.Background())
		return nil, nil, nil, err
	}
	return source, destination, func() {
		_ = source.Disconnect(context.Background())
		_ = destination.Disconnect(context.Background())
	}, nil
}
